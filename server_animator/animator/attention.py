"""Attention processors that turn a stock SVD UNet into InfantAnimator's.

Through diffusers' attention-processor API, without touching the UNet code:

* spatial cross-attention (``transformer_blocks.*.attn2``):
  :class:`IDCrossAttnProcessor` — the context is [CLIP image token; 4 face
  ID tokens]; the image token goes through the UNet's own ``to_k``/``to_v``,
  the ID tokens through the processor's ``id_to_k``/``id_to_v``; the ID
  branch is rescaled to the mean and standard deviation of the image branch
  and added.
* temporal cross-attention (``temporal_transformer_blocks.*.attn2``):
  :class:`FaceFreeTemporalAttnProcessor` — attends to the image token only,
  ignoring the face tokens.
* self-attention: the stock SDPA processor, or xformers when installed.

Both cross-attentions have a single context token on the image side. Softmax
over one key is exactly 1, so that attention's output is the value itself:
the processors skip the attention there (same result, less work).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0, XFormersAttnProcessor
from diffusers.utils.import_utils import is_xformers_available
from torch import nn

from .kernels import (few_key_attention, few_key_attention_fits, pooled_moments, short_attention,
                      short_attention_fits)

AttentionBackend = Literal["sdpa", "xformers"]
NUM_ID_TOKENS = 4


def multi_head_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int, backend: AttentionBackend = "sdpa",
    few_key_kernel: bool = False,
) -> torch.Tensor:
    """``[B, Nq, C]`` x ``[B, Nk, C]`` -> ``[B, Nq, C]`` with ``heads`` heads.

    ``few_key_kernel``: a handful of keys (the 4 face-ID tokens) through the Triton kernel of
    :func:`.kernels.few_key_attention` where it fits (CUDA).
    """
    if key.shape[1] == 1:  # softmax over one key is 1: the output is the value
        return value.expand(-1, query.shape[1], -1)
    if few_key_kernel and few_key_attention_fits(query, key, heads):
        return few_key_attention(query, key, value, heads)
    if backend == "xformers":
        import xformers.ops

        q, k, v = (t.unflatten(-1, (heads, -1)) for t in (query, key, value))
        return xformers.ops.memory_efficient_attention(q, k, v).flatten(2)
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (query, key, value))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def _finish(attn: Attention, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
    if attn.residual_connection:
        hidden_states = hidden_states + residual
    return hidden_states / attn.rescale_output_factor


def token_channel_std_mean(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.std_mean(x, dim=(1, 2), keepdim=True)`` of ``[B, N, C]`` in float32, from per-channel statistics.

    A reduction over tokens per channel runs with the channels side by side in
    memory and B x C outputs in parallel, where one over (tokens, channels) has
    only B; the total follows exactly from the law of total variance. A value
    broadcast along the tokens (the single-key branch) is reduced once, not N times.
    """
    tokens, channels = x.shape[1], x.shape[2]
    if x.stride(1) == 0:  # the same row for every token
        var_c, mean_c = torch.zeros_like(x[:, 0], dtype=torch.float32), x[:, 0].float()
    else:
        var_c, mean_c = torch.var_mean(x.float(), dim=1, correction=0)
    var, mean = pooled_moments(var_c, mean_c)
    count = tokens * channels
    std = (var * count / max(count - 1, 1)).sqrt()  # Bessel's correction, as torch.std_mean
    return std[..., None], mean[..., None]


def _match_statistics(x: torch.Tensor, like: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Shift and scale ``x`` to the mean and std of ``like``, per sample over tokens and channels."""
    std_x, mean_x = token_channel_std_mean(x)
    std_l, mean_l = token_channel_std_mean(like)
    return ((x.float() - mean_x) * (std_l / (std_x + eps)) + mean_l).to(x.dtype)


def _split_context(attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None,
                   num_tokens: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``encoder_hidden_states`` = [image tokens; ``num_tokens`` face-ID tokens] -> (normalised image
    context, face-ID tokens), both in the hidden states' dtype."""
    if encoder_hidden_states is None or encoder_hidden_states.shape[1] <= num_tokens:
        raise ValueError(f"{what} needs image tokens followed by {num_tokens} face-ID tokens")
    context = encoder_hidden_states[:, :-num_tokens].to(hidden_states.dtype)
    id_tokens = encoder_hidden_states[:, -num_tokens:].to(hidden_states.dtype)
    if attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    return context, id_tokens


class IDCrossAttnProcessor(nn.Module):
    """Spatial cross-attention over [image tokens; ``num_tokens`` face-ID tokens]."""

    def __init__(
        self,
        hidden_size: int,
        cross_attention_dim: int,
        num_tokens: int = NUM_ID_TOKENS,
        scale: float = 1.0,
        backend: AttentionBackend = "sdpa",
    ):
        super().__init__()
        self.id_to_k = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.id_to_v = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.num_tokens = num_tokens
        self.scale = scale
        self.backend = backend
        self.few_key_kernel = False  # the ID branch's 4 keys through Triton (use_few_key_attention)

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        residual = hidden_states
        context, id_tokens = _split_context(attn, hidden_states, encoder_hidden_states, self.num_tokens, "ID cross-attention")
        query = attn.to_q(hidden_states)
        image_out = multi_head_attention(query, attn.to_k(context), attn.to_v(context), attn.heads, self.backend)
        id_out = multi_head_attention(query, self.id_to_k(id_tokens), self.id_to_v(id_tokens), attn.heads, self.backend,
                                      self.few_key_kernel)
        hidden_states = image_out + self.scale * _match_statistics(id_out, image_out)
        return _finish(attn, hidden_states, residual)


class FaceFreeTemporalAttnProcessor:
    """Temporal cross-attention that drops the trailing face-ID tokens from its context."""

    def __init__(self, num_tokens: int = NUM_ID_TOKENS, backend: AttentionBackend = "sdpa"):
        self.num_tokens = num_tokens
        self.backend = backend

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        residual = hidden_states
        context, _ = _split_context(attn, hidden_states, encoder_hidden_states, self.num_tokens,
                                    "temporal cross-attention")
        if context.shape[1] == 1:
            # One key: the output is to_out(value) for every query; project once, then broadcast.
            out = attn.to_out[1](attn.to_out[0](attn.to_v(context))).expand_as(hidden_states)
            if attn.residual_connection:
                out = out + residual
            return out / attn.rescale_output_factor
        query = attn.to_q(hidden_states)
        out = multi_head_attention(query, attn.to_k(context), attn.to_v(context), attn.heads, self.backend)
        return _finish(attn, out, residual)


class ShortSelfAttnProcessor:
    """Self-attention over a few tokens — the temporal attention's frames — with the Triton kernel of
    :func:`.kernels.short_attention` on CUDA; anything it does not take goes to the stock processor."""

    def __init__(self) -> None:
        self.fallback = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        plain = (encoder_hidden_states is None and attention_mask is None and hidden_states.ndim == 3
                 and attn.spatial_norm is None and attn.group_norm is None and attn.norm_q is None
                 and attn.norm_k is None)
        if not (plain and short_attention_fits(hidden_states, attn.heads)):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        out = short_attention(attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states), attn.heads)
        return _finish(attn, out, hidden_states)


def use_short_self_attention(unet: nn.Module) -> int:
    """The temporal self-attention layers get :class:`ShortSelfAttnProcessor`; returns how many."""
    names = [n for n in unet.attn_processors if ".temporal_transformer_blocks." in n and n.endswith("attn1.processor")]
    unet.set_attn_processor({n: ShortSelfAttnProcessor() if n in names else p for n, p in unet.attn_processors.items()})
    return len(names)


def use_few_key_attention(unet: nn.Module, enabled: bool = True) -> int:
    """The face-ID branch of every spatial cross-attention through :func:`.kernels.few_key_attention`
    (where it fits); returns how many layers."""
    processors = [p for p in unet.attn_processors.values() if isinstance(p, IDCrossAttnProcessor)]
    for processor in processors:
        processor.few_key_kernel = enabled
    return len(processors)


def _self_attention_processor(backend: AttentionBackend):
    return XFormersAttnProcessor() if backend == "xformers" else AttnProcessor2_0()


def check_backend(backend: str) -> AttentionBackend:
    if backend not in ("sdpa", "xformers"):
        raise ValueError(f"unknown attention backend {backend!r}; use 'sdpa' or 'xformers'")
    if backend == "xformers" and not is_xformers_available():
        raise ValueError("attention backend 'xformers' asked for, but xformers is not installed")
    return backend  # type: ignore[return-value]


def install_infant_animator_processors(
    unet: nn.Module, num_tokens: int = NUM_ID_TOKENS, backend: AttentionBackend = "sdpa"
) -> None:
    """Give every attention layer of a stock SVD UNet its InfantAnimator processor.

    ID weights already installed are kept (switching the backend reuses them).
    New ID projections start as copies of the layer's own ``to_k``/``to_v``;
    released checkpoints overwrite them.
    """
    backend = check_backend(backend)
    processors = {}
    for name, current in unet.attn_processors.items():
        layer: Attention = unet.get_submodule(name.removesuffix(".processor"))
        if name.endswith("attn1.processor"):
            processors[name] = _self_attention_processor(backend)
        elif ".temporal_transformer_blocks." in name:
            processors[name] = FaceFreeTemporalAttnProcessor(num_tokens, backend)
        elif isinstance(current, IDCrossAttnProcessor):
            current.backend = backend
            processors[name] = current
        else:
            proc = IDCrossAttnProcessor(layer.to_q.out_features, layer.to_k.in_features, num_tokens, backend=backend)
            proc.load_state_dict({"id_to_k.weight": layer.to_k.weight, "id_to_v.weight": layer.to_v.weight})
            processors[name] = proc.to(device=layer.to_k.weight.device, dtype=layer.to_k.weight.dtype)
    unet.set_attn_processor(processors)


def id_attention_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The ID projections only (``...attn2.processor.id_to_k.weight`` etc.)."""
    return {k: v for k, v in unet.state_dict().items() if ".processor." in k}
