"""``cogma screen`` (the app's pipeline without its screens) and ``cogma app`` (the app on a desktop).

Exit status of ``screen``: 0 scored, 1 the recording cannot be scored (reasons printed),
2 unusable input (unreadable video, wrong bundle ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "screen", help="screen a video or a pose recording (.npz) on this computer",
        description="Screen a video of an infant (or a PoseRecording .npz) exactly as the app does: pose "
                    "estimation, quality check, scoring with a model bundle. A screening aid, not a diagnosis.",
    )
    p.add_argument("input", type=Path, help="video (.mp4, .mov, ...) or pose recording (.npz)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="model bundle folder or .zip (default: $COGMA_BUNDLE, else the shipped demo bundle)")
    p.add_argument("--age-weeks", type=float, default=None, help="corrected age in weeks (optional)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_screen)

    p = subparsers.add_parser("app", help="start the screening app on this computer",
                              description="Start the Kivy screening app (desktop: MediaPipe pose, ExecuTorch scorer).")
    p.add_argument("--data-dir", type=Path, default=None, help="where the app keeps its data (default: the user data folder)")
    p.add_argument("--bundle", type=Path, default=None, help="model bundle to use (default: the shipped demo bundle)")
    p.set_defaults(func=_app)


def _progress_printer(enabled: bool, stream):
    last = [-1]

    def show(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if enabled and pct != last[0]:
            last[0] = pct
            print(f"\r{pct:3d}%  {message[:60]:<60}", end="", file=stream, flush=True)

    return show


def format_result(d: dict) -> str:
    lines = []
    if d["not_for_clinical_use"]:
        lines.append(f"*** {d['notice']} ***")
    lines.append(f"input: {d['input']} ({d['input_kind']}, {d['duration_s']:.1f} s, {d['fps']:g} fps, {d['frames']} frames)")
    if d["age_weeks"] is not None:
        lines.append(f"corrected age: {d['age_weeks']:g} weeks")
    if d["scorable"]:
        lo, hi = d["interval"]
        lines.append(f"result: {d['band']} — {d['headline']}")
        lines.append(f"score: {d['risk']:.2f} (likely between {lo:.2f} and {hi:.2f}; decision threshold {d['threshold']:.2f})")
        lines.append(f"next: {d['advice']}")
    else:
        lines.append("result: this recording cannot be scored")
        lines += [f"  - {r}" for r in d["reasons"]]
    lines += [f"  note: {w}" for w in d["warnings"]]
    lines.append(f"model: {d['model_version']}")
    lines.append(d["screening_aid"])
    return "\n".join(lines)


def _screen(args: argparse.Namespace) -> int:
    from skeleton.errors import CogmaError

    from .quiet import native_logs_silenced

    interactive = sys.stderr.isatty() and not args.json
    try:
        with native_logs_silenced() as console:
            from .pipeline import screen

            result = screen(args.input, bundle=args.bundle, progress=_progress_printer(interactive, console),
                            age_weeks=args.age_weeks)
    except CogmaError as e:
        if not args.json:
            raise
        print(json.dumps({"error": str(e), "scorable": False, "input": str(args.input)}))
        return 2
    finally:
        if interactive:
            print(file=sys.stderr)
    d = result.to_dict()
    print(json.dumps(d, indent=2, ensure_ascii=False) if args.json else format_result(d))
    return 0 if result.scorable else 1


def _app(args: argparse.Namespace) -> int:
    from .ui.app import run_app

    run_app(data_dir=args.data_dir, bundle=args.bundle)
    return 0
