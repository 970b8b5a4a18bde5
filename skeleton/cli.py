"""``cogma synth | synth-cohort | inspect | render`` — the pose contract on the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import CogmaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate one synthetic infant recording (.npz)",
                       description="Generate one synthetic infant movement recording in MediaPipe-33 format. "
                                   "Synthetic data — not for clinical use.")
    p.add_argument("--kind", required=True, help="movement class, e.g. normal_writhing, cramped_synchronized, normal_fidgety")
    p.add_argument("--age-weeks", type=float, required=True, help="corrected age in weeks")
    p.add_argument("--seconds", type=float, default=180.0, help="duration (default 180)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    p.add_argument("--severity", type=float, default=None, help="0..1, how pronounced the class is (default: sampled)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output .npz")
    p.set_defaults(func=_synth)

    p = sub.add_parser("synth-cohort", help="generate a synthetic cohort (many infants, several recordings each)",
                       description="Write <out>/<infant>_<k>.npz recordings and <out>/labels.csv.")
    p.add_argument("--infants", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prevalence", type=float, default=None, help="share of infants with atypical movements")
    p.add_argument("--age-band", choices=("writhing", "fidgety", "mixed"), default=None)
    p.add_argument("--difficulty", choices=("default", "hidden"), default=None)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=_synth_cohort)

    p = sub.add_parser("inspect", help="summary and quality report of a recording",
                       description="Validate a PoseRecording and say whether it can be scored, and why not.")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("render", help="draw a recording's skeleton as an .mp4 video")
    p.add_argument("file", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--style", choices=("overlay", "openpose"), default="overlay",
                   help="overlay: skeleton on grey; openpose: DWPose-style pose images (the animator's input)")
    p.set_defaults(func=_render)


def _synth(args: argparse.Namespace) -> int:
    from .synthetic import synthesize

    rec = synthesize(args.kind, args.age_weeks, args.seconds, args.seed, fps=args.fps, severity=args.severity)
    rec.save(args.out)
    print(f"wrote {args.out}: {rec.num_frames} frames at {rec.fps:g} fps, class {args.kind} "
          f"(synthetic data — not for clinical use)")
    return 0


def _synth_cohort(args: argparse.Namespace) -> int:
    from .synthetic import CohortConfig, generate_cohort

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise CogmaError(f"{args.out} is not an empty folder; choose a new one (a cohort's labels.csv must list "
                         "exactly the recordings beside it)")
    overrides = {k: v for k, v in (("prevalence", args.prevalence), ("age_band", args.age_band),
                                   ("difficulty", args.difficulty)) if v is not None}
    entries = generate_cohort(CohortConfig(n_infants=args.infants, seed=args.seed, **overrides),
                              out_dir=args.out, progress=True)
    atypical = sum(e.label for e in entries)
    print(f"wrote {len(entries)} recordings of {args.infants} infants ({atypical} atypical) "
          f"and labels.csv to {args.out} (synthetic data — not for clinical use)")
    return 0


def summarize(path: Path) -> dict:
    from .quality import assess
    from .recording import load_recording

    rec = load_recording(path)
    report = assess(rec)
    return {
        "file": str(path),
        "schema": rec.schema,
        "frames": rec.num_frames,
        "fps": rec.fps,
        "duration_s": round(rec.duration_s, 2),
        "frame_size": list(rec.frame_size),
        "pose_model": rec.pose_model,
        "device": rec.device,
        "age_weeks": rec.age_weeks,
        "label": rec.label,
        "infant_id": rec.infant_id,
        "synthetic": bool(rec.extra.get("synthetic", False)),
        "quality": report.to_dict(),
    }


def _inspect(args: argparse.Namespace) -> int:
    info = summarize(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    q = info["quality"]
    age = "unknown" if info["age_weeks"] is None else f"{info['age_weeks']:g} weeks (corrected)"
    print(f"{info['file']}: {info['frames']} frames, {info['duration_s']:g} s at {info['fps']:g} fps, "
          f"schema {info['schema']}, {info['frame_size'][0]}x{info['frame_size'][1]}, age {age}"
          + (" — synthetic data, not for clinical use" if info["synthetic"] else ""))
    print("scorable: yes" if q["scorable"] else "scorable: no")
    for line in q["reasons"]:
        print(f"  - {line}")
    for line in q["warnings"]:
        print(f"  note: {line}")
    print("  " + ", ".join(f"{k}={v}" for k, v in q["metrics"].items()))
    return 0


def _render(args: argparse.Namespace) -> int:
    from .drawing import render_video
    from .recording import load_recording

    out = render_video(load_recording(args.file), args.out, style=args.style, progress=True)
    print(f"wrote {out}")
    return 0
