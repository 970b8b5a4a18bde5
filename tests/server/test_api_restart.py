"""Reliability 3: the API server is killed and restarted during load; no accepted (202) submission is lost."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from server_testkit import make_recording, run_clients, wait_until

CLIENTS, PER_CLIENT = 6, 12


def test_no_accepted_submission_lost_across_api_restart(make_stack):
    stack = make_stack("restart")
    stack.start_server()
    stack.start_worker()
    setup = stack.client()
    devices = [setup.device_with_consent() for _ in range(CLIENTS)]
    data = [make_recording(seed=100 + i) for i in range(CLIENTS * PER_CLIENT)]
    accepted: dict[str, str] = {}  # Idempotency-Key -> submission id from a 202
    lock = threading.Lock()
    progress = threading.Event()
    retries = [0]

    def client(i: int) -> None:
        token, consent_id = devices[i]
        c = stack.client()
        c.http.timeout = httpx.Timeout(10)
        try:
            for n in range(PER_CLIENT):
                key = uuid.uuid4().hex
                deadline = time.monotonic() + 60
                while True:  # an app retries with the same key until it gets an answer
                    try:
                        r = c.submit(token, consent_id, data[i * PER_CLIENT + n], key)
                        if r.status_code == 202:
                            break
                        assert r.status_code >= 500, r.text  # only a server in trouble may refuse
                    except httpx.TransportError:
                        pass
                    with lock:
                        retries[0] += 1
                    assert time.monotonic() < deadline, "server did not come back"
                    time.sleep(0.1)
                with lock:
                    prev = accepted.setdefault(key, r.json()["submission_id"])
                    assert prev == r.json()["submission_id"]
                    if len(accepted) >= CLIENTS * PER_CLIENT // 3:
                        progress.set()
        finally:
            c.close()

    def restarter() -> None:
        progress.wait(60)
        stack.server.kill()  # SIGKILL mid-load: requests in flight are cut
        stack.start_server()

    killer = threading.Thread(target=restarter)
    killer.start()
    errors = run_clients(CLIENTS, client)
    killer.join(90)
    assert errors == [], errors[:3]
    assert len(accepted) == CLIENTS * PER_CLIENT
    assert retries[0] > 0, "the restart did not interrupt any request; the test proved nothing"

    # Every 202 is still there, exactly once, and its job completes.
    with stack.db() as db:
        rows = dict(db.execute("select idempotency_key, id from submission").fetchall())
    assert rows == accepted
    with stack.db() as db:
        wait_until(lambda: db.execute("select count(*) from job where status = 'succeeded'").fetchone()[0]
                   == len(accepted), 90, "every job to finish", 0.25, stack.logs)
        (jobs,) = db.execute("select count(*) from job").fetchone()
    assert jobs == len(accepted)
    setup.close()
