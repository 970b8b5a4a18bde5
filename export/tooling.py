"""Small helpers shared by the export steps: the error type, quiet tool calls, readable messages."""

from __future__ import annotations

import contextlib
import io
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from skeleton.errors import CogmaError

from .bundle import InputContract
from .data import Sample


class ExportError(CogmaError):
    """The student cannot be exported, with the step and construct that failed."""


def dynamic_shapes(contract: InputContract) -> dict[str, Any]:
    from torch.export import Dim

    return {"landmarks": {1: Dim("T", min=contract.min_frames, max=contract.max_frames)}, "fps": None}


def eager_scores(module: Any, s: Sample) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(*s.tensors()).numpy().reshape(-1)


def run_graph(gm: Any, s: Sample) -> np.ndarray:
    import torch

    with torch.no_grad():
        return gm(*s.tensors()).numpy().reshape(-1)


# ---------------------------------------------------------------- messages


@contextlib.contextmanager
def quiet():
    """Export tools print pages of warnings and progress bars; keep the user's terminal readable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


def first_lines(e: BaseException, n: int = 6) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines[:n])


def user_frame(e: BaseException) -> str:
    """Where in the model's own code the failing construct is (the last frame outside torch and export)."""
    here = Path(__file__).resolve().parent
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if "site-packages" not in f.filename and not f.filename.startswith("<")
              and Path(f.filename).resolve().parent != here]
    if not frames:
        return ""
    f = frames[-1]
    return f" (in the model at {Path(f.filename).name}:{f.lineno}: {(f.line or '').strip()})"


def accumulate_long_sums_in_float64(gm: Any) -> int:
    """Make every float32 ``sum`` over a dynamic (frame) dimension accumulate in float64.

    ExecuTorch's portable ``sum`` kernel adds in the input dtype one element after the other; over
    a 10-minute recording (36000 frames x 20 joints) that loses ~1e-5 relative, which moved the
    student's recording statistics (body axis, scale) and its outputs by 1.3e-4, against ~1e-8 in
    eager PyTorch. With ``dtype=float64`` the kernel accumulates in double; the result is cast back
    to float32, so the graph's types do not change. Returns how many sums were rewritten.
    """
    import torch

    count = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != torch.ops.aten.sum.dim_IntList:
            continue
        val, dims = node.args[0].meta.get("val"), node.args[1] if len(node.args) > 1 else None
        if val is None or val.dtype != torch.float32 or not dims or node.kwargs.get("dtype") is not None:
            continue
        if all(isinstance(val.shape[d], int) for d in dims):  # short, fixed-size sums are exact enough
            continue
        node.kwargs = {**node.kwargs, "dtype": torch.float64}
        with gm.graph.inserting_after(node):
            back = gm.graph.call_function(torch.ops.aten.to.dtype, (node, torch.float32))
        node.replace_all_uses_with(back, delete_user_cb=lambda user: user is not back)
        count += 1
    gm.graph.lint()
    gm.recompile()
    return count


def reexport(gm: Any, example: tuple[Any, Any], contract: InputContract, what: str) -> Any:
    """``torch.export`` of a rewritten or quantized graph module, with the same dynamic T."""
    from torch.export import export

    try:
        with quiet():
            return export(gm, example, dynamic_shapes=dynamic_shapes(contract), strict=False)
    except Exception as e:
        raise ExportError(f"re-exporting the {what} model failed: {first_lines(e)}") from None

