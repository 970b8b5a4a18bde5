"""``make demo``: the main job on the shipped samples, through the real ``cogma`` command.

Two synthetic recordings ship with the project (one typical, one atypical; made by
``cogma synth``, see ``cogma/samples/README.md``). For each: its quality report, a rendered
skeleton video under ``out/demo/``, and a screening with the shipped demo model bundle.
Synthetic data — not for clinical use; the score is a screening aid, never a diagnosis.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cogma import NOT_FOR_CLINICAL_USE
from cogma.cli import main as cogma

SAMPLES = Path(__file__).parent / "samples"
DEMO = (("typical", "normal writhing movements"), ("atypical", "cramped-synchronized movements"))


def _step(title: str, argv: list[str]) -> None:
    print(f"\n$ cogma {' '.join(argv)}    # {title}", flush=True)
    status = cogma(argv)
    if status != 0:
        raise SystemExit(f"demo step failed: cogma {' '.join(argv)} (exit {status})")


def main(out_dir: str = "out/demo") -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"CoGMA demo — {NOT_FOR_CLINICAL_USE}. The score is a screening aid, not a diagnosis.")
    for name, what in DEMO:
        sample = SAMPLES / f"{name}.npz"
        print(f"\n=== sample '{name}': synthetic infant with {what} ===")
        _step("what is in the recording, and can it be scored?", ["inspect", str(sample)])
        _step("draw the skeleton as a video", ["render", str(sample), "--out", str(out / f"{name}.mp4")])
        _step("screen it with the shipped model bundle", ["screen", str(sample)])
    print(f"\nVideos are in {out}/. {NOT_FOR_CLINICAL_USE}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
