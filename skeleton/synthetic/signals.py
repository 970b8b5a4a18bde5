"""Vectorised random signals the synthetic infant is built from.

Everything is generated for a whole recording at once ([frames, channels]
arrays): coloured noise by spectral synthesis (one FFT per batch), smooth
on/off gates by thresholding low-pass noise, AR(1) tracking noise with one
``lfilter`` call. No per-frame Python loops, so a 3-minute recording takes
milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.special import ndtri


def lognormal_band(f: np.ndarray, centre_hz: float, width: float) -> np.ndarray:
    """Power spectrum shaped as a bump on log-frequency (``width`` in natural-log units).

    width ~0.15 gives a sharp peak (a monotonous rhythm), ~0.6 a broad band (variable movement).
    """
    f = np.maximum(f, 1e-6)
    psd = np.exp(-0.5 * (np.log(f / centre_hz) / width) ** 2)
    psd[0] = 0.0  # no DC: the posture mean is set elsewhere
    return psd


def coloured_noise(
    rng: np.random.Generator, n: int, fps: float, channels: int, centre_hz: float, width: float
) -> np.ndarray:
    """``[n, channels]`` zero-mean, unit-variance noise with a log-normal band spectrum."""
    f = np.fft.rfftfreq(n, 1.0 / fps)
    amp = np.sqrt(lognormal_band(f, centre_hz, width))[:, None]
    spec = (rng.standard_normal((f.size, channels)) + 1j * rng.standard_normal((f.size, channels))) * amp
    x = np.fft.irfft(spec, n=n, axis=0)
    sd = x.std(axis=0, keepdims=True)
    return x / np.where(sd > 0, sd, 1.0)


def lowpass_noise(rng: np.random.Generator, n: int, fps: float, channels: int, timescale_s: float) -> np.ndarray:
    """``[n, channels]`` unit-variance noise that changes over about ``timescale_s`` seconds.

    Slow noise is synthesised on a coarser time grid (>= 8 samples per timescale) and interpolated:
    same statistics, a fraction of the cost.
    """
    step = max(1, int(timescale_s * fps / 8))
    m = -(-n // step) + 2
    rate = fps / step
    f = np.fft.rfftfreq(m, 1.0 / rate)
    amp = np.exp(-0.5 * (f * timescale_s * 2.0) ** 2)[:, None]
    spec = (rng.standard_normal((f.size, channels)) + 1j * rng.standard_normal((f.size, channels))) * amp
    spec[0] = 0.0
    x = np.fft.irfft(spec, n=m, axis=0)
    sd = x.std(axis=0, keepdims=True)
    x = x / np.where(sd > 0, sd, 1.0)
    if step == 1:
        return x[:n]
    pos = np.arange(n) / step
    i = pos.astype(int)
    frac = (pos - i)[:, None]
    return x[i] * (1 - frac) + x[i + 1] * frac


def gate(
    rng: np.random.Generator, n: int, fps: float, channels: int, p_on: np.ndarray | float, timescale_s: float
) -> np.ndarray:
    """``[n, channels]`` bool on/off process, on for about a share ``p_on`` of the time, in runs of ~timescale."""
    p = np.clip(np.broadcast_to(np.asarray(p_on, dtype=float), (channels,)), 1e-6, 1 - 1e-6)
    z = lowpass_noise(rng, n, fps, channels, timescale_s)
    return z < ndtri(p)[None, :]


def soft_gate(
    rng: np.random.Generator, n: int, fps: float, channels: int, p_on: np.ndarray | float,
    timescale_s: float, ramp_s: float = 0.5,
) -> np.ndarray:
    """Like :func:`gate` but in [0, 1] with ramps of about ``ramp_s`` (movements fade in and out)."""
    g = gate(rng, n, fps, channels, p_on, timescale_s).astype(float)
    return smooth(g, max(1, int(round(ramp_s * fps))))


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` frames along axis 0 (edges use what exists)."""
    if width <= 1:
        return x
    pad = width // 2
    xp = np.pad(x, [(pad, width - 1 - pad)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    c = np.cumsum(xp, axis=0)
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), c], axis=0)
    return (c[width:] - c[:-width]) / width


def ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0 (temporally correlated tracking error)."""
    w = rng.standard_normal(shape)
    x = lfilter([np.sqrt(1.0 - rho**2)], [1.0, -rho], w, axis=0)
    return x


def poisson_times(rng: np.random.Generator, duration_s: float, rate_hz: float) -> np.ndarray:
    """Event times of a Poisson process on [0, duration_s)."""
    k = rng.poisson(max(rate_hz, 0.0) * duration_s)
    return np.sort(rng.uniform(0.0, duration_s, size=k))


def quasi_periodic_times(
    rng: np.random.Generator, duration_s: float, period_s: float, jitter: float
) -> np.ndarray:
    """Event times with mean interval ``period_s`` and relative jitter (burst trains)."""
    k = int(duration_s / period_s * 1.5) + 3
    gaps = period_s * np.clip(1.0 + jitter * rng.standard_normal(k), 0.3, 3.0)
    t = rng.uniform(0, period_s) + np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    return t[t < duration_s]


def min_jerk_profile(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile 0->1 for u in [0, 1] (clipped outside)."""
    u = np.clip(u, 0.0, 1.0)
    return 10 * u**3 - 15 * u**4 + 6 * u**5
