"""Honest evaluation of a screening score.

* AUC with a bootstrap 95 % CI that resamples **infants** (all recordings of a
  drawn infant come along), because recordings of one infant are not
  independent.
* The decision threshold is chosen on validation data as the highest
  threshold that reaches the target sensitivity (default 0.90), then frozen
  and applied to the evaluation data; a frozen threshold (e.g. from a model
  checkpoint) can be given instead. A score >= threshold is "refer".
* PPV and NPV at a stated prevalence by Bayes' rule from sensitivity and
  specificity (the sample's own prevalence when none is stated, and the report
  says so).
* Brier score and ECE (10 equal-width bins over [0, 1]; an equal-mass
  variant is reported too), when scores are probabilities.
* Results per age band: writhing (<= 8 weeks corrected), fidgety (> 8 to
  20 weeks), other (> 20 weeks), unknown (no age).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from skeleton.errors import CogmaError

SYNTHETIC_NOTE = "synthetic data — not for clinical use"
SCREENING_NOTE = "screening aid, not a diagnosis"
ECE_BINS = 10
AGE_BANDS = ("writhing", "fidgety", "other", "unknown")
AGE_BAND_RULE = "writhing: age <= 8 weeks corrected; fidgety: 8 < age <= 20; other: age > 20; unknown: no age"


class EvaluationError(CogmaError):
    """Scores and labels that cannot be evaluated (mismatched lengths, NaN, one class only …)."""


@dataclass
class EvaluationReport:
    auc: float | None
    auc_ci: tuple[float, float] | None
    sensitivity: float | None
    specificity: float | None
    ppv: float | None
    npv: float | None
    brier: float | None
    ece: float | None
    threshold: float
    operating_point: dict[str, Any]
    n_recordings: int
    n_infants: int
    prevalence: float
    per_age_band: dict[str, dict[str, Any]]
    prevalence_source: str = "stated"
    ece_equal_mass: float | None = None
    ece_method: str = f"{ECE_BINS} equal-width bins over [0, 1] (ece_equal_mass: {ECE_BINS} equal-mass bins)"
    confusion: dict[str, int] = field(default_factory=dict)  # tp, fp, tn, fn at the threshold
    n_positive: int = 0
    n_boot: int = 0
    roc: dict[str, list[float]] = field(default_factory=dict)  # fpr, tpr, thresholds
    calibration: dict[str, list[float]] = field(default_factory=dict)  # mean score, observed rate, count per bin
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["auc_ci"] = list(self.auc_ci) if self.auc_ci is not None else None
        return _json_safe(d)


def _json_safe(x: Any) -> Any:
    """NaN is not JSON: undefined numbers become null."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


# ---------------------------------------------------------------- pieces

def auc_score(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank (Mann-Whitney) formula, ties counted half; NaN with one class only."""
    y = np.asarray(y_true)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_auc_ci(
    y_true: np.ndarray, scores: np.ndarray, infant_ids: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float] | None:
    """Percentile 95 % CI of the AUC, resampling infants with replacement."""
    infants, inverse = np.unique(infant_ids, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(infants))]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(infants), len(infants))
        idx = np.concatenate([members[i] for i in drawn])
        a = auc_score(y_true[idx], scores[idx])
        if math.isfinite(a):  # a resample with one class only has no AUC
            aucs.append(a)
    if len(aucs) < max(10, n_boot // 2):
        return None
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def sens_spec(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float, dict[str, int]]:
    pred = scores >= threshold
    y = y_true.astype(bool)
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return sens, spec, {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def choose_threshold(
    y_true: np.ndarray, scores: np.ndarray, target_sensitivity: float = 0.90
) -> tuple[float, float, float]:
    """The highest threshold whose sensitivity reaches the target (the best specificity among those).

    Returns (threshold, sensitivity, specificity) on the data given.
    """
    y, s = _check_pair(y_true, scores, "validation")
    if y.sum() == 0:
        raise EvaluationError("cannot choose a threshold: the validation data have no atypical recording")
    if not 0.0 < target_sensitivity <= 1.0:
        raise EvaluationError(f"target sensitivity must be in (0, 1], not {target_sensitivity}")
    pos = np.sort(s[y == 1])[::-1]
    # Refer the top k positives: with k = ceil(target * n_pos), the k-th highest positive score is the
    # highest threshold that reaches the target.
    k = math.ceil(target_sensitivity * len(pos) - 1e-9)
    threshold = float(pos[k - 1])
    sens, spec, _ = sens_spec(y, s, threshold)
    return threshold, sens, spec


def ppv_npv(sensitivity: float, specificity: float, prevalence: float) -> tuple[float, float]:
    """Predictive values at ``prevalence`` by Bayes' rule."""
    p = prevalence
    tp, fp = sensitivity * p, (1 - specificity) * (1 - p)
    tn, fn = specificity * (1 - p), (1 - sensitivity) * p
    ppv = tp / (tp + fp) if tp + fp > 0 else float("nan")
    npv = tn / (tn + fn) if tn + fn > 0 else float("nan")
    return ppv, npv


def brier_score(y_true: np.ndarray, probs: np.ndarray) -> float:
    return float(np.mean((probs - y_true) ** 2))


def calibration_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS, equal_mass: bool = False):
    """Per non-empty bin: mean predicted probability, observed rate, count."""
    if equal_mass:
        order = np.argsort(probs, kind="stable")
        bins = [b for b in np.array_split(order, n_bins) if len(b)]
    else:
        which = np.clip((probs * n_bins).astype(int), 0, n_bins - 1)  # bin i = [i/n, (i+1)/n), 1.0 in the last
        bins = [np.flatnonzero(which == i) for i in range(n_bins)]
        bins = [b for b in bins if len(b)]
    mean_p = [float(probs[b].mean()) for b in bins]
    rate = [float(y_true[b].mean()) for b in bins]
    count = [int(len(b)) for b in bins]
    return mean_p, rate, count


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS,
                               equal_mass: bool = False) -> float:
    mean_p, rate, count = calibration_bins(y_true, probs, n_bins, equal_mass)
    n = sum(count)
    return float(sum(c / n * abs(m - r) for m, r, c in zip(mean_p, rate, count)))


def age_band(age_weeks: float | None) -> str:
    if age_weeks is None or (isinstance(age_weeks, float) and math.isnan(age_weeks)):
        return "unknown"
    if age_weeks <= 8:
        return "writhing"
    if age_weeks <= 20:
        return "fidgety"
    return "other"


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    if y_true.min() == y_true.max():
        return {}
    fpr, tpr, thr = roc_curve(y_true, scores)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": [float(min(t, 1e308)) for t in thr]}


# ---------------------------------------------------------------- evaluate

def _check_pair(y_true, scores, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise EvaluationError(
            f"{what}: labels and scores must be two lists of the same length ({y.shape} vs {s.shape})"
        )
    if len(y) == 0:
        raise EvaluationError(f"{what}: no recordings to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise EvaluationError(f"{what}: labels must be 0 (typical) or 1 (atypical)")
    if not np.isfinite(s).all():
        raise EvaluationError(f"{what}: {int((~np.isfinite(s)).sum())} scores are NaN or infinite")
    return y.astype(np.int64), s


def evaluate(
    y_true, scores, infant_ids, age_weeks, *, threshold: float | None = None,
    val_true=None, val_scores=None, prevalence: float | None = None, target_sensitivity: float = 0.90,
    n_boot: int = 1000, seed: int = 0, synthetic: bool = False,
) -> EvaluationReport:
    """Evaluate ``scores`` (higher = more likely atypical) against ``y_true``.

    The threshold is ``threshold`` if given (frozen), else chosen on
    (``val_true``, ``val_scores``); with neither it is chosen on the
    evaluation data itself and the report flags that as optimistic.
    """
    y, s = _check_pair(y_true, scores, "evaluation data")
    ids = np.asarray([str(i) for i in infant_ids])
    if len(ids) != len(y):
        raise EvaluationError(f"{len(ids)} infant ids for {len(y)} recordings")
    ages = list(age_weeks) if age_weeks is not None else [None] * len(y)
    if len(ages) != len(y):
        raise EvaluationError(f"{len(ages)} ages for {len(y)} recordings")
    notes = [SCREENING_NOTE]
    if synthetic:
        notes.insert(0, SYNTHETIC_NOTE)

    threshold, op = _operating_point(y, s, threshold, val_true, val_scores, target_sensitivity, notes)
    sens, spec, confusion = sens_spec(y, s, threshold)
    if prevalence is None:
        prevalence, prev_source = float(y.mean()), "sample (no prevalence stated)"
    else:
        if not 0.0 < prevalence < 1.0:
            raise EvaluationError(f"prevalence must be between 0 and 1, not {prevalence}")
        prev_source = "stated"
    ppv, npv = ppv_npv(sens, spec, prevalence) if math.isfinite(sens) and math.isfinite(spec) else (math.nan, math.nan)

    auc = auc_score(y, s)
    if not math.isfinite(auc):
        notes.append("AUC undefined: the evaluation data hold one class only")
    auc_ci = bootstrap_auc_ci(y, s, ids, n_boot, seed) if math.isfinite(auc) and n_boot > 0 else None
    if math.isfinite(auc) and n_boot > 0 and auc_ci is None:
        notes.append("no AUC confidence interval: too few infants of each class for an infant-level bootstrap")

    is_prob = bool(s.min() >= 0.0 and s.max() <= 1.0)
    brier = ece = ece_mass = None
    calibration: dict[str, list[float]] = {}
    if is_prob:
        brier = brier_score(y, s)
        ece = expected_calibration_error(y, s)
        ece_mass = expected_calibration_error(y, s, equal_mass=True)
        mean_p, rate, count = calibration_bins(y, s)
        calibration = {"mean_predicted": mean_p, "observed_rate": rate, "count": count}
    else:
        notes.append("scores are not probabilities in [0, 1]: Brier score and ECE not computed")

    return EvaluationReport(
        auc=auc, auc_ci=auc_ci, sensitivity=sens, specificity=spec, ppv=ppv, npv=npv, brier=brier, ece=ece,
        threshold=float(threshold), operating_point=op, n_recordings=int(len(y)), n_infants=int(len(set(ids))),
        prevalence=float(prevalence), prevalence_source=prev_source,
        per_age_band=_per_age_band(y, s, ids, ages, threshold),
        ece_equal_mass=ece_mass, confusion=confusion, n_positive=int(y.sum()), n_boot=int(n_boot),
        roc=roc_points(y, s), calibration=calibration, synthetic=bool(synthetic), notes=notes,
    )


def evaluate_items(items, scores, **kwargs) -> EvaluationReport:
    """:func:`evaluate` for ``LabeledRecording`` items: labels, infant ids, ages and the synthetic flag
    are taken from the items (``synthetic`` is true if any item is synthetic)."""
    from training.data.types import any_synthetic

    items = list(items)
    kwargs.setdefault("synthetic", any_synthetic(items))
    return evaluate([it.label for it in items], scores, [it.infant_id for it in items],
                    [it.age_weeks for it in items], **kwargs)


def _operating_point(y, s, threshold, val_true, val_scores, target, notes) -> tuple[float, dict[str, Any]]:
    if threshold is not None:
        if not math.isfinite(float(threshold)):
            raise EvaluationError(f"threshold must be a finite number, not {threshold}")
        return float(threshold), {"target_sensitivity": target, "chosen_on": "given (frozen)"}
    if (val_true is None) != (val_scores is None):
        raise EvaluationError("give both val_true and val_scores, or neither")
    if val_true is not None:
        t, vs, vp = choose_threshold(val_true, val_scores, target)
        return t, {"target_sensitivity": target, "sensitivity": vs, "specificity": vp, "chosen_on": "validation"}
    notes.append("threshold chosen on the evaluation data itself (no validation scores given): optimistic")
    t, vs, vp = choose_threshold(y, s, target)
    return t, {"target_sensitivity": target, "sensitivity": vs, "specificity": vp,
               "chosen_on": "evaluation data (optimistic)"}


def _per_age_band(y, s, ids, ages, threshold) -> dict[str, dict[str, Any]]:
    bands = np.array([age_band(a) for a in ages])
    out = {}
    for band in AGE_BANDS:
        m = bands == band
        if not m.any():
            continue
        sens, spec, _ = sens_spec(y[m], s[m], threshold)
        out[band] = {
            "n_recordings": int(m.sum()), "n_infants": int(len(set(ids[m]))), "n_positive": int(y[m].sum()),
            "auc": auc_score(y[m], s[m]), "sensitivity": sens, "specificity": spec,
        }
    return out


# ---------------------------------------------------------------- report files

def write_report(report: EvaluationReport, out_dir: str | Path, title: str) -> dict[str, Path]:
    """Write ``report.json``, ``roc.png`` and ``calibration.png`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = report.to_dict()
    d = {"title": title, "age_bands": AGE_BAND_RULE, **d}
    paths = {"json": out / "report.json", "roc": out / "roc.png", "calibration": out / "calibration.png"}
    paths["json"].write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    subtitle = SYNTHETIC_NOTE if report.synthetic else SCREENING_NOTE

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if report.roc:
        auc_txt = f"AUC {report.auc:.3f}"
        if report.auc_ci:
            auc_txt += f" (95% CI {report.auc_ci[0]:.3f}-{report.auc_ci[1]:.3f})"
        ax.plot(report.roc["fpr"], report.roc["tpr"], lw=2, label=auc_txt)
    if report.sensitivity is not None and math.isfinite(report.sensitivity) and math.isfinite(report.specificity):
        ax.plot([1 - report.specificity], [report.sensitivity], "o", color="crimson",
                label=f"threshold {report.threshold:.3g} ({report.operating_point.get('chosen_on', '')})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(f"{title}\n{subtitle}", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(paths["roc"])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if report.calibration:
        ax.plot(report.calibration["mean_predicted"], report.calibration["observed_rate"], "o-",
                label=f"ECE {report.ece:.3f}, Brier {report.brier:.3f}")
    else:
        ax.text(0.5, 0.5, "scores are not probabilities", ha="center")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    ax.set(xlabel="predicted risk", ylabel="observed atypical rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"{title}\n{subtitle}", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(paths["calibration"])
    plt.close(fig)
    return paths
