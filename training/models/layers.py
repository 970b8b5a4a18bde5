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


# ---------------------------------------------------------------------------------------------- student


class SeparableBlock(nn.Module):
    """Depthwise temporal convolution (kernel ``k x 1``, stride ``stride``) -> pointwise convolution ->
    batch norm, with a residual, ReLU and the mask re-applied.

    Tensors are ``[N, C, 1, T]``: conv2d only, with no reshape between layers, so XNNPACK keeps the
    whole backbone in its channels-last layout (a reshape forces a transpose on both sides) and
    folds the batch norms into the convolutions. (Time is the last axis: with ``[N, C, T, 1]``
    int8 re-export guards on the symbolic length through a stride comparison.)"""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.stride = stride
        pad = (kernel_size - 1) // 2
        self.depthwise = nn.Conv2d(cin, cin, (1, kernel_size), (1, stride), (0, pad), groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.drop = nn.Dropout(dropout)
        if cin != cout:
            self.res: nn.Module = nn.Sequential(nn.Conv2d(cin, cout, 1, (1, stride), bias=False), nn.BatchNorm2d(cout))
        elif stride != 1:  # same width: the residual just keeps every stride-th sample
            self.res = nn.AvgPool2d((1, 1), (1, stride))
        else:
            self.res = nn.Identity()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``mask [N, 1, 1, T']``: the mask at this block's output rate (:func:`downsample_mask_2d`)."""
        y = self.drop(self.bn(self.pointwise(self.depthwise(x))))
        # zero outside the recording again, so masked samples and padding look identical
        return torch.relu(y + self.res(x)) * mask


def downsample_mask_2d(mask: Tensor, stride: int) -> Tensor:
    """``[N, 1, 1, T]`` mask at the centres of a stride-``stride`` 'same'-padded ``1 x k`` convolution."""
    if stride == 1:
        return mask
    return nn.functional.avg_pool2d(mask, (1, 1), (1, stride))


def masked_window_pool_2d(values: Tensor, mask: Tensor, window: int, stride: int) -> tuple[Tensor, Tensor]:
    """Mean of ``values [N, C, 1, T]`` over windows of the real (``mask [N, 1, 1, T]``) samples.

    Returns ``(window_means [N, C, W], window_coverage [N, W])``; coverage is the share of real
    samples in each window. ``avg_pool2d`` keeps it export-friendly and the pooling 4-D."""
    pooled = nn.functional.avg_pool2d(values * mask, (1, window), (1, stride)).squeeze(2)
    coverage = nn.functional.avg_pool2d(mask, (1, window), (1, stride)).squeeze(2)
    return pooled / coverage.clamp_min(1e-6), coverage[:, 0]
