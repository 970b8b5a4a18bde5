"""Screening a 3-minute 640x480 30 fps video end to end on this CPU (target: no longer than the
video, 180 s) and the peak memory of doing so (target <= 500 MB).

Runs the same pipeline as ``cogma screen`` in a fresh process: open and verify the bundle, load
the ExecuTorch runtime, decode, MediaPipe pose (VIDEO mode, 2 poses), quality check. The video
shows a real person (scikit-image's astronaut photograph), who is seen only from the waist up,
so the quality check rightly refuses to score it; the score of that very recording through the
bundle's ExecuTorch program is then timed on its own and added, so the figure covers every
stage a scorable video goes through. Peak memory: the maximum resident set of the screening
process, and of its pose worker (the two do not peak at the same time: the worker has ended
before the scorer's runtime loads).

    .venv/bin/python benchmarks/app_screen.py [--seconds 180] [--out benchmarks/results/app_screen.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.process_memory import TreeSampler  # noqa: E402


CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from mobile_app.quiet import native_logs_silenced
with native_logs_silenced():
    import torch
    torch.set_num_threads(1)
    from mobile_app.pipeline import screen
    from mobile_app.scoring import open_scorer
    t_load = time.perf_counter()
    scorer = open_scorer(sys.argv[2] or None)
    t_scorer = time.perf_counter() - t_load
    result = screen(sys.argv[1], scorer=scorer)
    t_pipeline = time.perf_counter() - t0
    rec = result.recording
    n = min(rec.num_frames, scorer.bundle.input_contract.max_frames)
    from dataclasses import replace
    rec = replace(rec, keypoints=rec.keypoints[:n])
    t1 = time.perf_counter()
    score = scorer.score(rec)
    t_score = time.perf_counter() - t1
print(json.dumps({
    "frames": result.frames, "fps": result.fps, "scorable": result.scorable, "reasons": result.reasons,
    "pose_s": result.timings_s["pose"], "pipeline_total_s": t_pipeline, "scorer_load_s": t_scorer,
    "score_s": t_score, "score": [score.risk, score.low, score.high], "model_version": result.model_version,
    "end_to_end_s": t_pipeline + t_score, "cpu_s": time.process_time(),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "pose_worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,  # the only child
}))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--bundle", default="", help="model bundle (default: the shipped demo bundle)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "app_screen.json")
    args = parser.parse_args(argv)
    if args.seconds < 60.0:  # the score of the recording is timed too, and the model needs a scorable length
        parser.error("--seconds must be at least 60 (a shorter recording is not scored)")

    from mobile_app.sample_media import FRAME_SIZE, make_video

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        video = make_video(Path(tmp) / "three_minutes.mp4", ["astronaut"], args.seconds, fps=30.0)
        made_s = time.perf_counter() - t
        load = os.getloadavg()[0]
        wall0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(video), args.bundle], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        sampler = TreeSampler(proc.pid)
        out, err = proc.communicate()
        tree_peak = sampler.stop()
        wall = time.perf_counter() - wall0
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if done.returncode != 0:
        sys.exit(f"screening failed:\n{done.stderr[-3000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "benchmark": "app_screen",
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "load_average_at_start": load,
        "threads": "OMP_NUM_THREADS=1, torch.set_num_threads(1)",
        "video": {"seconds": args.seconds, "fps": 30.0, "frame_size": list(FRAME_SIZE), "made_in_s": made_s},
        "process_wall_s": wall,  # including Python start-up and imports
        **child,
        "real_time_factor": child["end_to_end_s"] / args.seconds,
        "peak_rss_mb_all_processes": tree_peak,
        "targets": {"end_to_end_s": args.seconds, "peak_rss_mb": 500},
    }
    rows = [
        ("bundle verify (the runtime loads at the first score)", child["scorer_load_s"]),
        (f"decode + pose ({child['frames']} frames)", child["pose_s"]),
        ("pipeline total (incl. imports, quality check)", child["pipeline_total_s"]),
        ("scoring: load model.pte + run (ExecuTorch)", child["score_s"]),
        ("end to end", child["end_to_end_s"]),
        ("whole process (Python start-up included)", wall),
    ]
    for name, secs in rows:
        print(f"{name:<50}{secs:>9.2f} s")
    print(f"{'video length':<50}{args.seconds:>9.2f} s   (real-time factor {result['real_time_factor']:.2f})")
    print(f"{'peak memory, screening process (max RSS)':<50}{child['peak_rss_mb']:>9.0f} MB")
    print(f"{'peak memory, pose worker process (max RSS)':<50}{child['pose_worker_peak_rss_mb']:>9.0f} MB")
    print(f"{'peak memory, both together (sampled every 0.1 s)':<50}{tree_peak:>9.0f} MB")
    print(f"load average at start {load:.2f}; {result['machine']}; one torch thread")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
