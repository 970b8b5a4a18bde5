"""The app's own format: a folder of PoseRecording ``.npz`` files and a labels CSV.

Spec: ``{"kind": "recordings", "root": DIR}`` (reads ``DIR/labels.csv``) or
``{"kind": "recordings", "labels": CSV}``. The CSV's format is owned by
``skeleton.labels``; ``file`` is relative to the CSV's folder unless absolute.
The CSV is the truth for labels, infant ids and ages; a recording whose own metadata disagrees with its row is refused
rather than silently relabelled. Files in the folder that the CSV does not
list are not read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from skeleton.errors import RecordingError
from skeleton.recording import load_recording

from .labels import LabelRow, read_label_rows
from .spec import check_keys, path_of
from .types import DatasetError, LabeledRecording

KIND = "recordings"
SPEC_KEYS = {"root", "labels"}


def load_recordings(spec: dict) -> list[LabeledRecording]:
    check_keys(spec, SPEC_KEYS, KIND)
    if spec.get("root") is None and spec.get("labels") is None:
        raise DatasetError(f"dataset spec of kind {KIND!r} needs 'root' (a folder with labels.csv) or 'labels' (a CSV)")
    if spec.get("root") is not None:
        root = path_of(spec, "root", KIND, must_be="dir")
        labels_path = path_of(spec, "labels", KIND, must_be="file", default=root / "labels.csv")
    else:
        labels_path = path_of(spec, "labels", KIND, must_be="file")
    rows = read_label_rows(labels_path)
    return [_load_one(labels_path, row) for row in rows]


def recording_key(file: str) -> str:
    """File path without suffix, folders joined by ``__``: unique where the paths are."""
    return Path(file).with_suffix("").as_posix().replace("/", "__")


def _load_one(labels_path: Path, row: LabelRow) -> LabeledRecording:
    path = row.path
    if not path.is_file():
        raise DatasetError(f"{labels_path}: listed recording {row.file!r} not found ({path})")
    try:
        rec = load_recording(path)
    except RecordingError as e:
        raise DatasetError(f"{path}: {e}") from None
    for name, own, listed in (("label", rec.label, row.label), ("infant_id", rec.infant_id, row.infant_id)):
        if own is not None and own != listed:
            raise DatasetError(
                f"{path}: the recording says {name} {own!r} but {labels_path.name} says {listed!r}"
            )
    if rec.age_weeks is not None and row.age_weeks is not None and abs(rec.age_weeks - row.age_weeks) > 0.5:
        raise DatasetError(
            f"{path}: the recording says corrected age {rec.age_weeks:g} weeks "
            f"but {labels_path.name} says {row.age_weeks:g}"
        )
    age = row.age_weeks if row.age_weeks is not None else rec.age_weeks
    try:
        rec = replace(rec, label=row.label, infant_id=row.infant_id, age_weeks=age)
    except RecordingError as e:
        raise DatasetError(f"{labels_path}: row for {row.file!r}: {e}") from None
    return LabeledRecording(
        recording=rec, infant_id=row.infant_id, label=row.label, age_weeks=age, source=KIND,
        movement_class=row.movement_class, clinical=dict(row.clinical), key=recording_key(row.file),
    )
