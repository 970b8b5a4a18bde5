"""The `diffusion` backend (server_animator.animator) plugged into a real worker: a tiny random-weight
InfantAnimator runs the job; its anonymization QA fails (random weights draw no infant), so the job fails
with that reason, the QA report is kept and no video is ever stored or served."""

from __future__ import annotations

import json

import pytest

from server_testkit import make_recording

pytest.importorskip("server_animator.animator.backend", reason="the diffusion animator package is not present")

TINY = {"random_weights": "tiny", "steps": 2, "device": "cpu", "dtype": "fp32", "window": 4, "overlap": 1}


@pytest.mark.slow
def test_diffusion_job_runs_and_failed_qa_fails_the_job(make_stack):
    stack = make_stack("diffusion", COGMA_RENDER_WIDTH="64", COGMA_RENDER_HEIGHT="64")
    stack.start_server()
    stack.start_worker(COGMA_BACKEND="diffusion", COGMA_BACKEND_OPTIONS=json.dumps(TINY), COGMA_LEASE_S="30")
    api = stack.client()
    token, consent_id = api.device_with_consent()
    body = api.submit(token, consent_id, make_recording(frames=10, fps=10)).json()
    job = api.wait_job(token, body["job_id"], lambda j: j["status"] in ("succeeded", "failed"), 90,
                       "the diffusion job", stack.logs)
    assert job["backend"] == "diffusion" and job["attempts"] == 1
    assert job["status"] == "failed" and job["qa_passed"] is False
    assert "QA" in job["failure_reason"]
    result = api.http.get(f"/v1/submissions/{body['submission_id']}/result", headers=api.auth(token))
    assert result.status_code == 409 and "QA" in result.json()["detail"]
    stored = stack.data_dir / "blobs" / "submissions" / body["submission_id"] / "result"
    assert (stored / "qa_report.json").is_file() and not (stored / "video.mp4").exists()
    report = json.loads((stored / "qa_report.json").read_text())
    assert report["passed"] is False and report["backend"] == "diffusion"
    api.close()
