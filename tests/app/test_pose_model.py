"""The PoseLandmarker model file built by the set-up step (`python -m mobile_app.pose.build_model`)."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zipfile

import pytest

from mobile_app.errors import PoseModelMissing
from mobile_app.pose import model as pm


def test_built_model_is_the_recorded_one():
    path = pm.model_path()
    assert pm.sha256_of(path) == pm.TASK_SHA256
    with zipfile.ZipFile(path) as zf:
        names = [i.filename for i in zf.infolist()]
        assert names == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        # The metadata the Tasks API needs (input normalization) was added to both models.
        for name in names:
            assert b"TFLITE_METADATA" in zf.read(name)
    pm.check_alignment(path)


def test_builder_is_idempotent_and_fast_when_built():
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mobile_app.pose.build_model"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pose model ready" in done.stdout
    assert time.perf_counter() - start < 10  # no download, no rebuild (python start-up dominates)


def test_missing_model_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv(pm.MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(PoseModelMissing, match="python -m mobile_app.pose.build_model"):
        pm.model_path()


def test_aligned_zip_puts_every_entry_on_a_64_byte_boundary(tmp_path):
    entries = {"a.bin": b"x" * 3, "a-much-longer-name.tflite": bytes(range(200)), "b": b""}
    path = tmp_path / "t.task"
    pm.write_aligned_zip(path, entries)
    pm.check_alignment(path)
    with zipfile.ZipFile(path) as zf:  # still a standard zip
        assert {n: zf.read(n) for n in zf.namelist()} == entries
    raw = path.read_bytes()
    for info in zipfile.ZipFile(path).infolist():
        name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
        assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0


def test_a_wheel_with_other_models_is_refused(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.21-fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for src in pm.SOURCE_MODELS:
            zf.writestr(src.member, b"not the real model")
    with pytest.raises(PoseModelMissing, match="sha256"):
        pm.build_model(tmp_path / "out", wheel=wheel)
    assert not (tmp_path / "out" / pm.TASK_FILE_NAME).exists()


def test_a_file_that_is_not_a_wheel_is_refused(tmp_path):
    wheel = tmp_path / "broken.whl"
    wheel.write_bytes(b"garbage")
    with pytest.raises(PoseModelMissing, match="not a mediapipe wheel"):
        pm.build_model(tmp_path / "out", wheel=wheel)
