"""Generating, saving and loading a 3-minute 30 fps recording (target: well under a second each).

Usage: python benchmarks/recording_io.py [--repeats 5] [--seconds 180] [--fps 30]
Prints a table and writes benchmarks/results/recording_io.json. numpy/scipy only, one thread
(OMP_NUM_THREADS=1), no torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from skeleton.kinematics import kinematic_features
from skeleton.quality import assess
from skeleton.recording import load_recording
from skeleton.synthetic import GENERATOR_VERSION, MOVEMENT_CLASSES, synthesize

RESULTS = Path(__file__).parent / "results" / "recording_io.json"


def _time(fn, repeats: int) -> tuple[float, float, object]:
    """(median s, max s, last result) over ``repeats`` runs after one warm-up."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--fps", type=float, default=30.0)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in MOVEMENT_CLASSES:
            age = 13.0 if "fidgety" in kind else 3.0
            med, worst, rec = _time(lambda: synthesize(kind, age, args.seconds, seed=7, fps=args.fps), args.repeats)
            rows.append({"step": f"synthesize {kind}", "median_s": med, "max_s": worst})
        path = Path(tmp) / "rec.npz"
        med, worst, _ = _time(lambda: rec.save(path), args.repeats)
        rows.append({"step": "save (.npz, compressed, atomic)", "median_s": med, "max_s": worst})
        med, worst, _ = _time(lambda: load_recording(path), args.repeats)
        rows.append({"step": "load_recording (path, validated)", "median_s": med, "max_s": worst})
        data = path.read_bytes()
        med, worst, _ = _time(lambda: load_recording(data), args.repeats)
        rows.append({"step": "load_recording (bytes, validated)", "median_s": med, "max_s": worst})
        med, worst, _ = _time(lambda: assess(rec), args.repeats)
        rows.append({"step": "quality.assess", "median_s": med, "max_s": worst})
        med, worst, _ = _time(lambda: kinematic_features(rec), args.repeats)
        rows.append({"step": "kinematic_features", "median_s": med, "max_s": worst})
        size = len(data)
    print(f"recording I/O — {rec.num_frames} frames ({args.seconds:g} s at {args.fps:g} fps, 33 joints), "
          f"generator {GENERATOR_VERSION}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"one thread; load average {os.getloadavg()[0]:.1f} (the machine may be shared)")
    print(f"{'step':42s}{'median':>10s}{'max':>10s}")
    for r in rows:
        print(f"{r['step']:42s}{r['median_s'] * 1000:8.1f} ms{r['max_s'] * 1000:8.1f} ms")
    print(f"file size: {size / 1024:.0f} KiB")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "frames": rec.num_frames, "seconds": args.seconds, "fps": args.fps, "repeats": args.repeats,
        "file_bytes": size, "generator_version": GENERATOR_VERSION, "machine": platform.platform(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "rows": rows,
    }, indent=1))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
