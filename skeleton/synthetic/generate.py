"""``synthesize``: one synthetic recording of one infant, as a phone's MediaPipe would give it."""

from __future__ import annotations

import math

import numpy as np

from ..errors import CogmaError
from ..recording import MAX_FRAMES, MIN_FPS, MAX_FPS, MIN_SECONDS, PoseRecording
from .body import landmarks
from .capture import CaptureConditions, apply_capture
from .motion import simulate_body
from .traits import InfantTraits, body_length_cm, sample_infant

GENERATOR_VERSION = "1.0"
NOT_FOR_CLINICAL_USE = "synthetic data — not for clinical use"

MOVEMENT_CLASSES = (
    "normal_writhing", "poor_repertoire", "cramped_synchronized", "chaotic", "normal_fidgety", "absent_fidgety",
)
ATYPICAL_CLASSES = frozenset({"poor_repertoire", "cramped_synchronized", "chaotic", "absent_fidgety"})
WRITHING_CLASSES = ("normal_writhing", "poor_repertoire", "cramped_synchronized", "chaotic")
FIDGETY_CLASSES = ("normal_fidgety", "absent_fidgety")

# Corrected ages (weeks) at which each class can be observed. Writhing GMs run from before term to
# ~6-9 weeks; fidgety movements from ~6 to 20 weeks (GMA_KINEMATICS.md §1, §3).
WRITHING_AGE_RANGE = (-4.0, 9.0)
FIDGETY_AGE_RANGE = (6.0, 22.0)
# A typical infant may lean towards an atypical pattern, but only so far: beyond this it is atypical.
MAX_TYPICAL_SEVERITY = 0.5
# Which atypical pattern a borderline typical infant of each age band leans towards, and how often.
_LEAN = {
    "normal_writhing": (("poor_repertoire", "cramped_synchronized", "chaotic"), (0.6, 0.25, 0.15)),
    "normal_fidgety": (("absent_fidgety",), (1.0,)),
}


class SyntheticError(CogmaError):
    """Impossible request to the synthetic infant generator."""


def label_of(kind: str) -> int:
    """1 (atypical) for the four atypical classes, else 0."""
    check_kind(kind)
    return int(kind in ATYPICAL_CLASSES)


def age_band_of(kind: str) -> str:
    check_kind(kind)
    return "fidgety" if kind in FIDGETY_CLASSES else "writhing"


def check_kind(kind: str) -> None:
    if kind not in MOVEMENT_CLASSES:
        raise SyntheticError(f"unknown movement class {kind!r}; choose one of: {', '.join(MOVEMENT_CLASSES)}")


def default_severity(kind: str, rng: np.random.Generator, borderline: bool = False) -> float:
    """A severity for ``kind``: atypical classes mostly clear (0.4-1), typical ones mostly ~0.

    ``borderline`` draws from the ambiguous middle (0.2-0.45) for either label.
    """
    if borderline:
        return float(rng.uniform(0.2, 0.45))
    if kind in ATYPICAL_CLASSES:
        return float(0.4 + 0.6 * rng.beta(2.5, 1.2))
    return float(0.2 * rng.beta(1.0, 4.0))


def _check_args(kind: str, age_weeks: float, seconds: float, fps: float, severity: float | None, seed: int) -> None:
    check_kind(kind)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SyntheticError(f"seed must be a non-negative integer, not {seed!r}")
    for name, v in (("age_weeks", age_weeks), ("seconds", seconds), ("fps", fps)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise SyntheticError(f"{name} must be a finite number, not {v!r}")
    lo, hi = FIDGETY_AGE_RANGE if kind in FIDGETY_CLASSES else WRITHING_AGE_RANGE
    if not lo <= age_weeks <= hi:
        raise SyntheticError(
            f"{kind} movements are seen at {lo:g} to {hi:g} weeks corrected age, not at {age_weeks:g} weeks"
        )
    if not MIN_FPS <= fps <= MAX_FPS:
        raise SyntheticError(f"fps {fps:g} is outside {MIN_FPS:g}-{MAX_FPS:g}")
    if seconds < MIN_SECONDS or seconds * fps > MAX_FRAMES:
        raise SyntheticError(
            f"seconds must give between {MIN_SECONDS:g} s and {MAX_FRAMES} frames; got {seconds:g} s at {fps:g} fps"
        )
    if severity is not None:
        if isinstance(severity, bool) or not isinstance(severity, (int, float)) or not math.isfinite(severity):
            raise SyntheticError(f"severity must be a number in 0..1, not {severity!r}")
        hi_sev = 1.0 if kind in ATYPICAL_CLASSES else MAX_TYPICAL_SEVERITY
        if not 0.0 <= severity <= hi_sev:
            raise SyntheticError(
                f"severity {severity:g} is outside 0..{hi_sev:g} for {kind}"
                + ("" if kind in ATYPICAL_CLASSES else " (a typical infant may only lean part-way to an atypical pattern)")
            )


def synthesize(
    kind: str,
    age_weeks: float,
    seconds: float,
    seed: int,
    fps: float = 30.0,
    severity: float | None = None,
    infant: InfantTraits | None = None,
    capture: CaptureConditions | None = None,
    infant_id: str | None = None,
) -> PoseRecording:
    """One synthetic MediaPipe-33 recording of a supine infant showing movement class ``kind``.

    ``severity`` (0..1) is how strongly and how much of the time the atypical pattern is expressed;
    for the typical classes it is how far (at most 0.5) the infant leans towards an atypical pattern
    (borderline infants). None draws one. ``infant`` fixes body and habits (recordings of one infant
    share them), ``capture`` the phone conditions; both are drawn from ``seed`` when None.
    ``capture.fps``, when set, overrides ``fps``. Same arguments, same recording.
    """
    if capture is not None and not isinstance(capture, CaptureConditions):
        raise SyntheticError("capture must be a CaptureConditions")
    if infant is not None and not isinstance(infant, InfantTraits):
        raise SyntheticError("infant must be an InfantTraits (see sample_infant)")
    if capture is not None and capture.fps is not None:
        fps = float(capture.fps)
    _check_args(kind, age_weeks, seconds, fps, severity, seed)
    streams = np.random.SeedSequence([int(seed), 0x6D41]).spawn(5)
    r_infant, r_capture, r_motion, r_noise, r_sev = (np.random.default_rng(s) for s in streams)

    if infant is None:
        infant = sample_infant(r_infant, infant_id or f"synthetic-{int(seed)}")
    if infant_id is None:
        infant_id = infant.infant_id
    if capture is None:
        capture = CaptureConditions.sample(r_capture, "default", fps=fps)
    if severity is None:
        severity = default_severity(kind, r_sev)

    if kind in ATYPICAL_CLASSES:
        pattern = kind
    else:
        names, probs = _LEAN[kind]
        pattern = names[int(r_sev.choice(len(names), p=probs))]
    band = age_band_of(kind)
    n = int(round(seconds * fps))
    motion = simulate_body(pattern if severity > 0 else None, float(severity), band, float(age_weeks),
                           infant, n, fps, r_motion)
    xy, self_vis = landmarks(motion, infant)
    keypoints, info = apply_capture(xy, self_vis, capture, fps, r_noise)
    extra = {
        "synthetic": True,
        "note": NOT_FOR_CLINICAL_USE,
        "movement_class": kind,
        "severity": round(float(severity), 4),
        "pattern": pattern,  # the atypical pattern blended in (for typical classes: the one leaned towards)
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "body_length_cm": round(body_length_cm(float(age_weeks), infant.length_z), 1),
        "capture": {
            "noise_sigma_bl": round(capture.noise_sigma, 4),
            "dropout_rate": round(capture.dropout_rate, 3),
            "shake": round(capture.shake, 4),
            "body_size": round(capture.body_size, 3),
            "rotation_deg": round(capture.rotation_deg, 1),
            **info,
        },
    }
    return PoseRecording(
        keypoints=keypoints,
        schema="mediapipe33",
        fps=fps,
        frame_size=capture.frame_size,
        pose_model=capture.pose_model,
        device=capture.device,
        age_weeks=round(float(age_weeks), 2),
        label=label_of(kind),
        infant_id=infant_id,
        extra=extra,
    )
