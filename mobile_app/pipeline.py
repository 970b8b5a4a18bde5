"""The screening pipeline without a user interface: video or recording -> quality -> score.

The app and ``cogma screen`` run exactly this. The bundle is opened first, so a wrong bundle is
reported before minutes of pose estimation. A recording that cannot be scored is never scored:
the result says why, in words a tired parent can act on.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from skeleton.errors import RecordingError
from skeleton.quality import DEFAULT_THRESHOLDS, QualityThresholds, assess
from skeleton.recording import PoseRecording, load_recording
from skeleton.timing import resample_fps

from cogma import NOT_FOR_CLINICAL_USE

from .age import age_window
from .errors import AppError, ScorerError, VideoError
from .pose.backend import PoseBackend, PoseStats, ProgressFn
from .scoring import Scorer, band_for, open_scorer
from .video import VIDEO_SUFFIXES, stride_for

# Below this median brightness (0-255) the picture is too dark for reliable pose estimation.
MIN_BRIGHTNESS = 40.0
# More than this share of frames with a second person: the recording is refused.
MAX_SEVERAL_PEOPLE_FRACTION = 0.05
SCREENING_AID = "This is a screening aid, not a diagnosis."

_LENGTH_AND_RATE_REASONS = ("The recording is only", "The video has only")  # skeleton.quality's wording
_POSE_SHARE = 0.9  # share of the progress bar given to pose estimation

REASON_NO_PERSON = (
    "No person was found in the video. Make sure your baby is in the picture, lying on the back, "
    "in good light, with the whole body visible."
)
REASON_DARK = (
    "The video is too dark. Switch on a light or record near a window (not in direct sunlight), "
    "and try again."
)
REASON_SEVERAL = (
    "More than one person was seen in {share:.0%} of the video. Only your baby should be in the "
    "picture: keep hands, faces and other children out of view while recording."
)


@dataclass
class ScreenResult:
    input: str
    input_kind: str  # "video" or "recording"
    scorable: bool
    reasons: list[str]
    warnings: list[str]
    risk: float | None
    interval: list[float] | None  # [low, high]
    band: str | None  # "low", "unclear", "raised"
    headline: str
    advice: str
    threshold: float
    model_version: str
    not_for_clinical_use: bool
    notice: str
    age_weeks: float | None
    duration_s: float
    fps: float
    frames: int
    quality: dict[str, float] = field(default_factory=dict)
    pose: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    recording: PoseRecording | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("recording")
        d["screening_aid"] = SCREENING_AID
        return d


def release_free_memory() -> None:
    """Hand memory freed by MediaPipe back to the system before the scorer loads (glibc only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _is_recording(path: Path) -> bool:
    return path.suffix.lower() == ".npz"


def load_input_recording(path: Path, age_weeks: float | None) -> tuple[PoseRecording, list[str]]:
    """The recording, with ``age_weeks`` (when given) in place of the age stored in it, and a note when the
    two differ by more than a week (the age at recording is what GMA needs)."""
    try:
        rec = load_recording(path)
    except RecordingError as e:
        raise AppError(f"{path.name}: this pose recording cannot be used: {e}") from None
    if age_weeks is None:
        return rec, []
    from dataclasses import replace

    notes = []
    if rec.age_weeks is not None and abs(rec.age_weeks - age_weeks) > 1.0:
        notes.append(f"The recording was saved at {rec.age_weeks:g} weeks corrected age; the {age_weeks:g} weeks "
                     "given now were used. Use the age on the day of recording.")
    return replace(rec, age_weeks=age_weeks), notes


def app_checks(stats: PoseStats | None, rec: PoseRecording) -> list[str]:
    """What the app checks beyond skeleton.quality: nobody found, several people, darkness."""
    reasons = []
    found_any = bool((rec.keypoints[..., 2] > 0).any()) if stats is None else stats.frames_with_pose > 0
    if stats is not None and stats.median_brightness is not None and stats.median_brightness < MIN_BRIGHTNESS:
        reasons.append(REASON_DARK)
    if not found_any:
        reasons.append(REASON_NO_PERSON)
    if stats is not None and stats.several_fraction > MAX_SEVERAL_PEOPLE_FRACTION:
        reasons.append(REASON_SEVERAL.format(share=stats.several_fraction))
    return reasons


def _fit_contract(rec: PoseRecording, scorer: Scorer) -> tuple[PoseRecording, list[str]]:
    """What the model reads of a recording, and what the result should say about it: faster ones
    thinned to the model's frame rate (every n-th frame, as for videos), slower ones interpolated up
    to it (the model reads 15 samples per second, so a 15-23 fps recording holds what it needs),
    longer ones cut to their first part."""
    from dataclasses import replace

    c = scorer.bundle.input_contract
    notes = []
    stride = stride_for(rec.fps, c.fps_max)
    if stride > 1:
        rec = replace(rec, keypoints=rec.keypoints[::stride], fps=rec.fps / stride)
    elif rec.fps < c.fps_min:
        target = min(max(30.0, c.fps_min), c.fps_max)
        notes.append(f"The video was recorded at {rec.fps:g} frames per second; the in-between frames were "
                     f"interpolated to {target:g} for the model. 30 frames per second is best.")
        kept = rec.keypoints[: math.ceil(c.max_frames * rec.fps / target) + 1]  # no more than the model reads
        rec = replace(rec, keypoints=resample_fps(kept, rec.fps, target), fps=target)
    if rec.num_frames > c.max_frames:
        rec = replace(rec, keypoints=rec.keypoints[: c.max_frames])
        notes.append(f"Only the first {c.max_frames / rec.fps / 60.0:.0f} minutes of the recording were used.")
    return rec, notes


def screen(
    input_path: str | os.PathLike,
    scorer: Scorer | None = None,
    bundle: str | os.PathLike | None = None,
    backend: PoseBackend | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    age_weeks: float | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> ScreenResult:
    """Screen a video or a ``.npz`` PoseRecording. Raises an :class:`AppError` for unusable input."""
    t0 = time.perf_counter()
    say: ProgressFn = progress or (lambda _f, _m: None)
    path = Path(input_path)
    scorer = scorer or open_scorer(bundle)
    timings: dict[str, float] = {}
    stats: PoseStats | None = None
    input_notes: list[str] = []
    if not path.exists():
        raise VideoError(f"{path.name}: the file does not exist.")
    if path.is_dir():
        raise VideoError(f"{path.name}: this is a folder; please choose a video file.")
    if _is_recording(path):
        say(0.0, "Reading the pose recording")
        rec, input_notes = load_input_recording(path, age_weeks)
        kind = "recording"
    else:
        if path.suffix.lower() not in VIDEO_SUFFIXES and path.suffix:
            raise VideoError(
                f"{path.name}: not a video or pose recording the app knows "
                f"(use {', '.join(VIDEO_SUFFIXES)} or .npz)."
            )
        say(0.0, "Finding your baby's body in the video")
        owned = backend is None
        if owned:
            from .pose.backend import open_backend, platform_name

            # Desktop: MediaPipe in a worker process (memory, crash isolation: pose/worker.py).
            backend = open_backend("desktop-worker" if platform_name() == "desktop" else None)
        try:
            pose_progress: ProgressFn = lambda f, m: say(f * _POSE_SHARE, m)
            rec, stats = backend.estimate_video(path, pose_progress, scorer.fps_max, cancel, age_weeks)
        finally:
            if owned:
                backend.close()
                release_free_memory()
        kind = "video"
    timings["pose"] = time.perf_counter() - t0
    say(_POSE_SHARE + 0.02, "Checking the recording")
    report = assess(rec, thresholds)
    reasons = app_checks(stats, rec)
    if REASON_NO_PERSON in reasons:
        # "body seen in 0 %" adds nothing to "no person found"; length and frame rate still matter.
        reasons += [r for r in report.reasons if r.startswith(_LENGTH_AND_RATE_REASONS)]
    else:
        reasons += report.reasons
    warnings = [*input_notes, *report.warnings]
    window = age_window(rec.age_weeks) if rec.age_weeks is not None else None
    too_old = window is not None and window.period == "too_old"  # GMA applies up to ~20 weeks corrected age
    if too_old:
        reasons.append(window.message)
    elif window is not None and not window.in_window:
        warnings.append(window.message)
    info = scorer.info
    result = ScreenResult(
        input=path.name, input_kind=kind, scorable=False, reasons=reasons, warnings=warnings,
        risk=None, interval=None, band=None, headline="This video cannot be scored", advice="",
        threshold=info.threshold, model_version=info.version,
        not_for_clinical_use=info.not_for_clinical_use,
        notice=NOT_FOR_CLINICAL_USE if info.not_for_clinical_use else "",
        age_weeks=rec.age_weeks, duration_s=round(rec.duration_s, 2), fps=rec.fps, frames=rec.num_frames,
        quality=report.metrics, pose=stats.to_dict() if stats else {}, timings_s=timings, recording=rec,
    )
    if reasons:
        result.advice = ("Please talk to your doctor or nurse about your baby's movements." if too_old else
                         "Please record again; the reasons above say what to change.")
        return _finish(result, t0, say)
    scored, cut_warnings = _fit_contract(rec, scorer)
    try:
        t1 = time.perf_counter()
        say(_POSE_SHARE + 0.05, "Scoring the movements")
        score = scorer.score(scored)
        timings["score"] = time.perf_counter() - t1
    except ScorerError as e:
        result.reasons = [str(e)[0].upper() + str(e)[1:]]
        result.advice = "This recording does not fit the model in use."
        return _finish(result, t0, say)
    band = band_for(score, info.threshold)
    result.scorable = True
    result.warnings += cut_warnings
    result.risk, result.interval = round(score.risk, 4), [round(score.low, 4), round(score.high, 4)]
    result.band, result.headline, result.advice = band.name, band.headline, band.advice
    return _finish(result, t0, say)


def _finish(result: ScreenResult, t0: float, say: Callable[[float, str], None]) -> ScreenResult:
    result.timings_s["total"] = time.perf_counter() - t0
    result.timings_s = {k: round(v, 3) for k, v in result.timings_s.items()}
    say(1.0, "Done")
    return result
