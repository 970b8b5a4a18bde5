"""Re-timing keypoints: values at fractional frame positions, and the same time span at another frame rate.

Shared by training (time warping, frame-rate augmentation) and the app (a recording slower than the
model reads is interpolated up to its rate). Numpy only.
"""

from __future__ import annotations

import numpy as np


def interpolate_frames(kp: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Keypoints at fractional frame positions ``times`` (clipped to the recording).

    Between two seen frames x and y are interpolated linearly; where either
    neighbour is unseen the nearer frame is copied, so a gap never turns into a
    joint sliding to (0, 0).
    """
    t = kp.shape[0]
    times = np.clip(np.asarray(times, dtype=np.float64), 0, t - 1)
    i0 = np.floor(times).astype(int)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (times - i0)[:, None, None]
    a, b = kp[i0].astype(np.float64), kp[i1].astype(np.float64)
    mixed = (1 - w) * a + w * b
    nearest = np.where(w < 0.5, a, b)
    both_seen = (a[..., 2] > 0) & (b[..., 2] > 0)
    out = np.where(both_seen[..., None], mixed, nearest)
    return out.astype(kp.dtype)


def resample_fps(kp: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """The same time span sampled at ``fps_out`` (linear interpolation between seen frames)."""
    if fps_in == fps_out:
        return kp.copy()
    n_out = max(2, int(round(kp.shape[0] * fps_out / fps_in)))
    times = np.arange(n_out) * (fps_in / fps_out)
    return interpolate_frames(kp, times)
