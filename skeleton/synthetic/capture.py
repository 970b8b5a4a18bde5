"""What a phone and its pose estimator do to a clean movement: framing,
camera shake, correlated tracking noise, outliers, dropouts (hands and feet
worst), occlusions, left/right swaps and missed frames.

Magnitudes follow GMA_KINEMATICS.md §7 ("measurement realism").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import CogmaError
from ..schemas import MEDIAPIPE_33
from . import signals as sig

J = MEDIAPIPE_33.index
_N = MEDIAPIPE_33.num_joints

# Landmark groups that MediaPipe loses together (a hand is lost as a whole).
_GROUPS: dict[str, tuple[str, ...]] = {
    "left_hand": ("left_wrist", "left_pinky", "left_index", "left_thumb"),
    "right_hand": ("right_wrist", "right_pinky", "right_index", "right_thumb"),
    "left_foot": ("left_ankle", "left_heel", "left_foot_index"),
    "right_foot": ("right_ankle", "right_heel", "right_foot_index"),
    "left_elbow": ("left_elbow",), "right_elbow": ("right_elbow",),
    "left_knee": ("left_knee",), "right_knee": ("right_knee",),
}
_DISTAL = ("left_hand", "right_hand", "left_foot", "right_foot")
_LIMB_GROUPS = {  # for occlusions: a whole limb behind a blanket or a parent's hand
    "left_arm": ("left_elbow",) + _GROUPS["left_hand"], "right_arm": ("right_elbow",) + _GROUPS["right_hand"],
    "left_leg": ("left_knee",) + _GROUPS["left_foot"], "right_leg": ("right_knee",) + _GROUPS["right_foot"],
}
_SWAPS = (  # pairs MediaPipe confuses when limbs cross or the view is ambiguous
    ("left_wrist", "left_pinky", "left_index", "left_thumb"),
    ("left_ankle", "left_heel", "left_foot_index"),
    ("left_elbow", "left_wrist", "left_pinky", "left_index", "left_thumb"),
    ("left_knee", "left_ankle", "left_heel", "left_foot_index"),
)

# Per-landmark noise multiplier and how much lower its typical visibility is than the torso's.
_NOISE_FACTOR = np.ones(_N)
_VIS_DROP = np.ones(_N)
for _name, _j in J.items():
    if any(k in _name for k in ("pinky", "index", "thumb", "heel", "foot_index")):
        _NOISE_FACTOR[_j], _VIS_DROP[_j] = 1.6, 4.0
    elif any(k in _name for k in ("wrist", "ankle")):
        _NOISE_FACTOR[_j], _VIS_DROP[_j] = 1.3, 2.5
    elif any(k in _name for k in ("elbow", "knee")):
        _NOISE_FACTOR[_j], _VIS_DROP[_j] = 1.1, 1.5
    elif any(k in _name for k in ("shoulder", "hip")):
        _NOISE_FACTOR[_j], _VIS_DROP[_j] = 0.8, 1.0
    elif any(k in _name for k in ("eye", "ear", "mouth", "nose")):
        _NOISE_FACTOR[_j], _VIS_DROP[_j] = 0.6, 0.5

PORTRAIT_SIZES = ((1080, 1920), (720, 1280))
LANDSCAPE_SIZES = ((1920, 1080), (1280, 720))
DIFFICULTIES = ("default", "hidden", "clean")


class CaptureError(CogmaError):
    """Impossible capture conditions."""


@dataclass(frozen=True)
class CaptureConditions:
    """How the recording was made and tracked. Distances in body lengths (BL) unless stated."""

    fps: float | None = None  # None: use synthesize()'s fps argument; when set, it wins
    frame_size: tuple[int, int] = (1080, 1920)  # (width, height) pixels; portrait phone by default
    body_size: float = 0.6  # the infant's movement extent as a share of the frame (0.4-0.8)
    rotation_deg: float = 0.0  # in-plane rotation of the head-up body axis in the image
    offset: tuple[float, float] = (0.0, 0.0)  # body centre shift, as a share (-1..1) of the free margin
    noise_sigma: float = 0.008  # AR(1) tracking noise, BL (distal joints more, face less)
    noise_rho: float = 0.8  # frame-to-frame correlation of the tracking noise (at 30 fps)
    outlier_rate: float = 0.01  # share of landmark-frames hit by a gross error
    outlier_size: tuple[float, float] = (0.05, 0.15)  # BL
    dropout_rate: float = 0.1  # share of frames a hand or foot is lost (elbows/knees 30 % of that)
    dropout_run_s: float = 0.5  # typical length of a loss
    occlusion_per_min: float = 0.5  # limb-occlusion episodes per minute (2-5 s each)
    swap_per_min: float = 0.3  # left/right confusions per minute (0.1-1 s each)
    missed_frame_rate: float = 0.003  # share of frames with no pose at all (zeros, visibility 0)
    shake: float = 0.0  # handheld camera motion, frame heights per second (0 = phone on a stand)
    visibility_level: float = 0.95  # typical visibility of a well-seen torso landmark
    pose_model: str = "mediapipe-pose-landmarker (synthetic)"
    device: str = "synthetic"

    def __post_init__(self) -> None:
        checks = [
            (self.fps is None or 5.0 <= float(self.fps) <= 240.0, f"fps {self.fps} must be within 5-240"),
            (len(self.frame_size) == 2 and all(16 <= int(v) <= 16384 for v in self.frame_size),
             f"frame_size {self.frame_size} is not a plausible (width, height)"),
            (0.1 <= self.body_size <= 0.95, f"body_size {self.body_size} must be within 0.1-0.95 of the frame"),
            (all(-1.0 <= v <= 1.0 for v in self.offset), "offset values must be within -1..1"),
            (0.0 <= self.noise_sigma <= 0.2, "noise_sigma must be within 0-0.2 body lengths"),
            (0.0 <= self.noise_rho < 1.0, "noise_rho must be within 0 and 1 (exclusive)"),
            (0.0 <= self.outlier_rate <= 0.5, "outlier_rate must be within 0-0.5"),
            (0.0 <= self.dropout_rate <= 0.9, "dropout_rate must be within 0-0.9"),
            (self.dropout_run_s > 0, "dropout_run_s must be positive"),
            (0.0 <= self.occlusion_per_min <= 30, "occlusion_per_min must be within 0-30"),
            (0.0 <= self.swap_per_min <= 60, "swap_per_min must be within 0-60"),
            (0.0 <= self.missed_frame_rate <= 0.9, "missed_frame_rate must be within 0-0.9"),
            (0.0 <= self.shake <= 0.5, "shake must be within 0-0.5 frame heights per second"),
            (0.5 <= self.visibility_level <= 1.0, "visibility_level must be within 0.5-1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise CaptureError(f"capture conditions: {msg}")

    @classmethod
    def clean(cls, **overrides) -> "CaptureConditions":
        """Perfect tracking from a fixed camera: no noise, losses or swaps (for tests and figures)."""
        base = cls(noise_sigma=0.0, outlier_rate=0.0, dropout_rate=0.0, occlusion_per_min=0.0,
                   swap_per_min=0.0, missed_frame_rate=0.0, shake=0.0, visibility_level=0.99)
        return replace(base, **overrides)

    @classmethod
    def sample(
        cls, rng: np.random.Generator, difficulty: str = "default", fps: float | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> "CaptureConditions":
        """Random phone-like conditions. ``difficulty``: default, hidden (worse tracking) or clean."""
        if difficulty not in DIFFICULTIES:
            raise CaptureError(f"unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}")
        if frame_size is None:
            frame_size = sample_frame_size(rng)
        landscape = frame_size[0] > frame_size[1]
        base_rot = (90.0 * rng.choice([-1, 1])) if landscape else 0.0
        rotation = rng.uniform(-180, 180) if rng.random() < 0.1 else base_rot + 12.0 * rng.standard_normal()
        framing = dict(
            fps=fps, frame_size=tuple(int(v) for v in frame_size), body_size=float(rng.uniform(0.4, 0.8)),
            rotation_deg=float(rotation), offset=tuple(float(v) for v in rng.uniform(-0.8, 0.8, 2)),
        )
        if difficulty == "clean":
            return cls.clean(**framing)
        hard = difficulty == "hidden"
        handheld = rng.random() < (0.7 if hard else 0.6)
        return cls(
            **framing,
            noise_sigma=float(rng.uniform(0.005, 0.015) if hard else rng.uniform(0.003, 0.010)),
            noise_rho=float(rng.uniform(0.7, 0.9)),
            outlier_rate=float(rng.uniform(0.01, 0.03) if hard else rng.uniform(0.003, 0.010)),
            dropout_rate=float(rng.uniform(0.10, 0.25) if hard else rng.uniform(0.05, 0.20)),
            dropout_run_s=float(rng.uniform(0.3, 1.5)),
            occlusion_per_min=float(rng.uniform(0.0, 2.0) if hard else rng.uniform(0.0, 1.0)),
            swap_per_min=float(rng.uniform(0.2, 1.5) if hard else rng.uniform(0.0, 0.6)),
            missed_frame_rate=float(rng.uniform(0.0, 0.02) if hard else rng.uniform(0.0, 0.008)),
            shake=float(rng.uniform(0.01, 0.04) if hard else rng.uniform(0.005, 0.03)) if handheld else 0.0,
            visibility_level=float(rng.uniform(0.85, 0.97) if hard else rng.uniform(0.9, 0.99)),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_size"] = list(self.frame_size)
        d["offset"] = list(self.offset)
        d["outlier_size"] = list(self.outlier_size)
        return d


def sample_frame_size(rng: np.random.Generator) -> tuple[int, int]:
    """A phone video size: mostly portrait 1080p/720p, some landscape."""
    sizes = PORTRAIT_SIZES + LANDSCAPE_SIZES
    return sizes[rng.choice(len(sizes), p=[0.45, 0.25, 0.2, 0.1])]


def _events(rng: np.random.Generator, n: int, fps: float, per_min: float, dur_s: tuple[float, float]) -> list[tuple[int, int]]:
    times = sig.poisson_times(rng, n / fps, per_min / 60.0)
    out = []
    for t0 in times:
        i0 = int(t0 * fps)
        out.append((i0, min(n, i0 + max(1, int(rng.uniform(*dur_s) * fps)))))
    return out


def _fit_frame(xy_clean: np.ndarray, xy: np.ndarray, c: CaptureConditions) -> tuple[np.ndarray, float]:
    """Place the body in the frame, fitted on the clean movement so noise never changes the framing:
    (pixel coordinates of ``xy`` [T, 33, 2], pixels per BL)."""
    w, h = c.frame_size
    ang = np.deg2rad(c.rotation_deg)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])

    def to_image(p: np.ndarray) -> np.ndarray:
        return np.stack([p[..., 0], -p[..., 1]], axis=-1) @ rot.T  # image y points down, head up

    img = to_image(xy_clean).reshape(-1, 2)
    lo, hi = img.min(0), img.max(0)
    ext = np.maximum(hi - lo, 1e-6)
    scale = c.body_size / max(ext[0] / w, ext[1] / h)
    margin = np.array([w, h]) - scale * ext
    centre = np.array([w, h]) / 2 + np.asarray(c.offset) * margin / 2 * 0.9
    return (to_image(xy) - (lo + hi) / 2) * scale + centre, float(scale)


def _shake(rng: np.random.Generator, n: int, fps: float, c: CaptureConditions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Handheld camera motion: (translation [T, 2] in frame heights, rotation [T] rad, zoom [T])."""
    if c.shake <= 0:
        return np.zeros((n, 2)), np.zeros(n), np.zeros(n)
    drift = sig.coloured_noise(rng, n, fps, 2, 0.25, 0.6) * (0.8 * c.shake / (2 * np.pi * 0.25))
    tremor = sig.coloured_noise(rng, n, fps, 2, 2.0, 0.4) * (0.35 * c.shake / (2 * np.pi * 2.0))
    rot = sig.coloured_noise(rng, n, fps, 1, 0.25, 0.6)[:, 0] * np.deg2rad(40.0 * c.shake)
    zoom = sig.coloured_noise(rng, n, fps, 1, 0.15, 0.6)[:, 0] * (1.5 * c.shake)
    return drift + tremor, rot, zoom


def apply_capture(
    xy_bl: np.ndarray, self_vis: np.ndarray, c: CaptureConditions, fps: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Turn clean body-frame landmarks [T, 33, 2] into MediaPipe-like keypoints [T, 33, 3] (normalized)."""
    n = xy_bl.shape[0]
    w, h = c.frame_size
    rho = c.noise_rho ** (30.0 / fps)  # same correlation time at any frame rate

    # 1. Correlated tracking noise (body lengths), distal joints worst.
    noisy = xy_bl.copy()
    if c.noise_sigma > 0:
        noisy += sig.ar1(rng, (n, _N, 2), rho) * (c.noise_sigma * _NOISE_FACTOR)[None, :, None]

    # 2. Occlusions and dropouts: a lost landmark gets low visibility and a poorer position estimate.
    lost = np.zeros((n, _N), dtype=bool)
    if c.dropout_rate > 0:
        names = list(_GROUPS)
        rates = np.array([c.dropout_rate if g in _DISTAL else 0.3 * c.dropout_rate for g in names])
        g = sig.gate(rng, n, fps, len(names), rates, c.dropout_run_s)
        for k, name in enumerate(names):
            lost[:, [J[j] for j in _GROUPS[name]]] |= g[:, k : k + 1]
        # Face and torso are rarely lost.
        lost |= sig.gate(rng, n, fps, _N, 0.02 * c.dropout_rate, c.dropout_run_s)
    occluded = np.zeros((n, _N), dtype=bool)
    for limb in _LIMB_GROUPS.values():
        for i0, i1 in _events(rng, n, fps, c.occlusion_per_min / 4, (2.0, 5.0)):
            occluded[i0:i1, [J[j] for j in limb]] = True
    poor = lost | occluded
    if poor.any():
        sigma_poor = max(c.noise_sigma, 0.01) * 3.0
        extra = sig.ar1(rng, (n, _N, 2), 0.9) * sigma_poor
        noisy += np.where(poor[..., None], extra, 0.0)

    # 3. Into the image: framing, then camera shake about the frame centre.
    px, scale = _fit_frame(xy_bl, noisy, c)
    trans, rot, zoom = _shake(rng, n, fps, c)
    if c.shake > 0:
        centre = np.array([w, h]) / 2
        d = px - centre
        cr, sr = np.cos(rot)[:, None], np.sin(rot)[:, None]
        d = np.stack([cr * d[..., 0] - sr * d[..., 1], sr * d[..., 0] + cr * d[..., 1]], axis=-1)
        px = centre + d * (1 + zoom)[:, None, None] + (trans * h)[:, None, :]

    # 4. Outliers: gross errors of 5-15 % BL lasting 1-3 frames.
    if c.outlier_rate > 0:
        hit = rng.random((n, _N)) < c.outlier_rate / 2
        hit[1:] |= hit[:-1]  # gross errors last a frame or two
        ang = rng.uniform(0, 2 * np.pi, (n, _N))
        size = rng.uniform(*c.outlier_size, (n, _N)) * scale
        jump = np.stack([np.cos(ang), np.sin(ang)], -1) * size[..., None]
        px = px + np.where(hit[..., None], jump, 0.0)

    # 5. Visibility, as MediaPipe reports it.
    base = 1.0 - (1.0 - c.visibility_level) * _VIS_DROP
    vis = base[None, :] + 0.02 * sig.lowpass_noise(rng, n, fps, _N, 1.0)
    vis = vis * np.clip(self_vis, 0.0, 1.0)
    vis = np.where(occluded, vis * rng.uniform(0.3, 0.7), vis)
    vis = np.where(lost, rng.uniform(0.02, 0.45, (n, _N)), vis)
    vis = np.clip(vis, 0.0, 1.0)

    # 6. Left/right swaps: a hand, foot or limb reported on the wrong side for a moment.
    swaps = 0
    kp = np.concatenate([px / np.array([w, h]), vis[..., None]], axis=-1)
    for i0, i1 in _events(rng, n, fps, c.swap_per_min, (0.1, 1.0)):
        left = [J[j] for j in _SWAPS[rng.integers(len(_SWAPS))]]
        right = [J["right_" + MEDIAPIPE_33.joints[j][5:]] for j in left]
        kp[i0:i1, left + right] = kp[i0:i1, right + left]
        swaps += 1

    # 7. Frames where no pose was found: zeros with visibility 0 (the PoseRecording convention).
    missed = sig.gate(rng, n, fps, 1, c.missed_frame_rate, 0.3)[:, 0] if c.missed_frame_rate > 0 else np.zeros(n, bool)
    kp[:, :, :2] = np.clip(kp[:, :, :2], -0.1, 1.1)
    kp[missed] = 0.0
    info = {
        "lost_fraction_distal": float(lost[:, [J[j] for g in _DISTAL for j in _GROUPS[g]]].mean()),
        "missed_frames": int(missed.sum()),
        "swaps": swaps,
        "pixels_per_body_length": round(scale, 2),
    }
    return kp.astype(np.float32), info


__all__ = ["CaptureConditions", "CaptureError", "apply_capture", "sample_frame_size", "DIFFICULTIES"]
