"""Preview of a chosen file for the capture screen: a picture with the skeleton drawn on it and
the framing check, from the first seconds of a video (or the middle of a pose recording)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .errors import AppError
from .framing import Framing, check_framing
from .video import VideoFile

PREVIEW_SECONDS = (0.0, 1.0, 2.0)  # pictures looked at; the one with the clearest pose is shown
MAX_PREVIEW_SIDE = 480

FoundPoses = list[tuple[int, list[np.ndarray]]]  # (frame index, poses in that frame)


class ImageDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[np.ndarray]: ...


def _draw(rgb: np.ndarray, poses: list[np.ndarray]) -> np.ndarray:
    from skeleton.drawing import draw_skeleton

    out = rgb.copy()
    for pose in poses:
        draw_skeleton(out, pose, "mediapipe33")
    return out


def _sample_indices(video: VideoFile) -> set[int]:
    return {round(s * video.info.fps) for s in PREVIEW_SECONDS}


def preview_frames(path: Path, detector: ImageDetector) -> FoundPoses:
    """The poses in a few pictures from the first seconds of the video."""
    video = VideoFile(path, max_side=MAX_PREVIEW_SIDE)
    wanted = _sample_indices(video)
    found: FoundPoses = []
    for frame in video.frames():
        if frame.index > max(wanted):
            break
        if frame.index in wanted:
            found.append((frame.index, detector.detect(frame.rgb)))
    return found


def draw_preview(path: Path, found: FoundPoses) -> tuple[np.ndarray, Framing]:
    """The picture with the clearest pose, the skeleton drawn on it, and the framing check."""
    def clarity(item: tuple[int, list[np.ndarray]]) -> float:
        return max((float(p[:, 2].mean()) for p in item[1]), default=-1.0) + len(item[1])

    index, poses = max(found, key=clarity) if found else (0, [])
    video = VideoFile(path, max_side=MAX_PREVIEW_SIDE)
    rgb = next((f.rgb for f in video.frames() if f.index == index), None)
    if rgb is None:
        raise AppError("the video has no pictures in it.")
    return _draw(rgb, poses), check_framing(poses)


def preview_recording(path: Path) -> tuple[np.ndarray, Framing]:
    from skeleton.errors import RecordingError
    from skeleton.recording import load_recording

    try:
        rec = load_recording(path)
    except RecordingError as e:
        raise AppError(str(e)) from None
    if rec.schema != "mediapipe33":
        raise AppError(f"this recording uses the {rec.schema} skeleton; the app reads MediaPipe-33 recordings")
    w, h = rec.frame_size
    scale = MAX_PREVIEW_SIDE / max(w, h)
    canvas = np.full((max(2, round(h * scale)), max(2, round(w * scale)), 3), 40, np.uint8)
    pose = rec.keypoints[rec.num_frames // 2]
    poses = [pose] if (pose[:, 2] > 0).any() else []
    return _draw(canvas, poses), check_framing(poses)


def preview_file(path: Path, find_poses: Callable[[Path], FoundPoses]) -> tuple[np.ndarray, Framing]:
    """``find_poses(path)`` finds the poses (in a worker process on desktops)."""
    if path.suffix.lower() == ".npz":
        return preview_recording(path)
    VideoFile(path)  # unreadable or empty: a clear error before any pose work
    return draw_preview(path, find_poses(path))
