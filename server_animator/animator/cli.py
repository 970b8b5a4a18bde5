"""``cogma animate FILE.npz --out VIDEO.mp4 [--weights DIR]``: one recording -> anonymized video + QA report.

The server's ``server_animator/cli.py`` wires it with ``register_animate(subparsers)``.
Importing this module is light; torch and diffusers load when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

WEIGHTS_ENV = "COGMA_ANIMATOR_WEIGHTS"


def register_animate(subparsers) -> None:  # noqa: ANN001
    p = subparsers.add_parser(
        "animate",
        help="animate a synthetic reference infant with a recording's movements (anonymized video + QA)",
        description=(
            "Generate a video of the shipped synthetic reference infant moving like the recording "
            "(InfantAnimator on SVD-xt), then check it: pose re-extracted from the video must match the "
            "recording. Writes VIDEO and VIDEO.qa.json. Weights come from a local directory only."
        ),
    )
    p.add_argument("recording", metavar="FILE.npz", help="a PoseRecording")
    p.add_argument("--out", required=True, metavar="VIDEO.mp4", help="where to write the video")
    p.add_argument("--weights", metavar="DIR", help=f"SVD-xt base + InfantAnimator checkpoints, or a converted "
                                                    f"pipeline (default ${WEIGHTS_ENV})")
    p.add_argument("--random-weights", choices=("tiny", "svd-xt"),
                   help="random weights instead (tests and benchmarks only: the video is noise)")
    p.add_argument("--reference", metavar="IMAGE", help="reference picture (default: the synthetic infant)")
    p.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="576x1024", metavar="WxH", help="video size (default 576x1024)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), help="default bf16 on a GPU, fp32 on the CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet and VAE (GPU; slow first run)")
    p.add_argument("--pose-model", metavar="TASK", help="MediaPipe pose .task for the QA (default $COGMA_POSE_MODEL "
                                                        "or the app's built model)")
    p.add_argument("--face-model", metavar="DIR", help="insightface model directory for the identity check")
    p.add_argument("--max-frames", type=int, default=1800, help="refuse longer recordings (default 1800)")
    p.set_defaults(func=_animate)


def _size(text: str) -> tuple[int, int]:
    from .backend import AnimatorError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise AnimatorError(f"--size must look like 576x1024, not {text!r}") from None
    return w, h


def _animate(args: argparse.Namespace) -> int:
    from skeleton.recording import load_recording

    from .backend import Animator, AnimatorError, AnimatorSettings

    recording = load_recording(args.recording)  # RecordingError says what is wrong with the file
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise AnimatorError(f"--out must end in .mp4, not {out.name!r}")
    weights = args.weights or os.environ.get(WEIGHTS_ENV)
    if not weights and not args.random_weights:
        raise AnimatorError(f"no weights: pass --weights DIR or set ${WEIGHTS_ENV} (nothing is ever downloaded)")
    width, height = _size(args.size)
    import torch

    on_gpu = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    settings = AnimatorSettings(
        weights_dir=None if args.random_weights else weights, random_weights=args.random_weights,
        device=args.device, dtype=args.dtype or ("bf16" if on_gpu else "fp32"), width=width, height=height,
        steps=args.steps, guidance=args.guidance, seed=args.seed, reference_image=args.reference,
        face_model_dir=args.face_model, pose_model=args.pose_model, compile=args.compile,
        max_frames=args.max_frames,
    )
    settings.validate()
    animator = Animator(settings)
    result = animator.animate(recording, out.parent, _printer(), video_name=out.name)
    qa_path = out.with_suffix(".qa.json")
    result.qa_path.replace(qa_path)
    print(f"\nwrote {out} and {qa_path}")
    pose = result.report["pose_check"]
    if pose["status"] == "ok":
        print(f"pose check: PCK {pose['pck']:.2f}, mean error {pose['mean_error'] or float('nan'):.3f}, "
              f"pose found in {pose['detection_rate']:.0%} of frames")
    else:
        print(pose["message"])
    print(result.report["identity_check"].get("message", "identity check done"))
    if not result.passed:
        print("QA failed: " + "; ".join(result.report["reasons"]), file=sys.stderr)
        return 1
    return 0


def _printer():
    last = {"pct": -1}

    def show(fraction: float) -> None:
        pct = int(fraction * 100)
        if pct != last["pct"]:
            last["pct"] = pct
            print(f"\ranimating: {pct:3d}%", end="", flush=True)

    return show

