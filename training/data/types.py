"""The one item every training, evaluation and baseline function works on."""

from __future__ import annotations

from dataclasses import dataclass, field

from skeleton.errors import CogmaError
from skeleton.recording import PoseRecording

SOURCES = ("synthetic", "recordings", "pku", "openpose")


class DatasetError(CogmaError):
    """A data set on disk (or its spec) that cannot be read as labelled recordings."""


@dataclass
class LabeledRecording:
    recording: PoseRecording  # native schema (mediapipe33 / infant20 / openpose18 / coco17)
    infant_id: str
    label: int  # 0 typical, 1 atypical
    age_weeks: float | None  # corrected age in weeks
    source: str  # "synthetic", "recordings", "pku", "openpose"
    movement_class: str | None = None
    clinical: dict[str, float | str] = field(default_factory=dict)  # e.g. gestational_age_weeks, birth_weight_g
    key: str = ""  # unique id of the recording (file stem); feature caches are keyed by it

    def __post_init__(self) -> None:
        # Programming errors, not user errors: adapters validate user data before building items.
        if self.label not in (0, 1) or isinstance(self.label, bool):
            raise ValueError(f"label must be 0 or 1, not {self.label!r}")
        if not self.infant_id:
            raise ValueError("infant_id must not be empty")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {self.source!r}")
        if not self.key:
            raise ValueError("key must not be empty")


def check_unique_keys(items: list[LabeledRecording], where: str) -> None:
    """Feature caches are keyed by ``key``: two recordings with one key would share features."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.key] = seen.get(item.key, 0) + 1
    dupes = sorted(k for k, n in seen.items() if n > 1)
    if dupes:
        shown = ", ".join(dupes[:10]) + (" ..." if len(dupes) > 10 else "")
        raise DatasetError(f"{where}: recording keys are not unique ({len(dupes)} repeated: {shown})")


def is_synthetic(item: LabeledRecording) -> bool:
    """Made by the generator — also when read back from a folder of recordings it wrote."""
    return item.source == "synthetic" or item.recording.extra.get("synthetic") is True


def any_synthetic(items) -> bool:
    """True when any item is synthetic: a report on such data says "synthetic data — not for clinical use"."""
    return any(is_synthetic(it) for it in items)
