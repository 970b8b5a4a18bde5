"""InfantAnimator's own modules, beside a stock SVD-xt UNet and VAE.

* :class:`PoseNet` turns DWPose-style pose images into a residual of the
  UNet's first feature map (8x downsampling, added right after ``conv_in``).
* :class:`FaceIDEncoder` turns a face-identity embedding (ArcFace, 512) and
  the reference's CLIP image embedding into 4 identity tokens of 1024, which
  ride along the UNet's cross-attention context.
* :class:`PoseInjection` adds the PoseNet residual after ``conv_in`` of an
  unmodified ``UNetSpatioTemporalConditionModel`` through a forward hook.

Parameter names follow the released checkpoints (``pose_net-*.pth``,
``face_encoder-*.pth``) so their state dicts load strictly.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class PoseNet(ModelMixin, ConfigMixin):
    """Pose images ``[N, 3, H, W]`` in [-1, 1] -> UNet feature residual ``[N, C, H/8, W/8]``.

    Each stage is a 3x3 conv then a conv that changes width (4x4 stride 2 to
    downsample, 3x3 at the last stage), SiLU after every conv; a 1x1
    projection to the UNet's first block width, times a learned scale.
    """

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 320,
        stage_channels: Sequence[int] = (3, 16, 32, 64, 128),
        downsample: Sequence[bool] = (True, True, True, False),
    ):
        super().__init__()
        if len(downsample) != len(stage_channels) - 1:
            raise ValueError("PoseNet needs one downsample flag per stage transition")
        layers: list[nn.Module] = []
        for c_in, c_out, down in zip(stage_channels[:-1], stage_channels[1:], downsample):
            layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.SiLU()]
            change = nn.Conv2d(c_in, c_out, 4, stride=2, padding=1) if down else nn.Conv2d(c_in, c_out, 3, padding=1)
            layers += [change, nn.SiLU()]
        self.conv_layers = nn.Sequential(*layers)
        self.final_proj = nn.Conv2d(stage_channels[-1], latent_channels, kernel_size=1)
        self.scale = nn.Parameter(torch.full((1,), 2.0))
        self._init_conv_layers()

    def _init_conv_layers(self) -> None:
        # He initialisation keeps the features' scale through the stack (released checkpoints overwrite it).
        for m in self.conv_layers:
            if isinstance(m, nn.Conv2d):
                fan_in = m.kernel_size[0] * m.kernel_size[1] * m.in_channels
                nn.init.normal_(m.weight, std=(2.0 / fan_in) ** 0.5)
                nn.init.zeros_(m.bias)

    @property
    def downsampling(self) -> int:
        return 2 ** sum(self.config.downsample)

    def forward(self, pose_images: torch.Tensor) -> torch.Tensor:
        if pose_images.ndim == 5:  # [B, F, C, H, W] -> frames as batch
            pose_images = pose_images.flatten(0, 1)
        return self.final_proj(self.conv_layers(pose_images)) * self.scale


class _PerceiverAttention(nn.Module):
    """Latent tokens attend to [image features; latents] (IP-Adapter FaceID-style resampler)."""

    def __init__(self, dim: int, head_dim: int, heads: int):
        super().__init__()
        inner = head_dim * heads
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        features, latents = self.norm1(features), self.norm2(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        return self.to_out(out.transpose(1, 2).flatten(2))


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(), nn.Linear(dim * mult, dim, bias=False)
    )


class _FacePerceiver(nn.Module):
    def __init__(self, dim: int, depth: int, head_dim: int, heads: int, embedding_dim: int, ff_mult: int):
        super().__init__()
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, dim)
        self.norm_out = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([_PerceiverAttention(dim, head_dim, heads), _feed_forward(dim, ff_mult)])
            for _ in range(depth)
        )

    def forward(self, latents: torch.Tensor, image_embeddings: torch.Tensor) -> torch.Tensor:
        features = self.proj_in(image_embeddings)
        for attn, ff in self.layers:
            latents = latents + attn(features, latents)
            latents = latents + ff(latents)
        return self.norm_out(self.proj_out(latents))


class FaceIDEncoder(ModelMixin, ConfigMixin):
    """Face embedding ``[B, 512]`` + CLIP image embedding ``[B, 1, 1024]`` -> ``[B, 4, 1024]`` ID tokens."""

    @register_to_config
    def __init__(
        self,
        id_embedding_dim: int = 512,
        image_embedding_dim: int = 1024,
        cross_attention_dim: int = 1024,
        num_tokens: int = 4,
        depth: int = 4,
        head_dim: int = 64,
        ff_mult: int = 4,
    ):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Linear(id_embedding_dim, id_embedding_dim * 2),
            nn.GELU(),
            nn.Linear(id_embedding_dim * 2, cross_attention_dim * num_tokens),
        )
        self.norm = nn.LayerNorm(cross_attention_dim)
        self.fusion_model = _FacePerceiver(
            cross_attention_dim, depth, head_dim, cross_attention_dim // head_dim, image_embedding_dim, ff_mult
        )

    def forward(self, id_embedding: torch.Tensor, image_embeddings: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(id_embedding).unflatten(-1, (self.config.num_tokens, self.config.cross_attention_dim))
        return self.fusion_model(self.norm(tokens), image_embeddings)


class PoseInjection:
    """Adds a residual to the output of ``unet.conv_in`` while active.

    InfantAnimator's forked UNet adds PoseNet features right after
    ``conv_in``; a forward hook does the same on the stock diffusers UNet, so
    its code and state-dict keys stay untouched.
    """

    def __init__(self, unet: nn.Module):
        self.residual: torch.Tensor | None = None
        self._handle = unet.conv_in.register_forward_hook(self._add_residual)

    def _add_residual(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        if self.residual is None:
            return output
        return output + self.residual

    @contextmanager
    def active(self, residual: torch.Tensor | None) -> Iterator[None]:
        self.residual = residual
        try:
            yield
        finally:
            self.residual = None

    def remove(self) -> None:
        self._handle.remove()
