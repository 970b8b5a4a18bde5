"""Model bundle figures: file sizes, latency of scoring a 3-minute 30 fps recording through the
ExecuTorch runtime (fp32 and int8) vs eager PyTorch, and peak memory — in one run, one thread.

    .venv/bin/python benchmarks/export_bundle.py [--bundle export/demo_bundle] [--checkpoint PATH]

Latency: median of ``--rounds`` x 5 calls per engine after two warm-up calls, on one synthetic
recording (skeleton.synthetic, normal writhing, 180 s at 30 fps). The engines take turns, five calls
each per round, so a slow spell of the machine hits all of them alike. torch uses one intra-op
thread and ExecuTorch's XNNPACK thread pool is set to one thread, so the ratio compares like with
like. Both engines score the same input as it arrives (eager: the tensor, ``.pte``:
``PteRunner.run_unchecked`` on the array, which wraps it as a tensor and checks the three scores
that come back). The input-contract check (shape, frame count, fps, finite values), which
``PteRunner.run`` and ``cogma screen`` do once per recording whatever the engine, is timed on its
own row and not counted in either engine's latency.

Peak memory: each engine runs in a fresh subprocess that imports everything first, then reads
VmRSS, loads the model, scores the recording once, and reads VmHWM (the kernel's peak resident
set). "peak RSS" is VmHWM; "added" is VmHWM minus the RSS after imports — the memory the model
and one scoring call take on top of the Python process.

Writes benchmarks/results/export_bundle.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "export_bundle.json"
SECONDS, FPS = 180.0, 30.0
TARGETS = {"fp32_pte_bytes": 1_000_000, "int8_pte_bytes": 300_000, "latency_ms": 20.0, "speedup": 2.0}


def recording():
    from skeleton.synthetic import synthesize

    return synthesize("normal_writhing", 4.0, SECONDS, seed=0, fps=FPS)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _child(engine: str, bundle: str, checkpoint: str) -> None:
    """Runs in a fresh process: import, load one engine, score once, report memory."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from export.bundle import load_bundle
    from export.runtime import PteRunner, set_runtime_threads
    from training.models.student import load_student

    set_runtime_threads(1)
    rec = recording()
    kp = np.ascontiguousarray(rec.keypoints)
    before = _rss_kb("VmRSS")
    if engine == "eager":
        model, _ = load_student(checkpoint)
        with torch.no_grad():
            model(torch.from_numpy(kp)[None], torch.tensor([rec.fps]))
    else:
        runner = PteRunner.from_bundle(load_bundle(bundle), engine)
        runner.run(kp, rec.fps)
    print(json.dumps({"rss_after_imports_kb": before, "peak_rss_kb": _rss_kb("VmHWM")}))


def memory(engine: str, bundle: Path, checkpoint: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", engine, "--bundle", str(bundle), "--checkpoint", str(checkpoint)],
                         capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    m = json.loads(out.stdout.strip().splitlines()[-1])
    return {"peak_rss_mb": m["peak_rss_kb"] / 1024, "added_mb": (m["peak_rss_kb"] - m["rss_after_imports_kb"]) / 1024}


def timed(fns: dict[str, Callable[[], object]], rounds: int, per_round: int = 5) -> dict:
    """Latency of each function, in turns: ``per_round`` calls of each, ``rounds`` times."""
    for fn in fns.values():
        fn(), fn()  # warm-up: first calls allocate and pack weights
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per_round):
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1000)
    return {name: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "repeats": len(v)}
            for name, v in times.items()}


def sizes(bundle: Path) -> dict:
    def total(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size

    return {p.name: total(p) for p in sorted(bundle.iterdir())} | {"bundle_total": total(bundle)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=REPO / "export" / "demo_bundle")
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the checkpoint named in the manifest")
    ap.add_argument("--rounds", type=int, default=8, help="turns of 5 calls per engine (default 8)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, str(args.bundle), str(args.checkpoint))
        return 0

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from export.bundle import MODEL_INT8_PTE, MODEL_PTE, check_landmarks, load_bundle
    from export.runtime import PteRunner, runtime_threads, set_runtime_threads
    from training.models.student import load_student

    set_runtime_threads(1)
    bundle = load_bundle(args.bundle)
    checkpoint = args.checkpoint or REPO / bundle.manifest["source"]["checkpoint"]["path"]
    model, _ = load_student(checkpoint)
    rec = recording()
    kp = np.ascontiguousarray(rec.keypoints)
    x, f = torch.from_numpy(kp)[None], torch.tensor([rec.fps])
    fp32, int8 = PteRunner.from_bundle(bundle, MODEL_PTE), PteRunner.from_bundle(bundle, MODEL_INT8_PTE)

    def eager():
        with torch.no_grad():
            return model(x, f)

    latency = timed({
        "eager_torch": eager,
        "pte_fp32": lambda: fp32.run_unchecked(kp, rec.fps),
        "pte_int8": lambda: int8.run_unchecked(kp, rec.fps),
        "input_check": lambda: check_landmarks(kp, rec.fps, bundle.input_contract),
        "pte_fp32_checked": lambda: fp32.run(kp, rec.fps),
    }, args.rounds)
    mem = {name: memory(name, args.bundle, checkpoint) for name in ("eager", MODEL_PTE, MODEL_INT8_PTE)}
    size = sizes(args.bundle)
    eager_ms = latency["eager_torch"]["median_ms"]
    result = {
        "bundle": str(args.bundle), "model_version": bundle.version,
        "input": f"synthetic normal writhing, {SECONDS:g} s at {FPS:g} fps = {rec.num_frames} frames",
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg(), "torch_threads": torch.get_num_threads(),
                    "executorch_threads": runtime_threads()},
        "sizes_bytes": size, "latency": latency,
        "speedup_vs_eager": {k: eager_ms / latency[k]["median_ms"] for k in ("pte_fp32", "pte_int8")},
        "memory": mem, "memory_method": "VmHWM of a fresh subprocess per engine; added = VmHWM - VmRSS after imports",
        "targets": TARGETS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwrote {args.out}")
    return 0


def table(r: dict) -> str:
    s, lat, sp, mem = r["sizes_bytes"], r["latency"], r["speedup_vs_eager"], r["memory"]
    t = TARGETS
    rows = [
        f"CoGMA bundle {r['model_version']} — {r['input']}",
        f"{r['machine']['cpu']}, {r['machine']['cores']} cores, load {r['machine']['load_average_at_start'][0]:.1f}; "
        f"torch threads {r['machine']['torch_threads']}, ExecuTorch threads {r['machine']['executorch_threads']}",
        "",
        f"{'':<22}{'size':>10}{'latency (median)':>19}{'vs eager':>10}{'peak RSS':>10}{'added':>9}",
        f"{'eager PyTorch':<22}{'':>10}{lat['eager_torch']['median_ms']:>16.1f} ms{'1.00x':>10}"
        f"{mem['eager']['peak_rss_mb']:>7.0f} MB{mem['eager']['added_mb']:>6.0f} MB",
        f"{'model.pte (fp32)':<22}{s['model.pte'] / 1024:>7.0f} KB{lat['pte_fp32']['median_ms']:>16.1f} ms"
        f"{sp['pte_fp32']:>9.2f}x{mem['model.pte']['peak_rss_mb']:>7.0f} MB{mem['model.pte']['added_mb']:>6.0f} MB",
        f"{'model_int8.pte':<22}{s['model_int8.pte'] / 1024:>7.0f} KB{lat['pte_int8']['median_ms']:>16.1f} ms"
        f"{sp['pte_int8']:>9.2f}x{mem['model_int8.pte']['peak_rss_mb']:>7.0f} MB{mem['model_int8.pte']['added_mb']:>6.0f} MB",
        f"{'input check (either)':<22}{'':>10}{lat['input_check']['median_ms']:>16.1f} ms",
        f"{'model.pte + check':<22}{'':>10}{lat['pte_fp32_checked']['median_ms']:>16.1f} ms"
        f"{lat['eager_torch']['median_ms'] / lat['pte_fp32_checked']['median_ms']:>9.2f}x"
        "  (PteRunner.run: check, then score)",
        f"{'model.mlpackage':<22}{s['model.mlpackage'] / 1024:>7.0f} KB{'(macOS only)':>19}",
        f"{'model_bundled.bpte':<22}{s['model_bundled.bpte'] / 1024:>7.0f} KB",
        f"{'whole bundle':<22}{s['bundle_total'] / 1024:>7.0f} KB",
        "",
        f"targets: fp32 .pte <= {t['fp32_pte_bytes'] / 1e6:g} MB "
        f"[{'met' if s['model.pte'] <= t['fp32_pte_bytes'] else 'MISSED'}], "
        f"int8 <= {t['int8_pte_bytes'] / 1e3:g} KB [{'met' if s['model_int8.pte'] <= t['int8_pte_bytes'] else 'MISSED'}], "
        f"latency <= {t['latency_ms']:g} ms [{'met' if min(lat['pte_fp32']['median_ms'], lat['pte_int8']['median_ms']) <= t['latency_ms'] else 'MISSED'}], "
        f">= {t['speedup']:g}x eager [{'met' if max(sp.values()) >= t['speedup'] else 'MISSED'}]",
        f"memory: {r['memory_method']}",
    ]
    return "\n".join(rows)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
