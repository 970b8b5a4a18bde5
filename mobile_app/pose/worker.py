"""Desktop pose estimation in a separate process (``python -m mobile_app.pose.worker``).

Why a process of its own: MediaPipe keeps about 120 MB of native memory after it is closed, and
the scorer's runtime (ExecuTorch's Python bindings bring in libtorch) needs about 210 MB; in one
process with the Kivy window that peaked near 550 MB. In a worker, MediaPipe's memory goes
back to the system when the worker ends, before the scorer loads, and a crash in native code
becomes a clear message instead of taking the app down.

The worker also opens and decodes the video and draws the capture screen's preview, so the app
process needs neither OpenCV nor MediaPipe on desktops.

Protocol: one JSON object per line on stdout — ``{"progress": f, "message": m}`` while working,
then ``{"done": stats}`` (the recording is written to ``--out``), ``{"preview": framing}`` for
``--preview`` (the picture is written to ``--out`` as PNG), or ``{"error": message, "kind": class name}``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path


from ..errors import PoseError, VideoError
from .backend import Cancelled, PoseBackend, PoseStats, ProgressFn

_POLL_S = 0.2


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _work(args: argparse.Namespace) -> None:
    from .desktop import MediaPipeDesktopBackend, MediaPipeImageDetector

    if args.preview:
        import cv2

        from ..preview import preview_file, preview_frames

        detector = None

        def find(path: Path):
            nonlocal detector
            detector = MediaPipeImageDetector()
            return preview_frames(path, detector)

        try:
            image, framing = preview_file(Path(args.video), find)
        finally:
            if detector is not None:
                detector.close()
        if not cv2.imwrite(args.out, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise PoseError("the preview picture could not be written")
        _emit({"preview": {"ok": framing.ok, "message": framing.message}})
        return
    with MediaPipeDesktopBackend() as backend:
        rec, stats = backend.estimate_video(
            args.video, lambda f, m: _emit({"progress": f, "message": m}), args.fps_max, None, args.age_weeks
        )
    rec.save(args.out)
    _emit({"done": stats.to_dict()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobile_app.pose.worker")
    parser.add_argument("video")
    parser.add_argument("--out", required=True, help="recording (.npz) or, with --preview, picture (.png)")
    parser.add_argument("--fps-max", type=float, default=None)
    parser.add_argument("--age-weeks", type=float, default=None)
    parser.add_argument("--preview", action="store_true")
    args = parser.parse_args(argv)
    from skeleton.errors import CogmaError

    try:
        _work(args)
    except CogmaError as e:
        _emit({"error": str(e), "kind": type(e).__name__})
        return 2
    return 0


class _Worker:
    """One worker process, its output lines read on a thread (portable; no select on pipes)."""

    def __init__(self, args: list[str]):
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mobile_app.pose.worker", *args], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="pose-worker-reader").start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                continue  # a native library wrote to stdout
        self.lines.put(None)

    def messages(self, cancel: threading.Event | None):
        while True:
            if cancel is not None and cancel.is_set():
                self.stop()
                raise Cancelled()
            try:
                msg = self.lines.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if msg is None:
                return
            yield msg

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.stop()
            return -9

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_ERRORS = {"VideoError": VideoError, "PoseError": PoseError}


def _raise(msg: dict) -> None:
    from ..errors import AppError

    raise _ERRORS.get(msg.get("kind"), AppError)(msg["error"])


class IsolatedPoseBackend(PoseBackend):
    """MediaPipe (desktop) in a worker process; same results as :class:`MediaPipeDesktopBackend`."""

    name = "mediapipe-desktop-worker"

    def __init__(self) -> None:
        from .desktop import POSE_MODEL_NAME
        from .model import model_path

        model_path()  # a missing model is reported here, not from inside the worker
        self.pose_model = POSE_MODEL_NAME

    def detect(self, frame):  # pragma: no cover - frames are read by the worker itself
        raise NotImplementedError("the isolated backend works on video files (estimate_video)")

    def estimate_video(self, path, progress: ProgressFn | None = None, fps_max: float | None = None,
                       cancel: threading.Event | None = None, age_weeks: float | None = None):
        import tempfile

        from skeleton.recording import load_recording

        with tempfile.TemporaryDirectory(prefix="cogma-pose-") as tmp:
            out = Path(tmp) / "recording.npz"
            args = [str(Path(path).resolve()), "--out", str(out)]
            if fps_max is not None:
                args += ["--fps-max", repr(float(fps_max))]
            if age_weeks is not None:
                args += ["--age-weeks", repr(age_weeks)]
            worker = _Worker(args)
            stats = None
            try:
                for msg in worker.messages(cancel):
                    if "progress" in msg and progress is not None:
                        progress(msg["progress"], msg["message"])
                    elif "error" in msg:
                        _raise(msg)
                    elif "done" in msg:
                        stats = msg["done"]
            finally:
                code = worker.finish()
            if stats is None or not out.is_file():
                raise PoseError(f"pose estimation stopped unexpectedly (worker exit code {code}); try another video")
            recording = load_recording(out)
        return recording, PoseStats(
            frames=stats["frames"], frames_with_pose=stats["frames_with_pose"],
            frames_with_several=stats["frames_with_several_people"],
            frames_checked_for_people=stats["frames_checked_for_people"], median_brightness=stats["median_brightness"],
        )


def preview_in_worker(path: Path, picture: Path):
    """The capture screen's preview made by a worker: the picture goes to ``picture`` (PNG)."""
    from ..framing import Framing

    worker = _Worker([str(Path(path).resolve()), "--preview", "--out", str(picture)])
    try:
        for msg in worker.messages(None):
            if "error" in msg:
                _raise(msg)
            if "preview" in msg:
                return Framing(bool(msg["preview"]["ok"]), str(msg["preview"]["message"]))
    finally:
        worker.finish()
    raise PoseError("the preview stopped unexpectedly; you can still try to check the video")


if __name__ == "__main__":
    from ..quiet import native_logs_silenced

    with native_logs_silenced():
        code = main()
    sys.exit(code)
