"""Movement of a supine infant's body, in body units, for one recording.

Coordinates: body-length units (BL, crown-heel length), origin at mid-hip,
``+y`` towards the head, ``+x`` towards the infant's left (seen from above,
a supine infant faces the camera, so its left is on the image's right).

Each limb is driven at its end point (wrist or ankle); elbows and knees
follow by two-link inverse kinematics with a varying "swivel" that stands for
rotation about the limb axis seen from above. The end-point path is a sum of
movement *components*, each an independent generator with its own GMA
meaning; a class is a blend of components:

* ``gm``       — normal writhing: broad-band 0.3-1.5 Hz, independent x/y, so
                 paths are curved/elliptical with many directions; amplitude
                 waxes and wanes; limbs nearly independent.
* ``mono``     — poor repertoire: narrow-band rhythm along one axis per limb,
                 partly shared between limbs, flat envelope (monotonous).
* ``cramped``  — cramped-synchronized: one burst train (period 2-6 s, bursts
                 0.5-1.5 s, abrupt onset) drives every limb and the trunk
                 along straight flexion-extension axes, almost simultaneously.
* ``chaotic``  — large abrupt strokes to random targets, broadband jitter and
                 tremor, independent limbs and trunk jerks.
* ``background`` — fidgety-age slower, larger movements and occasional swipes.
* ``fidgety``  — small (1-4 % BL) multidirectional 1-4 Hz movements of the
                 distal joints, head and trunk, present in most windows for
                 normal fidgety and almost never for absent fidgety.
* stereotypy   — absent fidgety only: in place of FMs, runs of one-axis 1.5-2.5 Hz
                 flexion-extension of single limbs with the FMs' energy, so speed
                 statistics barely differ while direction variety and whole-body
                 coordination do.

A ``severity`` in [0, 1] sets how strongly the atypical pattern is expressed
and for what share of the recording (quality varies within a session); an
activity state (quiet spells, active, fussing) drifts on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from . import signals as sig
from .traits import InfantTraits

LIMBS = ("left_arm", "right_arm", "left_leg", "right_leg")  # order of the limb axis everywhere
_SIDE = np.array([1.0, -1.0, 1.0, -1.0])  # +x for the left limbs
_IS_ARM = np.array([True, True, False, False])


@dataclass(frozen=True)
class BodyMotion:
    """Body-frame trajectories, ``T`` frames. Everything in BL units / radians."""

    hip_centre: np.ndarray  # [T, 2] mid-hip
    trunk_angle: np.ndarray  # [T] in-plane rotation of the trunk
    trunk_scale: np.ndarray  # [T] apparent trunk length factor (co-contraction, lifting)
    endpoints: np.ndarray  # [T, 4, 2] wrists and ankles, relative to the trunk frame (mid-hip origin)
    swivel: np.ndarray  # [T, 4] how far the elbow/knee sits off the root-end line (1 = planar, less = lifted)
    distal_angle: np.ndarray  # [T, 4] hand / foot orientation relative to the forearm / shank
    foot_foreshortening: np.ndarray  # [T, 2] apparent foot length factor
    head_yaw: np.ndarray  # [T] head turn (radians, + = towards the infant's left)
    head_tilt: np.ndarray  # [T] in-plane head tilt relative to the trunk
    head_offset: np.ndarray  # [T, 2] small head displacement (neck movements)
    shoulder_offset: np.ndarray  # [T, 2] small shoulder-girdle movement


def rest_endpoints(traits: InfantTraits, age_weeks: float) -> np.ndarray:
    """Resting wrist and ankle positions [4, 2]: flexed at writhing age, more extended by 3-4 months."""
    ext = float(np.clip((age_weeks - 4.0) / 12.0, 0.0, 1.0)) * 0.7 + (1.0 - traits.flexion) * 0.3
    arm_reach = traits.upper_arm + traits.forearm
    leg_reach = traits.thigh + traits.shank
    sh_y = traits.trunk
    wrist = np.array([traits.shoulder_width / 2 + 0.30 * arm_reach + 0.05 * ext, sh_y - 0.20 * arm_reach - 0.12 * ext])
    ankle = np.array([traits.hip_width / 2 + 0.12 * leg_reach - 0.03 * ext, -(0.55 + 0.25 * ext) * leg_reach])
    return np.array([wrist * [1, 1], wrist * [-1, 1], ankle * [1, 1], ankle * [-1, 1]])


def flexion_axes() -> np.ndarray:
    """Unit directions [4, 2] in which each end point moves when the limb flexes."""
    arm = np.array([-0.55, 0.83])  # wrist towards mouth / midline
    leg = np.array([0.25, 0.97])  # foot towards the hip (knee up, foreshortened from above)
    axes = np.array([arm * [1, 1], arm * [-1, 1], leg * [1, 1], leg * [-1, 1]])
    return axes / np.linalg.norm(axes, axis=1, keepdims=True)


def _mirror(shared: np.ndarray) -> np.ndarray:
    """Broadcast a shared [T, 2] (or [T, 4, 2]) movement so left and right are mirror images."""
    if shared.ndim == 2:
        shared = np.repeat(shared[:, None, :], 4, axis=1)
    out = shared.copy()
    out[..., 0] *= _SIDE[None, :]
    return out


def _envelope(rng: np.random.Generator, n: int, fps: float, sigma: float, channels: int, shared: float) -> np.ndarray:
    """Log-normal amplitude modulation ('waxing and waning'), mean ~1, partly shared between channels."""
    z_own = sig.lowpass_noise(rng, n, fps, channels, 6.0)
    z_all = sig.lowpass_noise(rng, n, fps, 1, 10.0)
    z = np.sqrt(1 - shared) * z_own + np.sqrt(shared) * z_all
    return np.exp(sigma * z - 0.5 * sigma**2)


def _activity(rng: np.random.Generator, n: int, fps: float, traits: InfantTraits) -> tuple[np.ndarray, np.ndarray]:
    """Within-session state drift: (movement level, fidgety allowed), each [T].

    Quiet spells (level 0.25), active (1), fussing (1.6, and no fidgety movements).
    """
    p_quiet = float(np.clip(1.0 - traits.activity + 0.1 * rng.standard_normal(), 0.03, 0.6))
    p_fuss = float(rng.uniform(0.0, 0.15))
    z = sig.lowpass_noise(rng, n, fps, 1, 8.0)[:, 0]
    lo, hi = ndtri(p_quiet), ndtri(1.0 - p_fuss) if p_fuss > 0 else np.inf
    level = np.where(z < lo, 0.25, np.where(z > hi, 1.6, 1.0))
    fussing = (z > hi).astype(float)
    w = max(1, int(fps))
    return sig.smooth(level, w), 1.0 - sig.smooth(fussing, w)


def _expression(rng: np.random.Generator, n: int, fps: float, severity: float) -> np.ndarray:
    """Blend weight [T] of the atypical pattern: severity, expressed for a severity-dependent share of time."""
    if severity <= 0:
        return np.zeros(n)
    p_on = min(1.0, 0.45 + 0.8 * severity)
    if p_on >= 0.999:
        return np.full(n, severity)
    return severity * sig.soft_gate(rng, n, fps, 1, p_on, 15.0, ramp_s=3.0)[:, 0]


def _limb_gain(traits: InfantTraits) -> np.ndarray:
    side = 1.0 + traits.side_preference * _SIDE * 0.5
    bal = 1.0 + traits.arm_leg_balance * np.where(_IS_ARM, 0.5, -0.5)
    return traits.amplitude_scale * side * bal


def _gm(rng, n, fps, fs, coupling, variability: float = 1.0, width: float = 0.55) -> np.ndarray:
    """Normal writhing component [T, 4, 2] (unit-ish scale)."""
    own = sig.coloured_noise(rng, n, fps, 8, 0.7 * fs, width).reshape(n, 4, 2)
    shared = _mirror(sig.coloured_noise(rng, n, fps, 2, 0.7 * fs, width))
    env = _envelope(rng, n, fps, 0.6 * variability, 4, 0.15)[:, :, None]
    return env * (np.sqrt(1 - coupling) * own + np.sqrt(coupling) * shared)


def _mono(rng, n, fps, fs, coupling, axes, variability: float = 1.0) -> np.ndarray:
    """Poor-repertoire component [T, 4, 2]: one narrow-band rhythm along a fixed axis per limb."""
    f0 = rng.uniform(0.85, 1.3) * fs
    ang = rng.uniform(-0.45, 0.45, size=4)
    c, s = np.cos(ang), np.sin(ang)
    axis = np.stack([c * axes[:, 0] - s * axes[:, 1], s * axes[:, 0] + c * axes[:, 1]], axis=1)
    perp = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    rho = float(np.clip(0.35 + coupling, 0.0, 0.8))
    u_own = sig.coloured_noise(rng, n, fps, 4, f0, 0.1)
    u_shared = sig.coloured_noise(rng, n, fps, 1, f0, 0.1)
    u = np.sqrt(1 - rho) * u_own + np.sqrt(rho) * u_shared
    v = sig.coloured_noise(rng, n, fps, 4, f0, 0.1)
    env = _envelope(rng, n, fps, 0.2 * variability, 4, 0.5)
    return env[:, :, None] * (u[:, :, None] * axis[None] + 0.12 * v[:, :, None] * perp[None])


def _burst_train(rng, n, fps, fs) -> np.ndarray:
    """Cramped-synchronized burst signal [T] in [0, ~1.3]: abrupt rise, brief hold, release."""
    duration = n / fps
    period = rng.uniform(1.5, 3.5) / np.sqrt(fs)
    onsets = sig.quasi_periodic_times(rng, duration, period, 0.3)
    t = np.arange(n) / fps
    b = np.zeros(n)
    for t0 in onsets:  # a few dozen bursts per recording
        d = rng.uniform(0.5, 1.5) / np.sqrt(fs)
        rise = rng.uniform(0.08, 0.15)
        amp = rng.uniform(0.7, 1.3)
        i0, i1 = int(t0 * fps), min(n, int((t0 + d + rise) * fps) + 1)
        tau = t[i0:i1] - t0
        up = sig.min_jerk_profile(tau / rise)
        down = 1.0 - sig.min_jerk_profile((tau - rise - 0.35 * d) / (0.65 * d))
        b[i0:i1] = np.maximum(b[i0:i1], amp * up * down)
    return b


def _chaotic(rng, n, fps, fs) -> np.ndarray:
    """Chaotic component [T, 4, 2]: abrupt large strokes to random targets + broadband jitter + tremor."""
    duration = n / fps
    out = np.zeros((n, 4, 2))
    frame_t = np.arange(n) / fps
    for limb in range(4):
        times = sig.poisson_times(rng, duration, rng.uniform(0.9, 1.6) * fs)
        targets = rng.standard_normal((times.size + 1, 2))
        idx = np.searchsorted(times, frame_t)
        out[:, limb] = targets[idx]
    w = max(2, int(round(0.07 * fps / np.sqrt(fs))))
    out = sig.smooth(sig.smooth(out, w), w)  # triangular ramps: short, abrupt strokes
    jitter = sig.coloured_noise(rng, n, fps, 8, 1.8 * fs, 0.7).reshape(n, 4, 2)
    tremor = sig.coloured_noise(rng, n, fps, 8, rng.uniform(5.0, 8.0), 0.08).reshape(n, 4, 2)
    return out + 0.3 * jitter + 0.04 * tremor


def _swipes(rng, n, fps, fs, rate_hz: np.ndarray) -> np.ndarray:
    """Occasional quick out-and-back strokes ('swipes', 'kicks') [T, 4, 2], unit amplitude."""
    duration = n / fps
    out = np.zeros((n, 4, 2))
    for limb in range(4):
        for t0 in sig.poisson_times(rng, duration, rate_hz[limb]):
            d = rng.uniform(0.5, 0.9) / fs
            i0, i1 = int(t0 * fps), min(n, int((t0 + d) * fps) + 1)
            u = (np.arange(i0, i1) / fps - t0) / d
            shape = np.sin(np.pi * sig.min_jerk_profile(u))  # out and back, min-jerk timing
            ang = rng.uniform(0, 2 * np.pi)
            out[i0:i1, limb] += shape[:, None] * rng.uniform(0.7, 1.3) * np.array([np.cos(ang), np.sin(ang)])
    return out


def _soft_reach(vec: np.ndarray, max_r: np.ndarray, min_r: np.ndarray) -> np.ndarray:
    """Keep end points reachable: compress distances beyond 80 % of full reach smoothly."""
    d = np.linalg.norm(vec, axis=-1, keepdims=True)
    knee = 0.8 * max_r[None, :, None]
    span = 0.2 * max_r[None, :, None]
    d_new = np.where(d > knee, knee + span * np.tanh((d - knee) / span), d)
    d_new = np.maximum(d_new, min_r[None, :, None])
    return vec * (d_new / np.maximum(d, 1e-9))


def simulate_body(
    pattern: str | None,
    severity: float,
    age_band: str,
    age_weeks: float,
    traits: InfantTraits,
    n: int,
    fps: float,
    rng: np.random.Generator,
) -> BodyMotion:
    """Generate the body's movement. ``pattern`` is the atypical pattern blended in (None for none)."""
    # This session's arousal shifts speed and size a little around the infant's own habits.
    fs = traits.speed_scale * float(np.exp(0.15 * rng.standard_normal()))
    session_amp = float(np.exp(0.2 * rng.standard_normal()))
    axes = flexion_axes()
    gain = session_amp * _limb_gain(traits)[None, :, None]
    level, fidgety_ok = _activity(rng, n, fps, traits)
    w = _expression(rng, n, fps, severity) if pattern else np.zeros(n)
    wl = w[:, None, None]

    trunk_angle = 0.04 * sig.coloured_noise(rng, n, fps, 1, 0.2 * fs, 0.6)[:, 0]
    trunk_scale = np.ones(n)
    head = traits.head_mobility * np.sqrt(level)  # head turns are this infant's habit, and calm down in quiet spells
    head_yaw = traits.head_turn_bias + 0.45 * head * sig.coloured_noise(rng, n, fps, 1, 0.1 * fs, 0.6)[:, 0]
    head_tilt = 0.08 * head * sig.coloured_noise(rng, n, fps, 1, 0.15 * fs, 0.6)[:, 0]
    head_offset = 0.005 * head[:, None] * sig.coloured_noise(rng, n, fps, 2, 0.4 * fs, 0.6)
    shoulder_offset = 0.003 * sig.coloured_noise(rng, n, fps, 2, 0.3 * fs, 0.6)
    swivel_var = np.ones(n)
    distal_var = np.ones(n)

    if age_band == "writhing":
        move = 0.055 * _gm(rng, n, fps, fs, traits.coupling, traits.variability, traits.bandwidth)
        if pattern == "poor_repertoire":
            move = (1 - 0.95 * wl) * move + wl * 0.085 * _mono(rng, n, fps, fs, traits.coupling, axes, traits.variability)
            swivel_var = 1 - 0.5 * w
            distal_var = 1 - 0.5 * w
        elif pattern == "cramped_synchronized":
            b = _burst_train(rng, n, fps, fs)
            lag = rng.integers(0, max(1, int(0.04 * fps)) + 1, size=4)
            bl = np.stack([np.roll(b, k) for k in lag], axis=1)
            # between bursts the limbs still move together: one shared, mirrored, narrow-band residual
            tonic = 0.035 * _mirror(sig.coloured_noise(rng, n, fps, 2, 0.9 * fs, 0.3))
            tonic += 0.004 * sig.coloured_noise(rng, n, fps, 8, 0.6 * fs, 0.3).reshape(n, 4, 2)
            cs = 0.22 * bl[:, :, None] * axes[None] + tonic
            move = (1 - 0.92 * wl) * move + wl * cs
            trunk_scale = 1.0 - 0.04 * w * b  # trunk co-contracts with the limbs
            head_offset = head_offset + (w * b)[:, None] * np.array([0.0, -0.015])
            head_yaw = head_yaw * (1 - 0.6 * w) + traits.head_turn_bias * 0.6 * w
            swivel_var = 1 - 0.85 * w
            distal_var = 1 - 0.8 * w
        elif pattern == "chaotic":
            ch = _chaotic(rng, n, fps, fs)
            move = (1 - 0.5 * wl) * move + wl * 0.14 * ch
            jerk = sig.smooth(sig.smooth(_chaotic(rng, n, fps, fs)[:, 0, 0], 2), 2)
            trunk_angle = trunk_angle + 0.06 * w * jerk
            head_yaw = head_yaw + 0.3 * w * _chaotic(rng, n, fps, fs)[:, 1, 0]
            swivel_var = 1 + 0.5 * w
            distal_var = 1 + 0.6 * w
        elif pattern is not None:
            raise ValueError(f"pattern {pattern!r} does not belong to the writhing age band")
        move = move * level[:, None, None]
        fm = np.zeros((n, 4, 2))
    else:
        if pattern not in (None, "absent_fidgety"):
            raise ValueError(f"pattern {pattern!r} does not belong to the fidgety age band")
        wa = w[:, None, None]  # zero for typical infants with no lean
        # Slow, larger movements well below the fidgety band (so fidgety energy is the FMs' own).
        # Without FMs the other movements carry on: larger, straighter, no burstier, and with more
        # brief kicks and swipes, so that plain speed/acceleration statistics only partly tell the
        # classes apart while the small multidirectional movements themselves are gone.
        env = _envelope(rng, n, fps, 0.5 * traits.variability, 4, 0.3)[:, :, None]
        bg = 0.05 * sig.coloured_noise(rng, n, fps, 8, 0.25 * fs, 0.35).reshape(n, 4, 2) * env ** (1 - 0.8 * wa)
        along = (bg * axes[None]).sum(-1, keepdims=True) * axes[None]
        bg = (1 + 0.3 * wa) * ((1 - 0.5 * wa) * bg + 0.5 * wa * along * 1.4)
        swipe_rate = np.array([0.03, 0.03, 0.015, 0.015]) * fs
        bg = bg + 0.07 * _swipes(rng, n, fps, fs, swipe_rate)  # peaks 0.3-0.8 BL/s
        if pattern == "absent_fidgety":
            bg = bg + 0.07 * wa * _swipes(rng, n, fps, fs, 2.0 * swipe_rate)
            head_offset = head_offset + 0.004 * w[:, None] * sig.coloured_noise(rng, n, fps, 2, 1.5 * fs, 0.4)
            # In place of FMs: runs of stereotyped, one-directional flexion-extension of single limbs
            # (cf. the arm/leg "stereotypy" that predicts CP, GMA_KINEMATICS §4). Same tempo and energy as
            # FMs, so speed statistics barely see the difference, but one axis, one limb at a time.
            runs = sig.soft_gate(rng, n, fps, 4, 0.6, 3.0, ramp_s=0.3)
            f_st = rng.uniform(1.5, 2.5) * np.sqrt(fs)
            u = sig.coloured_noise(rng, n, fps, 4, f_st, 0.15) * runs
            bg = bg + 0.036 * traits.fidgety_scale * wa * u[:, :, None] * axes[None]
        # Temporal organisation of FMs: continual (share ~1) to intermittent (~0.5) in typical infants.
        p_fm = rng.uniform(0.4, 1.0)
        p_t = p_fm * (1 - w) + 0.04 * w
        fm_amp = 1 - 0.5 * w
        swivel_var = 1 - 0.3 * w
        z = sig.lowpass_noise(rng, n, fps, 1, 2.5)[:, 0]
        fm_gate = sig.smooth((z < ndtri(np.clip(p_t, 1e-4, 1 - 1e-4))).astype(float), max(1, int(0.4 * fps)))
        fm_gate = fm_gate * fidgety_ok * fm_amp * traits.fidgety_scale
        fm_f = 2.0 * np.sqrt(fs)
        fm = 0.018 * sig.coloured_noise(rng, n, fps, 8, fm_f, 0.3).reshape(n, 4, 2) * fm_gate[:, None, None]
        head_offset = head_offset + 0.0025 * sig.coloured_noise(rng, n, fps, 2, fm_f, 0.35) * fm_gate[:, None]
        head_yaw = head_yaw + 0.015 * sig.coloured_noise(rng, n, fps, 1, fm_f, 0.35)[:, 0] * fm_gate
        shoulder_offset = shoulder_offset + 0.004 * sig.coloured_noise(rng, n, fps, 2, fm_f, 0.35) * fm_gate[:, None]
        trunk_angle = trunk_angle + 0.01 * sig.coloured_noise(rng, n, fps, 1, fm_f, 0.35)[:, 0] * fm_gate
        distal_var = distal_var + 0.8 * fm_gate
        move = bg * level[:, None, None]

    posture = 0.02 * sig.lowpass_noise(rng, n, fps, 8, 20.0).reshape(n, 4, 2)
    rest = rest_endpoints(traits, age_weeks)
    endpoints = rest[None] + posture + gain * (move + fm)

    roots = limb_roots(traits)
    reach = np.array([traits.upper_arm + traits.forearm] * 2 + [traits.thigh + traits.shank] * 2)
    seg_diff = np.abs(np.array([traits.upper_arm - traits.forearm] * 2 + [traits.thigh - traits.shank] * 2))
    endpoints = roots[None] + _soft_reach(endpoints - roots[None], 0.97 * reach, seg_diff + 0.3 * reach)

    swivel = traits.swivel + 0.15 * swivel_var[:, None] * sig.coloured_noise(rng, n, fps, 4, 0.5 * fs, 0.6)
    distal_angle = 0.3 * distal_var[:, None] * sig.coloured_noise(rng, n, fps, 4, 0.6 * fs, 0.6)
    foot_fore = np.clip(0.6 + 0.15 * sig.coloured_noise(rng, n, fps, 2, 0.4 * fs, 0.6), 0.3, 1.0)
    hip_centre = 0.004 * sig.coloured_noise(rng, n, fps, 2, 0.3 * fs, 0.6)
    hip_centre[:, 1] += 0.06 * (endpoints[:, 2:, 1] - rest[None, 2:, 1]).mean(axis=1)  # kicks rock the pelvis
    return BodyMotion(
        hip_centre=hip_centre,
        trunk_angle=trunk_angle,
        trunk_scale=trunk_scale,
        endpoints=endpoints,
        swivel=np.clip(swivel, 0.3, 1.0),
        distal_angle=distal_angle,
        foot_foreshortening=foot_fore,
        head_yaw=np.clip(head_yaw, -1.3, 1.3),
        head_tilt=head_tilt,
        head_offset=head_offset,
        shoulder_offset=shoulder_offset,
    )


def limb_roots(traits: InfantTraits) -> np.ndarray:
    """Shoulder and hip joint centres [4, 2] in the trunk frame."""
    sx, hx = traits.shoulder_width / 2, traits.hip_width / 2
    return np.array([[sx, traits.trunk], [-sx, traits.trunk], [hx, 0.0], [-hx, 0.0]])
