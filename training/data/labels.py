"""Labels CSV rows for the folder adapters.

The CSV format belongs to ``skeleton.labels`` (columns file, infant_id, label,
age_weeks, movement_class, severity); this module only turns its rows into a
lookup by recording key and wraps its errors with the file name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from skeleton.errors import CogmaError

from .types import DatasetError


@dataclass(frozen=True)
class LabelRow:
    file: str
    path: Path  # the recording, resolved against the CSV's folder
    infant_id: str
    label: int
    age_weeks: float | None
    movement_class: str | None
    clinical: dict[str, float | str] = field(default_factory=dict)


# The format's own columns; every other column is clinical information (e.g. gestational_age_weeks,
# birth_weight_g). Severity is a generator knob tied to the label: as "clinical text" for co-learning
# it would leak the label, so it is not passed on.
_NOT_CLINICAL = {"file", "infant_id", "label", "age_weeks", "movement_class", "severity"}
_DATE_WORDS = ("date", "dob", "birthday")


def _clinical_value(text: str | None) -> float | str | None:
    if text is None or not text.strip():
        return None
    try:
        x = float(text)
    except ValueError:
        return text.strip()
    return x if math.isfinite(x) else text.strip()


def read_label_rows(path: Path) -> list[LabelRow]:
    from skeleton.labels import read_labels_csv  # the format's owner validates the columns

    try:
        rows = read_labels_csv(path)
    except CogmaError as e:
        msg = str(e)
        raise DatasetError(msg if str(path) in msg or path.name in msg else f"{path}: {msg}") from None
    out = []
    for row in rows:
        dated = [k for k in row if any(w in k.lower() for w in _DATE_WORDS)]
        if dated:
            raise DatasetError(
                f"{path}: column {dated[0]!r} looks like a date; labels must not carry dates such as birth "
                "dates (personal data) — give the corrected age in weeks instead"
            )
        clinical = {k: v for k, v in ((k, _clinical_value(v)) for k, v in row.items() if k not in _NOT_CLINICAL)
                    if v is not None}
        file = Path(row["file"])
        out.append(LabelRow(
            file=row["file"], path=file if file.is_absolute() else path.parent / file, infant_id=row["infant_id"],
            label=int(row["label"]), age_weeks=row.get("age_weeks"), movement_class=row.get("movement_class"),
            clinical=clinical,
        ))
    return out
