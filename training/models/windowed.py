"""Recording-level classifiers over temporal windows (the teacher and the ST-GCN baseline).

A recording is preprocessed onto the 15 Hz grid, cut into overlapping
windows (10 s, stride 5 s by default), each window goes through a skeleton
backbone to an embedding, and the windows are aggregated to one score per
recording: gated attention pooling (multiple-instance learning) for the
teacher, the plain mean of window logits for the ST-GCN baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .preprocess import NUM_FEATURES, SkeletonPreprocess


@dataclass(frozen=True)
class WindowConfig:
    grid_fps: float = 15.0
    window_samples: int = 150  # 10 s on the grid
    window_stride: int = 75


class RecordingOutput(NamedTuple):
    logit: Tensor  # [B]
    embedding: Tensor  # [B, D] recording embedding (for co-learning and distillation)
    window_logits: Tensor  # [B, W]
    window_weights: Tensor  # [B, W] aggregation weights (sum to 1 over real windows)


def cut_windows(x: Tensor, mask: Tensor, size: int, stride: int) -> tuple[Tensor, Tensor]:
    """``x [B, C, G, V]`` -> ``[B, W, C, size, V]`` and ``mask [B, G]`` -> ``[B, W, size]`` (zero-padded)."""
    g = x.shape[2]
    if g < size:
        pad = size - g
    else:
        pad = (-(g - size)) % stride
    if pad:
        x = nn.functional.pad(x, (0, 0, 0, pad))
        mask = nn.functional.pad(mask, (0, pad))
    xw = x.unfold(2, size, stride).permute(0, 2, 1, 4, 3)  # [B, W, C, size, V]
    mw = mask.unfold(1, size, stride)  # [B, W, size]
    return xw, mw


class GatedAttentionPool(nn.Module):
    """Ilse et al. 2018 attention-based MIL pooling, masked to windows that are mostly real."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.v = nn.Linear(dim, hidden)
        self.u = nn.Linear(dim, hidden)
        self.w = nn.Linear(hidden, 1)

    def forward(self, h: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h)))[..., 0]  # [B, W]
        scores = scores.masked_fill(valid <= 0, -1e4)
        weights = torch.softmax(scores, dim=1) * (valid > 0)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-8)
        return (weights[..., None] * h).sum(dim=1), weights


class WindowedClassifier(nn.Module):
    """Preprocess -> windows -> ``backbone`` -> window embeddings -> aggregate -> logit."""

    def __init__(self, backbone: nn.Module, embed_dim: int, windows: WindowConfig, aggregate: str, dropout: float = 0.0):
        super().__init__()
        if aggregate not in ("attention", "mean"):
            raise ValueError(f"aggregate must be 'attention' or 'mean', not {aggregate!r}")
        self.windows = windows
        self.aggregate = aggregate
        self.embed_dim = embed_dim
        self.preprocess = SkeletonPreprocess(windows.grid_fps)
        self.data_bn = nn.BatchNorm1d(NUM_FEATURES * 20)
        self.backbone = backbone
        self.pool = GatedAttentionPool(embed_dim) if aggregate == "attention" else None
        self.drop = nn.Dropout(dropout)
        self.window_head = nn.Linear(embed_dim, 1)
        self.head = nn.Linear(embed_dim, 1) if aggregate == "attention" else None

    def forward(
        self, keypoints: Tensor, fps: Tensor, lengths: Tensor | None = None, grid_len: int | None = None
    ) -> RecordingOutput:
        """Infant-20 keypoints ``[B, T, 20, 3]`` at ``fps [B]`` -> one logit per recording."""
        x, mask = self.preprocess(keypoints, fps, lengths, grid_len)
        n, c, g, v = x.shape
        x = self.data_bn(x.permute(0, 1, 3, 2).reshape(n, c * v, g)).reshape(n, c, v, g).permute(0, 1, 3, 2)
        xw, mw = cut_windows(x * mask[:, None, :, None], mask, self.windows.window_samples, self.windows.window_stride)
        w = xw.shape[1]
        feats, fmask = self.backbone(xw.flatten(0, 1), mw.flatten(0, 1))  # [B*W, D, T'], [B*W, T']
        emb = (feats * fmask[:, None]).sum(dim=2) / fmask.sum(dim=1, keepdim=True).clamp_min(1.0)
        emb = emb.view(n, w, -1)
        coverage = mw.mean(dim=2)  # [B, W]
        valid = (coverage >= 0.5).to(emb.dtype)
        valid = torch.where(valid.sum(dim=1, keepdim=True) > 0, valid, (coverage > 0).to(emb.dtype))
        window_logits = self.window_head(self.drop(emb))[..., 0]
        if self.pool is not None:
            pooled, weights = self.pool(emb, valid)
            logit = self.head(self.drop(pooled))[:, 0]
        else:
            weights = valid / valid.sum(dim=1, keepdim=True).clamp_min(1e-8)
            pooled = (weights[..., None] * emb).sum(dim=1)
            logit = (weights * window_logits).sum(dim=1)
        return RecordingOutput(logit, pooled, window_logits, weights)
