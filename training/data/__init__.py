"""Datasets for training and evaluation: adapters that read the layouts researchers have.

``load_dataset(spec)`` dispatches on ``spec["kind"]``:

* ``recordings`` — a folder of PoseRecording ``.npz`` files and a labels CSV (the app's own format);
* ``pku`` — the CoGMA/PKU feeder layout, numpy ``[N, C, T, V, M]`` and a label pickle;
* ``openpose`` — per-frame OpenPose JSON folders and a labels CSV;
* ``synthetic`` — a cohort from ``skeleton.synthetic``.

Every adapter validates what it reads and raises :class:`DatasetError` (a
``CogmaError``) naming the file and the problem.
"""

from __future__ import annotations

from collections.abc import Callable

from .types import DatasetError, LabeledRecording, any_synthetic, check_unique_keys, is_synthetic

__all__ = [
    "DatasetError", "LabeledRecording", "load_dataset", "KINDS", "dataset_summary", "is_synthetic", "any_synthetic",
]


def _loaders() -> dict[str, Callable[[dict], list[LabeledRecording]]]:
    from .openpose import load_openpose
    from .pku import load_pku
    from .recordings import load_recordings
    from .synthetic import load_synthetic

    return {"recordings": load_recordings, "pku": load_pku, "openpose": load_openpose, "synthetic": load_synthetic}


KINDS = ("recordings", "pku", "openpose", "synthetic")


def load_dataset(spec: dict) -> list[LabeledRecording]:
    """Load labelled recordings described by ``spec`` (a dict, e.g. from a config file)."""
    if not isinstance(spec, dict):
        raise DatasetError(f"a dataset spec must be a mapping with a 'kind', not {type(spec).__name__}")
    kind = spec.get("kind")
    loaders = _loaders()
    if kind not in loaders:
        raise DatasetError(f"unknown dataset kind {kind!r}; known kinds: {', '.join(KINDS)}")
    items = loaders[kind](spec)
    if not items:
        raise DatasetError(f"dataset of kind {kind!r} holds no recordings")
    check_unique_keys(items, f"dataset of kind {kind!r}")
    return items


def dataset_summary(items: list[LabeledRecording]) -> dict:
    """Counts for reports and logs (no personal data: ids are pseudonymous and only counted)."""
    infants = {it.infant_id for it in items}
    atypical_infants = {it.infant_id for it in items if it.label == 1}
    return {
        "n_recordings": len(items),
        "n_infants": len(infants),
        "n_atypical_recordings": sum(it.label for it in items),
        "n_atypical_infants": len(atypical_infants),
        "sources": sorted({it.source for it in items}),
        "schemas": sorted({it.recording.schema for it in items}),
        "synthetic": any_synthetic(items),
    }
