"""Hand-crafted movement features of a pose recording: the simple baseline.

``kinematic_features`` gives joint-speed and variability statistics (the kind
of features classic automated GMA studies use: mean/median/peak speed,
speed variation, acceleration, excursion, share of time moving) per joint
group. ``structure_features`` adds descriptive movement-structure indices
from the GMA literature (left-right speed correlation, direction entropy,
trajectory curvature, acceleration kurtosis, fidgety-band energy, spectral
peakedness); they are used to check the synthetic classes against
GMA_KINEMATICS.md and are *not* part of the baseline.

Pre-processing, shared by both: map to COCO-17, convert normalized
coordinates to pixels (so x and y are in the same unit), bridge short
tracking gaps (visibility < 0.5) by linear interpolation and ignore frames in
long gaps, centre on the mid-hip, rotate so the trunk points up (camera
rotation and shake removed), scale by the median trunk length
(mid-hip to mid-shoulder), and smooth with a Savitzky-Golay filter.
Units: trunk lengths (TL) and seconds.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import csd, savgol_filter, welch
from scipy.stats import kurtosis

from .recording import PoseRecording
from .schemas import COCO_17, get_schema

MIN_VISIBILITY = 0.5
MAX_BRIDGED_GAP_S = 0.5  # longer gaps are left out of the statistics
SMOOTH_WINDOW_S = 0.3  # Savitzky-Golay window (real pipelines smooth 0.5-1 s)
MOVING_SPEED_TL = 0.5  # trunk lengths per second: above this a joint counts as moving

GROUPS: dict[str, tuple[str, str] | tuple[str]] = {
    "wrist": ("left_wrist", "right_wrist"),
    "ankle": ("left_ankle", "right_ankle"),
    "elbow": ("left_elbow", "right_elbow"),
    "knee": ("left_knee", "right_knee"),
    "head": ("nose",),
}
_NEEDED = ("nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
           "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
# Landmarks that move rigidly with a wrist / ankle (MediaPipe-33 only): their tracking errors are
# independent, their movement is shared, so cross-power isolates real small movements from jitter.
_DISTAL_COMPANIONS = {
    "left_wrist": ("left_pinky", "left_index", "left_thumb"),
    "right_wrist": ("right_pinky", "right_index", "right_thumb"),
    "left_ankle": ("left_heel", "left_foot_index"),
    "right_ankle": ("right_heel", "right_foot_index"),
}


class Prepared:
    """Normalised trajectories of one recording (see module docstring)."""

    def __init__(self, rec: PoseRecording) -> None:
        schema = get_schema(rec.schema)
        if not all(name in schema.index for name in _NEEDED):
            rec, schema = rec.to_schema("coco17"), COCO_17
        self.index = schema.index
        kp = rec.keypoints.astype(np.float64)
        w, h = rec.frame_size
        self.fps = float(rec.fps)
        xy = kp[..., :2] * np.array([w, h])
        seen = kp[..., 2] >= MIN_VISIBILITY
        n = xy.shape[0]
        t = np.arange(n)
        self.valid = np.zeros((n, xy.shape[1]), dtype=bool)
        filled = np.zeros_like(xy)
        max_gap = int(MAX_BRIDGED_GAP_S * self.fps)
        for j in range(xy.shape[1]):
            idx = np.flatnonzero(seen[:, j])
            if idx.size < 2:
                continue
            filled[:, j, 0] = np.interp(t, idx, xy[idx, j, 0])
            filled[:, j, 1] = np.interp(t, idx, xy[idx, j, 1])
            # a frame is usable if it is seen or inside a short gap between two seen frames
            nxt = idx[np.minimum(np.searchsorted(idx, t), idx.size - 1)]
            prv = idx[np.maximum(np.searchsorted(idx, t, side="right") - 1, 0)]
            self.valid[:, j] = seen[:, j] | ((nxt - prv <= max_gap + 1) & (prv <= t) & (nxt >= t))
        torso = self.joints(("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
        hips = filled[:, torso[:2]].mean(1)
        shoulders = filled[:, torso[2:]].mean(1)
        torso_ok = self.valid[:, torso].all(1)
        trunk = shoulders - hips
        tl = np.linalg.norm(trunk, axis=1)
        self.trunk_length_px = float(np.median(tl[torso_ok])) if torso_ok.any() else float(max(w, h)) * 0.2
        # Trunk direction, smoothed over ~1 s so limb movements don't rotate the frame.
        win = _odd(int(self.fps))
        ang = np.unwrap(np.arctan2(trunk[:, 0], -trunk[:, 1]))
        if torso_ok.sum() >= 2:
            ang = np.interp(t, np.flatnonzero(torso_ok), ang[torso_ok])
        if n > win:
            ang = savgol_filter(ang, win, 1)
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        rel = (filled - hips[:, None]) / max(self.trunk_length_px, 1e-6)
        x = c * rel[..., 0] - s * rel[..., 1]
        y = -(s * rel[..., 0] + c * rel[..., 1])  # +y towards the head
        pos = np.stack([x, y], -1)
        self.raw_pos = pos  # normalised but unsmoothed (spectral features need the fast components)
        self.valid &= torso_ok[:, None]
        sw = _odd(max(5, int(SMOOTH_WINDOW_S * self.fps)))
        if n > sw:
            self.pos = savgol_filter(pos, sw, 2, axis=0)
            self.vel = savgol_filter(pos, sw, 2, deriv=1, axis=0) * self.fps
            self.acc = savgol_filter(pos, sw, 2, deriv=2, axis=0) * self.fps**2
        else:
            self.pos = pos
            self.vel = np.gradient(pos, axis=0) * self.fps
            self.acc = np.gradient(self.vel, axis=0) * self.fps
        # Derivatives near an unusable frame are unreliable: erode the valid mask by half a window.
        bad = (~self.valid).astype(float)
        k = np.ones(sw)
        self.valid_deriv = np.stack([np.convolve(bad[:, j], k, mode="same") == 0 for j in range(bad.shape[1])], 1)

    def joints(self, names: tuple[str, ...]) -> list[int]:
        return [self.index[nm] for nm in names]

    def has(self, name: str) -> bool:
        return name in self.index


def _odd(k: int) -> int:
    return k if k % 2 == 1 else k + 1


def _safe(values: np.ndarray, fn, default: float = 0.0) -> float:
    if values.size < 3:
        return default
    v = float(fn(values))
    return v if np.isfinite(v) else default


def kinematic_features(recording: PoseRecording) -> dict[str, float]:
    """Joint-speed and variability statistics per joint group (the hand-crafted baseline). All finite."""
    p = Prepared(recording)
    feats: dict[str, float] = {}
    for group, names in GROUPS.items():
        speeds, accs, excursions, moving = [], [], [], []
        for j in p.joints(names):
            ok = p.valid_deriv[:, j]
            sp = np.linalg.norm(p.vel[ok, j], axis=1)
            speeds.append(sp)
            accs.append(np.linalg.norm(p.acc[ok, j], axis=1))
            if ok.sum() >= 3:
                excursions.append(np.sqrt(p.pos[ok, j].var(axis=0).sum()))
            moving.append(sp > MOVING_SPEED_TL)
        sp, ac = np.concatenate(speeds), np.concatenate(accs)
        mean = _safe(sp, np.mean)
        feats[f"{group}_speed_mean"] = mean
        feats[f"{group}_speed_median"] = _safe(sp, np.median)
        feats[f"{group}_speed_p90"] = _safe(sp, lambda v: np.percentile(v, 90))
        feats[f"{group}_speed_sd"] = _safe(sp, np.std)
        feats[f"{group}_speed_cv"] = feats[f"{group}_speed_sd"] / mean if mean > 0 else 0.0
        feats[f"{group}_accel_mean"] = _safe(ac, np.mean)
        feats[f"{group}_excursion"] = float(np.mean(excursions)) if excursions else 0.0
        feats[f"{group}_moving_fraction"] = _safe(np.concatenate(moving).astype(float), np.mean)
    feats["valid_fraction"] = float(p.valid_deriv[:, p.joints(GROUPS["wrist"] + GROUPS["ankle"])].mean())
    return feats


def _coherent_band_power(p: Prepared, lo_hz: float, hi_hz: float) -> tuple[float, float]:
    """Band power (TL^2 x1e4) shared by each wrist/ankle and its hand/foot landmarks: (total, in all
    directions). The cross-spectrum of two independently tracked points on one rigid part keeps their
    common movement and averages out their independent tracking noise; "in all directions" is twice the
    smaller eigenvalue of the 2x2 cross-power matrix, so back-and-forth movement along one axis adds
    nothing to it. (0, 0) when the schema has no hand/foot landmarks."""
    nper = int(min(len(p.pos), 8 * p.fps))
    totals, isotropic = [], []
    for end, companions in _DISTAL_COMPANIONS.items():
        if not (p.has(end) and all(p.has(c) for c in companions)):
            return 0.0, 0.0
        j = p.joints((end,))[0]
        cs = p.joints(companions)
        ok = p.valid[:, [j] + cs].all(1)
        if ok.sum() < nper:
            continue
        a = p.raw_pos[:, j] - p.raw_pos[ok, j].mean(0)
        b = p.raw_pos[:, cs].mean(1)
        b = b - b[ok].mean(0)
        a[~ok], b[~ok] = 0.0, 0.0
        f, pxy = csd(a[:, :, None], b[:, None, :], fs=p.fps, nperseg=nper, axis=0)  # [F, 2, 2]
        band = (f >= lo_hz) & (f <= hi_hz)
        m = np.real(np.trapezoid(pxy[band], f[band], axis=0))
        m = (m + m.T) / 2 * 1e4
        totals.append(float(np.trace(m)))
        isotropic.append(float(2 * max(np.linalg.eigvalsh(m)[0], 0.0)))
    if not totals:
        return 0.0, 0.0
    return float(np.mean(totals)), float(np.mean(isotropic))


def _anisotropy(p: Prepared, joints: list[int]) -> float:
    """1 - (minor / major) variance of distal velocity over the faster half of the frames, after 0.5 s
    smoothing: 0 for movement in all directions, near 1 for back-and-forth along one axis."""
    w = _odd(max(5, int(0.5 * p.fps)))
    if len(p.raw_pos) <= w:
        return 0.0
    vel = savgol_filter(p.raw_pos[:, joints], w, 2, deriv=1, axis=0)
    out = []
    for k, j in enumerate(joints):
        v = vel[p.valid_deriv[:, j], k]
        if len(v) < 20:
            continue
        sp = np.linalg.norm(v, axis=1)
        v = v[sp >= np.median(sp)]
        ev = np.linalg.eigvalsh(np.cov(v.T))
        if ev[1] > 0:
            out.append(1.0 - max(ev[0], 0.0) / ev[1])
    return float(np.mean(out)) if out else 0.0


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 10 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def structure_features(recording: PoseRecording) -> dict[str, float]:
    """Descriptive movement-structure indices (for checking the generator; not the baseline). All finite.

    lr_speed_corr_{arms,legs}: correlation of left and right wrist (ankle) speed;
    arm_leg_speed_corr: correlation of mean arm and mean leg speed;
    direction_entropy: entropy (bits, 12 sectors, max 3.58) of distal movement directions while moving;
    velocity_anisotropy: 1 - minor/major variance of distal velocity (0 all directions, 1 one axis);
    curvature: median path curvature of the distal joints while moving (1/TL);
    accel_kurtosis: excess kurtosis of distal acceleration magnitude;
    fidgety_energy: distal position power in 1-4 Hz (TL^2, x1e4);
    fidgety_ratio: distal position power in 1-4 Hz over that in 0.2-1 Hz;
    fidgety_coherent: 1-4 Hz power shared by wrist/ankle and hand/foot landmarks (MediaPipe-33 only);
    fidgety_multidirectional: the part of it that goes in all directions, not back and forth on one axis;
    spectral_peakedness: peak / mean power of distal speed in 0.2-3 Hz.
    """
    p = Prepared(recording)
    feats: dict[str, float] = {}
    wr, an = p.joints(GROUPS["wrist"]), p.joints(GROUPS["ankle"])
    distal = wr + an
    speed = np.linalg.norm(p.vel, axis=2)
    for name, (a, b) in (("arms", wr), ("legs", an)):
        ok = p.valid_deriv[:, a] & p.valid_deriv[:, b]
        feats[f"lr_speed_corr_{name}"] = _corr(speed[ok, a], speed[ok, b])
    ok = p.valid_deriv[:, distal].all(1)
    feats["arm_leg_speed_corr"] = _corr(speed[ok][:, wr].mean(1), speed[ok][:, an].mean(1))

    ents, curvs, kurts = [], [], []
    for j in distal:
        okj = p.valid_deriv[:, j]
        v, a = p.vel[okj, j], p.acc[okj, j]
        sp = np.linalg.norm(v, axis=1)
        mv = sp > MOVING_SPEED_TL * 0.5
        if mv.sum() >= 10:
            ang = np.arctan2(v[mv, 1], v[mv, 0])
            hist = np.bincount(((ang + np.pi) / (2 * np.pi) * 12).astype(int) % 12, minlength=12) / mv.sum()
            nz = hist[hist > 0]
            ents.append(float(-(nz * np.log2(nz)).sum()))
            cross = np.abs(v[mv, 0] * a[mv, 1] - v[mv, 1] * a[mv, 0])
            curvs.append(float(np.median(cross / sp[mv] ** 3)))
        if okj.sum() >= 10:
            kurts.append(float(kurtosis(np.linalg.norm(a, axis=1))))
    feats["direction_entropy"] = float(np.mean(ents)) if ents else 0.0
    feats["velocity_anisotropy"] = _anisotropy(p, distal)
    feats["curvature"] = float(np.mean(curvs)) if curvs else 0.0
    feats["accel_kurtosis"] = float(np.mean(kurts)) if kurts else 0.0

    nper = int(min(len(p.pos), 8 * p.fps))
    energies, ratios, peaks = [], [], []
    if nper >= 16:
        for j in distal:
            ok = p.valid[:, j]
            if ok.sum() < nper:
                continue
            x = np.where(ok[:, None], p.raw_pos[:, j] - p.raw_pos[ok, j].mean(0), 0.0)
            f, pxx = welch(x, fs=p.fps, nperseg=nper, axis=0)
            band = (f >= 1.0) & (f <= 4.0)
            energies.append(float(np.trapezoid(pxx[band].sum(1), f[band])) * 1e4)
            slow = (f >= 0.2) & (f < 1.0)
            slow_power = float(np.trapezoid(pxx[slow].sum(1), f[slow]))
            if slow_power > 0:
                ratios.append(float(np.trapezoid(pxx[band].sum(1), f[band])) / slow_power)
            okd = p.valid_deriv[:, j]
            if okd.sum() < nper:
                continue
            s = np.where(okd, speed[:, j] - speed[okd, j].mean(), 0.0)
            f2, ps = welch(s, fs=p.fps, nperseg=nper)
            b2 = (f2 >= 0.2) & (f2 <= 3.0)
            if ps[b2].mean() > 0:
                peaks.append(float(ps[b2].max() / ps[b2].mean()))
    feats["fidgety_energy"] = float(np.mean(energies)) if energies else 0.0
    feats["fidgety_ratio"] = float(np.mean(ratios)) if ratios else 0.0
    total, isotropic = _coherent_band_power(p, 1.0, 4.0) if nper >= 16 else (0.0, 0.0)
    feats["fidgety_coherent"] = total
    feats["fidgety_multidirectional"] = isotropic
    feats["spectral_peakedness"] = float(np.mean(peaks)) if peaks else 0.0
    return {k: (v if np.isfinite(v) else 0.0) for k, v in feats.items()}
