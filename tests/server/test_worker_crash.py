"""Reliability 2: a worker killed with SIGKILL mid-job; the job is retried by another worker and completes."""

from __future__ import annotations

import json

from server_testkit import make_recording

SLOW = {"COGMA_BACKEND": "slow_backend:SlowRenderBackend",
        "COGMA_BACKEND_OPTIONS": json.dumps({"frame_delay_s": 0.08})}


def test_sigkill_mid_job_is_retried_and_completes(make_stack):
    stack = make_stack("crash")
    stack.start_server()
    first = stack.start_worker(**SLOW)
    api = stack.client()
    token, consent_id = api.device_with_consent()
    body = api.submit(token, consent_id, make_recording(frames=40, fps=20)).json()
    job_id = body["job_id"]

    running = api.wait_job(token, job_id, lambda j: j["status"] == "running" and j["progress"] > 0.1, 30,
                           "the job to be running", stack.logs)
    assert running["attempts"] == 1
    first.kill()  # SIGKILL: no clean-up, the queue message it had taken is gone with it

    stack.start_worker(**SLOW)
    done = api.wait_job(token, job_id, lambda j: j["status"] in ("succeeded", "failed"), 60,
                        "the job to be retried and finish", stack.logs)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert "worker stopped responding during attempt 1" in (done["failure_reason"] or "")
    res = api.http.get(f"/v1/submissions/{body['submission_id']}/result", headers=api.auth(token))
    assert res.status_code == 200 and res.json()["qa_report"]["frames_written"] == 40
    assert res.json()["qa_report"]["attempt"] == 2
    # the killed attempt's scratch folder is removed by the janitor or was never left; no other job state leaks
    with stack.db() as db:
        (n,) = db.execute("select count(*) from job").fetchone()
    assert n == 1
    api.close()
