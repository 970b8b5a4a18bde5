"""Storage on an S3-compatible store (configuration `storage = "s3"`), against moto's S3 server on loopback.

Needs the optional packages boto3 (used by the server) and moto[server] (the test's S3 endpoint);
skipped with that reason when they are not installed.
"""

from __future__ import annotations

import httpx
import pytest

from server_testkit import free_port, make_recording

boto3 = pytest.importorskip("boto3", reason="boto3 not installed: storage 's3' is untested here (pip install boto3)")
moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed: no S3-compatible test endpoint")


@pytest.fixture
def s3_endpoint():
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_s3_storage_round_trip_and_erasure(make_stack, s3_endpoint):
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="cogma-test")
    stack = make_stack("s3", COGMA_STORAGE="s3", COGMA_S3_BUCKET="cogma-test", COGMA_S3_PREFIX="srv",
                       COGMA_S3_ENDPOINT_URL=s3_endpoint, COGMA_S3_REGION="us-east-1", **creds)
    stack.start_server()
    stack.start_worker()
    api = stack.client()
    token, consent_id = api.device_with_consent()
    body = api.submit(token, consent_id, make_recording(frames=12)).json()
    job = api.wait_job(token, body["job_id"], lambda j: j["status"] in ("succeeded", "failed"), 30, "the job",
                       stack.logs)
    assert job["status"] == "succeeded", job
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cogma-test").get("Contents", [])]
    sid = body["submission_id"]
    assert {f"srv/submissions/{sid}/recording.npz", f"srv/submissions/{sid}/result/video.mp4",
            f"srv/submissions/{sid}/result/qa_report.json"} <= set(keys)
    assert not (stack.data_dir / "blobs").exists()  # nothing kept locally

    result = api.http.get(f"/v1/submissions/{sid}/result", headers=api.auth(token)).json()
    assert result["video_url"].startswith(s3_endpoint)  # a presigned S3 link
    video = httpx.get(result["video_url"], timeout=10)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"

    assert api.http.delete(f"/v1/consents/{consent_id}", headers=api.auth(token)).json()["files_deleted"] == 3
    assert s3.list_objects_v2(Bucket="cogma-test").get("KeyCount", 0) == 0
    api.close()
