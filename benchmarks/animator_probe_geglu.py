"""Probe (H100/H200): the fused GEGLU kernels at the UNet's feed-forward shapes.

Times, per UNet level and at 1 and 3 windows per call (both guidance branches of 16-frame windows):
the stock feed-forward under ``torch.compile`` (cuBLAS GEMM, then a fused gate pass), the pointer-fed
autotuned kernel (what GPUs before Hopper run), and the TMA-fed persistent kernel with its fixed tile,
eager and inside ``torch.compile``. Each is checked against float32 first. It also records the
autotuner's pick for the pointer-fed kernel.

Session 7's first run (``results/animator_probe_geglu_candidates.json``, H100) compared the pointer-fed
kernel with three candidates: a persistent pointer-fed kernel (1.03-1.07x), a TMA-fed kernel with one program
per tile (0.74-0.91x) and the TMA-fed persistent kernel (1.05-1.13x), each autotuned over several tiles. The last
picked 128x128x64 at every level and went into kernels.py with that tile fixed.

    python3 benchmarks/animator_probe_geglu.py      # table; writes benchmarks/results/animator_probe_geglu.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import triton
from animator_probe_ops import bench, stock_geglu as stock

OUT = Path(__file__).resolve().parent / "results" / "animator_probe_geglu.json"
LEVELS = [(320, 72, 128), (640, 36, 64), (1280, 18, 32)]  # feed-forward width and latent size per UNet level


def main() -> int:
    from server_animator.animator import kernels

    def pointer_fed(x, w, b):
        uses_tma = kernels.geglu_uses_tma
        kernels.geglu_uses_tma = lambda hidden_states, weight: False
        try:
            return kernels.geglu(x, w, b)
        finally:
            kernels.geglu_uses_tma = uses_tma

    dev, dt = "cuda", torch.bfloat16
    candidates = {"stock_compiled": torch.compile(stock), "pointer": pointer_fed, "tma": kernels.geglu,
                  "tma_in_compile": torch.compile(kernels.geglu)}
    rows = []
    print(f"{'windows':>7} {'C':>5} " + " ".join(f"{name:>20}" for name in candidates) + "   ms (TFLOP/s) [max err]")
    for windows in (1, 3):
        for c, h, w in LEVELS:
            tokens = windows * 2 * 16 * h * w
            x = torch.randn(tokens, c, device=dev, dtype=dt)
            wp = torch.randn(8 * c, c, device=dev, dtype=dt) / c**0.5
            bp = torch.randn(8 * c, device=dev, dtype=dt) * 0.1
            ref = stock(x[:4096].float(), wp.float(), bp.float())
            flop = 2 * tokens * c * 8 * c
            row = {"windows": windows, "C": c, "tokens": tokens}
            cells = []
            for name, fn in candidates.items():
                err = (fn(x, wp, bp)[:4096].float() - ref).abs().max().item()
                ms = bench(lambda: fn(x, wp, bp))
                row[name] = {"ms": ms, "tflops": flop / ms / 1e9, "max_err": err}
                cells.append(f"{ms:>6.3f} ({flop / ms / 1e9:>3.0f}) [{err:.0e}]")
            rows.append(row)
            print(f"{windows:>7} {c:>5} " + " ".join(cells), flush=True)
    picks = {str(key): str(config) for key, config in kernels._geglu_kernel.cache.items()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                               "triton": triton.__version__, "tma_tile": kernels.GEGLU_TMA_TILE, "rows": rows,
                               "pointer_autotuner_picks": picks}, indent=1))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
