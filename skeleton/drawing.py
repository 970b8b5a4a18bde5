"""Drawing skeletons: overlays for the app and OpenPose-18 pose images for the animator.

The pose images follow DWPose's convention (what InfantAnimator was trained
on): black background, each limb an ellipse in its own colour at 60 %
brightness, each joint a filled circle in its colour. Images are RGB uint8.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import CogmaError
from .files import temp_file_beside
from .mapping import convert
from .recording import PoseRecording
from .schemas import get_schema

# DWPose / OpenPose body colours (RGB), one per limb and per joint, in schema order.
OPENPOSE_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)


@dataclass(frozen=True)
class CanvasFit:
    """Maps normalized frame coordinates onto a canvas, keeping the aspect ratio (letterbox)."""

    frame_size: tuple[int, int]
    canvas_size: tuple[int, int]  # (width, height)

    @property
    def scale(self) -> float:
        (fw, fh), (cw, ch) = self.frame_size, self.canvas_size
        return min(cw / fw, ch / fh)

    @property
    def offset(self) -> tuple[float, float]:
        (fw, fh), (cw, ch) = self.frame_size, self.canvas_size
        return (cw - fw * self.scale) / 2.0, (ch - fh * self.scale) / 2.0

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """``[..., 2]`` normalized frame coordinates -> canvas pixels."""
        fw, fh = self.frame_size
        ox, oy = self.offset
        return np.stack([xy[..., 0] * fw * self.scale + ox, xy[..., 1] * fh * self.scale + oy], axis=-1)

    def to_normalized(self, px: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_pixels`."""
        fw, fh = self.frame_size
        ox, oy = self.offset
        return np.stack([(px[..., 0] - ox) / (fw * self.scale), (px[..., 1] - oy) / (fh * self.scale)], axis=-1)


def draw_openpose(
    keypoints: np.ndarray,
    canvas_size: tuple[int, int],
    frame_size: tuple[int, int] | None = None,
    min_visibility: float = 0.3,
    stick_width: int | None = None,
) -> np.ndarray:
    """One OpenPose-18 frame ``[18, 3]`` as a DWPose-style RGB image of ``canvas_size``."""
    width, height = canvas_size
    fit = CanvasFit(frame_size or canvas_size, canvas_size)
    px = fit.to_pixels(np.asarray(keypoints, dtype=np.float64)[:, :2])
    vis = np.asarray(keypoints)[:, 2] >= min_visibility
    # DWPose uses 4 px at 512 px; keep that proportion at other sizes.
    sw = stick_width or max(1, round(4 * min(width, height) / 512))
    img = np.zeros((height, width, 3), dtype=np.uint8)
    schema = get_schema("openpose18")
    for (a, b), color in zip(schema.edges, OPENPOSE_COLORS):
        if not (vis[a] and vis[b]):
            continue
        (xa, ya), (xb, yb) = px[a], px[b]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        poly = cv2.ellipse2Poly(
            (int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), sw), int(angle), 0, 360, 1
        )
        cv2.fillConvexPoly(img, poly, tuple(int(c * 0.6) for c in color))
    for j in np.flatnonzero(vis):
        x, y = px[j]
        cv2.circle(img, (int(x), int(y)), sw, OPENPOSE_COLORS[j], thickness=-1)
    return img


def openpose_frames(
    recording: PoseRecording, canvas_size: tuple[int, int] = (576, 1024), min_visibility: float = 0.3
) -> Iterator[np.ndarray]:
    """The animator's conditioning: one DWPose-style image per frame, aspect kept and padded."""
    kp = convert(recording.keypoints, recording.schema, "openpose18")
    for frame in kp:
        yield draw_openpose(frame, canvas_size, recording.frame_size, min_visibility)


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    schema: str = "mediapipe33",
    min_visibility: float = 0.5,
    color: tuple[int, int, int] = (0, 220, 255),
    frame_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Overlay one frame's skeleton on ``image`` (in place; returned for chaining).

    ``keypoints`` are normalized to ``frame_size`` (default: the image size).
    """
    h, w = image.shape[:2]
    fit = CanvasFit(frame_size or (w, h), (w, h))
    px = fit.to_pixels(np.asarray(keypoints, dtype=np.float64)[:, :2])
    vis = np.asarray(keypoints)[:, 2] >= min_visibility
    thickness = max(1, round(min(w, h) / 240))
    for a, b in get_schema(schema).edges:
        if vis[a] and vis[b]:
            cv2.line(image, tuple(px[a].astype(int)), tuple(px[b].astype(int)), color, thickness, cv2.LINE_AA)
    for j in np.flatnonzero(vis):
        cv2.circle(image, tuple(px[j].astype(int)), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return image


class VideoWriter:
    """An mp4 writer that takes RGB frames; refuses to fail silently.

    Frames go to a temporary file beside ``path``, which takes its name only on :meth:`close`: an error or
    Ctrl-C half way leaves an earlier video under that name untouched and no partial file behind."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise CogmaError(f"{self.path}: a video file name must end in .mp4")
        fd, self._tmp = temp_file_beside(self.path, ".mp4")
        os.close(fd)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
        if not self._writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise CogmaError(f"cannot write video {self.path}")
        self.size = size

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the video and give it its name."""
        self._writer.release()
        if self._tmp.exists():
            os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._writer.release()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def render_video(
    recording: PoseRecording,
    out: str | Path,
    size: tuple[int, int] | None = None,
    style: str = "overlay",
    progress: bool = False,
) -> Path:
    """Render a recording as an mp4: ``overlay`` (skeleton on grey) or ``openpose`` (DWPose style)."""
    if style not in ("overlay", "openpose"):
        raise CogmaError(f"unknown render style {style!r}; use 'overlay' or 'openpose'")
    fw, fh = recording.frame_size
    if size is None:  # keep the aspect ratio, at most 640 px on the long side, even sides for codecs
        s = min(1.0, 640 / max(fw, fh))
        size = (max(2, int(fw * s) // 2 * 2), max(2, int(fh * s) // 2 * 2))
    from tqdm import tqdm

    frames = (
        openpose_frames(recording, size)
        if style == "openpose"
        else (
            draw_skeleton(np.full((size[1], size[0], 3), 40, np.uint8), f, recording.schema, frame_size=recording.frame_size)
            for f in recording.keypoints
        )
    )
    with VideoWriter(out, recording.fps, size) as writer:
        for rgb in tqdm(frames, total=recording.num_frames, disable=not progress, desc="render", unit="frame"):
            writer.write(rgb)
    return Path(out)
