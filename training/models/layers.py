"""Building blocks of the skeleton networks (tensors are ``[N, C, T, V]``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GraphConv(nn.Module):
    """ST-GCN graph convolution: one 1x1 convolution per partition, then ``x @ A_k``, summed.

    ``learn_importance`` adds ST-GCN's learnable edge importance (a mask on each partition).
    """

    def __init__(self, in_channels: int, out_channels: int, partitions: Tensor, learn_importance: bool = True):
        super().__init__()
        self.num_partitions = partitions.shape[0]
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_partitions, kernel_size=1)
        self.register_buffer("partitions", partitions.clone(), persistent=False)
        self.importance = nn.Parameter(torch.ones_like(partitions)) if learn_importance else None

    def forward(self, x: Tensor) -> Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.num_partitions, self.out_channels, t, v)
        a = self.partitions if self.importance is None else self.partitions * self.importance
        out = torch.matmul(y[:, 0], a[0])
        for k in range(1, self.num_partitions):  # static loop over 3 partitions
            out = out + torch.matmul(y[:, k], a[k])
        return out


class SeparableTemporalConv(nn.Module):
    """Depthwise temporal convolution then a pointwise one (cheap enough for a phone)."""

    def __init__(self, channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.depthwise = nn.Conv2d(channels, channels, (kernel_size, 1), (stride, 1), (pad, 0), groups=channels)
        self.pointwise = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class TemporalConv(nn.Module):
    """Plain ST-GCN temporal convolution (kernel ``k x 1``)."""

    def __init__(self, channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1, dilation: int = 1):
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.conv = nn.Conv2d(channels, out_channels, (kernel_size, 1), (stride, 1), (pad, 0), (dilation, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class MultiScaleTemporalConv(nn.Module):
    """CTR-GCN's multi-scale temporal block: dilated branches, a max-pool branch and a 1x1 branch."""

    def __init__(self, channels: int, out_channels: int, stride: int = 1, dilations: tuple[int, ...] = (1, 2)):
        super().__init__()
        branches = len(dilations) + 2
        width = out_channels // branches
        first = out_channels - width * (branches - 1)  # absorb the remainder in the first branch

        def branch_in(c: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(channels, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True))

        self.dilated = nn.ModuleList()
        for i, d in enumerate(dilations):
            c = first if i == 0 else width
            self.dilated.append(nn.Sequential(branch_in(c), TemporalConv(c, c, 5, stride, d), nn.BatchNorm2d(c)))
        self.pool = nn.Sequential(
            branch_in(width), nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(width)
        )
        self.point = nn.Sequential(nn.Conv2d(channels, width, 1, stride=(stride, 1)), nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        outs = [b(x) for b in self.dilated] + [self.pool(x), self.point(x)]
        return torch.cat(outs, dim=1)


def residual(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1)), nn.BatchNorm2d(out_channels))


def downsample_mask(mask: Tensor, stride: int) -> Tensor:
    """The mask at the centres of a stride-``stride`` 'same'-padded temporal convolution."""
    if stride == 1:
        return mask
    # same length formula as the convolution (floor((T - 1) / stride) + 1), so shapes agree symbolically
    return nn.functional.avg_pool1d(mask[:, None, :], kernel_size=1, stride=stride)[:, 0]


def masked_window_pool(values: Tensor, mask: Tensor, window: int, stride: int) -> tuple[Tensor, Tensor]:
    """Mean of ``values [N, C, T]`` over windows of the real (``mask [N, T]``) samples.

    Returns ``(window_means [N, C, W], window_coverage [N, W])``; coverage is the
    share of real samples in each window. ``avg_pool1d`` keeps it export-friendly.
    """
    pooled = nn.functional.avg_pool1d(values * mask[:, None, :], window, stride)
    coverage = nn.functional.avg_pool1d(mask[:, None, :], window, stride)
    return pooled / coverage.clamp_min(1e-6), coverage[:, 0]
