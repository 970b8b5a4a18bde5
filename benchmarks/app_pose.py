"""Pose extraction speed of the app's desktop backend on 640x480 video (target >= 30 frames/s).

A video assembled from scikit-image's astronaut photograph (a real person; the photo sways so the
tracker works as on a real video) is decoded with OpenCV and run through MediaPipe Tasks
PoseLandmarker in VIDEO mode, exactly as ``cogma screen`` does. Reported: frames per second
end to end (decode + pose + bookkeeping), decoding alone, and the app's set-up (one pose tracked,
every 10th frame searched for a second person) against tracking two poses on every frame and
against no people check at all. CPU time is reported beside wall time because the
machine may be shared.

    .venv/bin/python benchmarks/app_pose.py [--seconds 20] [--out benchmarks/results/app_pose.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "app_pose.json")
    args = parser.parse_args(argv)

    from mobile_app.pose.desktop import MediaPipeDesktopBackend
    from mobile_app.quiet import native_logs_silenced
    from mobile_app.sample_media import FRAME_SIZE, make_video
    from mobile_app.video import VideoFile

    rows = []
    with tempfile.TemporaryDirectory() as tmp, native_logs_silenced() as console:
        video = make_video(Path(tmp) / "astronaut.mp4", ["astronaut"], args.seconds, fps=30.0)
        n = VideoFile(video).info.frame_count

        def decode_only() -> int:
            return sum(1 for _ in VideoFile(video).frames())

        _, wall, cpu = timed(decode_only)
        rows.append({"what": "decode 640x480 (OpenCV)", "frames": n, "wall_s": wall, "cpu_s": cpu})
        variants = (
            ("decode + pose: 1 tracked, people check /10 (app)", dict(num_poses=1)),
            ("decode + pose: 2 tracked on every frame", dict(num_poses=2)),
            ("decode + pose: 1 tracked, no people check", dict(num_poses=1, people_check_every=None)),
        )
        for label, kwargs in variants:
            backend = MediaPipeDesktopBackend(**kwargs)
            try:
                (rec, stats), wall, cpu = timed(lambda: backend.estimate(VideoFile(video)))
            finally:
                backend.close()
            rows.append({"what": label, "frames": rec.num_frames, "wall_s": wall, "cpu_s": cpu,
                         "frames_with_pose": stats.frames_with_pose})
        for r in rows:
            r["fps"] = r["frames"] / r["wall_s"]
            r["ms_per_frame"] = 1000 * r["wall_s"] / r["frames"]
        result = {
            "benchmark": "app_pose",
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores ({platform.processor() or 'unknown'})",
            "load_average_at_start": os.getloadavg()[0],
            "threads": "OMP_NUM_THREADS=1; MediaPipe's own XNNPACK threads as it chooses",
            "frame_size": list(FRAME_SIZE),
            "video_seconds": args.seconds,
            "target_fps": 30.0,
            "rows": rows,
        }
        print(f"{'':<52}{'frames':>7}{'fps':>8}{'ms/frame':>10}{'cpu s':>8}", file=console)
        for r in rows:
            print(f"{r['what']:<52}{r['frames']:>7}{r['fps']:>8.1f}{r['ms_per_frame']:>10.1f}{r['cpu_s']:>8.1f}", file=console)
        print(f"load average at start: {result['load_average_at_start']:.2f} ({result['machine']})", file=console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
