"""The app's own labels file: one CSV row per recording, read by training.

Columns (header required, order free, extra columns kept as text)::

    file,infant_id,label,age_weeks,movement_class,severity

``file`` is the recording's path, relative to the CSV's folder unless absolute;
``label`` is 0 (typical) or 1 (atypical); ``age_weeks`` is the corrected age
(never a birth date); ``movement_class`` and ``severity`` may be empty.
Reading validates every row and names the line of the first problem.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import CogmaError
from .recording import AGE_WEEKS_RANGE, MAX_TEXT

LABEL_COLUMNS = ("file", "infant_id", "label", "age_weeks", "movement_class", "severity")
REQUIRED_COLUMNS = ("file", "infant_id", "label")
# The generator's six classes plus GMA names a clinician may use for real recordings.
KNOWN_MOVEMENT_CLASSES = (
    "normal_writhing", "poor_repertoire", "cramped_synchronized", "chaotic", "normal_fidgety", "absent_fidgety",
    "sporadic_fidgety", "abnormal_fidgety",
)
_ATYPICAL = frozenset({"poor_repertoire", "cramped_synchronized", "chaotic", "absent_fidgety", "abnormal_fidgety"})
_TYPICAL = frozenset({"normal_writhing", "normal_fidgety"})


class LabelsError(CogmaError):
    """A labels file that cannot be read or has a bad row."""


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _parse_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate and type one row; ``where`` names it in error messages."""
    def text(name: str, required: bool) -> str | None:
        v = raw.get(name)
        v = "" if v is None else str(v).strip()
        if not v:
            if required:
                raise LabelsError(f"{where}: column {name!r} is empty")
            return None
        if len(v) > MAX_TEXT:
            raise LabelsError(f"{where}: {name} is longer than {MAX_TEXT} characters")
        return v

    def number(name: str, lo: float, hi: float, what: str) -> float | None:
        v = text(name, False)
        if v is None:
            return None
        try:
            x = float(v)
        except ValueError:
            raise LabelsError(f"{where}: {name} {v!r} is not a number ({what})") from None
        if not math.isfinite(x) or not lo <= x <= hi:
            raise LabelsError(f"{where}: {name} {v} is outside {lo:g}..{hi:g} ({what})")
        return x

    row: dict[str, Any] = {k: (None if v is None else str(v)) for k, v in raw.items() if k not in LABEL_COLUMNS}
    row["file"] = text("file", True)
    row["infant_id"] = text("infant_id", True)
    label = text("label", True)
    if label not in ("0", "1"):
        raise LabelsError(f"{where}: label must be 0 (typical) or 1 (atypical), not {label!r}")
    row["label"] = int(label)
    row["age_weeks"] = number("age_weeks", *AGE_WEEKS_RANGE, "corrected age in weeks")
    cls = text("movement_class", False)
    if cls is not None:
        if cls not in KNOWN_MOVEMENT_CLASSES:
            raise LabelsError(
                f"{where}: unknown movement_class {cls!r}; known: {', '.join(KNOWN_MOVEMENT_CLASSES)} (or empty)"
            )
        if (cls in _ATYPICAL and row["label"] != 1) or (cls in _TYPICAL and row["label"] != 0):
            raise LabelsError(f"{where}: movement_class {cls} contradicts label {row['label']}")
    row["movement_class"] = cls
    row["severity"] = number("severity", 0.0, 1.0, "severity between 0 and 1")
    return row


def write_labels_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write validated rows (atomically: a crash leaves the old file or none)."""
    rows = list(rows)
    checked = [_parse_row(r, f"row {i + 1}") for i, r in enumerate(rows)]
    _check_unique(checked, lambda i: f"row {i + 1}")
    extra = sorted({k for r in checked for k in r if k not in LABEL_COLUMNS})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(LABEL_COLUMNS + tuple(extra))
        for r in checked:
            w.writerow([_fmt(r.get(c)) for c in LABEL_COLUMNS + tuple(extra)])
    os.replace(tmp, path)


def _check_unique(rows: list[dict[str, Any]], where) -> None:
    seen: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["file"] in seen:
            raise LabelsError(f"{where(i)}: file {r['file']!r} is listed twice (first at {where(seen[r['file']])})")
        seen[r["file"]] = i


def read_labels_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows as dicts: file, infant_id (str), label (int), age_weeks, severity (float or None),
    movement_class (str or None), plus any extra columns as text."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"{path}: no such labels file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise LabelsError(
                    f"{path}: missing column(s) {', '.join(missing)}; the header must include "
                    f"{', '.join(REQUIRED_COLUMNS)} (optional: age_weeks, movement_class, severity)"
                )
            if len(set(header)) != len(header):
                raise LabelsError(f"{path}: the header repeats a column name")
            rows = []
            for raw in reader:
                where = f"{path.name} line {reader.line_num}"
                if None in raw:
                    raise LabelsError(f"{where}: more fields than header columns")
                if all((v or "").strip() == "" for v in raw.values()):
                    continue  # blank line
                if any(v is None for v in raw.values()):
                    raise LabelsError(f"{where}: fewer fields than header columns")
                rows.append((where, _parse_row(raw, where)))
    except UnicodeDecodeError:
        raise LabelsError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as e:
        raise LabelsError(f"{path}: not a valid CSV file ({e})") from None
    _check_unique([r for _, r in rows], lambda i: rows[i][0])
    if not rows:
        raise LabelsError(f"{path}: no rows")
    return [r for _, r in rows]
