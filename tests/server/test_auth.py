"""Reliability 7: no token 401, another device's resources 404, expired or forged signed links 403."""

from __future__ import annotations

import time

import httpx

from server_animator.security import sign
from server_testkit import SECRET


def _done_submission(stack, api, data):
    token, consent_id = api.device_with_consent()
    body = api.submit(token, consent_id, data).json()
    api.wait_job(token, body["job_id"], lambda j: j["status"] == "succeeded", 30, "the job", stack.logs)
    return token, consent_id, body


def test_missing_or_wrong_token_is_401(api):
    for headers in ({}, {"Authorization": "Bearer cgd_not-a-real-token"}, {"Authorization": "Basic abc"}):
        for method, path in (("GET", "/v1/jobs/" + "0" * 32), ("POST", "/v1/consents"),
                             ("GET", "/v1/submissions/" + "0" * 32 + "/result"),
                             ("DELETE", "/v1/consents/" + "0" * 32)):
            r = api.http.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.text)
            assert "token" in r.json()["detail"] and r.headers.get("www-authenticate") == "Bearer"
    r = api.http.post("/v1/submissions", data={"consent_id": "x"}, files={"recording": ("r", b"x")},
                      headers={"Idempotency-Key": "k1"})
    assert r.status_code == 401


def test_other_devices_resources_are_404(shared_stack, api, recording_bytes):
    token_a, consent_a, body = _done_submission(shared_stack, api, recording_bytes)
    token_b, consent_b = api.device_with_consent()
    b = api.auth(token_b)
    for method, path in (("GET", f"/v1/jobs/{body['job_id']}"),
                         ("GET", f"/v1/submissions/{body['submission_id']}"),
                         ("GET", f"/v1/submissions/{body['submission_id']}/result"),
                         ("DELETE", f"/v1/submissions/{body['submission_id']}"),
                         ("GET", f"/v1/consents/{consent_a}"),
                         ("DELETE", f"/v1/consents/{consent_a}")):
        r = api.http.request(method, path, headers=b)
        assert r.status_code == 404, (method, path, r.text)
    # B cannot submit under A's consent either
    assert api.submit(token_b, consent_a, recording_bytes).status_code == 404
    # and A's things are untouched
    assert api.job(token_a, body["job_id"])["status"] == "succeeded"


def test_signed_links_expire_and_resist_forgery(shared_stack, api, recording_bytes):
    token, _, body = _done_submission(shared_stack, api, recording_bytes)
    res = api.http.get(f"/v1/submissions/{body['submission_id']}/result?ttl=3", headers=api.auth(token)).json()
    url = res["video_url"]
    expires = int(url.split("expires=")[1].split("&")[0])
    assert httpx.get(url, timeout=10).status_code == 200
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    r = httpx.get(forged, timeout=10)
    assert r.status_code == 403 and "signature" in r.json()["detail"]
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    r = httpx.get(url, timeout=10)
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    # Even a correctly signed link never serves the uploaded keypoints.
    key = f"submissions/{body['submission_id']}/recording.npz"
    exp, sig = sign(SECRET.encode(), key, 60)
    r = httpx.get(f"{shared_stack.url}/v1/files/{key}?expires={exp}&signature={sig}", timeout=10)
    assert r.status_code == 404


def test_tokens_are_stored_hashed(shared_stack, api):
    token = api.register()["token"]
    with shared_stack.db() as db:
        hashes = [h for (h,) in db.execute("select token_hash from device")]
    assert token not in hashes and all(len(h) == 64 for h in hashes)
    raw = b"".join(p.read_bytes() for p in shared_stack.data_dir.glob("cogma.db*"))
    assert token.encode() not in raw


def test_rate_limit_per_device(make_stack, recording_bytes):
    stack = make_stack("ratelimit", COGMA_RATE_LIMIT_PER_MINUTE="6", COGMA_RATE_LIMIT_BURST="5")
    stack.start_server()
    api = stack.client()
    token, consent_id = api.device_with_consent()  # 1 call
    codes = [api.http.get("/v1/consents/" + consent_id, headers=api.auth(token)).status_code for _ in range(8)]
    assert codes[:4] == [200] * 4 and 429 in codes
    limited = api.http.get("/v1/consents/" + consent_id, headers=api.auth(token))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    other, _ = api.device_with_consent()  # another device is not affected
    assert api.http.get("/v1/consents/" + _, headers=api.auth(other)).status_code == 200
    api.close()
