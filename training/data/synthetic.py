"""Synthetic cohorts from ``skeleton.synthetic`` (the generator is the synthetic engineer's).

Every key of the spec except ``kind`` and ``out_dir`` is a field of
``CohortConfig`` (e.g. ``n_infants``, ``seed``, ``prevalence``, ``age_band``,
``difficulty``, ``seconds``); an unknown key is refused with the list of
known ones, so a typo in a config file cannot silently fall back to a
default. Lists from YAML become the tuples the config expects. With
``out_dir`` the cohort is also written there (``.npz`` files + ``labels.csv``),
so it can be re-read later with ``{"kind": "recordings", "root": out_dir}``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

from skeleton.errors import CogmaError

from .types import DatasetError, LabeledRecording

KIND = "synthetic"


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def cohort_config(spec: dict):
    """The ``CohortConfig`` a synthetic spec describes (also recorded in model metadata)."""
    from skeleton.synthetic import CohortConfig

    fields = {f.name for f in dataclasses.fields(CohortConfig)}
    options = {k: _tuples(v) for k, v in spec.items() if k not in ("kind", "out_dir")}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise DatasetError(
            f"dataset spec of kind {KIND!r}: unknown key(s) {', '.join(unknown)}; "
            f"known keys: out_dir, {', '.join(sorted(fields))}"
        )
    try:
        return CohortConfig(**options)
    except CogmaError as e:
        raise DatasetError(f"synthetic cohort: {e}") from None
    except (TypeError, ValueError) as e:
        raise DatasetError(f"synthetic cohort: bad settings ({e})") from None


def load_synthetic(spec: dict) -> list[LabeledRecording]:
    from skeleton.synthetic import generate_cohort

    config = cohort_config(spec)
    out_dir = spec.get("out_dir")
    try:
        entries = generate_cohort(config, out_dir=Path(out_dir) if out_dir is not None else None, keep_recordings=True)
    except CogmaError as e:
        raise DatasetError(f"synthetic cohort: {e}") from None
    items = []
    per_infant: dict[str, int] = defaultdict(int)
    for entry in entries:
        k = per_infant[entry.infant_id]
        per_infant[entry.infant_id] += 1
        key = Path(entry.file).stem if entry.file else f"{entry.infant_id}_{k}"  # same as the file stem
        items.append(LabeledRecording(
            recording=entry.recording, infant_id=entry.infant_id, label=int(entry.label),
            age_weeks=entry.age_weeks, source=KIND, movement_class=entry.movement_class, key=key,
        ))
    return items
