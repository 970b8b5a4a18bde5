"""Short videos assembled from real photographs shipped with scikit-image (tests, benchmarks, demo).

No infant video may be downloaded, so the real pose pipeline is exercised on the photographs of
people that scikit-image ships (``astronaut``: Eileen Collins; ``camera``: the cameraman) and on
photographs without people (``chelsea`` the cat, ``coffee``). Each frame places the photo on a
640×480 canvas with a slow sway, so the tracker sees motion as in a real video. These are adults
seen from the waist up: the pose pipeline finds them, and the quality check rightly says that a
whole body is not in view.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

FRAME_SIZE = (640, 480)  # (width, height)


def photo(name: str) -> np.ndarray:
    """An RGB uint8 photograph from ``skimage.data`` (shipped in the package, nothing downloaded)."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    return cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def compose_frame(photos: list[np.ndarray], t: float, brightness: float = 1.0,
                  size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """One frame at time ``t`` seconds: the photos side by side on grey, swaying gently."""
    w, h = size
    canvas = np.full((h, w, 3), 96, np.uint8)
    n = len(photos)
    slot = w // n
    for k, img in enumerate(photos):
        side = min(h - 40, slot - 10)
        small = _fit(img, side)[:, :side]
        dx = int(round(4 * math.sin(2 * math.pi * 0.25 * t + k)))
        dy = int(round(2 * math.sin(2 * math.pi * 0.4 * t + 2 * k)))
        x0 = max(0, min(w - small.shape[1], k * slot + (slot - small.shape[1]) // 2 + dx))
        y0 = max(0, min(h - small.shape[0], (h - small.shape[0]) // 2 + dy))
        canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    if brightness != 1.0:
        canvas = np.clip(canvas.astype(np.float32) * brightness, 0, 255).astype(np.uint8)
    return canvas


def make_video(path: str | Path, names: list[str], seconds: float, fps: float = 30.0,
               brightness: float = 1.0, size: tuple[int, int] = FRAME_SIZE) -> Path:
    """Write an mp4 of the named photos (``["astronaut"]``, ``["astronaut", "camera"]`` ...)."""
    from skeleton.drawing import VideoWriter

    photos = [photo(n) for n in names]
    n_frames = max(1, round(seconds * fps))
    with VideoWriter(path, fps, size) as writer:
        for i in range(n_frames):
            writer.write(compose_frame(photos, i / fps, brightness, size))
    return Path(path)
