"""Animator backends: one interface, chosen by configuration (``backend = "render" | "diffusion" | "pkg.mod:Class"``).

A backend is constructed once per worker process with the :class:`ServerConfig`
(``Backend(config)``; backend-specific settings are in ``config.backend_options``)
and then animates one recording per call. It writes into ``out_dir`` (the
job's scratch folder, erased afterwards), reports progress in 0..1 through
``progress`` and must let :class:`JobCancelled` raised by ``progress``
propagate: that is how a withdrawn consent stops a running job. Every result
carries a QA report (JSON-serialisable); ``passed`` False fails the job and
its video is never served.

``render`` (here, CPU): the OpenPose-18 pose video of the keypoints on a black
background, DWPose style, the diffusion animator's conditioning. It shows no
person at all. ``diffusion``: the InfantAnimator pipeline in
``server_animator.animator.backend.DiffusionBackend`` (loaded lazily, so the
server runs without it).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from skeleton.errors import CogmaError
from skeleton.recording import PoseRecording

from .config import ServerConfig

Progress = Callable[[float], None]


class JobCancelled(BaseException):
    """Raised by the progress callback when the job was withdrawn or lost its lease.

    A BaseException (like KeyboardInterrupt) so that a backend's broad
    ``except Exception`` cannot swallow it.
    """


class BackendError(CogmaError):
    """A backend that cannot be loaded or configured."""


@dataclass
class AnimationResult:
    video_path: Path
    qa_report: dict[str, Any]
    passed: bool
    extra_files: dict[str, Path] = field(default_factory=dict)  # name -> file, stored beside the video


@runtime_checkable
class AnimatorBackend(Protocol):
    name: str

    def animate(self, recording: PoseRecording, out_dir: Path, progress: Progress) -> AnimationResult: ...


class RenderBackend:
    """OpenPose-18 pose video of the keypoints (CPU), with a QA report that reads the video back."""

    name = "render"

    def __init__(self, config: ServerConfig):
        self.size = config.render_size
        opts = config.backend_options
        self.min_visibility = float(opts.get("min_visibility", 0.3))
        # below this share of keypoints seen and inside the picture, the video is (nearly) blank: QA fails
        self.min_visible_fraction = float(opts.get("min_visible_fraction", 0.2))

    def animate(self, recording: PoseRecording, out_dir: Path, progress: Progress) -> AnimationResult:
        from skeleton.drawing import VideoWriter, openpose_frames
        from skeleton.mapping import convert

        out_dir.mkdir(parents=True, exist_ok=True)
        video = out_dir / "video.mp4"
        t0 = time.perf_counter()
        total = recording.num_frames
        written = 0
        with VideoWriter(video, recording.fps, self.size) as writer:
            for i, frame in enumerate(openpose_frames(recording, self.size, self.min_visibility)):
                writer.write(frame)
                written += 1
                progress((i + 1) / total)  # cheap: the worker throttles what it writes
        op18 = convert(recording.keypoints, recording.schema, "openpose18")
        inside = ((op18[..., :2] >= 0.0) & (op18[..., :2] <= 1.0)).all(axis=-1)
        drawn = int(((op18[..., 2] >= self.min_visibility) & inside).sum())
        readback = _count_frames(video)
        visible_fraction = drawn / max(1, op18.shape[0] * op18.shape[1])
        checks = {
            "all_frames_written": written == total,
            "video_reads_back": readback == total,
            "enough_visible_keypoints": visible_fraction >= self.min_visible_fraction,
        }
        report = {
            "backend": self.name,
            "kind": "OpenPose-18 pose rendering (DWPose style) of the submitted keypoints; shows no person",
            "frames_expected": total,
            "frames_written": written,
            "frames_read_back": readback,
            "fps": recording.fps,
            "width": self.size[0],
            "height": self.size[1],
            "source_schema": recording.schema,
            "keypoints_total": int(op18.shape[0] * op18.shape[1]),
            "keypoints_drawn": drawn,
            "visible_fraction": round(visible_fraction, 4),
            "mean_visibility": round(float(np.mean(op18[..., 2])), 4) if op18.size else 0.0,
            "video_bytes": video.stat().st_size,
            "seconds": round(time.perf_counter() - t0, 3),
            "checks": checks,
        }
        return AnimationResult(video_path=video, qa_report=report, passed=all(checks.values()))


def _count_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def load_backend(config: ServerConfig) -> AnimatorBackend:
    """Import and construct the configured backend; a clear error when it is not available."""
    target = config.backend_target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise BackendError(
            f"animator backend {config.backend!r} is not available: module {e.name!r} cannot be imported"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise BackendError(f"animator backend {config.backend!r}: {module_name} has no {attr!r}")
    backend = cls(config)
    if not isinstance(backend, AnimatorBackend):
        raise BackendError(f"animator backend {config.backend!r} does not implement animate(recording, out_dir, progress)")
    return backend
