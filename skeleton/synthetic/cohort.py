"""Cohorts: many synthetic infants, several recordings each, with a labels file.

Recordings of one infant share its traits (body, speed and amplitude scale,
activity, limb preference), its phone (frame size and frame rate) and, up to a
small jitter, its severity; ages advance between recordings within the age band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..labels import write_labels_csv
from ..recording import PoseRecording
from .capture import CaptureConditions, sample_frame_size
from .generate import ATYPICAL_CLASSES, MAX_TYPICAL_SEVERITY, SyntheticError, default_severity, synthesize
from .traits import sample_infant

AGE_BANDS = ("writhing", "fidgety", "mixed")
DIFFICULTIES = ("default", "hidden")
# Ages (weeks, corrected) at which cohorts are recorded: writhing up to 8 weeks, fidgety 9-20 weeks.
COHORT_WRITHING_AGES = (0.0, 8.0)
COHORT_FIDGETY_AGES = (9.0, 20.0)
# Atypical writhing patterns in a high-risk cohort: poor repertoire is common, chaotic rare
# (GMA_KINEMATICS.md §6-7: PR ~1/3 of lesioned preterm, CS 10-30 %, chaotic <= 5 %).
DEFAULT_WRITHING_MIX = (("poor_repertoire", 0.55), ("cramped_synchronized", 0.35), ("chaotic", 0.10))


@dataclass(frozen=True)
class CohortConfig:
    """What cohort to make. The default (160 infants, 2-3 recordings of 60-120 s) trains a small CPU model
    in minutes; see docs/synthetic.md for the baseline AUC it gives."""

    n_infants: int = 160
    seed: int = 0
    prevalence: float = 0.2  # share of infants with atypical movements (high-risk cohorts: 15-25 %)
    recordings_per_infant: tuple[int, int] = (2, 3)  # inclusive range
    seconds: tuple[float, float] = (60.0, 120.0)  # recording length range
    age_band: str = "mixed"  # writhing (0-8 weeks), fidgety (9-20 weeks) or mixed
    fidgety_share: float = 0.5  # in a mixed cohort, share of infants recorded at fidgety age
    difficulty: str = "default"  # default, or hidden: worse tracking, shorter clips, more borderline infants
    fps_choices: tuple[float, ...] = (25.0, 30.0)
    fps_weights: tuple[float, ...] = (0.4, 0.6)
    writhing_mix: tuple[tuple[str, float], ...] = DEFAULT_WRITHING_MIX
    borderline_share: float | None = None  # share of infants with ambiguous severity; None: 0.08 (hidden 0.15)
    infant_prefix: str = "syn"

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise SyntheticError(f"cohort config: {msg}")

        if isinstance(self.n_infants, bool) or not isinstance(self.n_infants, int) or not 1 <= self.n_infants <= 100_000:
            bad(f"n_infants must be an integer within 1-100000, not {self.n_infants!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            bad(f"seed must be a non-negative integer, not {self.seed!r}")
        if not 0.0 <= self.prevalence <= 1.0:
            bad(f"prevalence {self.prevalence} must be within 0-1")
        lo, hi = self.recordings_per_infant
        if not 1 <= lo <= hi <= 50:
            bad(f"recordings_per_infant {self.recordings_per_infant} must be (min, max) with 1 <= min <= max <= 50")
        s_lo, s_hi = self.seconds
        if not 1.0 <= s_lo <= s_hi <= 3600.0:
            bad(f"seconds {self.seconds} must be (min, max) within 1-3600 s")
        if self.age_band not in AGE_BANDS:
            bad(f"age_band {self.age_band!r} must be one of {', '.join(AGE_BANDS)}")
        if self.difficulty not in DIFFICULTIES:
            bad(f"difficulty {self.difficulty!r} must be one of {', '.join(DIFFICULTIES)}")
        if not 0.0 <= self.fidgety_share <= 1.0:
            bad("fidgety_share must be within 0-1")
        if not self.fps_choices or len(self.fps_choices) != len(self.fps_weights) or any(
            not 5.0 <= f <= 240.0 for f in self.fps_choices
        ) or any(w < 0 for w in self.fps_weights) or sum(self.fps_weights) <= 0:
            bad("fps_choices must be frame rates within 5-240 with as many non-negative fps_weights")
        if any(k not in ATYPICAL_CLASSES or k == "absent_fidgety" for k, _ in self.writhing_mix) or sum(
            w for _, w in self.writhing_mix
        ) <= 0:
            bad("writhing_mix must weight atypical writhing classes (poor_repertoire, cramped_synchronized, chaotic)")
        if self.borderline_share is not None and not 0.0 <= self.borderline_share <= 1.0:
            bad("borderline_share must be within 0-1")

    @property
    def effective_borderline_share(self) -> float:
        if self.borderline_share is not None:
            return self.borderline_share
        return 0.15 if self.difficulty == "hidden" else 0.08

    @property
    def effective_seconds(self) -> tuple[float, float]:
        """Hidden cohorts use clips about half as long."""
        if self.difficulty == "hidden" and self.seconds == CohortConfig.seconds:
            return (30.0, 60.0)
        return self.seconds


@dataclass
class CohortEntry:
    file: str  # path relative to the cohort folder ("" when nothing was written)
    infant_id: str
    label: int
    movement_class: str
    age_weeks: float
    severity: float
    recording: PoseRecording | None = field(default=None, repr=False)

    def label_row(self) -> dict:
        return {"file": self.file, "infant_id": self.infant_id, "label": self.label, "age_weeks": self.age_weeks,
                "movement_class": self.movement_class, "severity": round(self.severity, 4)}


def _infant_class(cfg: CohortConfig, rng: np.random.Generator) -> tuple[str, bool]:
    """(movement class, atypical?) of one infant."""
    if cfg.age_band == "mixed":
        band = "fidgety" if rng.random() < cfg.fidgety_share else "writhing"
    else:
        band = cfg.age_band
    atypical = rng.random() < cfg.prevalence
    if band == "fidgety":
        return ("absent_fidgety" if atypical else "normal_fidgety"), atypical
    if not atypical:
        return "normal_writhing", False
    names = [k for k, _ in cfg.writhing_mix]
    p = np.array([w for _, w in cfg.writhing_mix], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))], True


def _infant_severity(cfg: CohortConfig, kind: str, rng: np.random.Generator) -> float:
    borderline = rng.random() < cfg.effective_borderline_share
    s = default_severity(kind, rng, borderline=borderline)
    if cfg.difficulty == "hidden" and not borderline and kind in ATYPICAL_CLASSES:
        s = 0.3 + 0.6 * (s - 0.4) / 0.6  # milder on the whole: 0.3-0.9 instead of 0.4-1
    return s


def _plan(cfg: CohortConfig) -> list[dict]:
    """Every recording to make, drawn up front so the cohort does not depend on how it is generated."""
    plan = []
    width = len(str(cfg.n_infants - 1))
    for i in range(cfg.n_infants):
        rng = np.random.default_rng([cfg.seed, i, 0xC0])
        infant_id = f"{cfg.infant_prefix}{cfg.seed}-{i:0{max(4, width)}d}"
        kind, _ = _infant_class(cfg, rng)
        traits = sample_infant(rng, infant_id)
        severity = _infant_severity(cfg, kind, rng)
        fps = float(rng.choice(cfg.fps_choices, p=np.asarray(cfg.fps_weights) / sum(cfg.fps_weights)))
        frame_size = sample_frame_size(rng)
        lo, hi = COHORT_FIDGETY_AGES if kind in ("normal_fidgety", "absent_fidgety") else COHORT_WRITHING_AGES
        k_rec = int(rng.integers(cfg.recordings_per_infant[0], cfg.recordings_per_infant[1] + 1))
        gaps = rng.uniform(0.5, 2.0, size=k_rec - 1)
        span = float(gaps.sum())
        start = rng.uniform(lo, max(lo, hi - span))
        ages = np.minimum(start + np.concatenate([[0.0], np.cumsum(gaps)]), hi)
        s_lo, s_hi = cfg.effective_seconds
        for k in range(k_rec):
            sev_hi = 1.0 if kind in ATYPICAL_CLASSES else MAX_TYPICAL_SEVERITY
            sev = float(np.clip(severity + 0.07 * rng.standard_normal(), 0.0, sev_hi))
            plan.append(dict(
                kind=kind, age_weeks=round(float(ages[k]), 2), seconds=round(float(rng.uniform(s_lo, s_hi)), 1),
                seed=int(rng.integers(0, 2**31 - 1)), fps=fps, severity=sev, infant=traits,
                capture=CaptureConditions.sample(rng, cfg.difficulty, fps=fps, frame_size=frame_size),
                infant_id=infant_id, file=f"{infant_id}_{k}.npz",
            ))
    return plan


def plan_cohort(config: CohortConfig) -> list[dict]:
    """Every recording of a cohort as keyword arguments for :func:`synthesize` plus ``file``.

    Drawn up front from the seed, so a cohort is the same however (and in how many processes) it is made.
    """
    return _plan(config)


def _make(spec: dict, out: Path | None, keep: bool) -> CohortEntry:
    args = {k: v for k, v in spec.items() if k != "file"}
    rec = synthesize(**args)
    file = ""
    if out is not None:
        rec.save(out / spec["file"])
        file = spec["file"]
    return CohortEntry(file=file, infant_id=spec["infant_id"], label=int(rec.label), movement_class=spec["kind"],
                       age_weeks=spec["age_weeks"], severity=spec["severity"], recording=rec if keep else None)


def generate_cohort(
    config: CohortConfig, out_dir: str | Path | None = None, progress: bool = False,
    keep_recordings: bool | None = None, workers: int = 1,
) -> list[CohortEntry]:
    """Make a cohort. With ``out_dir``, writes ``<infant>_<k>.npz`` files and ``labels.csv`` there
    (entries then hold no recording unless ``keep_recordings``); without, keeps recordings in memory.
    ``workers`` > 1 generates in that many processes (same result)."""
    if not isinstance(config, CohortConfig):
        raise SyntheticError("config must be a CohortConfig")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SyntheticError(f"workers must be a positive integer, not {workers!r}")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise SyntheticError(f"{out} exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
    keep = (out is None) if keep_recordings is None else keep_recordings
    plan = plan_cohort(config)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), desc="synthetic recordings", unit="rec")
    entries: list[CohortEntry] = []
    if workers == 1:
        for spec in plan:
            entries.append(_make(spec, out, keep))
            if bar is not None:
                bar.update()
    else:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for entry in pool.map(partial(_make, out=out, keep=keep), plan, chunksize=4):
                entries.append(entry)
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    if out is not None:
        write_labels_csv(out / "labels.csv", (e.label_row() for e in entries))
    return entries


__all__ = ["CohortConfig", "CohortEntry", "generate_cohort", "plan_cohort", "AGE_BANDS", "DIFFICULTIES"]
