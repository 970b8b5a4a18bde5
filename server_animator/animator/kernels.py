"""Exact GPU speed-ups for the stock SVD UNet and temporal VAE decoder (same math, faster kernels).

* :func:`short_attention` — attention over a few tokens (the temporal self-attention sees the 16
  frames of a window, for every pixel and head). PyTorch's fused SDPA kernels tile 64-128 tokens
  and spend most of their time on padding there; a Triton program per (sequence, head) holds the
  whole 16 x 16 problem in registers. Scores and softmax in float32, the probabilities cast to the
  value dtype for the second product, as the flash kernels do.
* :func:`channels_last_temporal_convs` — the ``(3, 1, 1)`` ``Conv3d`` of the temporal ResNet blocks
  get their weights and inputs in ``channels_last_3d``. ``torch.compile`` lays the 2-D convolutions
  out channels-last by itself but leaves the 3-D ones in NCDHW, which cuDNN converts to NDHWC and
  back on every call (2.2x slower per convolution on an H100, `benchmarks/animator_probe_ops.py`).

Both are CUDA-only and off unless asked for (:meth:`InfantAnimatorPipeline.enable_fast_kernels`);
on the CPU, or for shapes the kernel does not take, the stock path runs.
"""

from __future__ import annotations

import torch
from torch import nn

MAX_SHORT_TOKENS = 64  # longer sequences go to SDPA (the spatial attention, thousands of tokens)


try:  # Triton comes with CUDA builds of torch; without it the stock kernels run
    import triton
    import triton.language as tl
except ImportError:
    triton = None


def triton_available() -> bool:
    return triton is not None and torch.cuda.is_available()


def short_attention_fits(query: torch.Tensor, heads: int) -> bool:
    """True when :func:`short_attention` takes ``[N, L, C]`` tensors of this shape and device."""
    n, length, channels = query.shape
    head_dim = channels // heads
    return (triton is not None and query.is_cuda and query.dtype in (torch.float16, torch.bfloat16)
            and length <= MAX_SHORT_TOKENS and channels % heads == 0 and head_dim in (16, 32, 64, 128))


def short_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    """``[N, L, C]`` x3 -> ``[N, L, C]`` multi-head attention for ``L <= 64`` (check :func:`short_attention_fits`)."""
    return torch.ops.cogma.short_attention(query.contiguous(), key.contiguous(), value.contiguous(), heads)


if triton is not None:
    from torch.library import triton_op, wrap_triton

    @triton.jit
    def _short_attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, length, scale, HEADS: tl.constexpr,
                                HEAD_DIM: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        seq = pid // HEADS
        head = pid % HEADS
        rows = tl.arange(0, BLOCK)
        cols = tl.arange(0, HEAD_DIM)
        inside = rows < length
        offsets = seq * length * HEADS * HEAD_DIM + rows[:, None] * (HEADS * HEAD_DIM) + head * HEAD_DIM + cols[None, :]
        q = tl.load(q_ptr + offsets, mask=inside[:, None], other=0.0)
        k = tl.load(k_ptr + offsets, mask=inside[:, None], other=0.0)
        v = tl.load(v_ptr + offsets, mask=inside[:, None], other=0.0)
        scores = tl.dot(q, tl.trans(k)) * scale
        scores = tl.where(inside[None, :], scores, float("-inf"))
        p = tl.exp(scores - tl.max(scores, axis=1)[:, None])
        out = tl.dot(p.to(v.dtype), v) / tl.sum(p, axis=1)[:, None]
        tl.store(o_ptr + offsets, out.to(o_ptr.dtype.element_ty), mask=inside[:, None])

    # a torch.library op, so that torch.compile traces through it
    @triton_op("cogma::short_attention", mutates_args=())
    def _short_attention_op(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
        n, length, channels = query.shape
        head_dim = channels // heads
        out = torch.empty_like(query)
        block = max(16, triton.next_power_of_2(length))
        wrap_triton(_short_attention_kernel)[(n * heads,)](
            query, key, value, out, length, head_dim**-0.5, HEADS=heads, HEAD_DIM=head_dim, BLOCK=block,
            num_warps=4 if head_dim > 64 else 2)
        return out


# ------------------------------------------------------------------------------------------------ convolutions


def _channels_last_3d_input(module: nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(memory_format=torch.channels_last_3d), *args[1:])


def channels_last_temporal_convs(model: nn.Module) -> list:
    """Every ``Conv3d`` of ``model`` computes in ``channels_last_3d``; returns the hook handles (``.remove()``
    them and the inputs go back to their own layout; the weights stay channels-last, which is harmless)."""
    handles = []
    for module in model.modules():
        # skip layers that already have the hook (a removed handle takes it out of this dict)
        if isinstance(module, nn.Conv3d) and _channels_last_3d_input not in module._forward_pre_hooks.values():
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
            handles.append(module.register_forward_pre_hook(_channels_last_3d_input))
    return handles
