"""Reliability 8: consent withdrawn while its job runs: the job stops, every file and row of the consent is gone
(a storage scan proves it), the audit entry remains; another consent of the same device is untouched."""

from __future__ import annotations

import json
import uuid

from server_testkit import make_recording, wait_until

SLOW = {"COGMA_BACKEND": "slow_backend:SlowRenderBackend",
        "COGMA_BACKEND_OPTIONS": json.dumps({"frame_delay_s": 0.05})}


def _fragments(data: bytes, n: int = 6, size: int = 48) -> list[bytes]:
    step = max(1, (len(data) - size) // n)
    return [data[i:i + size] for i in range(0, len(data) - size, step)][:n]


def test_withdrawal_during_job_erases_everything(make_stack):
    stack = make_stack("withdraw")
    stack.start_server()
    stack.start_worker(**SLOW)
    api = stack.client()
    token = api.register()["token"]
    withdrawn, kept = api.consent(token), api.consent(token)
    marker = uuid.uuid4().hex  # stored as the recording's pseudonym (the server keeps only pseudonym-shaped ids)
    body = api.submit(token, withdrawn, make_recording(frames=60, fps=20, seed=5, marker=marker)).json()
    sid, job_id = body["submission_id"], body["job_id"]
    other = api.submit(token, kept, make_recording(frames=20, fps=20, seed=6)).json()

    api.wait_job(token, job_id, lambda j: j["status"] == "running" and j["progress"] > 0.1, 30,
                 "the job to run", stack.logs)
    stored = (stack.data_dir / "blobs" / "submissions" / sid / "recording.npz").read_bytes()
    scratch = [p for p in (stack.data_dir / "work").iterdir() if p.name.startswith(job_id)]
    assert scratch, "the running job should have a scratch folder"

    r = api.http.delete(f"/v1/consents/{withdrawn}", headers=api.auth(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"consent_id": withdrawn, "withdrawn": True, "submissions_erased": 1,
                        "jobs_cancelled": 1, "files_deleted": r.json()["files_deleted"]}
    assert r.json()["files_deleted"] >= 1

    worker_log = stack.workers[0].log_path
    wait_until(lambda: f"job {job_id} cancelled".encode() in worker_log.read_bytes(), 15,
               "the worker to stop the cancelled job", 0.1, stack.logs)
    # the other consent's job runs next and completes: the cascade was scoped to the withdrawn consent
    done = api.wait_job(token, other["job_id"], lambda j: j["status"] in ("succeeded", "failed"), 30,
                        "the other consent's job", stack.logs)
    assert done["status"] == "succeeded"

    # API: everything of the withdrawn consent is gone
    h = api.auth(token)
    assert api.http.get(f"/v1/consents/{withdrawn}", headers=h).status_code == 404
    assert api.http.get(f"/v1/submissions/{sid}", headers=h).status_code == 404
    assert api.http.get(f"/v1/jobs/{job_id}", headers=h).status_code == 404
    assert api.http.delete(f"/v1/consents/{withdrawn}", headers=h).status_code == 404

    # Rows: none of that consent outside the audit log; the audit entry remains, without personal data.
    with stack.db() as db:
        for table, column, value in (("consent", "id", withdrawn), ("submission", "consent_id", withdrawn),
                                     ("submission", "id", sid), ("job", "id", job_id), ("job", "submission_id", sid)):
            (n,) = db.execute(f"select count(*) from {table} where {column} = ?", (value,)).fetchone()
            assert n == 0, (table, column)
        (n,) = db.execute("select count(*) from submission where consent_id = ?", (kept,)).fetchone()
        assert n == 1
        audit = db.execute("select event, resource, detail from audit_event where resource = ?",
                           (f"consent:{withdrawn}",)).fetchall()
    events = {e: json.loads(d) if d else None for e, _, d in audit}
    assert set(events) == {"consent.given", "consent.withdrawn"}
    assert events["consent.withdrawn"]["jobs_cancelled"] == 1 and events["consent.withdrawn"]["submissions"] == 1
    assert "age" not in json.dumps(events) and marker not in json.dumps(events)

    # Storage scan: no file of that submission or job, and no byte of its recording anywhere.
    def leftovers() -> list[str]:
        return [str(p) for p in stack.data_dir.rglob("*") if sid in str(p) or job_id in str(p)]

    wait_until(lambda: not leftovers(), 10, "scratch files to disappear", 0.1, lambda: "\n".join(leftovers()))
    fragments = _fragments(stored)
    files = [p for p in stack.data_dir.rglob("*") if p.is_file()] + list(stack.data_dir.parent.glob("*.log"))
    assert any(p.name == "cogma.db" for p in files)
    for path in files:
        content = path.read_bytes()
        assert marker.encode() not in content, path
        assert not any(f in content for f in fragments), f"bytes of the erased recording remain in {path}"
    api.close()
