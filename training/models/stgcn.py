"""Plain ST-GCN (Yan et al. 2018) on Infant-20: the baseline of that line of work.

Fixed spatial partitions with learnable edge importance, 9x1 temporal
convolutions; windows scored separately and their logits averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .graph import spatial_graph
from .layers import GraphConv, TemporalConv, downsample_mask, residual
from .preprocess import NUM_FEATURES
from .windowed import WindowConfig, WindowedClassifier


class STGCNBlock(nn.Module):
    def __init__(self, cin: int, cout: int, partitions: Tensor, stride: int, dropout: float):
        super().__init__()
        self.stride = stride
        self.gcn = GraphConv(cin, cout, partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True), TemporalConv(cout, cout, 9, stride),
            nn.BatchNorm2d(cout), nn.Dropout(dropout),
        )
        self.res = residual(cin, cout, stride)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        y = self.tcn(self.gcn(x))
        mask = downsample_mask(mask, self.stride)
        return torch.relu(y + self.res(x)) * mask[:, None, :, None], mask


class STGCNBackbone(nn.Module):
    def __init__(self, channels: tuple[int, ...], strides: tuple[int, ...], dropout: float):
        super().__init__()
        partitions = torch.from_numpy(spatial_graph().partitions)
        blocks, cin = [], NUM_FEATURES
        for cout, stride in zip(channels, strides):
            blocks.append(STGCNBlock(cin, cout, partitions, stride, dropout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        for block in self.blocks:
            x, mask = block(x, mask)
        return x.mean(dim=3), mask


@dataclass(frozen=True)
class STGCNConfig:
    channels: tuple[int, ...] = (64, 64, 64, 128, 128, 256, 256)
    strides: tuple[int, ...] = (1, 1, 1, 2, 1, 2, 1)
    window_samples: int = 150
    window_stride: int = 75
    grid_fps: float = 15.0
    dropout: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))


class STGCN(WindowedClassifier):
    def __init__(self, config: STGCNConfig = STGCNConfig()):
        windows = WindowConfig(config.grid_fps, config.window_samples, config.window_stride)
        backbone = STGCNBackbone(config.channels, config.strides, config.dropout)
        super().__init__(backbone, config.channels[-1], windows, aggregate="mean", dropout=config.dropout)
        self.config = config


def stgcn_base() -> STGCN:
    return STGCN(STGCNConfig())


def stgcn_small() -> STGCN:
    return STGCN(STGCNConfig(channels=(32, 48, 64, 96), strides=(2, 2, 1, 1)))


def stgcn_tiny() -> STGCN:
    return STGCN(STGCNConfig(channels=(16, 24), strides=(2, 2), window_samples=90, window_stride=45))
