"""The teacher: a CTR-GCN-style network (channel-wise topology refinement) over windows.

Chen et al. 2021, "Channel-wise Topology Refinement Graph Convolution": each
partition's adjacency is refined per channel from pairwise differences of
joint features; temporal modelling by multi-scale dilated convolutions.
Windows are aggregated by gated attention (see :mod:`.windowed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .graph import spatial_graph
from .layers import MultiScaleTemporalConv, downsample_mask, residual
from .preprocess import NUM_FEATURES
from .windowed import WindowConfig, WindowedClassifier


class CTRGraphConv(nn.Module):
    def __init__(self, cin: int, cout: int, partitions: Tensor, reduction: int = 8):
        super().__init__()
        rel = max(8, cin // reduction) if cin > NUM_FEATURES else 8
        k = partitions.shape[0]
        self.conv1 = nn.ModuleList(nn.Conv2d(cin, rel, 1) for _ in range(k))
        self.conv2 = nn.ModuleList(nn.Conv2d(cin, rel, 1) for _ in range(k))
        self.conv3 = nn.ModuleList(nn.Conv2d(cin, cout, 1) for _ in range(k))
        self.conv4 = nn.ModuleList(nn.Conv2d(rel, cout, 1) for _ in range(k))
        self.adjacency = nn.Parameter(partitions.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(cout)
        self.res = residual(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = 0
        for k in range(self.adjacency.shape[0]):
            q = self.conv1[k](x).mean(dim=2)  # [N, R, V]
            r = self.conv2[k](x).mean(dim=2)
            rel = torch.tanh(q[..., :, None] - r[..., None, :])  # [N, R, V, V]
            topology = self.conv4[k](rel) * self.alpha + self.adjacency[k]  # [N, C, V, V]
            out = out + torch.einsum("ncuv,nctv->nctu", topology, self.conv3[k](x))
        return torch.relu(self.bn(out) + self.res(x))


class CTRBlock(nn.Module):
    def __init__(self, cin: int, cout: int, partitions: Tensor, stride: int):
        super().__init__()
        self.stride = stride
        self.gcn = CTRGraphConv(cin, cout, partitions)
        self.tcn = MultiScaleTemporalConv(cout, cout, stride)
        self.res = residual(cin, cout, stride)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        y = self.tcn(self.gcn(x))
        mask = downsample_mask(mask, self.stride)
        return torch.relu(y + self.res(x)) * mask[:, None, :, None], mask


class CTRGCNBackbone(nn.Module):
    def __init__(self, channels: tuple[int, ...], strides: tuple[int, ...]):
        super().__init__()
        partitions = torch.from_numpy(spatial_graph().partitions)
        blocks, cin = [], NUM_FEATURES
        for cout, stride in zip(channels, strides):
            blocks.append(CTRBlock(cin, cout, partitions, stride))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        for block in self.blocks:
            x, mask = block(x, mask)
        return x.mean(dim=3), mask


@dataclass(frozen=True)
class TeacherConfig:
    channels: tuple[int, ...] = (64, 64, 128, 128, 256, 256)
    strides: tuple[int, ...] = (1, 1, 2, 1, 2, 1)
    window_samples: int = 150
    window_stride: int = 75
    grid_fps: float = 15.0
    dropout: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError("teacher: channels and strides need the same, non-zero length")


class Teacher(WindowedClassifier):
    def __init__(self, config: TeacherConfig = TeacherConfig()):
        windows = WindowConfig(config.grid_fps, config.window_samples, config.window_stride)
        super().__init__(CTRGCNBackbone(config.channels, config.strides), config.channels[-1], windows,
                         aggregate="attention", dropout=config.dropout)
        self.config = config


def teacher_base() -> Teacher:
    """CTR-GCN widths (64-256, six blocks): for a GPU."""
    return Teacher(TeacherConfig())


def teacher_small() -> Teacher:
    """Four blocks, 32-96 channels: trains on a 2-core CPU in minutes."""
    return Teacher(TeacherConfig(channels=(32, 48, 64, 96), strides=(2, 2, 1, 1)))


def teacher_tiny() -> Teacher:
    """Two blocks for tests."""
    return Teacher(TeacherConfig(channels=(16, 24), strides=(2, 2), window_samples=90, window_stride=45))
