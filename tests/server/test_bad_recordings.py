"""Reliability 6: malformed, truncated, oversized, NaN, pickled and zip-bomb uploads get a 4xx that says what is wrong."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from server_testkit import make_recording


def _npz(**members) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)
    return buf.getvalue()


def _meta(**over) -> np.ndarray:
    meta = {"format": "cogma.pose_recording", "version": 1, "schema": "mediapipe33", "fps": 10.0,
            "frame_size": [640, 480]}
    meta.update(over)
    return np.array(json.dumps(meta))


def _zip_bomb() -> bytes:
    """A tiny zip whose keypoints member inflates to ~200 MB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("meta.npy", "w") as f:
            np.lib.format.write_array(f, _meta())
        with zf.open("keypoints.npy", "w", force_zip64=True) as f:
            shape = (700_000, 33, 3)  # float32: 277 MB
            np.lib.format.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
            zeros = bytes(1 << 22)
            for _ in range(277_200_000 // len(zeros) + 1):
                f.write(zeros)
    return buf.getvalue()


def _cases() -> dict[str, tuple[bytes, int, str]]:
    good = make_recording(frames=12)
    kp = np.full((12, 33, 3), 0.5, np.float32)
    nan_kp = kp.copy()
    nan_kp[3, 5, 0] = np.nan
    return {
        "not an npz": (b"hello, this is not a recording", 422, "not an .npz pose recording"),
        "empty": (b"", 422, "not an .npz"),
        "truncated": (good[: len(good) // 2], 422, "truncated"),
        "NaN": (_npz(keypoints=nan_kp, meta=_meta()), 422, "NaN"),
        "pickled": (_npz(keypoints=np.array([{"a": 1}], dtype=object), meta=_meta()), 422, "pickled"),
        "wrong shape": (_npz(keypoints=np.zeros((12, 17, 3), np.float32), meta=_meta()), 422, "shape"),
        "missing field": (_npz(keypoints=kp), 422, "missing field 'meta'"),
        "too short": (_npz(keypoints=kp[:3], meta=_meta()), 422, "too short"),
        "bad fps": (_npz(keypoints=kp, meta=_meta(fps=1000)), 422, "frame rate"),
        "off frame": (_npz(keypoints=kp * 9, meta=_meta()), 422, "outside the frame"),
        "birth date": (_npz(keypoints=kp, meta=_meta(extra={"birth_date": "2026-01-01"})), 422, "birth date"),
        "fps too big for a float": (_npz(keypoints=kp, meta=_meta(fps=10**400)), 422, "fps must be a number"),
        "meta nested too deeply": (_npz(keypoints=kp, meta=np.array("[" * 60000)), 422, "nested too deeply"),
        "oversized": (good + bytes(1024 * 1024 + 10), 413, "larger than the limit"),
        # ~100 KB of zip, 36001 frames: over the server's max_frames (a worker would render it for minutes)
        "too many frames": (_npz(keypoints=np.full((36001, 33, 3), 0.5, np.float32), meta=_meta()), 422,
                            "at most 36000 per submission"),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_upload_is_refused_with_reason(api, name):
    data, status, phrase = CASES[name]
    token, consent_id = api.device_with_consent()
    r = api.submit(token, consent_id, data)
    assert r.status_code == status, (name, r.status_code, r.text)
    detail = r.json()["detail"]
    assert phrase.lower() in detail.lower(), (name, detail)
    assert "Traceback" not in detail


def test_a_body_over_the_limit_is_counted_and_logged_without_its_path(shared_stack, api):
    from server_testkit import wait_until

    token, consent_id = api.device_with_consent()
    r = api.submit(token, consent_id, CASES["oversized"][0] + bytes(2 * 1024 * 1024))  # past the body limit too
    assert r.status_code == 413 and "request body is larger" in r.json()["detail"]
    wait_until(lambda: "POST (body over the limit) 413" in shared_stack.server.tail(100_000), 10,
               "the refusal in the server log", 0.1, shared_stack.logs)
    metrics = api.http.get("/metrics").text
    assert 'route="(body over the limit)",status="413"' in metrics


def test_zip_bomb_is_refused_before_inflating(api):
    bomb = _zip_bomb()
    assert len(bomb) < 1024 * 1024  # small on the wire, fits the upload limit
    token, consent_id = api.device_with_consent()
    r = api.submit(token, consent_id, bomb)
    assert r.status_code == 422, r.text
    assert "absurd" in r.json()["detail"]


def test_nothing_is_kept_of_refused_uploads(shared_stack, api):
    token, consent_id = api.device_with_consent()
    before = sorted((shared_stack.data_dir / "blobs").rglob("*")) if (shared_stack.data_dir / "blobs").exists() else []
    for name in ("NaN", "pickled", "truncated"):
        assert api.submit(token, consent_id, CASES[name][0]).status_code == 422
    after = sorted((shared_stack.data_dir / "blobs").rglob("*")) if (shared_stack.data_dir / "blobs").exists() else []
    assert [p for p in after if p not in before and p.is_file()] == []


def test_malformed_requests(api, recording_bytes):
    token, consent_id = api.device_with_consent()
    h = api.auth(token)
    r = api.http.post("/v1/submissions", headers=h, files={"recording": ("r.npz", recording_bytes)},
                      data={"consent_id": consent_id})
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"]
    r = api.http.post("/v1/submissions", headers={**h, "Idempotency-Key": "k-2"},
                      files={"recording": ("r.npz", recording_bytes)})
    assert r.status_code == 422 and "consent_id" in r.json()["detail"]
    r = api.http.post("/v1/submissions", headers={**h, "Idempotency-Key": "bad key with spaces"},
                      files={"recording": ("r.npz", recording_bytes)}, data={"consent_id": consent_id})
    assert r.status_code == 422
    r = api.http.post("/v1/consents", headers=h, json={"scope": "everything", "text_version": "v1", "given_by": "parent"})
    assert r.status_code == 422 and "scope" in r.json()["detail"]
    r = api.http.post("/v1/consents", headers=h, json={"scope": "anonymized_video", "text_version": "v1",
                                                        "given_by": "Jane Doe"})
    assert r.status_code == 422 and "given_by" in r.json()["detail"]
    r = api.http.post("/v1/submissions", headers={**h, "Idempotency-Key": "k-3", "Content-Type": "multipart/form-data"},
                      content=b"--garbage")
    assert 400 <= r.status_code < 500


def test_server_keeps_only_the_validated_recording(shared_stack, api):
    """Bytes before the archive (a video, say), a zip comment and free-text metadata are not stored."""
    from skeleton.recording import load_recording

    buf = io.BytesIO(make_recording(frames=12))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"mother: Jane Smith"
    names = {"child_name": "Emma Smith", "parent_email": "jane@example.com"}
    hidden = b"JUNK" * 4 + b"\x00\x00\x00\x18ftypmp42 pretend this is a video " * 100
    kp = np.full((12, 33, 3), 0.5, np.float32)
    uploads = {"hidden bytes": hidden + buf.getvalue(),
               "names": _npz(keypoints=kp, meta=_meta(extra=names, device="Jane's iPhone", infant_id="Emma Smith")),
               "pseudonym": _npz(keypoints=kp, meta=_meta(infant_id="0123456789abcdef0123456789abcdef"))}
    token, consent_id = api.device_with_consent()
    for name, data in uploads.items():
        r = api.submit(token, consent_id, data)
        assert r.status_code == 202, (name, r.text)
        stored = (shared_stack.data_dir / "blobs" / "submissions" / r.json()["submission_id"] / "recording.npz")
        content = stored.read_bytes()
        for secret in (b"JUNK", b"ftyp", b"Jane", b"Emma", b"jane@example.com"):
            assert secret not in content, (name, secret)
        rec = load_recording(content)
        assert rec.extra == {} and rec.device == "unknown" and rec.num_frames == 12
        assert rec.infant_id == ("0123456789abcdef0123456789abcdef" if name == "pseudonym" else None)
