"""Exact GPU speed-ups for the stock SVD UNet and temporal VAE decoder (same math, faster kernels).

* :func:`short_attention` — attention over a few tokens (the temporal self-attention sees the 16
  frames of a window, for every pixel and head). PyTorch's fused SDPA kernels tile 64-128 tokens
  and spend most of their time on padding there; a Triton program per (sequence, head) holds the
  whole 16 x 16 problem in registers. Scores and softmax in float32, the probabilities cast to the
  value dtype for the second product, as the flash kernels do.
* :func:`few_key_attention` — many queries against a handful of keys (the face-ID branch's 4 tokens):
  one program per block of 128 queries and head, all keys in registers, so the queries are read once
  and the output written once.
* :func:`geglu` — the GEGLU feed-forward's projection and ``value * gelu(gate)`` in one GEMM with two
  accumulators. cuBLAS writes the ``[tokens, 2 x inner]`` projection and a second pass reads it back
  for the gate; at 72 x 128 latents that pass takes as long as the GEMM. The fused kernel writes
  only the ``[tokens, inner]`` result (one bf16 rounding instead of two, exact erf GELU). On Hopper
  the tiles come by TMA into a persistent kernel (1.05-1.13x faster than pointer loads, H100).
* :class:`ChannelStatsGroupNorm` — group normalisation whose statistics, under ``torch.compile``,
  come from per-channel means and variances. Inductor reduces a native group norm over (channels of
  the group, pixels) with pixels innermost; in the channels-last layout it picks for convolutions those
  values lie a whole pixel apart, and the VAE decoder's full-resolution norms crawled. Per-channel
  statistics reduce over pixels with the channels side by side; a group's mean and variance follow
  exactly (law of total variance). Eager calls keep PyTorch's kernel.
* :func:`channels_last_temporal_convs` — the ``(3, 1, 1)`` ``Conv3d`` of the temporal ResNet blocks
  get their weights and inputs in ``channels_last_3d``. ``torch.compile`` lays the 2-D convolutions
  out channels-last by itself but leaves the 3-D ones in NCDHW, which cuDNN converts to NDHWC and
  back on every call (2.2x slower per convolution on an H100, `benchmarks/animator_probe_ops.py`).

All are for CUDA and off unless asked for (:meth:`InfantAnimatorPipeline.enable_fast_kernels`); on the
CPU, or for shapes a kernel does not take, the stock path runs.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU
from torch import nn

MAX_SHORT_TOKENS = 64  # longer sequences go to SDPA (the spatial attention, thousands of tokens)
MAX_FEW_KEYS = 16  # the face-ID cross-attention has 4 keys


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


def geglu_fits(hidden_states: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when :func:`geglu` takes this input and ``[2 x inner, K]`` projection weight."""
    return (triton is not None and hidden_states.is_cuda and hidden_states.dtype in (torch.float16, torch.bfloat16)
            and weight.dtype == hidden_states.dtype and weight.shape[0] % 2 == 0
            and hidden_states.shape[-1] == weight.shape[1] and hidden_states.shape[-1] % 16 == 0)


# (BLOCK_M, BLOCK_N, BLOCK_K, stages, warps) of the TMA-fed GEGLU kernel: the autotuner's pick at every UNet
# level on an H100 (benchmarks/results/animator_probe_geglu_candidates.json). Fixed, so that compiles do not
# re-tune and runs do not differ by the tile the timing noise picked.
GEGLU_TMA_TILE = (128, 128, 64, 3, 8)


def geglu_uses_tma(hidden_states: torch.Tensor, weight: torch.Tensor) -> bool:
    """True where :func:`geglu` runs its TMA-fed persistent kernel: Hopper or newer GPUs, and rows of the
    output 16-byte aligned as the copy engine needs. Elsewhere a pointer-fed autotuned kernel runs."""
    return torch.cuda.get_device_capability(hidden_states.device)[0] >= 9 and (weight.shape[0] // 2) % 8 == 0


def geglu(hidden_states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``value * gelu(gate)`` where ``[value, gate] = hidden_states @ weight.T + bias`` (diffusers' ``GEGLU``)."""
    if bias is None:
        bias = hidden_states.new_zeros(weight.shape[0])
    return torch.ops.cogma.geglu(hidden_states, weight, bias)


def few_key_attention_fits(query: torch.Tensor, key: torch.Tensor, heads: int) -> bool:
    """True when :func:`few_key_attention` takes ``[N, Lq, C]`` queries against these ``[N, Lk, C]`` keys."""
    channels = query.shape[-1]
    return (triton is not None and query.is_cuda and query.dtype in (torch.float16, torch.bfloat16)
            and key.dtype == query.dtype and key.shape[1] <= MAX_FEW_KEYS and channels % heads == 0
            and channels // heads in (16, 32, 64, 128))


def few_key_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    """``[N, Lq, C]`` queries against ``[N, Lk, C]`` keys/values, ``Lk <= 16`` (check :func:`few_key_attention_fits`)."""
    return torch.ops.cogma.few_key_attention(query.contiguous(), key.contiguous(), value.contiguous(), heads)


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
        with torch.cuda.device(query.device):  # Triton launches on the current device, not the tensors'
            wrap_triton(_short_attention_kernel)[(n * heads,)](
                query, key, value, out, length, head_dim**-0.5, HEADS=heads, HEAD_DIM=head_dim, BLOCK=block,
                num_warps=4 if head_dim > 64 else 2)
        return out

    @triton.jit
    def _few_key_attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, n_queries, n_keys, scale, HEADS: tl.constexpr,
                                  HEAD_DIM: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_KEYS: tl.constexpr):
        seq, block, head = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        channels = HEADS * HEAD_DIM
        rows = block * BLOCK_Q + tl.arange(0, BLOCK_Q)
        keys = tl.arange(0, BLOCK_KEYS)
        cols = head * HEAD_DIM + tl.arange(0, HEAD_DIM)
        q_offsets = seq.to(tl.int64) * n_queries * channels + rows[:, None] * channels + cols[None, :]
        kv_offsets = seq * n_keys * channels + keys[:, None] * channels + cols[None, :]
        q = tl.load(q_ptr + q_offsets, mask=rows[:, None] < n_queries, other=0.0)
        k = tl.load(k_ptr + kv_offsets, mask=keys[:, None] < n_keys, other=0.0)
        v = tl.load(v_ptr + kv_offsets, mask=keys[:, None] < n_keys, other=0.0)
        scores = tl.dot(q, tl.trans(k)) * scale
        scores = tl.where(keys[None, :] < n_keys, scores, float("-inf"))
        p = tl.exp(scores - tl.max(scores, axis=1)[:, None])
        out = tl.dot(p.to(v.dtype), v) / tl.sum(p, axis=1)[:, None]
        tl.store(o_ptr + q_offsets, out.to(o_ptr.dtype.element_ty), mask=rows[:, None] < n_queries)

    @triton_op("cogma::few_key_attention", mutates_args=())
    def _few_key_attention_op(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
        n, n_queries, channels = query.shape
        head_dim = channels // heads
        out = torch.empty_like(query)
        block_q = 128 if head_dim <= 64 else 64
        with torch.cuda.device(query.device):
            wrap_triton(_few_key_attention_kernel)[(n, triton.cdiv(n_queries, block_q), heads)](
                query, key, value, out, n_queries, key.shape[1], head_dim**-0.5, HEADS=heads, HEAD_DIM=head_dim,
                BLOCK_Q=block_q, BLOCK_KEYS=MAX_FEW_KEYS, num_warps=4)
        return out

    def _geglu_configs() -> list:
        # (BLOCK_M, BLOCK_N, BLOCK_K, stages, warps); the autotuner times each once per shape
        shapes = [(128, 128, 64, 3, 8), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4), (128, 128, 32, 4, 8),
                  (256, 64, 64, 3, 8), (128, 256, 64, 3, 8)]
        return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": 8}, num_stages=s, num_warps=w)
                for m, n, k, s, w in shapes]

    @triton.jit
    def _geglu_epilogue(acc_value, acc_gate, b_ptr, cols, INNER):
        value = acc_value + tl.load(b_ptr + cols, mask=cols < INNER, other=0.0).to(tl.float32)[None, :]
        gate = acc_gate + tl.load(b_ptr + INNER + cols, mask=cols < INNER, other=0.0).to(tl.float32)[None, :]
        return value * (0.5 * gate * (1.0 + tl.math.erf(gate * 0.7071067811865476)))  # exact GELU, as F.gelu

    @triton.autotune(configs=_geglu_configs(), key=["M", "K", "INNER"])
    @triton.jit
    def _geglu_kernel(x_ptr, w_ptr, b_ptr, o_ptr, M, INNER, stride_xm, K: tl.constexpr, BLOCK_M: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        # grouped launch order: GROUP_M row blocks in turn reuse the same weight tiles from L2
        pid = tl.program_id(0)
        blocks_m = tl.cdiv(M, BLOCK_M)
        per_group = GROUP_M * tl.cdiv(INNER, BLOCK_N)
        first_m = (pid // per_group) * GROUP_M
        group_m = min(blocks_m - first_m, GROUP_M)
        pid_m = first_m + (pid % per_group) % group_m
        pid_n = (pid % per_group) // group_m
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        ks = tl.arange(0, BLOCK_K)
        x_ptrs = x_ptr + rows[:, None] * stride_xm + ks[None, :]
        value_ptrs = w_ptr + cols[None, :] * K + ks[:, None]  # [BLOCK_K, BLOCK_N] of the weight's first half
        gate_ptrs = value_ptrs + INNER * K  # the same columns of the second half
        acc_value = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k_done in range(0, K, BLOCK_K):
            k_left = K - k_done
            x = tl.load(x_ptrs, mask=(rows[:, None] < M) & (ks[None, :] < k_left), other=0.0)
            w_mask = (ks[:, None] < k_left) & (cols[None, :] < INNER)
            acc_value = tl.dot(x, tl.load(value_ptrs, mask=w_mask, other=0.0), acc_value)
            acc_gate = tl.dot(x, tl.load(gate_ptrs, mask=w_mask, other=0.0), acc_gate)
            x_ptrs += BLOCK_K
            value_ptrs += BLOCK_K
            gate_ptrs += BLOCK_K
        out = _geglu_epilogue(acc_value, acc_gate, b_ptr, cols, INNER)
        inside = (rows[:, None] < M) & (cols[None, :] < INNER)
        tl.store(o_ptr + rows[:, None] * INNER + cols[None, :], out.to(o_ptr.dtype.element_ty), mask=inside)

    @triton.jit
    def _geglu_tma_kernel(x_ptr, w_ptr, b_ptr, o_ptr, M, INNER, NUM_PROGRAMS, K: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        # The copy engine (TMA) moves whole tiles: rows past the end read as zero and are not stored. One program
        # per SM walks the tiles; flattening the loops lets the next tile's loads overlap this tile's epilogue.
        # A value tile that runs past INNER reads gate rows: those columns fall outside the output, dropped.
        x_desc = tl.make_tensor_descriptor(x_ptr, shape=[M, K], strides=[K, 1], block_shape=[BLOCK_M, BLOCK_K])
        w_desc = tl.make_tensor_descriptor(w_ptr, shape=[2 * INNER, K], strides=[K, 1],
                                           block_shape=[BLOCK_N, BLOCK_K])
        o_desc = tl.make_tensor_descriptor(o_ptr, shape=[M, INNER], strides=[INNER, 1],
                                           block_shape=[BLOCK_M, BLOCK_N])
        blocks_m = tl.cdiv(M, BLOCK_M)
        per_group = GROUP_M * tl.cdiv(INNER, BLOCK_N)
        for tile in tl.range(tl.program_id(0), blocks_m * tl.cdiv(INNER, BLOCK_N), NUM_PROGRAMS, flatten=True):
            first_m = (tile // per_group) * GROUP_M
            group_m = min(blocks_m - first_m, GROUP_M)
            off_m = (first_m + (tile % per_group) % group_m) * BLOCK_M
            off_n = ((tile % per_group) // group_m) * BLOCK_N
            acc_value = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            acc_gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for k_done in range(0, K, BLOCK_K):
                x = x_desc.load([off_m, k_done])
                acc_value = tl.dot(x, w_desc.load([off_n, k_done]).T, acc_value)
                acc_gate = tl.dot(x, w_desc.load([INNER + off_n, k_done]).T, acc_gate)
            cols = off_n + tl.arange(0, BLOCK_N)
            o_desc.store([off_m, off_n], _geglu_epilogue(acc_value, acc_gate, b_ptr, cols, INNER).to(o_desc.dtype))

    @functools.cache
    def _sm_count(device_index: int) -> int:
        return torch.cuda.get_device_properties(device_index).multi_processor_count

    def _scratch(size: int, alignment: int, stream: int | None) -> torch.Tensor:
        return torch.empty(size, device="cuda", dtype=torch.int8)  # on the current device, which the op sets

    def _launch_geglu_tma(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, out: torch.Tensor) -> None:
        (m, k), inner = x.shape, out.shape[1]
        block_m, block_n, block_k, stages, warps = GEGLU_TMA_TILE
        programs = min(_sm_count(x.device.index or 0), triton.cdiv(m, block_m) * triton.cdiv(inner, block_n))
        # The kernel builds its TMA descriptors on the device, in scratch memory Triton asks the launching thread's
        # allocator for. Compiled graphs set one themselves; eager calls get this one (a per-thread setting).
        # (Descriptors built on the host break torch.compile's graph cache, torch 2.11.)
        triton.set_allocator(_scratch)
        wrap_triton(_geglu_tma_kernel)[(programs,)](
            x, w, bias, out, m, inner, programs, K=k, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=8,
            num_stages=stages, num_warps=warps)

    def _aligned_rows(matrix: torch.Tensor) -> torch.Tensor:
        """``matrix`` contiguous and starting at a 16-byte boundary (the kernels take row stride = K; TMA needs the
        alignment; 2-byte elements), copied only where it is not."""
        if not matrix.is_contiguous() or matrix.storage_offset() % 8:
            return matrix.clone(memory_format=torch.contiguous_format)
        return matrix

    @triton_op("cogma::geglu", mutates_args=())
    def _geglu_op(hidden_states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        k = hidden_states.shape[-1]
        inner = weight.shape[0] // 2
        x = _aligned_rows(hidden_states.reshape(-1, k))
        w, bias = _aligned_rows(weight), bias.contiguous()
        m = x.shape[0]
        out = hidden_states.new_empty(m, inner)
        with torch.cuda.device(x.device):
            if geglu_uses_tma(hidden_states, weight):
                _launch_geglu_tma(x, w, bias, out)
            else:
                def grid(meta):
                    return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(inner, meta["BLOCK_N"]),)

                wrap_triton(_geglu_kernel)[grid](x, w, bias, out, m, inner, x.stride(0), K=k)
        return out.reshape(*hidden_states.shape[:-1], inner)


# ------------------------------------------------------------------------------------------------ modules


class FusedGEGLU(nn.Module):
    """diffusers' ``GEGLU`` computed by :func:`geglu` where it fits, by the stock path elsewhere. It keeps the
    original ``proj`` layer, so parameters and state-dict keys stay the same."""

    def __init__(self, proj: nn.Linear):
        super().__init__()
        self.proj = proj

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if geglu_fits(hidden_states, self.proj.weight):
            return geglu(hidden_states, self.proj.weight, self.proj.bias)
        value, gate = self.proj(hidden_states).chunk(2, dim=-1)
        return value * F.gelu(gate)


def pooled_moments(var_c: torch.Tensor, mean_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance and mean (``keepdim``) of the union of equally sized parts, from each part's own (biased) variance
    and mean along the last dimension: the law of total variance, exact."""
    mean = mean_c.mean(-1, keepdim=True)
    return var_c.mean(-1, keepdim=True) + (mean_c - mean).square().mean(-1, keepdim=True), mean


def _children_of_type(model: nn.Module, kind: type) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, child) for every submodule of exactly type ``kind``, to swap it."""
    return [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
            if type(child) is kind]


class ChannelStatsGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` with per-channel statistics when compiled (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling() or x.ndim < 3:
            return super().forward(x)
        n, c = x.shape[:2]
        var_c, mean_c = torch.var_mean(x.float(), dim=tuple(range(2, x.ndim)), correction=0)
        var_c, mean_c = var_c.view(n, self.num_groups, -1), mean_c.view(n, self.num_groups, -1)
        var_g, mean_g = pooled_moments(var_c, mean_c)
        rstd = torch.rsqrt(var_g + self.eps)
        scale, shift = rstd.expand_as(mean_c).reshape(n, c), (-mean_g * rstd).expand_as(mean_c).reshape(n, c)
        if self.affine:
            scale, shift = scale * self.weight.float(), shift * self.weight.float() + self.bias.float()
        shape = (n, c) + (1,) * (x.ndim - 2)
        return (x.float() * scale.view(shape) + shift.view(shape)).to(x.dtype)


def channel_stats_group_norms(model: nn.Module) -> int:
    """Every ``nn.GroupNorm`` of ``model`` becomes a :class:`ChannelStatsGroupNorm` sharing its parameters."""
    swaps = _children_of_type(model, nn.GroupNorm)
    for parent, name, child in swaps:
        norm = ChannelStatsGroupNorm(child.num_groups, child.num_channels, child.eps, child.affine)
        norm.weight, norm.bias = child.weight, child.bias
        setattr(parent, name, norm)
    return len(swaps)


def fuse_geglu(model: nn.Module) -> int:
    """Every diffusers ``GEGLU`` of ``model`` becomes a :class:`FusedGEGLU`; returns how many."""
    swaps = _children_of_type(model, GEGLU)
    for parent, name, child in swaps:
        setattr(parent, name, FusedGEGLU(child.proj))
    return len(swaps)


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
