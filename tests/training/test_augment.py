"""Augmentation properties (hypothesis) and determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skeleton.recording import PoseRecording
from skeleton.schemas import INFANT_20, MEDIAPIPE_33, OPENPOSE_18, get_schema
from training.augment import (
    AugmentConfig, augment, augment_recording, interpolate_frames, joint_dropout, mirror, resample_fps, rotate,
    scale, time_warp,
)

SCHEMAS = st.sampled_from([INFANT_20.name, MEDIAPIPE_33.name, OPENPOSE_18.name])
FAST = settings(max_examples=40, deadline=None)


def keypoints(seed: int, t: int, schema: str, p_missing: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    j = get_schema(schema).num_joints
    kp = np.empty((t, j, 3), dtype=np.float32)
    kp[..., :2] = rng.uniform(0.2, 0.8, (t, j, 2))
    kp[..., 2] = rng.uniform(0.1, 1.0, (t, j))
    missing = rng.random((t, j)) < p_missing
    kp[missing] = 0.0
    return kp


def bone_lengths(kp: np.ndarray, schema: str, aspect: float) -> np.ndarray:
    edges = np.array(get_schema(schema).edges)
    d = kp[:, edges[:, 0], :2] - kp[:, edges[:, 1], :2]
    d = d.astype(np.float64)
    d[..., 0] *= aspect
    return np.linalg.norm(d, axis=-1)


@FAST
@given(seed=st.integers(0, 10_000), schema=SCHEMAS, t=st.integers(2, 40))
def test_mirror_twice_is_identity(seed, schema, t):
    kp = keypoints(seed, t, schema)
    np.testing.assert_allclose(mirror(mirror(kp, schema), schema), kp, atol=1e-6)


@FAST
@given(seed=st.integers(0, 10_000), schema=SCHEMAS)
def test_mirror_swaps_sides(seed, schema):
    s = get_schema(schema)
    kp = keypoints(seed, 5, schema, p_missing=0.0)
    m = mirror(kp, schema)
    left, right = s["left_shoulder"], s["right_shoulder"]
    np.testing.assert_allclose(m[:, right, 0], 1.0 - kp[:, left, 0], atol=1e-6)
    np.testing.assert_allclose(m[:, right, 1:], kp[:, left, 1:])


@FAST
@given(seed=st.integers(0, 10_000), schema=SCHEMAS, angle=st.floats(-np.pi, np.pi),
       aspect=st.sampled_from([1.0, 16 / 9, 9 / 16, 4 / 3]))
def test_rotation_keeps_bone_lengths(seed, schema, angle, aspect):
    kp = keypoints(seed, 8, schema, p_missing=0.0)
    r = rotate(kp, angle, aspect=aspect)
    np.testing.assert_allclose(bone_lengths(r, schema, aspect), bone_lengths(kp, schema, aspect), atol=1e-5)
    back = rotate(rotate(kp, angle, aspect=aspect, center=np.array([0.5, 0.5])), -angle, aspect=aspect,
                  center=np.array([0.5, 0.5]))
    np.testing.assert_allclose(back, kp, atol=1e-5)


@FAST
@given(seed=st.integers(0, 10_000), factor=st.floats(0.5, 2.0))
def test_scale_scales_bones_and_keeps_unseen_at_zero(seed, factor):
    kp = keypoints(seed, 6, INFANT_20.name, p_missing=0.3)
    s = scale(kp, factor)
    seen = kp[..., 2] > 0
    assert (s[~seen] == 0).all()
    both = seen[:, np.array(INFANT_20.edges)[:, 0]] & seen[:, np.array(INFANT_20.edges)[:, 1]]
    np.testing.assert_allclose(bone_lengths(s, "infant20", 1)[both], factor * bone_lengths(kp, "infant20", 1)[both],
                               rtol=1e-4, atol=1e-6)


@FAST
@given(seed=st.integers(0, 10_000), t=st.integers(3, 60), strength=st.floats(0.0, 0.5))
def test_time_warp_keeps_length_ends_and_range(seed, t, strength):
    kp = keypoints(seed, t, INFANT_20.name, p_missing=0.0)
    w = time_warp(kp, np.random.default_rng(seed), strength=strength)
    assert w.shape == kp.shape
    np.testing.assert_allclose(w[0], kp[0], atol=1e-6)
    np.testing.assert_allclose(w[-1], kp[-1], atol=1e-6)
    assert (w[..., :2] >= kp[..., :2].min(axis=0) - 1e-6).all() and (w[..., :2] <= kp[..., :2].max(axis=0) + 1e-6).all()


@FAST
@given(seed=st.integers(0, 10_000), t=st.integers(10, 90),
       fps_in=st.sampled_from([24.0, 25.0, 30.0, 60.0]), fps_out=st.sampled_from([15.0, 24.0, 30.0, 60.0]))
def test_resample_keeps_duration(seed, t, fps_in, fps_out):
    kp = keypoints(seed, t, INFANT_20.name)
    r = resample_fps(kp, fps_in, fps_out)
    assert abs(r.shape[0] / fps_out - t / fps_in) <= 1.0 / fps_out + 1e-9
    # every output frame's unseen joints are exactly zero (a gap never slides a joint to a blend with 0, 0)
    unseen = r[..., 2] == 0
    assert (r[unseen][:, :2] == 0).all()
    assert np.array_equal(resample_fps(kp, fps_in, fps_in), kp)


def test_resample_linear_between_seen_frames():
    kp = np.zeros((3, 20, 3), dtype=np.float32)
    kp[:, :, 2] = 1.0
    kp[:, :, 0] = np.array([0.0, 0.3, 0.6])[:, None] + 0.1
    up = resample_fps(kp, 10.0, 20.0)  # 6 frames at t = 0, .5, 1, 1.5, 2, 2 (clipped)
    np.testing.assert_allclose(up[:5, 0, 0], [0.1, 0.25, 0.4, 0.55, 0.7], atol=1e-6)
    kp[1, 0] = 0.0  # joint 0 unseen in the middle frame: neighbours copy the nearer frame
    mid = interpolate_frames(kp, np.array([0.4, 0.6]))
    np.testing.assert_allclose(mid[:, 0], [kp[0, 0], kp[1, 0]])


@FAST
@given(seed=st.integers(0, 10_000), p=st.floats(0.0, 1.0), max_frames=st.integers(1, 20))
def test_joint_dropout_only_removes(seed, p, max_frames):
    kp = keypoints(seed, 30, INFANT_20.name)
    d = joint_dropout(kp, np.random.default_rng(seed), p_joint=p, max_frames=max_frames)
    changed = (d != kp).any(axis=-1)
    assert (d[changed] == 0).all()
    assert (changed.sum(axis=0) <= max_frames).all()


def test_augment_deterministic_and_varied():
    kp = keypoints(1, 90, MEDIAPIPE_33.name)
    a = augment(kp, "mediapipe33", 30.0, np.random.default_rng(5))
    b = augment(kp, "mediapipe33", 30.0, np.random.default_rng(5))
    c = augment(kp, "mediapipe33", 30.0, np.random.default_rng(6))
    assert a[1] == b[1] and np.array_equal(a[0], b[0])
    assert not (a[0].shape == c[0].shape and np.array_equal(a[0], c[0]))
    assert a[0].dtype == np.float32


def test_augment_recording_stays_valid():
    kp = keypoints(2, 120, MEDIAPIPE_33.name)
    rec = PoseRecording(keypoints=kp, schema="mediapipe33", fps=30, frame_size=(720, 1280), age_weeks=10, label=1)
    wild = AugmentConfig(rotation_deg=180, scale_range=(0.3, 3.0), translate=0.5, resample_p=1.0)
    for seed in range(5):
        out = augment_recording(rec, np.random.default_rng(seed), wild)  # validated by PoseRecording
        assert out.label == 1 and out.age_weeks == 10 and out.fps in wild.fps_choices
        assert out.duration_s == pytest.approx(rec.duration_s, abs=0.1)
