"""The student: the small skeleton-only model the phone runs.

``forward(landmarks [1, T, 33, 3], fps [1]) -> [1, 3] = (risk, risk_low, risk_high)``.
Everything from raw MediaPipe-33 landmarks to the score happens inside:
joint mapping to Infant-20 (``skeleton.mapping`` weights; a derived joint is as
visible as its least visible source), centring, rotation and scale
normalisation, velocities and resampling to a 15 Hz grid
(:class:`FusedSkeletonPreprocess`: the teacher's features, computed the way
ExecuTorch/XNNPACK runs fast), then a temporal convolutional network over the
flattened joint features and scoring over ~10 s windows.

Built for the phone (ExecuTorch/XNNPACK, Core ML): every weight is a constant
of the exported program, the backbone is convolutions over time in one
``[N, C, 1, T]`` layout (batch norms fold into them), time is halved twice in the
first two blocks, and the grid has ``(T - 1) * 15 / fps_min + 1`` samples —
the fewest that hold a recording at the lowest supported frame rate (the
sample count must not depend on the *value* of ``fps``; at higher rates its
tail is masked).

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

from .layers import SeparableBlock, downsample_mask_2d, masked_window_pool_2d
from .preprocess import FusedSkeletonPreprocess, GridParts

# Input contract: 30 s to 10 min of phone video. 23.5 fps admits "24p" (23.976) recordings; 31 fps admits
# variable-frame-rate "30 fps" video (which reports 30.0x). Faster video is thinned to this range by the app
# (every n-th frame: 60 -> 30, 50 -> 25, 48 -> 24, 120 -> 30): the model reads 15 Hz, so more frames add only cost.
FPS_MIN, FPS_MAX = 23.5, 31.0
MIN_SECONDS, MAX_SECONDS = 30.0, 600.0
MIN_FRAMES = math.ceil(MIN_SECONDS * FPS_MIN)  # 705
MAX_FRAMES = math.ceil(MAX_SECONDS * FPS_MAX)  # 18600
MAX_PARAMETERS = 100_000
CHECKPOINT_FORMAT = "cogma.student"
CHECKPOINT_VERSION = 2  # 2: conv1d student over FusedSkeletonPreprocess (1: ST-GCN student, not loadable)
OUTPUT_NAMES = ("risk", "risk_low", "risk_high")
NUM_JOINTS = 20
NUM_FEATURES = 5 * NUM_JOINTS  # x, y, vx, vy, seen (bones are positions' differences: redundant here)


class StudentError(CogmaError):
    """A student checkpoint that cannot be loaded."""


@dataclass(frozen=True)
class StudentConfig:
    stem_channels: int = 64
    channels: tuple[int, ...] = (64, 96, 96, 96)
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
    """``[B, T, 33, 3]`` MediaPipe landmarks -> ``[B, T, 20, 3]`` Infant-20, exactly as ``skeleton.mapping``.

    The reference the student's folded mapping (inside :class:`FusedSkeletonPreprocess`) is tested against.
    """

    def __init__(self):
        super().__init__()
        weights = torch.from_numpy(get_mapping("mediapipe33", "infant20").weights.copy())
        self.register_buffer("weights", weights)
        self.register_buffer("sources", (weights != 0).to(torch.float32), persistent=False)

    def forward(self, landmarks: Tensor) -> Tensor:
        xy = torch.matmul(self.weights, landmarks[..., :2])
        vis = landmarks[..., 2]
        # visibility of a derived joint = min over its sources (1.0 is neutral: visibility <= 1)
        vis = (vis[..., None, :] * self.sources + (1.0 - self.sources)).amin(dim=-1)
        return torch.cat([xy, vis[..., None]], dim=-1)


class Student(nn.Module):
    def __init__(self, config: StudentConfig = StudentConfig()):
        super().__init__()
        self.config = config
        self.preprocess = FusedSkeletonPreprocess(("infant20", "mediapipe33"), config.grid_fps)
        self.data_bn = nn.BatchNorm1d(NUM_FEATURES)
        self.stem = nn.Linear(NUM_FEATURES, config.stem_channels, bias=False)
        self.stem_bn = nn.BatchNorm1d(config.stem_channels)
        blocks, cin = [], config.stem_channels
        for cout, stride in zip(config.channels, config.strides):
            blocks.append(SeparableBlock(cin, cout, config.kernel_size, stride, config.dropout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(cin, 1)
        # Platt calibration fitted on validation data after training (identity until then).
        self.register_buffer("calib_scale", torch.ones(()))
        self.register_buffer("calib_bias", torch.zeros(()))
        self.register_buffer("interval_z", torch.tensor(float(config.interval_z)))
        # data_bn -> rotation/scale -> stem -> stem_bn folded into constant matrices in eval mode (see _fold)
        c0, rows = config.stem_channels, 5 * (NUM_JOINTS + 1)
        for name, shape in (("fold_along", (rows, c0)), ("fold_across", (rows, c0)), ("fold_const", (rows, c0)),
                            ("fold_position", (rows, 1)), ("fold_velocity", (rows, 1))):
            self.register_buffer(name, torch.zeros(shape), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _keys: module._fold() if not module.training else None)

    @property
    def embedding_dim(self) -> int:
        return self.config.channels[-1]

    def grid_length(self, frames: int) -> int:
        """Grid samples for ``frames`` input frames: enough for a recording at ``FPS_MIN``."""
        return self.preprocess.grid_length(frames, FPS_MIN)

    def train(self, mode: bool = True) -> "Student":
        super().train(mode)
        if not mode:
            self._fold()
        return self

    @torch.no_grad()
    def _fold(self) -> None:
        """Eval mode: ``stem_bn(stem(data_bn(features)))`` as constant matrices on the unrotated grid parts.

        The features are ``turn(position), turn(rate * velocity), seen`` with ``turn(x) = along * x + across *
        sign * swap(x)`` (rotation and scale); both batch norms are affine in eval mode, so the stem's
        pre-activation is ``[p, v, seen, mask] @ W`` with ``W = (along * A + across * B) * (rows of p: 1,
        of v: rate) + C``: ``W`` is a ``[105, C0]`` matrix made per recording from these buffers (a few
        thousand multiplications), the bias sits on the mask column (so masked samples give exactly 0).
        Recomputed on every ``eval()`` and when weights are loaded in eval mode.
        """
        bn, sbn = self.data_bn, self.stem_bn
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        b = bn.bias - bn.running_mean * a
        g = sbn.weight / torch.sqrt(sbn.running_var + sbn.eps)
        w = self.stem.weight  # [C0, 100]: x, y, vx, vy, seen (20 each)
        folded = (g[:, None] * w * a[None, :]).t()  # [100, C0]
        v, pre = NUM_JOINTS, self.preprocess
        turned = (torch.diag(pre.swap_sign) @ pre.swap).t()  # x -> sign * swap(x), acting on rows
        for buffer in (self.fold_along, self.fold_across, self.fold_const, self.fold_position, self.fold_velocity):
            buffer.zero_()
        # position, velocity: [x block, y block] of V -> rows of blocks of V + 1 (extra column: weight 0)
        for i, gate in enumerate((self.fold_position, self.fold_velocity)):
            moving = folded[2 * v * i: 2 * v * (i + 1)]
            rows = torch.cat([(2 * i + k) * (v + 1) + torch.arange(v) for k in (0, 1)])
            self.fold_along[rows] = moving
            self.fold_across[rows] = turned @ moving
            gate[rows] = 1.0
        seen_rows = 4 * (v + 1) + torch.arange(v + 1)
        self.fold_const[seen_rows[:v]] = folded[4 * v:]
        self.fold_const[seen_rows[v]] = g * (w @ b) + sbn.bias - sbn.running_mean * g

    def features(self, p: GridParts) -> Tensor:
        """``[G, 100]``: rotated and scaled positions and velocities, and seen flags (training path)."""
        position, velocity, seen = self.preprocess.joint_parts(p)
        turn = self.preprocess.turn
        return torch.cat([turn(position, p), turn(velocity, p), seen], dim=-1) * p.mask

    def _stem_folded(self, p: GridParts) -> Tensor:
        """``[B, G, C0]``: the stem's output from the grid parts with the folded constants (eval mode).

        Rotation, scale and frame rate are numbers per recording, so they go into the stem's weights
        (``[B, 105, C0]``, rows for position, velocity and seen) rather than onto the ``[G, 105]`` parts:
        matrix products with the recording's own weights (``bmm``), one per part (no concatenation)."""
        one = p.mask.dim() == 2
        # along, across, rate: [1, 1] for one recording, [B, 1, 1] for a batch -> [105, C0] or [B, 105, C0]
        weight = ((self.fold_along * p.along + self.fold_across * p.across)
                  * (self.fold_position + self.fold_velocity * p.rate) + self.fold_const)
        parts = (p.position, p.velocity, p.seen)
        if one:  # 3-D views (free), so that the products are bmm: XNNPACK's fully connected wants constant weights
            parts = tuple(x.reshape(1, x.shape[0], x.shape[1]) for x in parts)
            weight = weight.reshape(1, *weight.shape)
        rows = [x.shape[-1] for x in parts]
        y = [torch.bmm(x, w) for x, w in zip(parts, weight.split(rows, dim=1))]
        return torch.relu(y[0] + y[1] + y[2])  # masked samples: all inputs 0, so exactly 0

    def _backbone_input(self, p: GridParts) -> tuple[Tensor, Tensor]:
        """Stem output ``[B, C0, 1, G]`` and mask ``[B, 1, 1, G]`` from grid parts of a batch or of one
        recording (the phone's program, two-dimensional until here: see ``FusedSkeletonPreprocess.parts``)."""
        one = p.mask.dim() == 2
        if not self.training:
            x = self._stem_folded(p)  # [B, G, C0], already zero outside the mask
            mask = p.mask.reshape(1, 1, 1, p.mask.shape[0]) if one else p.mask[:, None, None, :, 0]
        else:
            p = GridParts(*(t[None] for t in p)) if one else p
            feats = self.features(p)  # [B, G, 100]
            x = self.data_bn(feats.transpose(1, 2)).transpose(1, 2)
            x = torch.relu(self.stem_bn(self.stem(x).transpose(1, 2)).transpose(1, 2)) * p.mask
            mask = p.mask[:, None, None, :, 0]
        # contiguous: a channels-last-strided backbone input makes int8 re-export guard on the grid length
        return x.transpose(1, 2).contiguous().reshape(x.shape[0], x.shape[2], 1, x.shape[1]), mask

    def score_parts(self, parts: GridParts) -> StudentOutput:
        """Window logits and embedding from the grid parts of a batch (``[B, G, ...]``) or of one recording."""
        x, mask = self._backbone_input(parts)
        masks = []
        for block in self.blocks:  # every block's mask first, so the backbone is one unbroken chain
            mask = downsample_mask_2d(mask, block.stride)
            masks.append(mask)
        for block, m in zip(self.blocks, masks):
            x = block(x, m)
        cfg = self.config
        window_feats, coverage = masked_window_pool_2d(x, mask, cfg.window_steps, cfg.window_stride)
        # the linear head as a weighted channel sum: no matmul over the dynamic window axis (export guards)
        window_logits = (window_feats * self.head.weight[0][None, :, None]).sum(dim=1) + self.head.bias  # [B, W]
        # windows wholly inside the recording count; partial ones only if there is nothing else
        weights = (coverage >= 0.999).to(x.dtype) + 1e-4 * coverage
        total = weights.sum(dim=1).clamp_min(1e-8)
        logit = (weights * window_logits).sum(dim=1) / total
        var = (weights * (window_logits - logit[:, None]) ** 2).sum(dim=1) / total
        embedding = (weights[:, None, :] * window_feats).sum(dim=2) / total[:, None]
        return StudentOutput(logit, torch.sqrt(var + 1e-8), embedding, window_logits, weights)

    def score_infant20(
        self, keypoints: Tensor, fps: Tensor, lengths: Tensor | None = None, grid_len: int | None = None
    ) -> StudentOutput:
        """Infant-20 keypoints ``[B, T, 20, 3]`` -> window logits and embedding (training uses this).

        Each recording counts up to its length (``lengths``); all share a grid of ``grid_len`` samples."""
        b, t = keypoints.shape[0], keypoints.shape[1]
        g = self.grid_length(t) if grid_len is None else grid_len
        fps = fps.to(keypoints.dtype).reshape(b)
        lengths = torch.full((b,), t, device=keypoints.device) if lengths is None else lengths.to(keypoints.device)
        return self.score_parts(self.preprocess.parts_batch(keypoints, fps, lengths, g, "infant20"))

    def calibrated(self, logit: Tensor, logit_sd: Tensor) -> Tensor:
        """``[B, 3]`` = sigmoid of the calibrated logit and of its interval ends."""
        half = self.interval_z * logit_sd
        z = torch.stack([logit, logit - half, logit + half], dim=1)
        return torch.sigmoid(self.calib_scale * z + self.calib_bias)

    def forward(self, landmarks: Tensor, fps: Tensor) -> Tensor:
        """``landmarks [1, T, 33, 3]`` raw MediaPipe-33, ``fps [1]`` -> ``[1, 3]`` (risk, risk_low, risk_high)."""
        g = self.grid_length(landmarks.shape[1])
        out = self.score_parts(self.preprocess.parts(landmarks, fps, g, "mediapipe33"))
        return self.calibrated(out.logit, out.logit_sd)


def student_demo() -> Student:
    """The shipped demo student."""
    return Student(StudentConfig())


def student_tiny() -> Student:
    """A smaller student for tests."""
    return Student(StudentConfig(stem_channels=16, channels=(16, 24), strides=(2, 2), window_steps=40,
                                 window_stride=20))


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


def read_checkpoint(path: str | Path, format_name: str, kind: str) -> dict[str, Any]:
    """The payload of a CoGMA checkpoint of ``format_name`` (never unpickles code); :class:`StudentError`
    naming the problem — missing, unreadable, or another kind of file — for anything else."""
    path = Path(path)
    if path.is_dir():
        raise StudentError(f"{path} is a folder; give the checkpoint file (.pt)")
    if not path.is_file():
        raise StudentError(f"{path}: no such {'student' if kind == 'student' else 'model'} checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise StudentError(f"{path}: not a readable torch checkpoint ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != format_name:
        raise StudentError(f"{path}: not a CoGMA {kind} checkpoint")
    return payload


def load_student(path: str | Path) -> tuple[Student, StudentMeta]:
    """The student in eval mode and its metadata; :class:`StudentError` for anything that is not one."""
    payload = read_checkpoint(path, CHECKPOINT_FORMAT, "student")
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
