"""Probe (H100): time single UNet-shaped ops in bf16 to see where kernels are slow.

Temporal (3,1,1) convolution as Conv3d on NCDHW / channels_last_3d input vs conv2d (3,1) on a channels-last
view; spatial 3x3 conv for reference; GEGLU as cuBLAS GEMM + elementwise vs GEMM alone; temporal
self-attention (16 frames) through each SDPA backend and the Triton kernel of
server_animator/animator/kernels.py. Batch: both guidance branches of one 16-frame window.
Then GEGLU as it runs compiled (cuBLAS GEMM + one fused elementwise pass) against the fused
Triton GEMM of kernels.py, for one and three windows per call, with each one's error against float32.
Then group norm + SiLU compiled, native against kernels.ChannelStatsGroupNorm, at UNet and VAE-decoder
shapes, channels-last as inductor lays them out, with the time one read and one write would take.

    python3 benchmarks/animator_probe_ops.py --only gn    # one part: ops, geglu or gn

    python3 benchmarks/animator_probe_ops.py        # a table of the main columns; JSON rows as it goes

Writes benchmarks/results/animator_probe_ops.json."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

OUT = Path(__file__).resolve().parent / "results" / "animator_probe_ops.json"
dev, dt = "cuda", torch.bfloat16
LEVELS = [(320, 72, 128), (640, 36, 64), (1280, 18, 32), (1280, 9, 16)]
B, FR = 2, 16


def bench(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n


def main() -> int:
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    torch.backends.cudnn.benchmark = False
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    if only in (None, "ops"):
        result["rows"] = op_rows()
    if only in (None, "geglu"):
        result["geglu"] = geglu_rows()
    if only in (None, "gn"):
        result["group_norm"] = group_norm_rows()
    out = OUT if only is None else OUT.with_name(f"animator_probe_ops_{only}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


def op_rows() -> list[dict]:
    rows = []
    for c, h, w in LEVELS:
        px = B * FR * h * w
        x5 = torch.randn(B, c, FR, h, w, device=dev, dtype=dt)
        w3 = torch.randn(c, c, 3, 1, 1, device=dev, dtype=dt) * 0.02
        x5cl = x5.contiguous(memory_format=torch.channels_last_3d)
        w3cl = w3.contiguous(memory_format=torch.channels_last_3d)
        # channels-last 4D view [B, C, F, HW] of a [B, F, H, W, C] buffer
        x4 = x5.permute(0, 2, 3, 4, 1).contiguous().view(B, FR, h * w, c).permute(0, 3, 1, 2)
        w4 = w3.view(c, c, 3, 1).contiguous(memory_format=torch.channels_last)
        flop_t = 2 * px * c * c * 3
        r = {"C": c, "HxW": f"{h}x{w}", "temporal_gflop": flop_t / 1e9}
        r["conv3d_ncdhw_ms"] = bench(lambda: F.conv3d(x5, w3, padding=(1, 0, 0)))
        r["conv3d_cl3d_ms"] = bench(lambda: F.conv3d(x5cl, w3cl, padding=(1, 0, 0)))
        r["conv2d_cl_view_ms"] = bench(lambda: F.conv2d(x4, w4, padding=(1, 0)))
        xs = torch.randn(B * FR, c, h, w, device=dev, dtype=dt).contiguous(memory_format=torch.channels_last)
        ws = (torch.randn(c, c, 3, 3, device=dev, dtype=dt) * 0.02).contiguous(memory_format=torch.channels_last)
        r["spatial3x3_cl_ms"] = bench(lambda: F.conv2d(xs, ws, padding=1))
        r["spatial_gflop"] = 2 * px * c * c * 9 / 1e9
        # GEGLU feed-forward input: tokens x C -> 8C, then v * gelu(g)
        tok = torch.randn(px, c, device=dev, dtype=dt)
        wp = torch.randn(8 * c, c, device=dev, dtype=dt) * 0.02
        bp = torch.zeros(8 * c, device=dev, dtype=dt)

        def geglu_eltwise(y):
            v, g = y.chunk(2, dim=-1)
            return v * F.gelu(g)

        comp = torch.compile(geglu_eltwise)
        y = F.linear(tok, wp, bp)
        r["geglu_gemm_ms"] = bench(lambda: F.linear(tok, wp, bp))
        r["geglu_eltwise_compiled_ms"] = bench(lambda: comp(y))
        r["geglu_gemm_gflop"] = 2 * px * c * 8 * c / 1e9
        # temporal self-attention: B*H*W sequences of 16 frames, C/64 heads of 64
        heads = c // 64
        q = torch.randn(B * h * w, heads, FR, 64, device=dev, dtype=dt)
        for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                         ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)):
            try:
                with sdpa_kernel([be]):
                    r[f"tattn_{name}_ms"] = bench(lambda: F.scaled_dot_product_attention(q, q, q))
            except RuntimeError as e:
                r[f"tattn_{name}_ms"] = f"n/a ({str(e)[:60]})"
        from server_animator.animator.kernels import short_attention

        qf = q.transpose(1, 2).flatten(2).contiguous()  # [B*H*W, 16, C], as the processor gets it
        r["tattn_triton_ms"] = bench(lambda: short_attention(qf, qf, qf, heads))
        rows.append(r)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    cols = ("conv3d_ncdhw_ms", "conv3d_cl3d_ms", "geglu_gemm_ms", "geglu_eltwise_compiled_ms", "tattn_cudnn_ms",
            "tattn_efficient_ms", "tattn_triton_ms")
    print(f"\n{'C':>5} {'latent':>7} " + " ".join(f"{c.removesuffix('_ms'):>22}" for c in cols) + "   (ms)")
    for r in rows:
        print(f"{r['C']:>5} {r['HxW']:>7} " + " ".join(f"{r[c]:>22.3f}" for c in cols))
    return rows


def stock_geglu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """diffusers' GEGLU: projection, then ``value * gelu(gate)``."""
    value, gate = F.linear(x, w, b).chunk(2, dim=-1)
    return value * F.gelu(gate)


def geglu_rows() -> list[dict]:
    """The feed-forward's GEGLU at each level: compiled stock (GEMM + elementwise) vs the fused Triton GEMM."""
    from server_animator.animator.kernels import geglu

    stock = stock_geglu
    compiled = torch.compile(stock)
    rows = []
    print(f"\n{'windows':>7} {'C':>5} {'tokens':>8} {'stock ms':>9} {'fused ms':>9} {'speed-up':>8} "
          f"{'stock err':>10} {'fused err':>10}")
    for windows in (1, 3):
        for c, h, w in LEVELS[:3]:
            tokens = windows * B * FR * h * w
            x = torch.randn(tokens, c, device=dev, dtype=dt)
            wp = torch.randn(8 * c, c, device=dev, dtype=dt) / c**0.5
            bp = torch.randn(8 * c, device=dev, dtype=dt) * 0.1
            ref = stock(x[:4096].float(), wp.float(), bp.float())
            r = {"windows": windows, "C": c, "tokens": tokens, "gflop": 2 * tokens * c * 8 * c / 1e9,
                 "stock_compiled_ms": bench(lambda: compiled(x, wp, bp)), "fused_ms": bench(lambda: geglu(x, wp, bp)),
                 "stock_max_err": (compiled(x, wp, bp)[:4096].float() - ref).abs().max().item(),
                 "fused_max_err": (geglu(x, wp, bp)[:4096].float() - ref).abs().max().item()}
            rows.append(r)
            print(f"{windows:>7} {c:>5} {tokens:>8} {r['stock_compiled_ms']:>9.3f} {r['fused_ms']:>9.3f} "
                  f"{r['stock_compiled_ms'] / r['fused_ms']:>7.2f}x {r['stock_max_err']:>10.2e} {r['fused_max_err']:>10.2e}",
                  flush=True)
    return rows


def group_norm_rows() -> list[dict]:
    """GroupNorm(32) + SiLU, compiled: the native op against per-channel statistics, channels-last inputs."""
    from torch import nn

    from server_animator.animator.kernels import channel_stats_group_norms

    shapes = [("unet 72x128, 3 windows", (96, 320, 72, 128)), ("unet temporal 72x128", (6, 320, 16, 72, 128)),
              ("unet 36x64, 3 windows", (96, 640, 36, 64)), ("vae 576x1024", (16, 128, 1024, 576)),
              ("vae temporal 576x1024", (4, 128, 4, 1024, 576)), ("vae 288x512", (16, 256, 512, 288)),
              ("vae 144x256", (16, 512, 256, 144))]
    bandwidth = None
    rows = []
    print(f"\n{'where':>24} {'native ms':>10} {'per-channel ms':>15} {'1 read+1 write ms':>18} {'max |diff|':>10}")
    for where, shape in shapes:
        torch._dynamo.reset()  # a fresh compile per row: dynamo's cache limit would send later rows to eager
        layout = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
        x = torch.randn(shape, device=dev, dtype=dt).contiguous(memory_format=layout)
        native = nn.Sequential(nn.GroupNorm(32, shape[1], eps=1e-6), nn.SiLU()).to(dev, dt)
        per_channel = nn.Sequential(nn.GroupNorm(32, shape[1], eps=1e-6), nn.SiLU()).to(dev, dt)
        channel_stats_group_norms(per_channel)
        fn_native, fn_channel = torch.compile(native), torch.compile(per_channel)
        if bandwidth is None:  # a plain copy: what one read and one write cost on this GPU
            bandwidth = x.numel() * x.element_size() * 2 / (bench(lambda: x.clone()) / 1e3)
        with torch.no_grad():
            r = {"where": where, "shape": list(shape), "native_ms": bench(lambda: fn_native(x), 10),
                 "per_channel_ms": bench(lambda: fn_channel(x), 10),
                 "copy_ms": x.numel() * x.element_size() * 2 / bandwidth * 1e3,
                 "max_abs_diff": (fn_native(x).float() - fn_channel(x).float()).abs().max().item()}
        rows.append(r)
        print(f"{where:>24} {r['native_ms']:>10.3f} {r['per_channel_ms']:>15.3f} {r['copy_ms']:>18.3f} "
              f"{r['max_abs_diff']:>10.2e}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
