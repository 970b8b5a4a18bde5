"""Where the time goes inside a bundle's ExecuTorch program: per-operator profile of one scoring
call (3-minute 30 fps recording, one thread), from the runtime's ETDump read by the Inspector.

    .venv/bin/python benchmarks/export_profile.py [--bundle export/demo_bundle] [--program model.pte]

Five calls are profiled and the median of each event is kept (the first call also pays for touching
the planned memory for the first time). Operators are grouped by name: ``native_call_*`` are ExecuTorch portable kernels (not delegated to
XNNPACK); the others are XNNPACK operators inside delegate calls. Writes
benchmarks/results/export_profile.json and prints the table.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
_SKIP = {"Method::execute", "DELEGATE_CALL", "OPERATOR_CALL", "Program::load_method", "Method::init"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=REPO / "export" / "demo_bundle")
    ap.add_argument("--program", default="model.pte")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "export_profile.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    from export.bundle import load_bundle
    from export.runtime import set_runtime_threads
    from skeleton.synthetic import synthesize

    set_runtime_threads(1)
    bundle = load_bundle(args.bundle)
    rec = synthesize("normal_writhing", 4.0, 180.0, seed=0, fps=30.0)
    bundle.check_recording(rec)
    x, f = torch.from_numpy(np.ascontiguousarray(rec.keypoints))[None], torch.tensor([rec.fps])
    program = Runtime.get().load_program(bundle.path(args.program).read_bytes(), enable_etdump=True)
    method = program.load_method("forward")
    for _ in range(5):  # the first call pays for first-touch of the planned memory; medians below
        method.execute([x, f])
    with tempfile.TemporaryDirectory() as tmp:
        etdump = Path(tmp) / "run.etdp"
        program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
        inspector = Inspector(etdump_path=str(etdump))
    total_ms, by_op, count = 0.0, collections.Counter(), collections.Counter()
    for block in inspector.event_blocks:
        for ev in block.events:
            if ev.perf_data is None:
                continue
            if ev.name == "Method::execute":
                total_ms += float(ev.perf_data.p50)
            elif ev.name not in _SKIP:
                name = ev.name.split(" #")[0]
                by_op[name] += float(ev.perf_data.p50)
                count[name] += 1
    rows = [{"op": k, "ms": v, "share": v / total_ms, "calls": count[k],
             "where": "portable kernel" if k.startswith("native_call_") else "XNNPACK"} for k, v in by_op.most_common()]
    result = {"bundle": str(args.bundle), "program": args.program, "model_version": bundle.version,
              "input": f"{rec.num_frames} frames at {rec.fps:g} fps", "execute_ms": total_ms,
              "portable_ms": sum(r["ms"] for r in rows if r["where"] == "portable kernel"), "ops": rows,
              "threads": "torch 1, ExecuTorch 1", "load_average": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.program} of {bundle.version}: median call on {result['input']} = {total_ms:.1f} ms "
          f"({result['portable_ms']:.1f} ms in portable kernels); one thread, load {result['load_average'][0]:.1f}")
    print(f"{'operator':<40}{'where':<17}{'calls':>6}{'ms':>9}{'share':>8}")
    for r in rows[:20]:
        print(f"{r['op'][:39]:<40}{r['where']:<17}{r['calls']:>6}{r['ms']:>9.1f}{100 * r['share']:>7.1f}%")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
