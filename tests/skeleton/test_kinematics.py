"""Hand-crafted kinematic features: finite whatever the tracking did, and measured in the body's own
frame (the same movement filmed at another size, angle or place gives the same numbers)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skeleton.kinematics import GROUPS, kinematic_features, structure_features
from skeleton.recording import PoseRecording
from skeleton.synthetic import CaptureConditions, synthesize


def _rec(capture: CaptureConditions, seconds: float = 20.0, kind: str = "normal_writhing", seed: int = 4):
    return synthesize(kind, 3.0, seconds, seed=seed, capture=capture)


def _all_finite(d: dict[str, float]) -> bool:
    return all(isinstance(v, float) and np.isfinite(v) for v in d.values())


def test_feature_names_are_stable_and_values_finite():
    f = kinematic_features(_rec(CaptureConditions()))
    for g in GROUPS:
        for stat in ("speed_mean", "speed_median", "speed_p90", "speed_sd", "speed_cv", "accel_mean", "excursion",
                     "moving_fraction"):
            assert f"{g}_{stat}" in f
    assert _all_finite(f) and f["wrist_speed_mean"] > 0
    s = structure_features(_rec(CaptureConditions()))
    assert _all_finite(s) and -1 <= s["lr_speed_corr_arms"] <= 1 and 0 <= s["direction_entropy"] <= np.log2(12) + 1e-9


def test_features_stay_finite_with_heavy_dropouts_swaps_and_missed_frames():
    bad = CaptureConditions(dropout_rate=0.6, dropout_run_s=1.5, missed_frame_rate=0.2, swap_per_min=10,
                            outlier_rate=0.05, occlusion_per_min=5, noise_sigma=0.03)
    rec = _rec(bad, seconds=30.0)
    f, s = kinematic_features(rec), structure_features(rec)
    assert _all_finite(f) and _all_finite(s)
    assert f["valid_fraction"] < kinematic_features(_rec(CaptureConditions(), seconds=30.0))["valid_fraction"]


def test_nothing_seen_gives_zeros_not_errors():
    rec = _rec(CaptureConditions.clean(), seconds=3.0)
    blind = dataclasses.replace(rec, keypoints=np.zeros_like(rec.keypoints))
    f, s = kinematic_features(blind), structure_features(blind)
    assert _all_finite(f) and _all_finite(s)
    assert f["wrist_speed_mean"] == 0.0 and f["valid_fraction"] == 0.0


def test_same_values_from_any_schema_that_has_the_joints():
    rec = _rec(CaptureConditions(), seconds=10.0)
    a = kinematic_features(rec)
    b = kinematic_features(rec.to_schema("coco17"))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.floats(0.4, 0.8),
    rotation=st.floats(-180, 180),
    offset=st.tuples(st.floats(-0.8, 0.8), st.floats(-0.8, 0.8)),
    frame=st.sampled_from([(1080, 1920), (1920, 1080), (720, 1280)]),
)
def test_features_do_not_depend_on_framing(size, rotation, offset, frame):
    ref = kinematic_features(_rec(CaptureConditions.clean(), seconds=10.0))
    cap = CaptureConditions.clean(body_size=size, rotation_deg=rotation, offset=offset, frame_size=frame)
    got = kinematic_features(_rec(cap, seconds=10.0))
    for k in ("wrist_speed_mean", "ankle_speed_mean", "elbow_excursion", "knee_speed_cv", "head_speed_median"):
        assert got[k] == pytest.approx(ref[k], rel=0.03, abs=1e-3), k


def test_camera_shake_is_mostly_removed():
    still = kinematic_features(_rec(CaptureConditions.clean(), seconds=20.0))
    shaky = kinematic_features(_rec(CaptureConditions.clean(shake=0.03), seconds=20.0))
    assert shaky["wrist_speed_mean"] == pytest.approx(still["wrist_speed_mean"], rel=0.15)


def test_faster_movement_gives_higher_speed_features():
    rec = _rec(CaptureConditions.clean(), seconds=20.0)

    def played_at(fps: float) -> dict[str, float]:
        return kinematic_features(PoseRecording(keypoints=rec.keypoints, schema=rec.schema, fps=fps,
                                                frame_size=rec.frame_size))

    normal, fast, slow = played_at(rec.fps), played_at(rec.fps * 2), played_at(rec.fps / 2)
    # same path: the same excursion (up to smoothing); speeds follow the playback rate (the fixed 0.3 s
    # smoothing window takes off more of the faster movement, so less than twice)
    assert fast["wrist_excursion"] == pytest.approx(normal["wrist_excursion"], rel=0.1)
    assert fast["wrist_speed_median"] > 1.2 * normal["wrist_speed_median"]
    assert slow["wrist_speed_median"] < 0.65 * normal["wrist_speed_median"]
    assert fast["wrist_accel_mean"] > normal["wrist_accel_mean"] > slow["wrist_accel_mean"]
