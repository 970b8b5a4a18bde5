"""Multi-modality co-learning (training only): align skeleton features with other modalities.

During training the teacher's recording embedding is projected by a small
head per modality and aligned with that recording's cached features:

* ``video``    — a multimodal LLM's visual features of the RGB video (for
  recordings without video, frames rendered from the skeleton; see
  :mod:`training.features`);
* ``text``     — the same LLM's features of a text description of the movement;
* ``clinical`` — clinical information (corrected age, gestational age at birth,
  birth weight, ...) written as text and encoded by a CLIP text encoder.

The loss is a multi-positive InfoNCE over the batch (recordings with the same
target, e.g. the same description, are positives of each other); a recording
without a modality has that loss masked. At inference only the skeleton is
used. The text head also serves zero-shot scoring (:mod:`training.zero_shot`).

Honest caveat: on synthetic data the movement description comes from the
generator's movement class, which determines the label; co-learning then acts
as privileged auxiliary supervision (finer classes), not as independent evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from skeleton.errors import CogmaError

from .engine import Task

MODALITIES = ("video", "text", "clinical")
CACHE_FORMAT = "cogma.feature_cache"
CACHE_VERSION = 1

# Descriptions in GMA wording (Einspieler & Prechtl 2005; GMA_KINEMATICS.md).
MOVEMENT_DESCRIPTIONS: dict[str, str] = {
    "normal_writhing": "writhing movements of variable speed and amplitude, fluent and complex, with elliptical "
                       "limb trajectories and rotations, waxing and waning",
    "poor_repertoire": "monotonous general movements with little variation; the sequence of movement components "
                       "repeats and lacks complexity",
    "cramped_synchronized": "rigid movements lacking fluency; limb and trunk muscles contract and relax almost "
                            "simultaneously",
    "chaotic": "large, abrupt movements of all limbs in a chaotic order without fluency or smoothness",
    "normal_fidgety": "fidgety movements: continual small movements of moderate speed and variable acceleration "
                      "of neck, trunk and limbs in all directions",
    "absent_fidgety": "no fidgety movements; only larger, smoother movements without small continual "
                      "movements of neck, trunk and limbs",
}
FIDGETY_PROMPTS: dict[str, str] = {
    "present": "fidgety movements present: continual small movements of moderate speed of neck, trunk and limbs "
               "in all directions",
    "absent": "fidgety movements absent: no small continual movements of neck, trunk and limbs",
}


class FeatureCacheError(CogmaError):
    """A feature cache that is missing, damaged or does not fit the data."""


def describe_movement(item: Any) -> str | None:
    """A text description of the recording's movements: given with the data, else from its movement class."""
    text = (item.clinical or {}).get("description") if hasattr(item, "clinical") else None
    if isinstance(text, str) and text.strip():
        return text.strip()
    return MOVEMENT_DESCRIPTIONS.get(item.movement_class or "")


_CLINICAL_WORDS = {"gestational_age_weeks": "born at {:g} weeks of gestation", "birth_weight_g": "birth weight {:g} g"}


def clinical_text(item: Any) -> str | None:
    """Clinical information as one sentence for CLIP (never a birth date; severity/labels never included)."""
    parts = []
    if item.age_weeks is not None:
        parts.append(f"corrected age {float(item.age_weeks):.0f} weeks")
    for key, value in sorted((item.clinical or {}).items()):
        if key in ("description",) or "birth_date" in key or "label" in key or "severity" in key:
            continue
        if key in _CLINICAL_WORDS and isinstance(value, (int, float)):
            parts.append(_CLINICAL_WORDS[key].format(value))
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts) if parts else None


# ---------------------------------------------------------------------------------------------- the cache


@dataclass
class FeatureCache:
    """Per-recording feature vectors of each modality, keyed by ``LabeledRecording.key``."""

    features: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # modality -> key -> vector
    prompts: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "text/present" -> vector
    info: dict[str, Any] = field(default_factory=dict)  # provenance: model dirs, classes, how video was made

    def dim(self, modality: str) -> int | None:
        vectors = self.features.get(modality) or {}
        return len(next(iter(vectors.values()))) if vectors else None

    def modalities(self) -> list[str]:
        return [m for m in MODALITIES if self.features.get(m)]

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors, keys = {}, {}
        for modality, vectors in self.features.items():
            if not vectors:
                continue
            names = sorted(vectors)
            tensors[f"features.{modality}"] = np.stack([vectors[k] for k in names]).astype(np.float32)
            keys[modality] = names
        for name, vector in self.prompts.items():
            tensors[f"prompt.{name}"] = np.asarray(vector, dtype=np.float32)
        meta = {"format": CACHE_FORMAT, "version": str(CACHE_VERSION), "keys": json.dumps(keys),
                "info": json.dumps(self.info)}
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureCache":
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FeatureCacheError(f"{path}: no such feature cache (make one with `cogma features`)")
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                if meta.get("format") != CACHE_FORMAT:
                    raise FeatureCacheError(f"{path}: not a CoGMA feature cache")
                keys = json.loads(meta["keys"])
                cache = cls(info=json.loads(meta.get("info", "{}")))
                for name in f.keys():
                    if name.startswith("features."):
                        modality = name.split(".", 1)[1]
                        matrix = f.get_tensor(name)
                        cache.features[modality] = dict(zip(keys[modality], matrix))
                    elif name.startswith("prompt."):
                        cache.prompts[name.split(".", 1)[1]] = f.get_tensor(name)
        except FeatureCacheError:
            raise
        except Exception as e:  # safetensors raises several kinds for a damaged file
            raise FeatureCacheError(f"{path}: damaged feature cache ({type(e).__name__}: {e})") from None
        return cache

    def targets_for(self, keys: Sequence[str]) -> dict[str, tuple[Tensor, Tensor]]:
        """modality -> (targets [N, D], present [N]) for recordings ``keys`` (zeros where absent)."""
        out = {}
        for modality in self.modalities():
            vectors, dim = self.features[modality], self.dim(modality)
            mat = np.zeros((len(keys), dim), dtype=np.float32)
            present = np.zeros(len(keys), dtype=np.float32)
            for i, key in enumerate(keys):
                if key in vectors:
                    mat[i], present[i] = vectors[key], 1.0
            out[modality] = (torch.from_numpy(mat), torch.from_numpy(present))
        return out


# ---------------------------------------------------------------------------------------------- heads and loss


class ColearningHeads(nn.Module):
    """One projection per modality from the skeleton embedding into that modality's feature space."""

    def __init__(self, embed_dim: int, dims: dict[str, int], hidden: int = 128):
        super().__init__()
        self.dims = dict(dims)
        self.heads = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, d)) for m, d in dims.items()
        })

    def forward(self, embedding: Tensor) -> dict[str, Tensor]:
        return {m: head(embedding) for m, head in self.heads.items()}


def alignment_loss(pred: Tensor, target: Tensor, present: Tensor, temperature: float = 0.1) -> Tensor:
    """Multi-positive InfoNCE between projections and targets of the recordings that have the modality.

    Rows whose targets are (nearly) identical count as positives of each other, so repeated
    descriptions are not pushed apart. With fewer than two recordings present the loss is
    cosine alignment alone; with none it is zero (masked).
    """
    with torch.autocast(pred.device.type, enabled=False):  # similarities in fp32: bf16 cannot tell 0.999 from 1
        return _alignment_loss(pred.float(), target.float(), present, temperature)


def _alignment_loss(pred: Tensor, target: Tensor, present: Tensor, temperature: float) -> Tensor:
    keep = present > 0
    n = int(keep.sum())
    if n == 0:
        return pred.sum() * 0.0
    p = nn.functional.normalize(pred[keep].float(), dim=-1)
    t = nn.functional.normalize(target[keep].float(), dim=-1)
    cosine = 1.0 - (p * t).sum(dim=-1).mean()
    if n < 2:
        return cosine
    logits = p @ t.T / temperature
    positives = torch.maximum(((t @ t.T) > 0.999).float(), torch.eye(n, device=t.device))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    nce = -((log_prob * positives).sum(dim=1) / positives.sum(dim=1)).mean()
    return nce + cosine


class SupervisedTask(Task):
    """Recording-level BCE for a windowed classifier, plus co-learning losses when heads are given."""

    def __init__(self, model: nn.Module, heads: ColearningHeads | None = None,
                 weights: dict[str, float] | None = None, temperature: float = 0.1):
        super().__init__()
        self.model = model
        self.heads = heads
        self.weights = weights or {}
        self.temperature = temperature

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        out = self.model(batch["keypoints"], batch["fps"], batch["lengths"], batch["grid_len"])
        label = batch["label"].to(out.logit.dtype)
        loss = nn.functional.binary_cross_entropy_with_logits(out.logit.float(), label.float())
        logs = {"bce": float(loss.detach())}
        if self.heads is not None:
            projections = self.heads(out.embedding.float())
            for m, pred in projections.items():
                if f"target_{m}" not in batch:
                    continue
                part = alignment_loss(pred, batch[f"target_{m}"], batch[f"has_{m}"], self.temperature)
                loss = loss + self.weights.get(m, 0.0) * part
                logs[m] = float(part.detach())
        return loss, logs


def target_fn(cache: FeatureCache, keys: Sequence[str]):
    """Per-index co-learning targets for :class:`training.engine.CropDataset`."""
    targets = cache.targets_for(keys)

    def extra(i: int) -> dict[str, Tensor]:
        out = {}
        for m, (mat, present) in targets.items():
            out[f"target_{m}"] = mat[i]
            out[f"has_{m}"] = present[i]
        return out

    return extra
