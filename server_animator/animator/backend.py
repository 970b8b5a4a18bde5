"""The ``diffusion`` animator backend: InfantAnimator on one GPU, QA on every output.

:class:`Animator` loads the pipeline once and turns one PoseRecording into an
anonymized video plus a QA report; :class:`DiffusionBackend` is the server's
``AnimatorBackend`` around it, configured by ``backend_options``::

    backend = "diffusion"
    backend_options = { weights_dir = "/models/infantanimator", dtype = "bf16", compile = true }

Options (all optional except ``weights_dir``): ``weights_dir``, ``device``
(default ``cuda`` when present), ``dtype`` (``bf16``, ``fp16``, ``fp32``),
``steps`` (25), ``guidance`` (3.0), ``window`` (16), ``overlap`` (4),
``seed`` (0), ``reference_image``, ``face_model_dir``, ``pose_model``,
``compile`` (false), ``fast_kernels`` (true), ``cache_pose`` (true),
``windows_per_batch`` (1), ``decode_chunks_per_batch`` (2), ``sdpa_backends`` (e.g. ``["cudnn", "flash"]``), ``max_frames`` (1800),
``qa`` (a table of :class:`~.qa.QAThresholds` fields), and
``random_weights`` (``"tiny"`` or ``"svd-xt"``: random weights for tests and
benchmarks; the video is noise and the report says so).
Several workers share one machine by giving each its own ``device``
(``cuda:0``, ``cuda:1``, ...) or ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from skeleton.errors import CogmaError
from skeleton.recording import PoseRecording

from .qa import QAThresholds

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
QA_FILE = "qa.json"


class AnimatorError(CogmaError):
    """An animator option or input that cannot be used."""


@dataclass(frozen=True)
class AnimatorSettings:
    weights_dir: str | None = None
    random_weights: str | None = None  # "tiny" / "svd-xt": plumbing tests and benchmarks only
    device: str | None = None
    dtype: str = "bf16"
    width: int = 576
    height: int = 1024
    steps: int = 25
    guidance: float = 3.0
    window: int = 16
    overlap: int = 4
    seed: int = 0
    reference_image: str | None = None
    face_model_dir: str | None = None
    pose_model: str | None = None
    compile: bool = False
    fast_kernels: bool = True  # exact kernel swaps on CUDA (kernels.py); no effect on the CPU
    cache_pose: bool = True  # PoseNet once per frame (5.9 MB per frame at 576x1024, if it fits), not per step
    windows_per_batch: int = 1
    decode_chunks_per_batch: int = 2
    sdpa_backends: tuple[str, ...] | None = None
    max_frames: int = 1800
    qa: QAThresholds = field(default_factory=QAThresholds)

    @classmethod
    def from_options(cls, options: dict[str, Any], **defaults: Any) -> "AnimatorSettings":
        known = {f.name for f in fields(cls)}
        aliases = {"weights": "weights_dir"}
        values = dict(defaults)
        for key, value in options.items():
            key = aliases.get(key, key)
            if key not in known:
                raise AnimatorError(f"unknown diffusion backend option {key!r}; known: {', '.join(sorted(known))}")
            values[key] = value
        if isinstance(values.get("qa"), dict):
            try:
                values["qa"] = QAThresholds(**values["qa"])
            except TypeError as e:
                raise AnimatorError(f"bad qa thresholds: {e}") from None
        if values.get("sdpa_backends") is not None:
            values["sdpa_backends"] = tuple(values["sdpa_backends"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.weights_dir and not self.random_weights:
            raise AnimatorError(
                "the diffusion animator needs weights: set weights_dir (SVD-xt base + InfantAnimator checkpoints, "
                "or a converted pipeline)"
            )
        if self.random_weights not in (None, "tiny", "svd-xt"):
            raise AnimatorError(f"random_weights must be 'tiny' or 'svd-xt', not {self.random_weights!r}")
        if self.dtype not in DTYPES:
            raise AnimatorError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        for name in ("steps", "window", "windows_per_batch", "decode_chunks_per_batch", "max_frames"):
            if int(getattr(self, name)) < 1:
                raise AnimatorError(f"{name} must be at least 1")
        if not 0 <= self.overlap < self.window - 1:
            raise AnimatorError(f"overlap must be between 0 and {self.window - 2}")
        if self.width % 64 or self.height % 64 or self.width < 64 or self.height < 64:
            raise AnimatorError(f"width and height must be multiples of 64 (at least 64), not {self.width}x{self.height}")
        for name in ("compile", "fast_kernels", "cache_pose"):
            if not isinstance(getattr(self, name), bool):
                raise AnimatorError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise AnimatorError(f"guidance must be a number >= 0, not {self.guidance!r}")
        if self.device is not None:
            check_device(self.device)


def check_device(name: str) -> None:
    """A torch device this machine has: ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise AnimatorError(f"device must be cpu, cuda or cuda:N, not {name!r}") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise AnimatorError(f"device {name!r} asked for, but this machine has no such CUDA GPU")
    if device.type not in ("cpu", "cuda"):
        raise AnimatorError(f"device must be cpu, cuda or cuda:N, not {name!r}")


@dataclass
class AnimationOutput:
    video_path: Path
    qa_path: Path
    report: dict[str, Any]
    passed: bool


class Animator:
    """One loaded pipeline that animates recordings (one at a time) and checks every output."""

    def __init__(self, settings: AnimatorSettings):
        import torch

        from . import conditioning, qa

        self.settings = settings
        self.device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = getattr(torch, DTYPES[settings.dtype])
        self.pipe = self._load_pipeline()
        self.pipe.set_progress_bar_config(disable=True)
        size = (settings.width, settings.height)
        self.reference = conditioning.reference_image(settings.reference_image, size)
        face_model = conditioning.configured_face_model(settings.face_model_dir)
        self.face_embedding = conditioning.face_embedding(self.reference, face_model)
        self.face_embedder = face_model.embed if face_model else None
        pose_model = qa.configured_pose_model(settings.pose_model)
        self.pose_model_path = pose_model
        if settings.fast_kernels:
            self.pipe.enable_fast_kernels()
        if settings.compile:  # UNet and VAE decoder (benchmarks/animator_speed.py, docs/animator.md)
            self.pipe.compile(vae=True)

    def _load_pipeline(self):
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()  # dtype-cast notices in a worker's log say nothing useful
        s = self.settings
        if s.random_weights:
            from .configs import build_components
            from .pipeline import InfantAnimatorPipeline

            pipe = InfantAnimatorPipeline(**build_components(s.random_weights, seed=s.seed, device=self.device))
        else:
            from .loading import load_pipeline

            pipe = load_pipeline(s.weights_dir)
        return pipe.to(device=self.device, dtype=self.dtype)

    @property
    def weights_description(self) -> str:
        s = self.settings
        if s.random_weights:
            return f"random weights ({s.random_weights}) — the video is noise, for testing only"
        return f"InfantAnimator weights from {Path(s.weights_dir).name}"

    def animate(self, recording: PoseRecording, out_dir: Path, progress: Callable[[float], None] | None = None,
                video_name: str = "video.mp4") -> AnimationOutput:
        import numpy as np
        import torch

        from skeleton.drawing import VideoWriter

        from . import conditioning, qa

        s = self.settings
        if recording.num_frames > s.max_frames:
            raise AnimatorError(
                f"recording has {recording.num_frames} frames; this animator takes at most {s.max_frames}"
            )
        report_progress = progress or (lambda fraction: None)
        out_dir.mkdir(parents=True, exist_ok=True)
        size = (s.width, s.height)
        started = time.perf_counter()
        poses = conditioning.pose_frames(recording, size)
        report_progress(0.02)

        def on_step(done: int, total: int) -> None:  # denoising is ~90 % of the time
            report_progress(0.02 + 0.88 * done / total)

        generator = torch.Generator(self.device).manual_seed(s.seed)
        frames = self.pipe(
            self.reference, poses, self.face_embedding, height=s.height, width=s.width,
            num_inference_steps=s.steps, guidance_scale=s.guidance, window_size=s.window,
            window_overlap=s.overlap, generator=generator, windows_per_batch=s.windows_per_batch,
            decode_chunks_per_batch=s.decode_chunks_per_batch, sdpa_backends=s.sdpa_backends,
            cache_pose=s.cache_pose, callback=on_step,
        ).frames
        generated_s = time.perf_counter() - started
        video = out_dir / video_name
        with VideoWriter(video, recording.fps, size) as writer:
            for frame in frames:
                writer.write(frame)
        report_progress(0.92)
        extractor = (qa.MediaPipePoseExtractor(self.pose_model_path, fps=recording.fps)
                     if self.pose_model_path else None)
        report = qa.run_qa(
            np.asarray(frames), recording.keypoints, conditioning.canvas_fit(recording, size), extractor, s.qa,
            face_embedder=self.face_embedder,
            reference_embedding=self.face_embedding if self.face_embedder else None,
            schema=recording.schema,
            video={"frames": int(len(frames)), "width": s.width, "height": s.height, "fps": recording.fps,
                   "generation_seconds": round(generated_s, 3), "device": str(self.device),
                   "dtype": s.dtype, "steps": s.steps, "guidance": s.guidance, "window": s.window,
                   "overlap": s.overlap, "seed": s.seed, "weights": self.weights_description,
                   "reference": "synthetic reference infant" if not s.reference_image else "operator's reference",
                   "use": "anonymized research video; a screening aid's data, not for clinical use"},
        )
        report_dict = {"backend": "diffusion", **report.to_dict()}
        qa_path = out_dir / QA_FILE
        qa_path.write_text(report.to_json())
        report_progress(1.0)
        return AnimationOutput(video, qa_path, report_dict, report.passed)


class DiffusionBackend:
    """The server's ``diffusion`` backend (``server_animator.backends.AnimatorBackend``)."""

    name = "diffusion"

    def __init__(self, config):
        settings = AnimatorSettings.from_options(
            dict(config.backend_options), width=config.render_width, height=config.render_height
        )
        self.animator = Animator(settings)  # loaded once per worker process

    def animate(self, recording: PoseRecording, out_dir: Path, progress):
        from server_animator.backends import AnimationResult

        out = self.animator.animate(recording, Path(out_dir), progress)
        return AnimationResult(video_path=out.video_path, qa_report=out.report, passed=out.passed)


def settings_with(settings: AnimatorSettings, **changes: Any) -> AnimatorSettings:
    updated = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    updated.validate()
    return updated
