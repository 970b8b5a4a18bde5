"""The queue on Redis (the many-worker configuration): a real redis-server, two workers, every job done once."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from server_testkit import free_port, make_recording, wait_until

REDIS = shutil.which("redis-server")


@pytest.fixture
def redis_url(tmp_path):
    if REDIS is None:
        pytest.skip("redis-server is not installed (Debian package redis-server); the Redis queue is untested here")
    port = free_port()
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(up, 10, "redis-server to answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_two_workers_share_a_redis_queue(make_stack, redis_url):
    stack = make_stack("redis", COGMA_QUEUE="redis", COGMA_REDIS_URL=redis_url)
    stack.start_server()
    assert stack.client().http.get("/readyz").json()["checks"]["queue"] == "ok"
    stack.start_worker()
    stack.start_worker()
    api = stack.client()
    token, consent_id = api.device_with_consent()
    jobs = [api.submit(token, consent_id, make_recording(frames=20, seed=i)).json()["job_id"] for i in range(12)]
    finished = [api.wait_job(token, j, lambda x: x["status"] in ("succeeded", "failed"), 60, "a job", stack.logs)
                for j in jobs]
    assert all(j["status"] == "succeeded" and j["attempts"] == 1 for j in finished), finished
    assert not (stack.data_dir / "queue.db").exists()  # the SQLite queue was not used
    ran = [w.log_path.read_text().count("succeeded") for w in stack.workers]
    assert sum(ran) == 12, ran  # each job ran exactly once across the two workers
    api.close()
