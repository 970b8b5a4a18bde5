"""Dataset adapters: real files in tmp_path, good and bad."""

import json
import pickle

import numpy as np
import pytest

from skeleton.recording import PoseRecording
from training.data import DatasetError, LabeledRecording, load_dataset
from training.data.openpose import BODY25_TO_OPENPOSE18


# ------------------------------------------------------------------ PKU feeder layout

def _pku_array(n=4, c=3, t=60, pad=20, rng=None):
    rng = rng or np.random.default_rng(0)
    data = np.zeros((n, c, t + pad, 20, 2), dtype=np.float32)
    data[:, 0, :t, :, 0] = rng.uniform(100, 500, (n, t, 20))  # pixels, 640x480 frame
    data[:, 1, :t, :, 0] = rng.uniform(50, 400, (n, t, 20))
    if c == 3:
        data[:, 2, :t, :, 0] = rng.uniform(0.3, 1.0, (n, t, 20))
    data[:, :, :t, :, 1] = 7.0  # a second person, ignored
    return data


def _write_pku(tmp_path, data, labels_obj):
    np.save(tmp_path / "data.npy", data)
    with open(tmp_path / "labels.pkl", "wb") as f:
        pickle.dump(labels_obj, f)
    return {"kind": "pku", "data": str(tmp_path / "data.npy"), "labels": str(tmp_path / "labels.pkl"),
            "frame_size": [640, 480]}


NAMES = ["0001_C1_N0_a", "0001_C1_N0_b", "0002_C1_N1_a", "0003_C2_N1_a"]


def test_pku_loads(tmp_path):
    data = _pku_array()
    spec = _write_pku(tmp_path, data, (NAMES, np.array([0, 0, 1, 1])))
    items = load_dataset(spec)
    assert [it.infant_id for it in items] == ["0001", "0001", "0002", "0003"]
    assert [it.label for it in items] == [0, 0, 1, 1]
    assert [it.key for it in items] == NAMES
    rec = items[2].recording
    assert rec.schema == "infant20" and rec.fps == 30.0 and rec.num_frames == 60  # zero padding trimmed
    np.testing.assert_allclose(rec.keypoints[..., 0], data[2, 0, :60, :, 0] / 640, rtol=1e-6)
    np.testing.assert_allclose(rec.keypoints[..., 2], data[2, 2, :60, :, 0], rtol=1e-6)
    assert all(it.source == "pku" and isinstance(it, LabeledRecording) for it in items)


def test_pku_two_channels_names_only_and_label_map(tmp_path):
    data = _pku_array(c=2)
    data[0, :, 5, 3, 0] = 0.0  # a missing joint
    names = ["0001_N0", "0002_N2", "0003_N1", "0004_N0"]
    spec = _write_pku(tmp_path, data, names)
    with pytest.raises(DatasetError, match="class 2 is not 0 .*label_map"):
        load_dataset(spec)
    items = load_dataset({**spec, "label_map": {"0": 0, "1": 1, "2": 1}, "fps": 25, "age_weeks": 12})
    assert [it.label for it in items] == [0, 1, 1, 0]
    kp = items[0].recording.keypoints
    assert kp[5, 3, 2] == 0.0 and kp[4, 3, 2] == 1.0
    assert items[0].recording.fps == 25 and items[0].age_weeks == 12


def test_pku_normalized_coordinates_need_no_frame_size(tmp_path):
    data = _pku_array(c=2)
    data[:, :2] /= 640.0
    spec = _write_pku(tmp_path, data, NAMES)
    del spec["frame_size"]
    items = load_dataset(spec)
    assert items[0].recording.extra["frame_size_unknown"] is True


@pytest.mark.parametrize("case, msg", [
    ("pixels_without_size", "look like pixels.*frame_size"),
    ("wrong_ndim", "shape .* \\[N, C, T, V, M\\]"),
    ("wrong_joints", "V = 17 joints"),
    ("nan", "NaN"),
    ("conf_3d", "not a confidence"),
    ("name_pickle_mismatch", "name says class 0 but the pickle says 1"),
    ("count_mismatch", "3 names but the data array has 4"),
    ("evil_pickle", "not a plain label pickle"),
    ("truncated_pickle", "truncated or corrupt"),
    ("not_npy", "not a numeric .npy|cannot read"),
    ("all_zero", "all zeros"),
    ("unknown_key", "unknown key\\(s\\) fsp"),
])
def test_pku_bad_inputs(tmp_path, case, msg):
    data = _pku_array()
    labels = (NAMES, [0, 0, 1, 1])
    if case == "wrong_ndim":
        data = data[..., 0]
    elif case == "wrong_joints":
        data = data[:, :, :, :17]
    elif case == "nan":
        data[1, 0, 3, 2, 0] = np.nan
    elif case == "conf_3d":
        data[:, 2] = 50.0
    elif case == "name_pickle_mismatch":
        labels = (NAMES, [1, 0, 1, 1])
    elif case == "count_mismatch":
        labels = (NAMES[:3], [0, 0, 1])
    elif case == "all_zero":
        data[3] = 0.0
    spec = _write_pku(tmp_path, data, labels)
    if case == "pixels_without_size":
        del spec["frame_size"]
    elif case == "evil_pickle":
        with open(tmp_path / "labels.pkl", "wb") as f:
            pickle.dump((NAMES, [0, 0, 1, 1], print), f)  # references a callable
    elif case == "truncated_pickle":
        raw = (tmp_path / "labels.pkl").read_bytes()
        (tmp_path / "labels.pkl").write_bytes(raw[: len(raw) // 2])
    elif case == "not_npy":
        (tmp_path / "data.npy").write_bytes(b"hello, not numpy")
    elif case == "unknown_key":
        spec["fsp"] = 30
    with pytest.raises(DatasetError, match=msg) as e:
        load_dataset(spec)
    if case not in ("unknown_key", "pixels_without_size"):
        assert "data.npy" in str(e.value) or "labels.pkl" in str(e.value)


def test_evil_pickle_never_runs(tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    spec = _write_pku(tmp_path, _pku_array(), (NAMES, [0, 0, 1, 1]))
    with open(tmp_path / "labels.pkl", "wb") as f:
        pickle.dump((NAMES, [Boom(), 0, 1, 1]), f)
    with pytest.raises(DatasetError, match="refusing to load"):
        load_dataset(spec)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ dispatch

@pytest.mark.parametrize("spec, msg", [
    ({"kind": "nope"}, "unknown dataset kind 'nope'"),
    ({}, "unknown dataset kind None"),
    ("synthetic", "must be a mapping"),
    ({"kind": "pku", "data": "/nonexistent/x.npy", "labels": "/nonexistent/l.pkl"}, "/nonexistent/x.npy: no such file"),
    ({"kind": "pku"}, "needs 'data'"),
])
def test_bad_specs(spec, msg):
    with pytest.raises(DatasetError, match=msg):
        load_dataset(spec)


# ------------------------------------------------------------------ synthetic + the app's own recordings

@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    """A tiny synthetic cohort written to disk once (npz files + labels.csv), and its in-memory items."""
    out = tmp_path_factory.mktemp("cohort")
    items = load_dataset({"kind": "synthetic", "n_infants": 6, "seed": 3, "seconds": [5, 8],
                          "recordings_per_infant": [1, 2], "prevalence": 0.5, "out_dir": str(out)})
    return out, items


def test_synthetic_cohort(cohort_dir):
    out, items = cohort_dir
    assert len({it.infant_id for it in items}) == 6 and {it.source for it in items} == {"synthetic"}
    assert all(it.recording is not None and it.recording.schema == "mediapipe33" for it in items)
    assert len({it.key for it in items}) == len(items)
    assert all((out / f"{it.key}.npz").is_file() for it in items)
    again = load_dataset({"kind": "synthetic", "n_infants": 6, "seed": 3, "seconds": [5, 8],
                          "recordings_per_infant": [1, 2], "prevalence": 0.5})
    assert [it.key for it in again] == [it.key for it in items]  # deterministic by seed
    np.testing.assert_array_equal(again[0].recording.keypoints, items[0].recording.keypoints)


@pytest.mark.parametrize("spec, msg", [
    ({"kind": "synthetic", "n_infant": 3}, "unknown key\\(s\\) n_infant; known keys: .*n_infants"),
    ({"kind": "synthetic", "n_infants": 0}, "n_infants must be"),
    ({"kind": "synthetic", "age_band": "teen"}, "age_band"),
])
def test_synthetic_bad_specs(spec, msg):
    with pytest.raises(DatasetError, match=msg):
        load_dataset(spec)


def test_recordings_round_trip(cohort_dir):
    out, items = cohort_dir
    loaded = load_dataset({"kind": "recordings", "root": str(out)})
    assert [(it.key, it.infant_id, it.label, it.age_weeks, it.movement_class) for it in loaded] == \
        [(it.key, it.infant_id, it.label, it.age_weeks, it.movement_class) for it in items]
    np.testing.assert_array_equal(loaded[-1].recording.keypoints, items[-1].recording.keypoints)
    assert all(it.source == "recordings" and "severity" not in it.clinical for it in loaded)
    from training.data import any_synthetic
    assert any_synthetic(loaded)  # still flagged synthetic when read back from disk


def _small_rec(**kw):
    kp = np.full((40, 33, 3), 0.5, dtype=np.float32)
    return PoseRecording(keypoints=kp, schema="mediapipe33", fps=30, frame_size=(640, 480), **kw)


def test_recordings_clinical_columns_and_csv_elsewhere(tmp_path):
    (tmp_path / "recs").mkdir()
    _small_rec().save(tmp_path / "recs" / "a.npz")
    _small_rec(label=1, infant_id="B").save(tmp_path / "recs" / "b.npz")
    csv = tmp_path / "meta" / "labels.csv"
    csv.parent.mkdir()
    csv.write_text("file,infant_id,label,age_weeks,gestational_age_weeks,birth_weight_g,severity\n"
                   "../recs/a.npz,A,0,4,39,3400,0.1\n../recs/b.npz,B,1,5.5,29,,0.8\n")
    items = load_dataset({"kind": "recordings", "labels": str(csv)})
    assert items[0].clinical == {"gestational_age_weeks": 39.0, "birth_weight_g": 3400.0}
    assert items[1].clinical == {"gestational_age_weeks": 29.0}
    assert items[1].recording.label == 1 and items[1].recording.age_weeks == 5.5 and items[1].key == "..__recs__b"


@pytest.mark.parametrize("case, msg", [
    ("missing_file", "listed recording 'gone.npz' not found"),
    ("corrupt_npz", "bad.npz: not an .npz pose recording"),
    ("label_conflict", "b.npz: the recording says label 1 but labels.csv says 0"),
    ("bad_label", "labels.csv line 2: label must be 0 \\(typical\\) or 1"),
    ("missing_column", "missing column\\(s\\) infant_id"),
    ("birth_date", "looks like a date"),
    ("no_labels", "labels.csv: no such file"),
])
def test_recordings_bad(tmp_path, case, msg):
    _small_rec().save(tmp_path / "a.npz")
    _small_rec(label=1).save(tmp_path / "b.npz")
    rows = "file,infant_id,label\na.npz,A,0\nb.npz,B,1\n"
    if case == "missing_file":
        rows += "gone.npz,C,0\n"
    elif case == "corrupt_npz":
        (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really")
        rows += "bad.npz,C,0\n"
    elif case == "label_conflict":
        rows = "file,infant_id,label\nb.npz,B,0\n"
    elif case == "bad_label":
        rows = "file,infant_id,label\na.npz,A,2\n"
    elif case == "missing_column":
        rows = "file,label\na.npz,0\n"
    elif case == "birth_date":
        rows = "file,infant_id,label,birth_date\na.npz,A,0,2025-01-01\n"
    if case != "no_labels":
        (tmp_path / "labels.csv").write_text(rows)
    with pytest.raises(DatasetError, match=msg):
        load_dataset({"kind": "recordings", "root": str(tmp_path)})


# ------------------------------------------------------------------ OpenPose JSON folders

def _person(rng, n_joints, w=640, h=480, conf=0.9):
    kp = np.zeros((n_joints, 3))
    kp[:, 0] = rng.uniform(100, w - 100, n_joints)
    kp[:, 1] = rng.uniform(100, h - 100, n_joints)
    kp[:, 2] = conf
    return kp


def _write_frames(folder, prefix, frames, n_joints=25, seed=0, skip=(), empty=(), extra_person=()):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for f in range(frames):
        if f in skip:
            continue
        people = []
        if f not in empty:
            kp = _person(rng, n_joints)
            written[f] = kp
            people.append({"person_id": [-1], "pose_keypoints_2d": kp.ravel().tolist()})
        if f in extra_person:
            people.insert(0, {"person_id": [-1], "pose_keypoints_2d": _person(rng, n_joints, conf=0.2).ravel().tolist()})
        name = f"{prefix}_{f:012d}_keypoints.json" if prefix else f"{f:06d}_keypoints.json"
        (folder / name).write_text(json.dumps({"version": 1.3, "people": people}))
    return written


def test_openpose_body25_and_coco18(tmp_path):
    body25 = _write_frames(tmp_path / "baby01", "clip", 40, n_joints=25, skip={7}, empty={9}, extra_person={3})
    coco = _write_frames(tmp_path / "many", "videoA", 35, n_joints=18, seed=1)
    _write_frames(tmp_path / "many", "videoB", 32, n_joints=18, seed=2)
    (tmp_path / "labels.csv").write_text(
        "file,infant_id,label,age_weeks\nbaby01,I1,0,12\nmany/videoA,I2,1,3\nmany/videoB,I3,0,\n")
    items = load_dataset({"kind": "openpose", "root": str(tmp_path), "frame_size": [640, 480], "fps": 25})
    assert [it.key for it in items] == ["baby01", "many__videoA", "many__videoB"]
    a = items[0].recording
    assert a.schema == "openpose18" and a.num_frames == 40 and a.fps == 25 and a.frame_size == (640, 480)
    expect = body25[0][list(BODY25_TO_OPENPOSE18)]
    np.testing.assert_allclose(a.keypoints[0, :, 0], expect[:, 0] / 640, rtol=1e-5)
    np.testing.assert_allclose(a.keypoints[0, :, 1], expect[:, 1] / 480, rtol=1e-5)
    assert (a.keypoints[[7, 9]] == 0).all()  # a missing file and a frame without people
    np.testing.assert_allclose(a.keypoints[3, :, 2], 0.9, rtol=1e-6)  # the confident person, not the extra one
    assert a.extra["frames_missing"] == 1
    b = items[1].recording
    np.testing.assert_allclose(b.keypoints[5, :, 0], coco[5][:, 0] / 640, rtol=1e-5)
    assert items[1].label == 1 and items[1].age_weeks == 3 and items[2].age_weeks is None
    # the mapping to the CoGMA graph works on this schema
    assert b.to_schema("infant20").keypoints.shape == (35, 20, 3)


def test_openpose_infers_frame_size(tmp_path):
    _write_frames(tmp_path / "v", "", 31, n_joints=18)
    old = tmp_path / "v" / "000004_keypoints.json"  # OpenPose < 1.2 wrote "pose_keypoints"
    old.write_text(old.read_text().replace("pose_keypoints_2d", "pose_keypoints"))
    (tmp_path / "labels.csv").write_text("file,infant_id,label\nv,I1,0\n")
    rec = load_dataset({"kind": "openpose", "root": str(tmp_path)})[0].recording
    assert rec.frame_size == (640, 480) and rec.extra["frame_size_inferred"] is True
    assert rec.keypoints[4, :, 2].min() > 0 and rec.extra["frames_missing"] == 0


@pytest.mark.parametrize("case, msg", [
    ("not_json", "f_000000000002_keypoints.json: not valid JSON"),
    ("wrong_length", "person 0: 'pose_keypoints_2d' has 60 numbers; expected 75 \\(BODY_25\\) or 54"),
    ("no_people", "no 'people' list"),
    ("nan", "non-numbers or NaN"),
    ("unlisted", "recording 'w' has no \\*_keypoints.json files"),
    ("empty_root", "no OpenPose \\*_keypoints.json files found"),
    ("too_short", "recording too short"),
])
def test_openpose_bad(tmp_path, case, msg):
    root = tmp_path / "root"
    if case != "empty_root":
        _write_frames(root / "v", "f", 8 if case == "too_short" else 31, n_joints=18)
    root.mkdir(exist_ok=True)
    frame = root / "v" / "f_000000000002_keypoints.json"
    if case == "not_json":
        frame.write_text("{oops")
    elif case == "wrong_length":
        frame.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]}))
    elif case == "no_people":
        frame.write_text(json.dumps({"version": 1.3}))
    elif case == "nan":
        frame.write_text('{"people": [{"pose_keypoints_2d": [NaN' + ", 1.0" * 53 + "]}]}")
    (root / "labels.csv").write_text("file,infant_id,label\n" + ("w,I1,0\n" if case == "unlisted" else "v,I1,0\n"))
    with pytest.raises(DatasetError, match=msg):
        load_dataset({"kind": "openpose", "root": str(root), "frame_size": [640, 480]})
