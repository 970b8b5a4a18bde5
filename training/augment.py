"""Augmentations that mimic what differs between phone videos of the same movements.

All work on numpy keypoints ``[T, J, 3]`` (x, y normalized to the frame,
visibility) with the joint schema known, and are deterministic given a
``numpy.random.Generator``. A joint with visibility exactly 0 is "not seen"
(stored as zeros, as PoseRecording does); spatial transforms keep it so.

Geometry is done in pixel-proportional space (x scaled by the frame's aspect
ratio width/height), so a rotation keeps bone lengths on a non-square video.

* rotation — the phone held at a slant; scale — nearer/farther; translation — framing;
* mirror with left/right joint swap — the infant filmed from the other side;
* joint dropout — a pose estimator losing a hand or foot for a moment;
* time warping — the same movements a little faster or slower in places;
* frame-rate resampling — phones record at 24-60 fps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from skeleton.recording import COORD_LIMIT, MAX_FPS, MIN_FPS, PoseRecording
from skeleton.schemas import JointSchema, get_schema
from skeleton.timing import interpolate_frames, resample_fps


def _seen(kp: np.ndarray) -> np.ndarray:
    return kp[..., 2] > 0


def _keep_unseen(out: np.ndarray, kp: np.ndarray) -> np.ndarray:
    out[~_seen(kp), :2] = 0.0
    return out


def body_center(kp: np.ndarray) -> np.ndarray:
    """Mean (x, y) of all seen joints over the whole recording; the frame centre if none is seen."""
    seen = _seen(kp)
    if not seen.any():
        return np.array([0.5, 0.5], dtype=np.float64)
    return kp[..., :2][seen].mean(axis=0).astype(np.float64)


def rotate(kp: np.ndarray, angle_rad: float, *, aspect: float = 1.0, center: np.ndarray | None = None) -> np.ndarray:
    """Rotate about ``center`` (default: the body centre) by ``angle_rad`` in pixel-proportional space."""
    c = body_center(kp) if center is None else np.asarray(center, dtype=np.float64)
    u = (kp[..., 0] - c[0]) * aspect
    v = kp[..., 1] - c[1]
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    out = kp.copy()
    out[..., 0] = (cos * u - sin * v) / aspect + c[0]
    out[..., 1] = sin * u + cos * v + c[1]
    return _keep_unseen(out, kp)


def scale(kp: np.ndarray, factor: float, *, center: np.ndarray | None = None) -> np.ndarray:
    """Zoom about ``center`` (default: the body centre)."""
    c = body_center(kp) if center is None else np.asarray(center, dtype=np.float64)
    out = kp.copy()
    out[..., :2] = (kp[..., :2] - c) * factor + c
    return _keep_unseen(out, kp)


def translate(kp: np.ndarray, dx: float, dy: float) -> np.ndarray:
    out = kp.copy()
    out[..., 0] += dx
    out[..., 1] += dy
    return _keep_unseen(out, kp)


def mirror(kp: np.ndarray, schema: str | JointSchema) -> np.ndarray:
    """Mirror left-right in the frame (x -> 1 - x) and swap left/right joints so names stay true."""
    perm = list(get_schema(schema).mirror_permutation)
    out = kp[:, perm].copy()
    out[..., 0] = 1.0 - out[..., 0]
    return _keep_unseen(out, kp[:, perm])


def joint_dropout(kp: np.ndarray, rng: np.random.Generator, *, p_joint: float, max_frames: int) -> np.ndarray:
    """Each joint loses, with probability ``p_joint``, one stretch of 1..``max_frames`` frames."""
    out = kp.copy()
    t, j = kp.shape[:2]
    if t == 0 or max_frames < 1:
        return out
    hit = rng.random(j) < p_joint
    lengths = rng.integers(1, max_frames + 1, size=j)
    starts = rng.integers(0, t, size=j)
    for joint in np.flatnonzero(hit):
        out[starts[joint]: starts[joint] + lengths[joint], joint] = 0.0
    return out


def time_warp(kp: np.ndarray, rng: np.random.Generator, *, strength: float, n_knots: int = 4) -> np.ndarray:
    """A smooth monotone re-timing: local speed varies by about ±``strength``; length and ends are kept."""
    t = kp.shape[0]
    if t < 3 or strength <= 0:
        return kp.copy()
    speeds = np.clip(1.0 + rng.uniform(-strength, strength, n_knots), 0.2, None)
    knots = np.concatenate([[0.0], np.cumsum(speeds)])
    knots = knots / knots[-1] * (t - 1)  # warped time of each knot, ends fixed
    even = np.linspace(0, t - 1, n_knots + 1)
    times = np.interp(np.arange(t), even, knots)
    return interpolate_frames(kp, times)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges for :func:`augment`; defaults are what handheld phone videos plausibly vary by."""

    rotation_deg: float = 15.0  # uniform in ±
    scale_range: tuple[float, float] = (0.85, 1.15)
    translate: float = 0.05  # uniform in ± (fraction of the frame)
    mirror_p: float = 0.5
    dropout_p_joint: float = 0.1
    dropout_max_s: float = 1.0
    time_warp_strength: float = 0.15
    resample_p: float = 0.5
    fps_choices: tuple[float, ...] = (24.0, 25.0, 30.0, 60.0)


def augment(
    kp: np.ndarray, schema: str | JointSchema, fps: float, rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(), *, aspect: float = 1.0,
) -> tuple[np.ndarray, float]:
    """One random augmentation of a recording's keypoints; returns (keypoints, fps)."""
    out = np.asarray(kp, dtype=np.float32)
    if config.rotation_deg:
        out = rotate(out, np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg)), aspect=aspect)
    out = scale(out, rng.uniform(*config.scale_range))
    if config.translate:
        out = translate(out, *rng.uniform(-config.translate, config.translate, 2))
    if rng.random() < config.mirror_p:
        out = mirror(out, schema)
    out = joint_dropout(out, rng, p_joint=config.dropout_p_joint, max_frames=int(round(config.dropout_max_s * fps)))
    out = time_warp(out, rng, strength=config.time_warp_strength)
    if config.fps_choices and rng.random() < config.resample_p:
        new_fps = float(rng.choice(config.fps_choices))
        out, fps = resample_fps(out, fps, new_fps), new_fps
    return out.astype(np.float32), float(fps)


def augment_recording(
    rec: PoseRecording, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> PoseRecording:
    """An augmented copy of ``rec``; coordinates are clipped to what a PoseRecording accepts."""
    w, h = rec.frame_size
    kp, fps = augment(rec.keypoints, rec.schema, rec.fps, rng, config, aspect=w / h)
    lo, hi = COORD_LIMIT
    kp[..., :2] = np.clip(kp[..., :2], lo, hi)
    fps = float(np.clip(fps, MIN_FPS, MAX_FPS))
    return replace(rec, keypoints=kp, fps=fps)
