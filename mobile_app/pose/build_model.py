"""Set-up step: build the PoseLandmarker model file (``python -m mobile_app.pose.build_model``).

Idempotent: returns at once when the model is already built and intact.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from skeleton.errors import CogmaError

from .model import build_model, model_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobile_app.pose.build_model", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help=f"output folder (default {model_dir()})")
    parser.add_argument("--wheel", type=Path, default=None, help="use this mediapipe 0.10.21 wheel instead of pip download")
    parser.add_argument("--force", action="store_true", help="rebuild even if the model is there")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        path = build_model(args.dir, args.wheel, args.force)
    except CogmaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"pose model ready: {path} ({time.perf_counter() - start:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
