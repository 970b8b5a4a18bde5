"""App start-up time (target <= 3 s) and the app's peak memory while it works (target <= 500 MB).

Start-up: from launching a fresh Python process to the first frame of the welcome screen drawn
by the real Kivy app (headless: Kivy's offscreen SDL window, Mesa llvmpipe), median of several
runs. Memory: the same app then checks a 60 s video of a real person (MediaPipe) and scores a
synthetic recording (ExecuTorch), as a user would. Reported: the maximum resident set of the app
process, of its largest worker process (pose: MediaPipe; scoring: ExecuTorch with libtorch), and
of all of them together, sampled every 0.1 s.

    .venv/bin/python benchmarks/app_start.py [--runs 5] [--out benchmarks/results/app_start.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.process_memory import TreeSampler  # noqa: E402


CHILD = r"""
import os, sys, time, resource, threading
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_NO_CONSOLELOG"] = "1"
import mobile_app.ui
from mobile_app.ui.app import CogmaApp
from kivy.clock import Clock
from kivy.core.window import Window

mode, data_dir, video, recording = sys.argv[1:5]

class Bench(CogmaApp):
    def on_start(self):
        Window.bind(on_flip=self._first_frame)

    def _first_frame(self, *_):
        Window.unbind(on_flip=self._first_frame)
        print("FIRST_FRAME", flush=True)
        if mode == "start":
            Clock.schedule_once(lambda dt: self.stop(), 0)
        else:
            Clock.schedule_once(lambda dt: self._work(), 0)

    def _work(self):
        def run():
            from pathlib import Path
            for path in (video, recording):
                screen = self.sm.get_screen("processing")
                Clock.schedule_once(lambda dt, p=path: self.start_processing(Path(p)), 0)
                time.sleep(0.5)
                screen.done.wait(600)
                print("DONE", path, screen.outcome, flush=True)
            Clock.schedule_once(lambda dt: self.stop(), 0)
        threading.Thread(target=run, daemon=True).start()

Bench(data_dir=data_dir, transitions=False).run()
print("PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, flush=True)
print("WORKER_PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, flush=True)
"""


def run_child(mode: str, data_dir: Path, video: str = "", recording: str = "", timeout: float = 900) -> tuple[float, list[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(data_dir), video, recording], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sampler = TreeSampler(proc.pid)
    first = None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith("FIRST_FRAME") and first is None:
            first = time.perf_counter() - t0
    proc.wait(timeout)
    lines.append(f"TREE_PEAK_RSS_MB {sampler.stop()}")
    if first is None:
        sys.exit(f"the app did not draw a frame: {lines[-5:]}")
    return first, lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--video-seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "app_start.json")
    args = parser.parse_args(argv)

    from mobile_app.sample_media import make_video
    from skeleton.synthetic import synthesize
    from skeleton.synthetic.capture import CaptureConditions

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_child("start", tmp / "warm")  # first launch fills the OS file cache; not counted
        starts = [run_child("start", tmp / f"data{i}")[0] for i in range(args.runs)]
        video = make_video(tmp / "person.mp4", ["astronaut"], args.video_seconds)
        rec = synthesize("normal_fidgety", 12.0, 75.0, seed=1, capture=CaptureConditions.clean(frame_size=(720, 1280)))
        rec_path = rec.save(tmp / "typical.npz")
        _, lines = run_child("work", tmp / "work", str(video), str(rec_path))
    peak = next(float(line.split()[1]) for line in lines if line.startswith("PEAK_RSS_MB"))
    worker_peak = next(float(line.split()[1]) for line in lines if line.startswith("WORKER_PEAK_RSS_MB"))
    tree_peak = next(float(line.split()[1]) for line in lines if line.startswith("TREE_PEAK_RSS_MB"))
    outcomes = [line for line in lines if line.startswith("DONE")]
    result = {
        "benchmark": "app_start",
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores; headless Kivy (offscreen SDL, Mesa llvmpipe)",
        "load_average_at_start": load,
        "start_s": starts,
        "start_median_s": statistics.median(starts),
        "work": outcomes,
        "peak_rss_mb_while_working": peak,
        "largest_worker_peak_rss_mb": worker_peak,
        "peak_rss_mb_all_processes": tree_peak,
        "targets": {"start_s": 3.0, "peak_rss_mb": 500},
    }
    print(f"app start to first frame: median {result['start_median_s']:.2f} s  (runs: {', '.join(f'{s:.2f}' for s in starts)})")
    print(f"peak memory, app checking a {args.video_seconds:g} s video and scoring a recording: {peak:.0f} MB "
          f"(largest worker process: {worker_peak:.0f} MB; app and workers together, sampled: {tree_peak:.0f} MB)")
    for line in outcomes:
        print("  ", line)
    print(f"load average at start {load:.2f}; {result['machine']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
