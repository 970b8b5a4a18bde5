"""Evaluation numbers against hand-computed cases, and the report files."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.evaluate import (
    SYNTHETIC_NOTE, EvaluationError, age_band, auc_score, choose_threshold, evaluate,
    expected_calibration_error, ppv_npv, write_report,
)


def test_perfect_scores():
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    r = evaluate(y, s, ["a", "b", "c", "d", "e", "f"], [4, 4, 4, 4, 4, 4], val_true=y, val_scores=s, n_boot=200)
    assert r.auc == 1.0 and r.auc_ci == (1.0, 1.0)
    assert r.sensitivity == 1.0 and r.specificity == 1.0
    assert r.threshold == 0.7  # the highest threshold keeping all positives (3 * 0.9 -> 3 of 3)
    assert r.n_recordings == 6 and r.n_infants == 6


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert auc_score(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert math.isnan(auc_score(np.zeros(5), np.arange(5)))


def test_threshold_reaches_target_sensitivity():
    # 10 positives: 0.9 * 10 = 9 must be referred -> threshold = 9th highest positive score.
    pos = np.arange(10, 20) / 20.0  # 0.50 .. 0.95
    neg = np.array([0.1, 0.2, 0.55, 0.6, 0.9])
    y = np.r_[np.ones(10), np.zeros(5)]
    s = np.r_[pos, neg]
    t, sens, spec = choose_threshold(y, s, 0.90)
    assert t == pytest.approx(0.55)
    assert sens == pytest.approx(0.9)
    assert spec == pytest.approx(2 / 5)  # 0.55, 0.6, 0.9 are >= 0.55 -> 3 false positives of 5
    # target 1.0 needs every positive
    assert choose_threshold(y, s, 1.0)[0] == pytest.approx(0.5)


def test_threshold_is_frozen_from_validation():
    val_y, val_s = [0, 1, 1, 0], [0.2, 0.6, 0.9, 0.1]
    y, s = [0, 0, 1, 1], [0.65, 0.3, 0.55, 0.99]
    r = evaluate(y, s, list("abcd"), None, val_true=val_y, val_scores=val_s, n_boot=0)
    assert r.threshold == 0.6 and r.operating_point["chosen_on"] == "validation"
    # on the test data: 0.55 < 0.6 misses one positive, 0.65 is a false positive
    assert r.sensitivity == 0.5 and r.specificity == 0.5
    assert r.confusion == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}
    r2 = evaluate(y, s, list("abcd"), None, threshold=0.5, n_boot=0)
    assert r2.operating_point["chosen_on"] == "given (frozen)" and r2.sensitivity == 1.0
    r3 = evaluate(y, s, list("abcd"), None, n_boot=0)
    assert "optimistic" in r3.operating_point["chosen_on"]


def test_ppv_npv_bayes():
    ppv, npv = ppv_npv(0.9, 0.8, 0.05)
    assert ppv == pytest.approx(0.9 * 0.05 / (0.9 * 0.05 + 0.2 * 0.95))  # 0.1915
    assert npv == pytest.approx(0.8 * 0.95 / (0.8 * 0.95 + 0.1 * 0.05))  # 0.9935
    assert ppv == pytest.approx(0.19148936, abs=1e-7)
    y, s = [0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.7, 0.9]  # threshold 0.7: sens 1, spec 3/4
    r = evaluate(y, s, list("abcdef"), None, threshold=0.7, prevalence=0.1, n_boot=0)
    assert r.ppv == pytest.approx(0.1 / (0.1 + 0.25 * 0.9)) and r.npv == 1.0
    assert r.prevalence == 0.1 and r.prevalence_source == "stated"
    assert evaluate(y, s, list("abcdef"), None, threshold=0.7, n_boot=0).prevalence == pytest.approx(1 / 3)


def test_brier_and_ece_hand_computed():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.05, 0.95, 0.25, 0.25])
    r = evaluate(y, p, list("abcd"), None, threshold=0.5, n_boot=0)
    assert r.brier == pytest.approx((0.05**2 + 0.05**2 + 0.25**2 + 0.75**2) / 4)
    # equal-width bins: [0,.1): {.05, y0} gap .05; [.2,.3): {.25,.25, y 0 and 1} gap .25; [.9,1]: {.95, y1} gap .05
    assert r.ece == pytest.approx(0.25 * 0.05 + 0.5 * 0.25 + 0.25 * 0.05)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    r2 = evaluate(y, [-1.0, 2.0, 0.0, 1.0], list("abcd"), None, threshold=0.5, n_boot=0)
    assert r2.brier is None and r2.ece is None and any("not probabilities" in n for n in r2.notes)


def test_bootstrap_resamples_infants():
    # One infant per class, 50 recordings each: half of the infant resamples hold one class only,
    # so no honest CI exists (a recording-level bootstrap would happily report a narrow one).
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(50), np.ones(50)]
    s = np.r_[rng.random(50) * 0.5, 0.5 + rng.random(50) * 0.5]
    ids = ["a"] * 50 + ["b"] * 50
    r = evaluate(y, s, ids, None, threshold=0.5, n_boot=200, seed=0)
    assert r.auc == 1.0 and r.auc_ci is None and r.n_infants == 2
    assert any("too few infants" in n for n in r.notes)
    # Clustered noise: 20 infants, each infant's recordings share one random offset.
    n_inf, per = 20, 10
    lab = np.repeat(np.arange(n_inf) % 2, per)
    offset = np.repeat(rng.normal(0, 1, n_inf), per)
    s2 = lab * 0.5 + offset + rng.normal(0, 0.1, n_inf * per)
    ids2 = np.repeat([f"i{k}" for k in range(n_inf)], per)
    wide = evaluate(lab, s2, ids2, None, threshold=0.0, n_boot=300, seed=0).auc_ci
    narrow = evaluate(lab, s2, [f"r{k}" for k in range(n_inf * per)], None, threshold=0.0, n_boot=300, seed=0).auc_ci
    assert wide[1] - wide[0] > 1.5 * (narrow[1] - narrow[0])  # infant-level CI is honestly wider
    assert evaluate(lab, s2, ids2, None, threshold=0.0, n_boot=300, seed=0).auc_ci == wide  # deterministic


def test_age_bands():
    assert [age_band(a) for a in (-2, 0, 8, 8.5, 20, 20.5, None)] == [
        "writhing", "writhing", "writhing", "fidgety", "fidgety", "other", "unknown"]
    y, s = [0, 1, 0, 1, 1], [0.1, 0.9, 0.2, 0.8, 0.3]
    r = evaluate(y, s, list("abcde"), [4, 4, 12, 12, None], threshold=0.5, n_boot=0)
    assert r.per_age_band["writhing"]["auc"] == 1.0 and r.per_age_band["writhing"]["n_recordings"] == 2
    assert r.per_age_band["fidgety"]["sensitivity"] == 1.0
    assert r.per_age_band["unknown"]["sensitivity"] == 0.0 and "other" not in r.per_age_band


@pytest.mark.parametrize("bad, msg", [
    (dict(y_true=[0, 1], scores=[0.5]), "same length"),
    (dict(y_true=[0, 2], scores=[0.1, 0.5]), "0 \\(typical\\) or 1"),
    (dict(y_true=[0, 1], scores=[0.1, float("nan")]), "NaN"),
    (dict(y_true=[], scores=[]), "no recordings"),
])
def test_bad_inputs(bad, msg):
    with pytest.raises(EvaluationError, match=msg):
        evaluate(bad["y_true"], bad["scores"], ["a"] * len(bad["y_true"]), None, threshold=0.5)


def test_no_positive_in_validation():
    with pytest.raises(EvaluationError, match="no atypical"):
        evaluate([0, 1], [0.1, 0.9], ["a", "b"], None, val_true=[0, 0], val_scores=[0.2, 0.3])


def test_write_report_files(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 60)
    s = np.clip(0.3 * y + 0.7 * rng.random(60), 0, 1)
    ids = [f"i{k // 3}" for k in range(60)]
    r = evaluate(y, s, ids, [6.0] * 30 + [14.0] * 30, val_true=y, val_scores=s, prevalence=0.05,
                 n_boot=100, synthetic=True)
    paths = write_report(r, tmp_path / "out", "unit test")
    d = json.loads(paths["json"].read_text())
    for key in ("auc", "auc_ci", "sensitivity", "specificity", "ppv", "npv", "brier", "ece", "threshold",
                "operating_point", "n_recordings", "n_infants", "prevalence", "per_age_band"):
        assert key in d
    assert SYNTHETIC_NOTE in d["notes"] and d["title"] == "unit test"
    for name in ("roc", "calibration"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[name].stat().st_size > 5000
    # one class only: AUC undefined, written as null (valid JSON)
    r1 = evaluate([1, 1], [0.4, 0.6], ["a", "b"], None, threshold=0.5)
    d1 = json.loads(write_report(r1, tmp_path / "one", "one class")["json"].read_text())
    assert d1["auc"] is None and d1["auc_ci"] is None and d1["specificity"] is None


def test_evaluate_items_takes_fields_from_items():
    from skeleton.recording import PoseRecording
    from training.data import LabeledRecording
    from training.evaluate import evaluate_items

    rec = PoseRecording(keypoints=np.full((30, 20, 3), 0.5, np.float32), schema="infant20", fps=30, frame_size=(64, 48))
    items = [LabeledRecording(recording=rec, infant_id=f"i{k // 2}", label=k % 2, age_weeks=3.0 + 5 * k,
                              source="synthetic", key=f"r{k}") for k in range(6)]
    r = evaluate_items(items, [0.1, 0.9, 0.2, 0.8, 0.3, 0.7], threshold=0.5, n_boot=0)
    assert r.auc == 1.0 and r.n_infants == 3 and r.synthetic and SYNTHETIC_NOTE in r.notes
    assert set(r.per_age_band) == {"writhing", "fidgety", "other"}
