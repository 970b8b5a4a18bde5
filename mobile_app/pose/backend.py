"""Pose estimation behind one interface: frames in, a MediaPipe-33 :class:`PoseRecording` out.

Each platform backend only says how to find the poses in one frame (:meth:`PoseBackend.detect`);
the loop here is shared: it keeps the baby's pose when several people are seen, counts those
frames so the app can say so, notes how dark the video is, reports progress and can be
cancelled.
"""

from __future__ import annotations

import os
import sys
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from skeleton.recording import COORD_LIMIT, PoseRecording

from ..errors import PoseError
from ..video import Frame, FrameSource, VideoFile, brightness, stride_for

NUM_LANDMARKS = 33
ProgressFn = Callable[[float, str], None]  # (fraction done 0..1, what is happening)

# A second pose counts as "another person" only when its torso is clearly seen.
_TORSO = (11, 12, 23, 24)
_OTHER_PERSON_MIN_VISIBILITY = 0.5
_PROGRESS_EVERY = 15  # frames between progress callbacks


class Cancelled(PoseError):
    def __init__(self) -> None:
        super().__init__("stopped before the end.")


@dataclass
class PoseStats:
    frames: int = 0
    frames_with_pose: int = 0
    frames_with_several: int = 0  # among the frames checked for other people
    frames_checked_for_people: int = 0
    median_brightness: float | None = None  # 0-255; None where the platform does not measure it

    @property
    def several_fraction(self) -> float:
        checked = self.frames_checked_for_people
        return self.frames_with_several / checked if checked else 0.0

    @property
    def pose_fraction(self) -> float:
        return self.frames_with_pose / self.frames if self.frames else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "frames_with_pose": self.frames_with_pose,
            "frames_with_several_people": self.frames_with_several,
            "frames_checked_for_people": self.frames_checked_for_people,
            "median_brightness": None if self.median_brightness is None else round(self.median_brightness, 1),
        }


def _centre(pose: np.ndarray) -> np.ndarray:
    torso = pose[list(_TORSO)]
    return torso[:, :2].mean(axis=0)


def _box_size(pose: np.ndarray) -> float:
    xy = pose[:, :2]
    return float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]))


def choose_pose(poses: list[np.ndarray], previous_centre: np.ndarray | None) -> np.ndarray:
    """The pose to follow: the one nearest the last followed pose, else the biggest one."""
    if len(poses) == 1:
        return poses[0]
    if previous_centre is not None:
        return min(poses, key=lambda p: float(np.linalg.norm(_centre(p) - previous_centre)))
    return max(poses, key=_box_size)


def count_people(poses: list[np.ndarray]) -> int:
    """Poses whose torso is clearly seen (a faint second detection is not a second person)."""
    return sum(1 for p in poses if float(p[list(_TORSO), 2].mean()) >= _OTHER_PERSON_MIN_VISIBILITY) or min(1, len(poses))


def sanitize(pose: np.ndarray) -> np.ndarray:
    """Keep landmarks inside the recording's coordinate limits; a far-off guess is marked unseen."""
    pose = np.nan_to_num(pose.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = COORD_LIMIT
    outside = ((pose[:, :2] < lo) | (pose[:, :2] > hi)).any(axis=1)
    pose[:, :2] = np.clip(pose[:, :2], lo, hi)
    pose[outside, 2] = 0.0
    pose[:, 2] = np.clip(pose[:, 2], 0.0, 1.0)
    return pose


class PoseBackend(ABC):
    """One pose estimator. Use as a context manager, or call :meth:`close`."""

    name: str = "abstract"
    pose_model: str = "unknown"
    device: str = "unknown"

    @abstractmethod
    def detect(self, frame: Frame) -> list[np.ndarray]:
        """The poses in one frame of a video, each ``[33, 3]``: x, y normalized, visibility.

        Frames of one video arrive in order with increasing timestamps (tracking mode).
        """

    def people_in(self, frame: Frame, poses: list[np.ndarray]) -> int | None:
        """How many people are in ``frame`` (None: not checked in this frame).

        By default the poses :meth:`detect` found (backends that track two poses); a backend
        that tracks one pose checks for others on some frames only."""
        return count_people(poses) if poses else 0

    tracking_share = 1.0  # of the progress bar; the rest is for after_tracking

    def after_tracking(self, source: FrameSource, stride: int, stats: PoseStats,
                       progress: ProgressFn | None, cancel: threading.Event | None) -> None:
        """A second pass over the video once tracking is done (none by default)."""

    def reset(self) -> None:
        """Forget tracking state before a new video."""

    def close(self) -> None:
        """Release native resources."""

    def __enter__(self) -> "PoseBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def estimate(
        self,
        source: FrameSource,
        progress: ProgressFn | None = None,
        stride: int = 1,
        cancel: threading.Event | None = None,
        age_weeks: float | None = None,
    ) -> tuple[PoseRecording, PoseStats]:
        """Run over every ``stride``-th frame; frames without a pose hold zeros (visibility 0)."""
        self.reset()
        info = source.info
        expected = max(1, -(-info.frame_count // stride))
        keypoints: list[np.ndarray] = []
        lumas: list[float] = []
        stats = PoseStats()
        centre: np.ndarray | None = None
        empty = np.zeros((NUM_LANDMARKS, 3), np.float32)
        for frame in source.frames(stride):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            poses = [sanitize(p) for p in self.detect(frame)]
            lumas.append(brightness(frame.rgb))
            people = self.people_in(frame, poses)
            if people is not None:
                stats.frames_checked_for_people += 1
                stats.frames_with_several += people > 1
            if poses:
                chosen = choose_pose(poses, centre)
                centre = _centre(chosen)
                keypoints.append(chosen)
                stats.frames_with_pose += 1
            else:
                keypoints.append(empty)
            if progress is not None and len(keypoints) % _PROGRESS_EVERY == 0:
                done = min(0.99, len(keypoints) / expected) * self.tracking_share
                progress(done, f"Looking at picture {len(keypoints)} of about {expected}")
        stats.frames = len(keypoints)
        stats.median_brightness = float(np.median(lumas)) if lumas else None
        if not keypoints:
            raise PoseError("the video has no pictures in it.")
        self.after_tracking(source, stride, stats, progress, cancel)
        if progress is not None:
            progress(1.0, "Done")
        recording = self._recording(np.stack(keypoints), info.fps / stride, info.frame_size, stats, age_weeks)
        return recording, stats

    def _recording(
        self, keypoints: np.ndarray, fps: float, frame_size: tuple[int, int], stats: PoseStats, age_weeks: float | None
    ) -> PoseRecording:
        from skeleton.errors import RecordingError
        from skeleton.recording import MIN_SECONDS

        seconds = len(keypoints) / fps
        if seconds < MIN_SECONDS:
            raise PoseError(
                f"the video is only {seconds:.1f} seconds long. At least 1 minute of your baby moving "
                "is needed; 3 minutes is best."
            )
        try:
            return PoseRecording(
                keypoints=keypoints, schema="mediapipe33", fps=fps, frame_size=frame_size,
                pose_model=self.pose_model, device=self.device, age_weeks=age_weeks,
                extra={"pose_stats": stats.to_dict()},
            )
        except RecordingError as e:
            raise PoseError(f"the video cannot be used: {e}") from None

    def estimate_video(
        self,
        path: str | os.PathLike,
        progress: ProgressFn | None = None,
        fps_max: float | None = None,
        cancel: threading.Event | None = None,
        age_weeks: float | None = None,
    ) -> tuple[PoseRecording, PoseStats]:
        """A video file, thinned to at most ``fps_max`` frames per second (the model's limit);
        platform backends may decode natively instead."""
        video = VideoFile(path)
        return self.estimate(video, progress, stride_for(video.info.fps, fps_max), cancel, age_weeks)


def platform_name() -> str:
    """``android``, ``ios`` or ``desktop`` (Kivy's platform detection, without importing Kivy's window)."""
    if "ANDROID_ARGUMENT" in os.environ or "ANDROID_PRIVATE" in os.environ:
        return "android"
    if sys.platform == "ios" or os.environ.get("KIVY_BUILD") == "ios":
        return "ios"
    return "desktop"


def open_backend(platform: str | None = None, model: Path | None = None) -> PoseBackend:
    """The pose backend for this platform (``desktop``, ``desktop-worker``, ``android``, ``ios``).

    ``desktop-worker`` runs the desktop backend in a worker process (what the app and
    ``cogma screen`` use: see pose/worker.py); ``desktop`` runs it in this process."""
    platform = platform or platform_name()
    if platform == "desktop-worker":
        from .worker import IsolatedPoseBackend

        return IsolatedPoseBackend()
    if platform == "desktop":
        from .desktop import MediaPipeDesktopBackend

        return MediaPipeDesktopBackend(model)
    if platform == "android":
        from .android import AndroidPoseBackend

        return AndroidPoseBackend()
    if platform == "ios":
        from .ios import IOSPoseBackend

        return IOSPoseBackend()
    raise PoseError(f"no pose backend for platform {platform!r}")
