"""The student: the small skeleton-only model the phone runs.

``forward(landmarks [1, T, 33, 3], fps [1]) -> [1, 3] = (risk, risk_low, risk_high)``.
Everything from raw MediaPipe-33 landmarks to the score happens inside:
joint mapping to Infant-20 (``skeleton.mapping`` weights as a buffer; a derived
joint is as visible as its least visible source), centring, rotation and
scale normalisation, velocities and resampling to a 15 Hz grid
(:class:`SkeletonPreprocess`), a light ST-GCN with separable temporal
convolutions, and scoring over ~10 s windows.

Score and interval: each window gets a logit; the recording's logit is the
mean over windows fully inside the recording, ``risk = sigmoid(a * mean + b)``
with ``(a, b)`` a Platt calibration fitted on validation data. The interval
is ``sigmoid(a * (mean -+ z * sd) + b)`` with ``sd`` the spread of the window
logits: it says how consistently the movements score across the recording,
NOT a confidence interval of the true risk (a long recording of consistently
ambiguous movements gets a narrow interval around an uncertain risk).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from skeleton.errors import CogmaError
from skeleton.mapping import get_mapping

from .graph import spatial_graph
from .layers import GraphConv, SeparableTemporalConv, downsample_mask, masked_window_pool, residual
from .preprocess import NUM_FEATURES, SkeletonPreprocess

# Input contract: 30 s to 10 min at 15-60 fps.
FPS_MIN, FPS_MAX = 15.0, 60.0
MIN_SECONDS, MAX_SECONDS = 30.0, 600.0
MIN_FRAMES = math.ceil(MIN_SECONDS * FPS_MIN)  # 450
MAX_FRAMES = math.ceil(MAX_SECONDS * FPS_MAX)  # 36000
MAX_PARAMETERS = 100_000
CHECKPOINT_FORMAT = "cogma.student"
CHECKPOINT_VERSION = 1
OUTPUT_NAMES = ("risk", "risk_low", "risk_high")


class StudentError(CogmaError):
    """A student checkpoint that cannot be loaded."""


@dataclass(frozen=True)
class StudentConfig:
    channels: tuple[int, ...] = (32, 48, 64, 64)
    strides: tuple[int, ...] = (2, 2, 1, 1)
    kernel_size: int = 9
    grid_fps: float = 15.0
    window_steps: int = 40  # backbone steps per scoring window (40 at 15 Hz / 4 = 10.7 s)
    window_stride: int = 20
    interval_z: float = 1.0  # interval half-width in window-logit standard deviations
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError("student: channels and strides need the same, non-zero length")

    @property
    def total_stride(self) -> int:
        return math.prod(self.strides)

    @property
    def window_seconds(self) -> float:
        return self.window_steps * self.total_stride / self.grid_fps


class StudentOutput(NamedTuple):
    logit: Tensor  # [B] mean window logit (before calibration)
    logit_sd: Tensor  # [B] spread of window logits
    embedding: Tensor  # [B, C] window-weighted mean of the backbone's features
    window_logits: Tensor  # [B, W]
    window_weights: Tensor  # [B, W]


class MediaPipeToInfant20(nn.Module):
    """``[B, T, 33, 3]`` MediaPipe landmarks -> ``[B, T, 20, 3]`` Infant-20, exactly as ``skeleton.mapping``."""

    def __init__(self):
        super().__init__()
        weights = torch.from_numpy(get_mapping("mediapipe33", "infant20").weights.copy())
        self.register_buffer("weights", weights)
        self.register_buffer("sources", (weights != 0).to(torch.float32), persistent=False)

    def forward(self, landmarks: Tensor) -> Tensor:
        xy = torch.matmul(self.weights, landmarks[..., :2])
        vis = landmarks[..., 2]
        # visibility of a derived joint = min over its sources (1.0 is neutral: visibility <= 1)
        # (arithmetic, not torch.where: Core ML does not broadcast a where's condition)
        vis = (vis[..., None, :] * self.sources + (1.0 - self.sources)).amin(dim=-1)
        return torch.cat([xy, vis[..., None]], dim=-1)


class StudentBlock(nn.Module):
    def __init__(self, cin: int, cout: int, partitions: Tensor, stride: int, kernel_size: int, dropout: float):
        super().__init__()
        self.stride = stride
        self.gcn = GraphConv(cin, cout, partitions)
        self.bn1 = nn.BatchNorm2d(cout)
        self.tcn = SeparableTemporalConv(cout, cout, kernel_size, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.drop = nn.Dropout(dropout)
        self.res = residual(cin, cout, stride)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        y = torch.relu(self.bn1(self.gcn(x)))
        y = self.drop(self.bn2(self.tcn(y)))
        mask = downsample_mask(mask, self.stride)
        # zero outside the recording again so that padding and masked samples look identical
        return torch.relu(y + self.res(x)) * mask[:, None, :, None], mask


class Student(nn.Module):
    def __init__(self, config: StudentConfig = StudentConfig()):
        super().__init__()
        self.config = config
        partitions = torch.from_numpy(spatial_graph().partitions)
        v = partitions.shape[-1]
        self.to_infant20 = MediaPipeToInfant20()
        self.preprocess = SkeletonPreprocess(config.grid_fps)
        self.data_bn = nn.BatchNorm1d(NUM_FEATURES * v)
        blocks, cin = [], NUM_FEATURES
        for cout, stride in zip(config.channels, config.strides):
            blocks.append(StudentBlock(cin, cout, partitions, stride, config.kernel_size, config.dropout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(cin, 1)
        # Platt calibration fitted on validation data after training (identity until then).
        self.register_buffer("calib_scale", torch.ones(()))
        self.register_buffer("calib_bias", torch.zeros(()))
        self.register_buffer("interval_z", torch.tensor(float(config.interval_z)))

    @property
    def embedding_dim(self) -> int:
        return self.config.channels[-1]

    def score_infant20(
        self, keypoints: Tensor, fps: Tensor, lengths: Tensor | None = None, grid_len: int | None = None
    ) -> StudentOutput:
        """Infant-20 keypoints ``[B, T, 20, 3]`` -> window logits and embedding (training uses this)."""
        x, mask = self.preprocess(keypoints, fps, lengths, grid_len)
        n, c, t, v = x.shape
        x = self.data_bn(x.permute(0, 1, 3, 2).reshape(n, c * v, t)).reshape(n, c, v, t).permute(0, 1, 3, 2)
        x = x * mask[:, None, :, None]
        for block in self.blocks:
            x, mask = block(x, mask)
        feats = x.mean(dim=3)  # [B, C, T']
        cfg = self.config
        window_feats, coverage = masked_window_pool(feats, mask, cfg.window_steps, cfg.window_stride)
        # the linear head as a weighted channel sum: no matmul over the dynamic window axis (export guards)
        window_logits = (window_feats * self.head.weight[0][None, :, None]).sum(dim=1) + self.head.bias  # [B, W]
        # windows wholly inside the recording count; partial ones only if there is nothing else
        weights = (coverage >= 0.999).to(x.dtype) + 1e-4 * coverage
        total = weights.sum(dim=1).clamp_min(1e-8)
        logit = (weights * window_logits).sum(dim=1) / total
        var = (weights * (window_logits - logit[:, None]) ** 2).sum(dim=1) / total
        embedding = (weights[:, None, :] * window_feats).sum(dim=2) / total[:, None]
        return StudentOutput(logit, torch.sqrt(var + 1e-8), embedding, window_logits, weights)

    def calibrated(self, logit: Tensor, logit_sd: Tensor) -> Tensor:
        """``[B, 3]`` = sigmoid of the calibrated logit and of its interval ends."""
        half = self.interval_z * logit_sd
        z = torch.stack([logit, logit - half, logit + half], dim=1)
        return torch.sigmoid(self.calib_scale * z + self.calib_bias)

    def forward(self, landmarks: Tensor, fps: Tensor) -> Tensor:
        out = self.score_infant20(self.to_infant20(landmarks), fps)
        return self.calibrated(out.logit, out.logit_sd)


def student_demo() -> Student:
    """The shipped demo student (about 45k parameters)."""
    return Student(StudentConfig())


def student_tiny() -> Student:
    """A smaller student for tests."""
    return Student(StudentConfig(channels=(16, 24), strides=(2, 2), window_steps=40, window_stride=20))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- checkpoint


@dataclass
class StudentMeta:
    version: str
    architecture: dict[str, Any]
    input_contract: dict[str, Any]
    output_contract: dict[str, Any]
    threshold: float
    operating_point: dict[str, Any]
    metrics: dict[str, Any]
    training_data: dict[str, Any]
    not_for_clinical_use: bool
    notice: str = ""
    interval: str = (
        "risk_low..risk_high = sigmoid(calibrated mean window logit -+ z * SD of window logits): how consistent the "
        "~10 s windows of the recording score; not a confidence interval of the true risk"
    )
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def input_contract() -> dict[str, Any]:
    return {"schema": "mediapipe33", "fps_min": FPS_MIN, "fps_max": FPS_MAX,
            "min_frames": MIN_FRAMES, "max_frames": MAX_FRAMES,
            "min_seconds": MIN_SECONDS, "max_seconds": MAX_SECONDS}


def output_contract() -> dict[str, Any]:
    return {"names": list(OUTPUT_NAMES), "range": [0.0, 1.0],
            "meaning": "risk = estimated probability of atypical movements (screening aid, not a diagnosis)"}


def save_student(model: Student, meta: StudentMeta, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
               "config": asdict(model.config), "state_dict": state, "meta": meta.to_dict()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_student(path: str | Path) -> tuple[Student, StudentMeta]:
    """The student in eval mode and its metadata; :class:`StudentError` for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise StudentError(f"{path}: no such student checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise StudentError(f"{path}: not a readable torch checkpoint ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise StudentError(f"{path}: not a CoGMA student checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise StudentError(f"{path}: student checkpoint version {payload.get('version')!r} is not supported")
    try:
        config = StudentConfig(**payload["config"])
        meta = StudentMeta(**payload["meta"])
        model = Student(config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise StudentError(f"{path}: damaged student checkpoint ({e})") from None
    return model.eval(), meta
