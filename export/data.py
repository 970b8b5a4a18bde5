"""Recordings for export: calibration (training recordings) and held-out recordings for parity checks.

Export never retrains and ships no data: it regenerates what it needs from the dataset spec the
student's checkpoint records (``meta.training_data``), through ``training.data.load_dataset``.
For a synthetic cohort the held-out set is the same recipe with another seed and its own infant
ids, so no held-out infant was ever seen in training. Real data needs an explicit held-out spec.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from skeleton.errors import CogmaError

from .bundle import InputContract

HELDOUT_SEED_OFFSET = 1_000_003  # far from any seed a training config would use
HELDOUT_PREFIX = "heldout"
CALIBRATION_INFANTS = 16  # a prefix of the training cohort: ~40 recordings, plenty for activation ranges
HELDOUT_INFANTS = 40


class ExportDataError(CogmaError):
    """Recordings for calibration or checks cannot be had."""


@dataclass
class Sample:
    """One recording as the model sees it: raw MediaPipe-33 landmarks and fps, with its label."""

    landmarks: np.ndarray  # float32 [T, 33, 3]
    fps: float
    label: int
    infant_id: str
    key: str

    def tensors(self) -> tuple[Any, Any]:
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.landmarks))[None], torch.tensor([self.fps], dtype=torch.float32)

    def cropped(self, frames: int) -> "Sample":
        return Sample(fit_length(self.landmarks, frames), self.fps, self.label, self.infant_id, f"{self.key}[:{frames}]")


def fit_length(kp: np.ndarray, frames: int) -> np.ndarray:
    """The first ``frames`` frames; a shorter recording is played forth and back until long enough."""
    kp = np.asarray(kp, dtype=np.float32)
    if kp.shape[0] >= frames:
        return np.ascontiguousarray(kp[:frames])
    cycle = np.concatenate([kp, kp[::-1]], axis=0)
    reps = -(-frames // cycle.shape[0])
    return np.ascontiguousarray(np.tile(cycle, (reps, 1, 1))[:frames])


def find_cohort_spec(training_data: Any) -> dict | None:
    """The dataset spec (a dict with a ``kind``) recorded in the student's ``training_data``."""
    if isinstance(training_data, dict):
        if isinstance(training_data.get("kind"), str):
            return training_data
        for key in ("cohort", "spec", "dataset", "data"):
            found = find_cohort_spec(training_data.get(key))
            if found:
                return found
        for value in training_data.values():
            if isinstance(value, dict):
                found = find_cohort_spec(value)
                if found:
                    return found
    return None


def calibration_spec(meta: dict) -> dict:
    spec = find_cohort_spec(meta.get("training_data"))
    if spec is None:
        raise ExportDataError(
            "the student's training_data records no dataset spec (a dict with 'kind'), so its training recordings "
            "cannot be regenerated for int8 calibration; pass --calibration-data SPEC"
        )
    spec = copy.deepcopy(spec)
    if spec.get("kind") == "synthetic":
        spec.pop("out_dir", None)
        spec["n_infants"] = min(int(spec.get("n_infants", CALIBRATION_INFANTS)), CALIBRATION_INFANTS)
    return spec


def heldout_spec(meta: dict, n_infants: int = HELDOUT_INFANTS) -> dict:
    """A held-out cohort: the training recipe with a new seed and its own infants (synthetic only)."""
    spec = find_cohort_spec(meta.get("training_data"))
    if spec is None or spec.get("kind") != "synthetic":
        raise ExportDataError(
            "held-out recordings can only be generated for a synthetic training cohort; "
            "for real data pass --heldout-data SPEC (infants never used in training)"
        )
    spec = copy.deepcopy(spec)
    spec.pop("out_dir", None)
    spec["seed"] = int(spec.get("seed", 0)) + HELDOUT_SEED_OFFSET
    spec["n_infants"] = int(n_infants)
    spec["infant_prefix"] = HELDOUT_PREFIX
    spec["prevalence"] = 0.5  # a parity set, not a clinical estimate: both classes well represented
    return spec


def load_samples(spec: dict, contract: InputContract, limit: int | None = None) -> list[Sample]:
    """Recordings of a dataset spec that fit the input contract (longer ones are cut to ``max_frames``)."""
    from training.data import load_dataset

    items = load_dataset(spec)
    samples, skipped = [], []
    for it in items:
        rec = it.recording
        if rec.schema != contract.schema:
            skipped.append(f"{it.key}: schema {rec.schema}")
            continue
        if not contract.fps_min <= rec.fps <= contract.fps_max or rec.num_frames < contract.min_frames:
            skipped.append(f"{it.key}: {rec.num_frames} frames at {rec.fps:g} fps")
            continue
        kp = rec.keypoints[: contract.max_frames]
        samples.append(Sample(np.ascontiguousarray(kp, np.float32), float(rec.fps), int(it.label), it.infant_id, it.key))
        if limit is not None and len(samples) >= limit:
            break
    if not samples:
        why = "; ".join(skipped[:3])
        raise ExportDataError(
            f"dataset {spec.get('kind')!r} has no recording within the model's input contract "
            f"({contract.schema}, {contract.fps_min:g}-{contract.fps_max:g} fps, >= {contract.min_frames} frames)"
            + (f": {why}" if why else "")
        )
    return samples
