import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skeleton import PoseRecording, RecordingError, load_recording
from skeleton.recording import FORMAT_NAME


def make_recording(frames: int = 90, schema: str = "mediapipe33", joints: int = 33, **kw) -> PoseRecording:
    rng = np.random.default_rng(0)
    kp = np.concatenate(
        [rng.uniform(0.2, 0.8, (frames, joints, 2)), rng.uniform(0.6, 1.0, (frames, joints, 1))], axis=-1
    ).astype(np.float32)
    args = dict(fps=30.0, frame_size=(720, 1280), pose_model="test", age_weeks=12.0, label=1, infant_id="inf01")
    args.update(kw)
    return PoseRecording(kp, schema, **args)


def npz_bytes(**members) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **members)
    return buf.getvalue()


def good_meta(**over) -> np.ndarray:
    meta = {"format": FORMAT_NAME, "version": 1, "schema": "mediapipe33", "fps": 30, "frame_size": [640, 480]}
    meta.update(over)
    return np.array(json.dumps(meta))


KP = np.full((60, 33, 3), 0.5, np.float32)


def test_round_trip_file(tmp_path):
    rec = make_recording(extra={"note": "x"})
    path = rec.save(tmp_path / "a" / "rec.npz")
    back = load_recording(path)
    np.testing.assert_array_equal(back.keypoints, rec.keypoints)
    assert back.meta() == rec.meta()
    assert not list(tmp_path.glob("a/.tmp-*"))  # atomic write leaves no temp file


@settings(max_examples=30, deadline=None)
@given(
    kp=st.integers(60, 120).flatmap(
        lambda t: arrays(np.float32, (t, 20, 3), elements=st.floats(0, 1, width=32))
    ),
    fps=st.floats(5, 60),
    age=st.one_of(st.none(), st.floats(-20, 110)),
    label=st.sampled_from([None, 0, 1]),
)
def test_round_trip_property(kp, fps, age, label):
    rec = PoseRecording(kp, "infant20", fps, (1920, 1080), age_weeks=age, label=label)
    back = load_recording(rec.to_bytes())
    np.testing.assert_array_equal(back.keypoints, kp)
    assert (back.fps, back.age_weeks, back.label, back.schema) == (rec.fps, age, label, "infant20")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"hello, this is not a zip", "not an .npz"),
        (npz_bytes(keypoints=KP), "missing field 'meta'"),
        (npz_bytes(meta=good_meta()), "missing field 'keypoints'"),
        (npz_bytes(keypoints=KP, meta=good_meta(schema="body25")), "unknown joint schema 'body25'"),
        (npz_bytes(keypoints=KP[:, :20], meta=good_meta()), r"shape \(60, 20, 3\).*\[frames, 33, 3\]"),
        (npz_bytes(keypoints=np.where(np.arange(33)[None, :, None] == 3, np.nan, KP), meta=good_meta()), "NaN"),
        (npz_bytes(keypoints=np.where(np.arange(33)[None, :, None] == 3, np.inf, KP), meta=good_meta()), "infinite"),
        (npz_bytes(keypoints=KP * 9, meta=good_meta()), "far outside the frame"),
        (npz_bytes(keypoints=(KP * 100).astype(np.int32), meta=good_meta()), "must be floating-point"),
        (npz_bytes(keypoints=KP, meta=good_meta(fps=10**400)), "fps must be a number"),  # float() overflows
        (npz_bytes(keypoints=KP, meta=good_meta(age_weeks=10**400)), "age_weeks must be a number"),
        (npz_bytes(keypoints=KP, meta=np.array("[" * 60000)), "nested too deeply"),  # RecursionError in json
        (npz_bytes(keypoints=KP, meta=good_meta(fps=2)), "outside 5-240 fps"),
        (npz_bytes(keypoints=KP, meta=good_meta(fps=1000)), "outside 5-240 fps"),
        (npz_bytes(keypoints=KP[:10], meta=good_meta()), "too short"),
        (npz_bytes(keypoints=KP, meta=good_meta(frame_size=[10**6, 480])), "not a plausible video size"),
        (npz_bytes(keypoints=KP, meta=good_meta(format="other")), "not a CoGMA pose recording"),
        (npz_bytes(keypoints=KP, meta=good_meta(version=99)), "unsupported recording format version"),
        (npz_bytes(keypoints=KP, meta=np.array("{not json")), "not valid JSON"),
        (npz_bytes(keypoints=KP, meta=good_meta(extra={"birth_date": "2026-01-01"})), "birth date"),
        (npz_bytes(keypoints=KP, meta=good_meta(label=7)), "label must be"),
        (npz_bytes(keypoints=KP, meta=good_meta(age_weeks=500)), "corrected age"),
    ],
)
def test_rejected_inputs_name_the_problem(data, message):
    with pytest.raises(RecordingError, match=message):
        load_recording(data)


def test_truncated_file():
    data = make_recording().to_bytes()
    with pytest.raises(RecordingError, match="truncated|not an .npz"):
        load_recording(data[: len(data) // 2])


def test_pickled_objects_are_refused_without_unpickling():
    class Boom:
        def __reduce__(self):  # would run on unpickling
            return (SystemExit, ("unpickled!",))

    obj = np.empty(1, dtype=object)
    obj[0] = Boom()
    buf = io.BytesIO()
    np.savez(buf, keypoints=obj, meta=good_meta())
    with pytest.raises(RecordingError, match="pickled data is refused"):
        load_recording(buf.getvalue())


def test_zip_bomb_is_refused_before_decompressing():
    # a header claiming a gigantic array, followed by highly compressible zeros
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**8, 33, 3)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.npy", _npy(good_meta()))
        with zf.open("keypoints.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            f.write(b"\0" * (64 << 20))  # 64 MB of zeros compress to ~64 KB
    assert len(buf.getvalue()) < 2 << 20
    with pytest.raises(RecordingError, match="absurd"):
        load_recording(buf.getvalue())


def _npy(arr) -> bytes:
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def test_missing_file(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        load_recording(tmp_path / "nope.npz")


def test_constructor_validates_too():
    with pytest.raises(RecordingError, match="visibility"):
        PoseRecording(np.full((60, 33, 3), 2.0, np.float32) * [0.1, 0.1, 1], "mediapipe33", 30, (10, 10))


def test_to_schema():
    rec = make_recording()
    inf = rec.to_schema("infant20")
    assert inf.schema == "infant20" and inf.keypoints.shape == (90, 20, 3) and inf.fps == rec.fps


def test_skeleton_never_imports_torch():
    code = "import sys, skeleton, skeleton.drawing, skeleton.quality; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
