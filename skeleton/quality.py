"""Is this recording scorable? Quality checks with reasons a parent understands.

All thresholds live in :class:`QualityThresholds`; each field says why.
The checks work on the COCO-17 body (every schema maps onto it).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .recording import PoseRecording
from .schemas import COCO_17

# Body joints that must be seen for a frame to count as "whole body detected".
_BODY_JOINTS = (
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_TORSO = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")


@dataclass(frozen=True)
class QualityThresholds:
    # GMA needs at least one minute of continuous movement; three minutes is the usual recording.
    min_continuous_s: float = 60.0
    recommended_s: float = 180.0
    # A joint counts as seen at this visibility (MediaPipe's own presence cut-off is 0.5).
    min_visibility: float = 0.5
    # A frame counts as "body detected" when the torso is seen and at most this many of the 13 body
    # joints are missing: hands and feet drop out briefly in most phone videos (5-20 % of frames).
    max_missing_joints: int = 3
    # Share of frames in which the body must be found.
    min_detected_fraction: float = 0.8
    # Short tracking gaps are bridged; a longer gap breaks the continuous stretch.
    max_bridged_gap_s: float = 0.5
    # The infant's body should fill a fair part of the picture: the longest side of the box around
    # its joints (nose to ankles is ~0.75 of body length), relative to the frame's long side.
    min_body_size: float = 0.15
    # Body parts outside the picture in more than this share of frames: framing is wrong.
    max_off_frame_fraction: float = 0.1
    # Median speed of the torso centre, smoothed over half a second so that tracking jitter does not
    # count, in frame long-sides per second. A supine infant's torso barely moves; above this the
    # camera is moving (handheld shake is 0.005-0.03 per s).
    max_camera_motion: float = 0.05
    camera_smoothing_s: float = 0.5
    # Below this frame rate fast movements are lost.
    min_fps: float = 15.0


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass
class QualityReport:
    scorable: bool
    reasons: list[str] = field(default_factory=list)  # why not scorable, in plain words
    warnings: list[str] = field(default_factory=list)  # scorable, but could be better
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(s), int(e - s)) for s, e in zip(edges[::2], edges[1::2])]


def _continuous_seconds(detected: np.ndarray, fps: float, bridge_s: float) -> tuple[float, float]:
    """Longest stretch of detection with short gaps bridged, and the longest gap (seconds)."""
    bridged = detected.copy()
    gaps = _runs(~detected)
    for start, length in gaps:
        if length <= bridge_s * fps and start > 0 and start + length < len(detected):
            bridged[start : start + length] = True
    longest = max((n for _, n in _runs(bridged)), default=0)
    longest_gap = max((n for _, n in gaps), default=0)
    return longest / fps, longest_gap / fps


def _fmt_duration(seconds: float) -> str:
    if seconds < 59.5:
        return "1 second" if round(seconds) == 1 else f"{seconds:.0f} seconds"
    minutes = round(seconds / 60, 1)
    return "1 minute" if minutes == 1 else f"{minutes:g} minutes"


def _camera_motion(kp: np.ndarray, to_px: np.ndarray, fps: float, t: QualityThresholds) -> float:
    """Median speed of the smoothed torso centre (frame long-sides per second)."""
    torso = kp[:, [COCO_17[j] for j in _TORSO]]
    ok = (torso[..., 2] >= t.min_visibility).all(axis=1)
    if ok.sum() < 2:
        return 0.0
    centre = torso[..., :2].mean(axis=1) * to_px
    frames = np.arange(len(kp))
    centre = np.stack([np.interp(frames, frames[ok], centre[ok, i]) for i in range(2)], axis=1)
    k = max(1, int(round(t.camera_smoothing_s * fps)))
    kernel = np.ones(k) / k
    smooth = np.stack([np.convolve(centre[:, i], kernel, mode="valid") for i in range(2)], axis=1)
    if len(smooth) < 2:
        return 0.0
    return float(np.median(np.linalg.norm(np.diff(smooth, axis=0), axis=1)) * fps)


def assess(recording: PoseRecording, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> QualityReport:
    """Check whether ``recording`` can be scored, and say why not in plain words."""
    t = thresholds
    coco = recording.to_schema("coco17")
    kp = coco.keypoints
    body = kp[:, [COCO_17[j] for j in _BODY_JOINTS]]
    seen = body[..., 2] >= t.min_visibility
    torso_idx = [_BODY_JOINTS.index(j) for j in _TORSO]
    detected = seen[:, torso_idx].all(axis=1) & ((~seen).sum(axis=1) <= t.max_missing_joints)
    fps = recording.fps
    w, h = recording.frame_size

    detected_fraction = float(detected.mean())
    continuous_s, longest_gap_s = _continuous_seconds(detected, fps, t.max_bridged_gap_s)

    long_side = float(max(w, h))
    to_px = np.array([w, h], dtype=np.float32) / long_side  # normalized -> fractions of the long side
    visible = np.where(seen[..., None], body[..., :2] * to_px, np.nan)
    with warnings.catch_warnings():  # frames where nothing was seen give all-NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        extent = np.nanmax(visible, axis=1) - np.nanmin(visible, axis=1)
    size = extent.max(axis=1)[detected]
    body_size = float(np.median(size)) if size.size else 0.0

    xy = body[..., :2]
    outside = ((xy < 0.0) | (xy > 1.0)).any(axis=-1) & seen
    off_frame_fraction = float(outside.any(axis=1).mean())

    camera_motion = _camera_motion(kp, to_px, fps, t)

    metrics = {
        "duration_s": round(recording.duration_s, 2),
        "fps": fps,
        "detected_fraction": round(detected_fraction, 4),
        "longest_continuous_s": round(continuous_s, 2),
        "longest_gap_s": round(longest_gap_s, 2),
        "body_size": round(body_size, 4),
        "off_frame_fraction": round(off_frame_fraction, 4),
        "camera_motion": round(camera_motion, 4),
    }
    reasons: list[str] = []
    hints: list[str] = []
    if fps < t.min_fps:
        reasons.append(
            f"The video has only {fps:g} frames per second; at least {t.min_fps:g} are needed. "
            "Use the phone's normal video mode."
        )
    if recording.duration_s < t.min_continuous_s:
        reasons.append(
            f"The recording is only {_fmt_duration(recording.duration_s)} long. At least "
            f"{_fmt_duration(t.min_continuous_s)} of your baby moving is needed; "
            f"{_fmt_duration(t.recommended_s)} is best."
        )
    elif continuous_s < t.min_continuous_s:
        reasons.append(
            f"Your baby's whole body was seen without interruption for only {_fmt_duration(continuous_s)} "
            f"(the longest break was {_fmt_duration(longest_gap_s)}). At least "
            f"{_fmt_duration(t.min_continuous_s)} in one stretch is needed: keep the whole body in the "
            "picture and nothing in front of the baby."
        )
    if detected_fraction < t.min_detected_fraction:
        reasons.append(
            f"The whole body was found in only {detected_fraction:.0%} of the video. Make sure the "
            "whole baby, head to feet, is in the picture, in good light, with nothing covering the arms or legs."
        )
    if body_size and body_size < t.min_body_size:
        reasons.append(
            "Your baby looks too small in the picture. Hold the phone closer, so that the baby fills "
            "most of the screen."
        )
    if off_frame_fraction > t.max_off_frame_fraction:
        reasons.append(
            f"Parts of your baby's body were outside the picture in {off_frame_fraction:.0%} of the video. "
            "Hold the phone a little higher so the whole body stays in view."
        )
    if camera_motion > t.max_camera_motion:
        reasons.append(
            "The camera moved too much. Rest the phone on something steady above the baby, or hold it "
            "still with both hands."
        )
    if not reasons and recording.duration_s < t.recommended_s:
        hints.append(
            f"The recording is {_fmt_duration(recording.duration_s)} long; "
            f"{_fmt_duration(t.recommended_s)} gives a more reliable result."
        )
    if not reasons and longest_gap_s > 2.0:
        hints.append(f"The body was lost for {_fmt_duration(longest_gap_s)} at one point.")
    return QualityReport(scorable=not reasons, reasons=reasons, warnings=hints, metrics=metrics)

