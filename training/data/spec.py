"""Reading a dataset spec (a dict from a config file) with errors that say which key is wrong."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from skeleton.recording import MAX_FPS, MAX_FRAME_SIDE, MIN_FPS, AGE_WEEKS_RANGE

from .types import DatasetError


def check_keys(spec: dict, allowed: set[str], kind: str) -> None:
    unknown = sorted(set(spec) - allowed - {"kind"})
    if unknown:
        raise DatasetError(
            f"dataset spec of kind {kind!r}: unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(allowed))}"
        )


def path_of(spec: dict, key: str, kind: str, *, must_be: str, default: Path | None = None) -> Path:
    """A path from the spec that must exist as a ``file`` or ``dir``."""
    value = spec.get(key)
    if value is None:
        if default is None:
            raise DatasetError(f"dataset spec of kind {kind!r} needs {key!r} (a path)")
        path = default
    elif isinstance(value, (str, Path)):
        path = Path(value).expanduser()
    else:
        raise DatasetError(f"dataset spec of kind {kind!r}: {key!r} must be a path, not {type(value).__name__}")
    exists = path.is_file() if must_be == "file" else path.is_dir()
    if not exists:
        raise DatasetError(f"{path}: no such {'file' if must_be == 'file' else 'folder'} (spec key {key!r})")
    return path


def fps_of(spec: dict, kind: str, default: float) -> float:
    fps = spec.get("fps", default)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps):
        raise DatasetError(f"dataset spec of kind {kind!r}: 'fps' must be a number, not {fps!r}")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise DatasetError(f"dataset spec of kind {kind!r}: fps {fps:g} is outside {MIN_FPS:g}-{MAX_FPS:g}")
    return float(fps)


def frame_size_of(spec: dict, kind: str) -> tuple[int, int] | None:
    fs = spec.get("frame_size")
    if fs is None:
        return None
    ok = (
        isinstance(fs, (list, tuple))
        and len(fs) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_FRAME_SIDE for v in fs)
    )
    if not ok:
        raise DatasetError(
            f"dataset spec of kind {kind!r}: 'frame_size' must be [width, height] in pixels, not {fs!r}"
        )
    return int(fs[0]), int(fs[1])


def age_of(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DatasetError(f"{where}: age_weeks must be a number (corrected age in weeks), not {value!r}")
    if not AGE_WEEKS_RANGE[0] <= value <= AGE_WEEKS_RANGE[1]:
        lo, hi = AGE_WEEKS_RANGE
        raise DatasetError(f"{where}: corrected age {value:g} weeks is outside {lo:g}..{hi:g}")
    return float(value)


def label_map_of(spec: dict, kind: str) -> dict[int, int] | None:
    """Optional map from a data set's raw class numbers to 0 (typical) / 1 (atypical)."""
    raw = spec.get("label_map")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise DatasetError(f"dataset spec of kind {kind!r}: 'label_map' must map raw classes to 0 or 1")
    out: dict[int, int] = {}
    for k, v in raw.items():
        try:
            key = int(k)
        except (TypeError, ValueError):
            raise DatasetError(f"dataset spec of kind {kind!r}: label_map key {k!r} is not a class number") from None
        if v not in (0, 1) or isinstance(v, bool):
            raise DatasetError(f"dataset spec of kind {kind!r}: label_map[{k!r}] must be 0 or 1, not {v!r}")
        out[key] = int(v)
    return out


def binary_label(raw: int, label_map: dict[int, int] | None, where: str) -> int:
    if label_map is not None:
        if raw not in label_map:
            raise DatasetError(f"{where}: class {raw} is not in label_map ({sorted(label_map)})")
        return label_map[raw]
    if raw not in (0, 1):
        raise DatasetError(
            f"{where}: class {raw} is not 0 (typical) or 1 (atypical); give a 'label_map' in the dataset spec"
        )
    return raw
