"""Probe (H100/H200): candidate GEGLU kernels against the one in use, at the UNet's feed-forward shapes.

The fused GEGLU GEMM of server_animator/animator/kernels.py (two accumulators, gate in the epilogue)
reaches ~300 TFLOP/s at 72x128 latents, where K is only 320: five K steps per tile, so filling and
draining the load pipeline and the erf epilogue weigh as much as the products. Candidate here: a
persistent kernel (one program per SM walks the tiles; ``tl.range(..., flatten=True)`` lets Triton
overlap one tile's epilogue with the next tile's loads) with unmasked K loads when BLOCK_K divides K.
Each candidate is checked against float32 before it is timed; a candidate that wins would move into
kernels.py and its GPU tests. Written in session 6 after its GPU time was spent: so far checked only in
Triton's CPU interpreter (TRITON_INTERPRET=1), never timed.

    python3 benchmarks/animator_probe_geglu.py      # table; writes benchmarks/results/animator_probe_geglu.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import triton
import triton.language as tl
from animator_probe_ops import bench, stock_geglu as stock

OUT = Path(__file__).resolve().parent / "results" / "animator_probe_geglu.json"
LEVELS = [(320, 72, 128), (640, 36, 64), (1280, 18, 32)]  # feed-forward width and latent size per UNet level


def _persistent_configs() -> list:
    shapes = [(128, 128, 64, 3, 8), (128, 128, 64, 4, 8), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4)]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": 8}, num_stages=s, num_warps=w)
            for m, n, k, s, w in shapes]


@triton.autotune(configs=_persistent_configs(), key=["M", "K", "INNER"])
@triton.jit
def geglu_persistent_kernel(x_ptr, w_ptr, b_ptr, o_ptr, M, INNER, stride_xm, NUM_PROGRAMS, K: tl.constexpr,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                            GROUP_M: tl.constexpr):
    blocks_m = tl.cdiv(M, BLOCK_M)
    blocks_n = tl.cdiv(INNER, BLOCK_N)
    per_group = GROUP_M * blocks_n
    ks = tl.arange(0, BLOCK_K)
    for tile in tl.range(tl.program_id(0), blocks_m * blocks_n, NUM_PROGRAMS, flatten=True):
        first_m = (tile // per_group) * GROUP_M
        group_m = min(blocks_m - first_m, GROUP_M)
        pid_m = first_m + (tile % per_group) % group_m
        pid_n = (tile % per_group) // group_m
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        acc_value = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_gate = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k_done in range(0, K, BLOCK_K):
            x_ptrs = x_ptr + rows[:, None] * stride_xm + (k_done + ks)[None, :]
            value_ptrs = w_ptr + cols[None, :] * K + (k_done + ks)[:, None]
            if K % BLOCK_K == 0:  # no K mask: the compiler can vectorise the loads
                x = tl.load(x_ptrs, mask=rows[:, None] < M, other=0.0)
                w_value = tl.load(value_ptrs, mask=cols[None, :] < INNER, other=0.0)
                w_gate = tl.load(value_ptrs + INNER * K, mask=cols[None, :] < INNER, other=0.0)
            else:
                k_in = (k_done + ks) < K
                x = tl.load(x_ptrs, mask=(rows[:, None] < M) & k_in[None, :], other=0.0)
                w_mask = k_in[:, None] & (cols[None, :] < INNER)
                w_value = tl.load(value_ptrs, mask=w_mask, other=0.0)
                w_gate = tl.load(value_ptrs + INNER * K, mask=w_mask, other=0.0)
            acc_value = tl.dot(x, w_value, acc_value)
            acc_gate = tl.dot(x, w_gate, acc_gate)
        value = acc_value + tl.load(b_ptr + cols, mask=cols < INNER, other=0.0).to(tl.float32)[None, :]
        gate = acc_gate + tl.load(b_ptr + INNER + cols, mask=cols < INNER, other=0.0).to(tl.float32)[None, :]
        out = value * (0.5 * gate * (1.0 + tl.math.erf(gate * 0.7071067811865476)))
        inside = (rows[:, None] < M) & (cols[None, :] < INNER)
        tl.store(o_ptr + rows[:, None] * INNER + cols[None, :], out.to(o_ptr.dtype.element_ty), mask=inside)


def geglu_persistent(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    x2 = x.reshape(-1, x.shape[-1])
    m, k = x2.shape
    inner = weight.shape[0] // 2
    out = x.new_empty(m, inner)
    programs = torch.cuda.get_device_properties(x.device).multi_processor_count
    geglu_persistent_kernel[(programs,)](x2, weight, bias, out, m, inner, x2.stride(0), programs, K=k)
    return out.reshape(*x.shape[:-1], inner)


def main() -> int:
    from server_animator.animator.kernels import geglu

    dev, dt = "cuda", torch.bfloat16
    compiled = torch.compile(stock)
    rows = []
    print(f"{'windows':>7} {'C':>5} {'stock':>8} {'in use':>8} {'persistent':>10} {'TFLOP/s in use':>15} "
          f"{'TFLOP/s persistent':>19} {'err in use':>10} {'err persistent':>14}   (ms)")
    for windows in (1, 3):
        for c, h, w in LEVELS:
            tokens = windows * 2 * 16 * h * w  # both guidance branches of 16-frame windows
            x = torch.randn(tokens, c, device=dev, dtype=dt)
            wp = torch.randn(8 * c, c, device=dev, dtype=dt) / c**0.5
            bp = torch.randn(8 * c, device=dev, dtype=dt) * 0.1
            ref = stock(x[:4096].float(), wp.float(), bp.float())
            flop = 2 * tokens * c * 8 * c
            r = {"windows": windows, "C": c, "tokens": tokens,
                 "stock_compiled_ms": bench(lambda: compiled(x, wp, bp)),
                 "in_use_ms": bench(lambda: geglu(x, wp, bp)),
                 "persistent_ms": bench(lambda: geglu_persistent(x, wp, bp)),
                 "in_use_max_err": (geglu(x, wp, bp)[:4096].float() - ref).abs().max().item(),
                 "persistent_max_err": (geglu_persistent(x, wp, bp)[:4096].float() - ref).abs().max().item()}
            r["in_use_tflops"] = flop / r["in_use_ms"] / 1e9
            r["persistent_tflops"] = flop / r["persistent_ms"] / 1e9
            rows.append(r)
            print(f"{windows:>7} {c:>5} {r['stock_compiled_ms']:>8.3f} {r['in_use_ms']:>8.3f} {r['persistent_ms']:>10.3f} "
                  f"{r['in_use_tflops']:>15.0f} {r['persistent_tflops']:>19.0f} {r['in_use_max_err']:>10.2e} "
                  f"{r['persistent_max_err']:>14.2e}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows},
                              indent=1))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
