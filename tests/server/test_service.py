"""The happy path over real HTTP: register, consent, submit, job, result, metrics; research-only scope."""

from __future__ import annotations

import json

import httpx

from server_testkit import make_recording, wait_until


def test_submission_is_animated_and_served(shared_stack, api):
    token, consent_id = api.device_with_consent()
    r = api.submit(token, consent_id, make_recording(frames=12, seed=1))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["replayed"] is False
    job = api.wait_job(token, body["job_id"], lambda j: j["status"] in ("succeeded", "failed"), 30,
                       "the job to finish", shared_stack.logs)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1 and job["progress"] == 1.0 and job["qa_passed"] is True

    res = api.http.get(f"/v1/submissions/{body['submission_id']}/result", headers=api.auth(token))
    assert res.status_code == 200, res.text
    result = res.json()
    qa = result["qa_report"]
    assert qa["frames_expected"] == qa["frames_written"] == qa["frames_read_back"] == 12
    assert qa["keypoints_drawn"] > 0 and qa["passed"] is True

    video = httpx.get(result["video_url"], timeout=10)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"  # a real MP4
    report = httpx.get(result["qa_report_url"], timeout=10)
    assert report.status_code == 200 and json.loads(report.content)["frames_written"] == 12

    sub = api.http.get(f"/v1/submissions/{body['submission_id']}", headers=api.auth(token)).json()
    assert sub["status"] == "succeeded" and sub["num_frames"] == 12 and sub["schema_name"] == "mediapipe33"


def test_research_scope_stores_without_animating(api, recording_bytes):
    token, consent_id = api.device_with_consent("research_keypoints")
    r = api.submit(token, consent_id, recording_bytes)
    assert r.status_code == 202, r.text
    assert r.json()["job_id"] is None and r.json()["status"] == "stored"
    res = api.http.get(f"/v1/submissions/{r.json()['submission_id']}/result", headers=api.auth(token))
    assert res.status_code == 409 and "research only" in res.json()["detail"]


def test_result_before_completion_says_why(api, recording_bytes):
    token, consent_id = api.device_with_consent()
    sid = api.submit(token, consent_id, recording_bytes).json()["submission_id"]
    res = api.http.get(f"/v1/submissions/{sid}/result", headers=api.auth(token))
    assert res.status_code in (200, 409)  # the fast worker may already be done
    if res.status_code == 409:
        assert "no result yet" in res.json()["detail"]


def test_health_ready_metrics(api):
    assert api.http.get("/healthz").json() == {"status": "ok"}
    ready = api.http.get("/readyz").json()
    assert ready["status"] == "ready" and set(ready["checks"].values()) == {"ok"}
    text = api.http.get("/metrics").text
    assert "cogma_http_requests_total" in text and "cogma_jobs" in text and "cogma_queue_pending" in text
    # route templates only: no ids, no tokens in metrics
    assert "/v1/jobs/{job_id}" in text or "cogma_submissions_total" in text
    assert "cgd_" not in text


def test_a_body_of_the_wrong_media_type_gets_415_naming_the_right_one(api):
    r = api.http.post("/v1/devices", content=b"platform=android",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["detail"] == (
        "this endpoint takes application/json, not application/x-www-form-urlencoded")
    token, consent_id = api.device_with_consent()
    r = api.http.post("/v1/submissions", json={"consent_id": consent_id},
                      headers={**api.auth(token), "Idempotency-Key": "k-json-1"})
    assert r.status_code == 415 and "takes multipart/form-data, not application/json" in r.json()["detail"]
    assert api.http.post("/v1/devices", json={"nope": 1}).status_code == 422  # right type, wrong content


def test_video_uploads_refused_by_default(api, recording_bytes):
    token, consent_id = api.device_with_consent()
    fake_mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000
    r = api.submit(token, consent_id, fake_mp4, filename="clip.mp4", content_type="video/mp4")
    assert r.status_code == 415 and "video uploads are disabled" in r.json()["detail"]
    r = api.http.post("/v1/submissions", headers={**api.auth(token), "Idempotency-Key": "k-video-1"},
                      files={"recording": ("r.npz", recording_bytes), "video": ("v.mp4", fake_mp4, "video/mp4")},
                      data={"consent_id": consent_id})
    assert r.status_code == 415, r.text


def test_delete_submission_erases_it(shared_stack, api, recording_bytes):
    token, consent_id = api.device_with_consent()
    body = api.submit(token, consent_id, recording_bytes).json()
    api.wait_job(token, body["job_id"], lambda j: j["status"] == "succeeded", 30, "the job", shared_stack.logs)
    r = api.http.delete(f"/v1/submissions/{body['submission_id']}", headers=api.auth(token))
    assert r.status_code == 200 and r.json()["erased"] is True and r.json()["files_deleted"] >= 2
    assert not (shared_stack.data_dir / "blobs" / "submissions" / body["submission_id"]).exists()
    assert api.http.get(f"/v1/jobs/{body['job_id']}", headers=api.auth(token)).status_code == 404
    assert api.http.delete(f"/v1/submissions/{body['submission_id']}", headers=api.auth(token)).status_code == 404
    with shared_stack.db() as db:
        events = [e for (e,) in db.execute("select event from audit_event where resource = ?",
                                           (f"submission:{body['submission_id']}",))]
    assert "submission.erased" in events


def test_erase_device_takes_everything_and_revokes_token(shared_stack, api, recording_bytes):
    token = api.register()["token"]
    consents = [api.consent(token), api.consent(token, "research_keypoints")]
    subs = [api.submit(token, c, recording_bytes).json()["submission_id"] for c in consents]
    r = api.http.delete("/v1/devices/me", headers=api.auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["consents_withdrawn"] == 2 and r.json()["submissions_erased"] == 2
    # A job that was finishing when the rows went may still be writing its result; the worker deletes it (and
    # with it the submission's folder) once its final update finds no row. Give it that moment, no more.
    folders = [shared_stack.data_dir / "blobs" / "submissions" / sid for sid in subs]
    wait_until(lambda: not any(f.exists() for f in folders), 10, "the erased submissions' folders to go",
               on_fail=lambda: str([sorted(f.rglob("*")) for f in folders if f.exists()]))
    assert api.http.get(f"/v1/consents/{consents[0]}", headers=api.auth(token)).status_code == 401
