"""Keep native libraries' log lines (MediaPipe/absl, TFLite, ExecuTorch's cpuinfo, FFmpeg) off
the command line's error stream, so a user sees our one-line messages only.

The native code writes to file descriptor 2 directly; Python's ``sys.stderr`` is moved to a copy
of the original descriptor meanwhile, so our own messages still show. ``COGMA_DEBUG=1`` keeps
the native lines.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, TextIO

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg: quiet ("moov atom not found" ...)
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def _flush_c_streams() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def native_logs_silenced() -> Iterator[TextIO]:
    """Within: file descriptor 2 and ``sys.stderr`` go to /dev/null (ExecuTorch's bindings print
    through ``sys.stderr``, MediaPipe and FFmpeg through the descriptor). Yields a stream on the
    real error output for the caller's own progress lines."""
    if os.environ.get("COGMA_DEBUG"):
        yield sys.stderr
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (pytest capture, IDEs)
        yield sys.stderr
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    old_stderr = sys.stderr
    console = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        os.dup2(devnull, 2)
        sys.stderr = open(os.devnull, "w")
        yield console
    finally:
        _flush_c_streams()  # native lines still buffered in C/C++ streams go to /dev/null too
        sys.stderr.close()
        sys.stderr = old_stderr
        console.close()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
