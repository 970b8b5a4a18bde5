"""Reading a video into frames for pose estimation, with clear errors for files that cannot be used.

Frames come out as RGB uint8, shrunk so the long side is at most ``max_side`` pixels: the pose
models look at 256-pixel crops, so full-HD frames only cost time. Keypoints are normalized to
the frame, so the recording keeps the original frame size.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import quiet  # noqa: F401  (FFmpeg's log level must be set before OpenCV opens a file)
from .errors import VideoError

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".3gp")
DEFAULT_MAX_SIDE = 640
MIN_VIDEO_FPS, MAX_VIDEO_FPS = 5.0, 240.0


@dataclass(frozen=True)
class Frame:
    index: int  # index in the source video
    timestamp_ms: int  # strictly increasing, from the index and the frame rate
    rgb: np.ndarray  # [H, W, 3] uint8


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_size: tuple[int, int]  # (width, height) of the source video
    frame_count: int  # as the container reports it (may be approximate)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps else 0.0


def stride_for(fps: float, fps_max: float | None) -> int:
    """Take every n-th frame of a video faster than the model reads (60 fps video, 30 fps model: 2)."""
    if fps_max is None or fps <= fps_max:
        return 1
    return max(1, math.ceil(fps / fps_max - 1e-6))


def brightness(rgb: np.ndarray) -> float:
    """Mean luma (0-255) of a frame, on a coarse grid: enough to tell a dark room."""
    sub = rgb[::8, ::8].astype(np.float32)
    return float((sub @ np.array([0.299, 0.587, 0.114], np.float32)).mean())


class FrameSource:
    """Anything pose estimation reads frames from: ``info`` and an iterator of :class:`Frame`."""

    info: VideoInfo

    def frames(self, stride: int = 1) -> Iterator[Frame]:
        raise NotImplementedError


class VideoFile(FrameSource):
    """A video file read with OpenCV. Opening checks it can be decoded and is not empty."""

    def __init__(self, path: str | os.PathLike, max_side: int = DEFAULT_MAX_SIDE):
        import cv2

        self.path = Path(path)
        self.max_side = max_side
        if self.path.is_dir():
            raise VideoError(f"{self.path.name}: this is a folder; please choose a video file.")
        if not self.path.is_file():
            raise VideoError(f"{self.path.name}: the file does not exist.")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path.name}: the file is empty.")
        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise VideoError(f"{self.path.name}: this is not a video the app can read (damaged, or an unknown format).")
            ok, first = cap.read()
            if not ok or first is None:
                raise VideoError(f"{self.path.name}: the video has no pictures in it (empty or damaged).")
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        if not math.isfinite(fps) or not MIN_VIDEO_FPS <= fps <= MAX_VIDEO_FPS:
            raise VideoError(
                f"{self.path.name}: the video's frame rate ({fps:g} per second) cannot be used; "
                "please record with the phone's normal video mode."
            )
        h, w = first.shape[:2]
        self.info = VideoInfo(fps=fps, frame_size=(w, h), frame_count=max(count, 1))

    def _resize(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        h, w = bgr.shape[:2]
        scale = self.max_side / max(h, w)
        if scale < 1.0:
            bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def frames(self, stride: int = 1) -> Iterator[Frame]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                if index % stride:
                    if not cap.grab():  # skipped frames are not decoded into images
                        break
                else:
                    ok, bgr = cap.read()
                    if not ok or bgr is None:
                        break
                    yield Frame(index, round(index * 1000.0 / self.info.fps), self._resize(bgr))
                index += 1
        finally:
            cap.release()


class ArrayFrames(FrameSource):
    """Frames already in memory (camera buffers, tests): ``[T, H, W, 3]`` RGB uint8 or a list."""

    def __init__(self, frames: np.ndarray | list[np.ndarray], fps: float):
        if len(frames) == 0:
            raise VideoError("the video has no pictures in it.")
        self._frames = frames
        h, w = frames[0].shape[:2]
        self.info = VideoInfo(fps=float(fps), frame_size=(w, h), frame_count=len(frames))

    def frames(self, stride: int = 1) -> Iterator[Frame]:
        for i in range(0, len(self._frames), stride):
            yield Frame(i, round(i * 1000.0 / self.info.fps), np.ascontiguousarray(self._frames[i]))


def write_video(path: str | os.PathLike, frames: list[np.ndarray] | np.ndarray, fps: float) -> Path:
    """Write RGB frames as an mp4 (used for camera recordings and test videos)."""
    from skeleton.drawing import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, (w, h)) as writer:
        for rgb in frames:
            writer.write(np.ascontiguousarray(rgb))
    return Path(path)
