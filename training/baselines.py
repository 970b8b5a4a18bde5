"""Hand-crafted baseline: kinematic features + logistic regression, on the same grouped splits.

Features come from ``skeleton.kinematics.kinematic_features`` (the synthetic
engineer's; the same features calibrate the generator), standardized and fed
to an L2 logistic regression. Cross-validation gives out-of-fold scores for
every recording; the operating threshold is chosen on those out-of-fold
(validation) scores for the target sensitivity and frozen. With test items
(from ``LockedTestSet.unlock``) a model fitted on all training items is
scored on them with that frozen threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skeleton.errors import CogmaError

from training.data.types import LabeledRecording, any_synthetic
from training.evaluate import EvaluationReport, auc_score, evaluate
from training.splits import Fold, check_no_leakage

FeatureFn = Callable[[Any], Any]


class BaselineError(CogmaError):
    """A baseline that cannot be fitted (one class only in a fold, features undefined, …)."""


def _default_feature_fn() -> FeatureFn:
    from skeleton.kinematics import kinematic_features

    return kinematic_features


def hand_crafted_features(
    items: Sequence[LabeledRecording], feature_fn: FeatureFn | None = None
) -> tuple[np.ndarray, list[str]]:
    """Feature matrix [N, F] and feature names; one row per recording."""
    fn = feature_fn or _default_feature_fn()
    rows, names = [], None
    for it in items:
        feats = fn(it.recording)
        if isinstance(feats, dict):
            keys = sorted(feats)
            if names is None:
                names = keys
            elif keys != names:
                raise BaselineError(f"recording {it.key!r}: kinematic features differ in their names from the first")
            rows.append([float(feats[k]) for k in keys])
        else:
            arr = np.asarray(feats, dtype=np.float64).ravel()
            names = names or [f"f{i}" for i in range(arr.size)]
            rows.append(arr.tolist())
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(items):
        raise BaselineError("kinematic features must give the same number of values for every recording")
    bad = ~np.isfinite(x)
    if bad.any():
        # A feature undefined for a recording (e.g. a limb never seen) is imputed by the training median
        # inside the pipeline; keep NaN here and let the imputer handle it.
        x[bad] = np.nan
    return x, list(names or [])


def _model(seed: int, c: float):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=c, max_iter=2000, random_state=seed),
    )


@dataclass
class BaselineResult:
    name: str
    cv: EvaluationReport  # out-of-fold scores over all folds
    fold_aucs: list[float]
    oof_scores: np.ndarray
    feature_names: list[str]
    test: EvaluationReport | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        finite = [a for a in self.fold_aucs if np.isfinite(a)]
        return {
            "name": self.name,
            "settings": self.settings,
            "feature_names": self.feature_names,
            "fold_aucs": [None if not np.isfinite(a) else float(a) for a in self.fold_aucs],
            "fold_auc_mean": float(np.mean(finite)) if finite else None,
            "fold_auc_sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
            "cv": self.cv.to_dict(),
            "test": self.test.to_dict() if self.test is not None else None,
        }


def logistic_baseline(
    items: Sequence[LabeledRecording], folds: Sequence[Fold], *, seed: int = 0, c: float = 1.0,
    test_items: Sequence[LabeledRecording] | None = None, prevalence: float | None = None,
    target_sensitivity: float = 0.90, n_boot: int = 1000, feature_fn: FeatureFn | None = None,
    features: np.ndarray | None = None,
) -> BaselineResult:
    """Cross-validated hand-crafted-feature logistic regression on ``folds`` (from ``grouped_kfold``)."""
    if features is None:
        x, names = hand_crafted_features(items, feature_fn)
    else:
        x, names = np.asarray(features, dtype=np.float64), [f"f{i}" for i in range(np.shape(features)[1])]
    y = np.array([it.label for it in items])
    ids = [it.infant_id for it in items]
    ages = [it.age_weeks for it in items]
    synthetic = any_synthetic(items)
    oof = np.full(len(items), np.nan)
    fold_aucs = []
    for k, fold in enumerate(folds):
        check_no_leakage([items[i] for i in fold.train], [items[i] for i in fold.val])
        if len(set(y[fold.train])) < 2:
            raise BaselineError(f"fold {k}: the training part holds one class only")
        model = _model(seed, c).fit(x[fold.train], y[fold.train])
        oof[fold.val] = model.predict_proba(x[fold.val])[:, 1]
        fold_aucs.append(auc_score(y[fold.val], oof[fold.val]))
    if np.isnan(oof).any():
        raise BaselineError(f"{int(np.isnan(oof).sum())} recordings are in no validation fold")
    cv = evaluate(y, oof, ids, ages, val_true=y, val_scores=oof, prevalence=prevalence,
                  target_sensitivity=target_sensitivity, n_boot=n_boot, seed=seed, synthetic=synthetic)
    cv.notes.append("cross-validated: out-of-fold scores; threshold chosen on these out-of-fold validation scores")
    test_report = None
    if test_items:
        check_no_leakage(items, test_items)
        x_test, _ = hand_crafted_features(test_items, feature_fn)
        model = _model(seed, c).fit(x, y)
        s_test = model.predict_proba(x_test)[:, 1]
        test_report = evaluate(
            [it.label for it in test_items], s_test, [it.infant_id for it in test_items],
            [it.age_weeks for it in test_items], threshold=cv.threshold, prevalence=prevalence,
            target_sensitivity=target_sensitivity, n_boot=n_boot, seed=seed,
            synthetic=synthetic and any_synthetic(test_items),
        )
        test_report.operating_point.update({"chosen_on": "cross-validation out-of-fold scores (frozen)",
                                            "sensitivity_at_choice": cv.sensitivity,
                                            "specificity_at_choice": cv.specificity})
    return BaselineResult(
        name="hand-crafted kinematic features + logistic regression", cv=cv, fold_aucs=fold_aucs,
        oof_scores=oof, feature_names=names, test=test_report,
        settings={"k": len(folds), "seed": seed, "C": c, "target_sensitivity": target_sensitivity},
    )
