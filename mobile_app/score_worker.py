"""Scoring in a separate process (``python -m mobile_app.score_worker BUNDLE RECORDING.npz``).

The desktop app uses it so that libtorch, which ExecuTorch's Python bindings bring in (about
210 MB resident), is never loaded into the long-running app process beside Kivy: the app stays
near 220 MB, and its pose worker and this scorer never run at the same time. Prints one JSON
line: ``{"score": [risk, low, high]}`` or ``{"error": message}``.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from skeleton.errors import CogmaError
    from skeleton.recording import load_recording

    from .scoring import ExecuTorchScorer

    try:
        bundle, recording = argv
        score = ExecuTorchScorer(bundle).score(load_recording(recording))
    except CogmaError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    print(json.dumps({"score": [score.risk, score.low, score.high]}), flush=True)
    return 0


if __name__ == "__main__":
    from .quiet import native_logs_silenced

    with native_logs_silenced():
        code = main(sys.argv[1:])
    sys.exit(code)
