"""Synthetic infants: valid, deterministic, class structure in the expected direction, capture
conditions doing what they say, cohorts and the labels file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skeleton.errors import CogmaError
from skeleton.kinematics import structure_features
from skeleton.labels import LABEL_COLUMNS, LabelsError, read_labels_csv, write_labels_csv
from skeleton.quality import assess
from skeleton.recording import load_recording
from skeleton.schemas import MEDIAPIPE_33
from skeleton.synthetic import (
    ATYPICAL_CLASSES,
    MOVEMENT_CLASSES,
    CaptureConditions,
    CohortConfig,
    InfantTraits,
    SyntheticError,
    generate_cohort,
    plan_cohort,
    sample_infant,
    synthesize,
)

J = MEDIAPIPE_33.index
DISTAL = [J[n] for n in MEDIAPIPE_33.joints if any(k in n for k in ("wrist", "ankle", "pinky", "index", "thumb",
                                                                      "heel", "foot_index"))]
TORSO = [J[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]


def _age(kind: str) -> float:
    return 13.0 if "fidgety" in kind else 3.0


@pytest.mark.parametrize("kind", MOVEMENT_CLASSES)
def test_every_class_gives_a_valid_mediapipe_recording(kind):
    rec = synthesize(kind, _age(kind), 20.0, seed=11)
    assert rec.schema == "mediapipe33" and rec.keypoints.shape == (600, 33, 3) and rec.fps == 30.0
    assert rec.label == int(kind in ATYPICAL_CLASSES)
    assert rec.age_weeks == _age(kind)
    assert rec.extra["synthetic"] is True and rec.extra["movement_class"] == kind
    assert 0.0 <= rec.extra["severity"] <= 1.0 and rec.extra["generator_version"]
    assert "not for clinical use" in rec.extra["note"]
    xy, vis = rec.keypoints[..., :2], rec.keypoints[..., 2]
    assert xy.min() >= -0.1 and xy.max() <= 1.1
    seen = vis >= 0.5
    assert ((xy >= 0) & (xy <= 1)).all(-1)[seen].mean() > 0.99  # what is seen lies in the picture
    again = load_recording(rec.to_bytes())  # the file format accepts it unchanged
    np.testing.assert_array_equal(again.keypoints, rec.keypoints)
    assert again.extra == rec.extra


def test_synthetic_recording_is_scorable_under_good_conditions():
    rec = synthesize("normal_fidgety", 12.0, 90.0, seed=3, capture=CaptureConditions(dropout_rate=0.05, shake=0.0))
    report = assess(rec)
    assert report.scorable, report.reasons


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(MOVEMENT_CLASSES))
def test_same_seed_same_recording(seed, kind):
    a = synthesize(kind, _age(kind), 2.0, seed=seed)
    b = synthesize(kind, _age(kind), 2.0, seed=seed)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert a.extra == b.extra and a.frame_size == b.frame_size
    c = synthesize(kind, _age(kind), 2.0, seed=seed + 1)
    assert not np.array_equal(a.keypoints, c.keypoints)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(kind="happy_baby"), "unknown movement class"),
        (dict(kind="normal_fidgety", age_weeks=2.0), "weeks corrected age"),
        (dict(kind="cramped_synchronized", age_weeks=15.0), "weeks corrected age"),
        (dict(severity=1.5), "severity"),
        (dict(kind="normal_writhing", severity=0.8), "lean part-way"),
        (dict(seconds=0.2), "seconds"),
        (dict(fps=2.0), "fps"),
        (dict(seed=-1), "seed"),
        (dict(age_weeks=float("nan")), "finite number"),
    ],
)
def test_impossible_requests_get_a_clear_error(kwargs, words):
    args = dict(kind="poor_repertoire", age_weeks=3.0, seconds=5.0, seed=1) | kwargs
    with pytest.raises(SyntheticError, match=words) as e:
        synthesize(**args)
    assert isinstance(e.value, CogmaError)


def test_bad_capture_conditions_are_refused():
    with pytest.raises(CogmaError, match="body_size"):
        CaptureConditions(body_size=1.5)
    with pytest.raises(CogmaError, match="dropout_rate"):
        CaptureConditions(dropout_rate=-0.1)


def test_capture_fps_and_frame_size_are_used():
    rec = synthesize("normal_writhing", 2.0, 4.0, seed=1, capture=CaptureConditions(fps=25.0, frame_size=(1280, 720)))
    assert rec.fps == 25.0 and rec.num_frames == 100 and rec.frame_size == (1280, 720)


def _clean(kind: str, seed: int, seconds: float = 20.0, severity: float | None = None, **capture):
    """A recording with perfect tracking (plus whatever capture conditions are given)."""
    return synthesize(kind, _age(kind), seconds, seed=seed, severity=severity, capture=CaptureConditions.clean(**capture))


def test_recordings_of_one_infant_share_its_body():
    traits = sample_infant(np.random.default_rng(5), "baby-a")
    other = dataclasses.replace(traits, shoulder_width=traits.shoulder_width * 1.15, infant_id="baby-b")

    def shoulder_over_trunk(rec):
        kp = rec.keypoints
        sh = np.linalg.norm(kp[:, J["left_shoulder"], :2] - kp[:, J["right_shoulder"], :2], axis=1)
        mid_sh = kp[:, TORSO[:2], :2].mean(1)
        mid_hip = kp[:, TORSO[2:], :2].mean(1)
        return float(np.median(sh / np.linalg.norm(mid_sh - mid_hip, axis=1)))

    cap = CaptureConditions.clean(frame_size=(1000, 1000))
    r1 = synthesize("normal_writhing", 2.0, 5.0, seed=1, infant=traits, capture=cap)
    r2 = synthesize("normal_writhing", 6.0, 5.0, seed=2, infant=traits, capture=cap)
    r3 = synthesize("normal_writhing", 2.0, 5.0, seed=1, infant=other, capture=cap)
    assert r1.infant_id == r2.infant_id == "baby-a"
    assert shoulder_over_trunk(r1) == pytest.approx(shoulder_over_trunk(r2), rel=0.03)
    assert shoulder_over_trunk(r3) == pytest.approx(1.15 * shoulder_over_trunk(r1), rel=0.03)


def _mean_feature(kind: str, feature: str, seeds=range(6), severity=None, seconds=40.0) -> float:
    vals = []
    for s in seeds:
        rec = synthesize(kind, _age(kind), seconds, seed=100 + s, severity=severity)
        vals.append(structure_features(rec)[feature])
    return float(np.mean(vals))


def test_cramped_synchronized_limbs_move_together_more_than_normal_writhing():
    cs = _mean_feature("cramped_synchronized", "lr_speed_corr_legs", severity=0.9)
    normal = _mean_feature("normal_writhing", "lr_speed_corr_legs", severity=0.0)
    assert cs > normal + 0.25, (cs, normal)


def test_fidgety_infants_have_more_small_fast_distal_movement_than_absent_fidgety():
    fm = _mean_feature("normal_fidgety", "fidgety_multidirectional", severity=0.0)
    absent = _mean_feature("absent_fidgety", "fidgety_multidirectional", severity=1.0)
    assert fm > 1.5 * absent, (fm, absent)


def test_poor_repertoire_moves_in_fewer_directions_and_chaotic_moves_further():
    pr = np.mean([structure_features(_clean("poor_repertoire", s, severity=1.0))["direction_entropy"] for s in range(3)])
    nw = np.mean([structure_features(_clean("normal_writhing", s, severity=0.0))["direction_entropy"] for s in range(3)])
    assert pr < nw - 0.1, (pr, nw)

    def excursion(kind, sev):
        return np.mean([_clean(kind, s, severity=sev).keypoints[:, J["left_wrist"], :2].std(0).sum() for s in range(3)])

    assert excursion("chaotic", 1.0) > 1.3 * excursion("normal_writhing", 0.0)


def test_dropouts_lower_visibility_mostly_at_hands_and_feet():
    rec = _clean("normal_writhing", 4, seconds=60.0, dropout_rate=0.2)
    low = rec.keypoints[..., 2] < 0.5
    distal = low[:, DISTAL].mean()
    assert 0.1 < distal < 0.35
    assert low[:, TORSO].mean() < 0.25 * distal
    assert not (_clean("normal_writhing", 4, seconds=60.0).keypoints[..., 2] < 0.5)[:, DISTAL].any()


def test_missed_frames_are_zero_with_no_visibility():
    rec = _clean("normal_writhing", 2, seconds=30.0, missed_frame_rate=0.05)
    empty = (rec.keypoints == 0).all(axis=(1, 2))
    assert 0.01 < empty.mean() < 0.12


def test_camera_shake_moves_the_torso():
    still = assess(_clean("normal_writhing", 7, seconds=30.0)).metrics["camera_motion"]
    shaky = assess(_clean("normal_writhing", 7, seconds=30.0, shake=0.04)).metrics["camera_motion"]
    assert shaky > still + 0.01, (still, shaky)


def test_tracking_noise_and_swaps_change_the_right_things():
    base = _clean("normal_writhing", 9, seconds=30.0)
    noisy = _clean("normal_writhing", 9, seconds=30.0, noise_sigma=0.01)
    diff = np.abs(noisy.keypoints[..., :2] - base.keypoints[..., :2])
    assert 0.0005 < np.median(diff) < 0.02  # about a per cent of body length, in frame units
    swapped = _clean("normal_writhing", 9, seconds=30.0, swap_per_min=20)
    lw, rw = J["left_wrist"], J["right_wrist"]
    changed = ~np.isclose(swapped.keypoints[:, lw, 0], base.keypoints[:, lw, 0])
    assert changed.any()
    np.testing.assert_allclose(swapped.keypoints[changed][:, lw], base.keypoints[changed][:, rw], atol=1e-6)


@pytest.mark.parametrize("size", [0.4, 0.8])
def test_framing_puts_the_body_at_the_asked_size(size):
    rec = _clean("normal_writhing", 1, seconds=10.0, body_size=size, frame_size=(1080, 1920))
    xy = rec.keypoints[..., :2]
    ext = (xy.max(axis=(0, 1)) - xy.min(axis=(0, 1))).max()
    assert ext == pytest.approx(size, abs=0.03)
    landscape = _clean("normal_writhing", 1, seconds=10.0, frame_size=(1920, 1080), rotation_deg=90.0)
    kp = landscape.keypoints
    axis = kp[:, J["nose"], :2] - kp[:, TORSO[2:], :2].mean(1)
    assert np.abs(axis[:, 0]).mean() > 3 * np.abs(axis[:, 1]).mean()  # head-to-hip axis lies horizontal


def test_cohort_writes_recordings_and_labels_that_read_back(tmp_path):
    cfg = CohortConfig(n_infants=4, seed=3, prevalence=0.5, seconds=(3.0, 5.0))
    entries = generate_cohort(cfg, out_dir=tmp_path)
    rows = read_labels_csv(tmp_path / "labels.csv")
    assert [r["file"] for r in rows] == [e.file for e in entries]
    by_infant: dict[str, set] = {}
    for row, e in zip(rows, entries):
        assert e.recording is None
        rec = load_recording(tmp_path / row["file"])
        assert rec.label == row["label"] == e.label
        assert rec.infant_id == row["infant_id"] and row["file"].startswith(row["infant_id"])
        assert rec.extra["movement_class"] == row["movement_class"]
        assert row["age_weeks"] == pytest.approx(rec.age_weeks)
        by_infant.setdefault(row["infant_id"], set()).add((row["movement_class"], rec.fps, rec.frame_size))
    assert len(by_infant) == 4
    assert all(len(v) == 1 for v in by_infant.values())  # one class, one phone per infant
    assert all(2 <= sum(r["infant_id"] == i for r in rows) <= 3 for i in by_infant)
    again = generate_cohort(cfg)  # in memory, same seed: same recordings
    np.testing.assert_array_equal(again[0].recording.keypoints, load_recording(tmp_path / rows[0]["file"]).keypoints)


def test_cohort_plan_follows_prevalence_and_age_bands():
    plan = plan_cohort(CohortConfig(n_infants=400, seed=1))
    infants = {p["infant_id"]: p for p in plan}
    share = np.mean([p["kind"] in ATYPICAL_CLASSES for p in infants.values()])
    assert 0.15 < share < 0.25
    for p in plan:
        lo, hi = (9.0, 20.0) if "fidgety" in p["kind"] else (0.0, 8.0)
        assert lo <= p["age_weeks"] <= hi and 60.0 <= p["seconds"] <= 120.0 and p["fps"] in (25.0, 30.0)
    hidden = plan_cohort(CohortConfig(n_infants=50, seed=1, difficulty="hidden", age_band="fidgety"))
    assert all(30.0 <= p["seconds"] <= 60.0 and "fidgety" in p["kind"] for p in hidden)


def test_cohort_is_the_same_with_several_workers():
    cfg = CohortConfig(n_infants=2, seed=8, seconds=(2.0, 2.0), recordings_per_infant=(2, 2))
    one = generate_cohort(cfg)
    two = generate_cohort(cfg, workers=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.recording.keypoints, b.recording.keypoints)


@pytest.mark.parametrize(
    "kwargs, words",
    [(dict(n_infants=0), "n_infants"), (dict(prevalence=1.5), "prevalence"), (dict(age_band="teen"), "age_band"),
     (dict(recordings_per_infant=(3, 2)), "recordings_per_infant"), (dict(difficulty="easy"), "difficulty")],
)
def test_bad_cohort_configs_are_refused(kwargs, words):
    with pytest.raises(SyntheticError, match=words):
        CohortConfig(n_infants=kwargs.pop("n_infants", 3), seed=0, **kwargs)


# ---- labels file -------------------------------------------------------------------------------------------

_ROW = {"file": "a_0.npz", "infant_id": "a", "label": 1, "age_weeks": 12.5, "movement_class": "absent_fidgety",
        "severity": 0.7}


def test_labels_round_trip_keeps_types_and_extra_columns(tmp_path):
    rows = [_ROW, {"file": "b_0.npz", "infant_id": "b", "label": 0, "age_weeks": None, "movement_class": None,
                   "severity": None, "site": "x"}]
    write_labels_csv(tmp_path / "labels.csv", rows)
    back = read_labels_csv(tmp_path / "labels.csv")
    assert back[0] == {**_ROW, "site": None} or back[0] == {**_ROW, "site": ""}
    assert back[1]["age_weeks"] is None and back[1]["label"] == 0 and back[1]["site"] == "x"
    header = (tmp_path / "labels.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[: len(LABEL_COLUMNS)]) == LABEL_COLUMNS


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ages=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=5), label=st.sampled_from([0, 1]))
def test_labels_round_trip_property(tmp_path, ages, label):
    rows = [{"file": f"r{i}.npz", "infant_id": f"i{i % 2}", "label": label, "age_weeks": a} for i, a in enumerate(ages)]
    write_labels_csv(tmp_path / "l.csv", rows)
    back = read_labels_csv(tmp_path / "l.csv")
    assert [r["label"] for r in back] == [label] * len(ages)
    np.testing.assert_allclose([r["age_weeks"] for r in back], ages, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "text, words",
    [
        ("file,label\na.npz,1\n", "missing column"),
        ("file,infant_id,label\na.npz,a,2\n", "label must be 0"),
        ("file,infant_id,label,age_weeks\na.npz,a,1,old\n", "not a number"),
        ("file,infant_id,label,age_weeks\na.npz,a,1,500\n", "outside"),
        ("file,infant_id,label,movement_class\na.npz,a,1,wobbly\n", "unknown movement_class"),
        ("file,infant_id,label,movement_class\na.npz,a,0,cramped_synchronized\n", "contradicts"),
        ("file,infant_id,label\na.npz,a,1\na.npz,b,0\n", "listed twice"),
        ("file,infant_id,label\n,a,1\n", "'file' is empty"),
        ("file,infant_id,label\na.npz,a,1,extra\n", "more fields"),
        ("file,infant_id,label\n", "no rows"),
        ("file,infant_id,label,severity\na.npz,a,1,1.5\n", "severity"),
    ],
)
def test_bad_labels_files_get_a_clear_error(tmp_path, text, words):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(LabelsError, match=words) as e:
        read_labels_csv(path)
    assert isinstance(e.value, CogmaError)
    if "line" in str(e.value):
        assert "labels.csv line 2" in str(e.value) or "line 3" in str(e.value)


def test_labels_file_missing_or_binary(tmp_path):
    with pytest.raises(LabelsError, match="no such"):
        read_labels_csv(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(LabelsError):
        read_labels_csv(tmp_path / "bin.csv")
    with pytest.raises(LabelsError, match="label must be"):
        write_labels_csv(tmp_path / "w.csv", [{"file": "x", "infant_id": "y", "label": "maybe"}])
    assert not (tmp_path / "w.csv").exists()


def test_infant_traits_are_plain_data():
    t = sample_infant(np.random.default_rng(0), "z")
    assert isinstance(t, InfantTraits) and t.to_dict()["infant_id"] == "z"
    assert 0.5 < t.speed_scale < 2.0 and 0.1 < t.upper_arm < 0.2
