"""Hand-crafted baseline on grouped folds."""

import numpy as np
import pytest

from skeleton.recording import PoseRecording
from training.baselines import BaselineError, hand_crafted_features, logistic_baseline
from training.data import LabeledRecording
from training.splits import LeakageError, grouped_kfold, hold_out_locked_test


def _speed_features(rec: PoseRecording) -> dict[str, float]:
    xy = rec.keypoints[..., :2]
    speed = np.linalg.norm(np.diff(xy, axis=0), axis=-1) * rec.fps
    return {"speed_mean": float(speed.mean()), "speed_sd": float(speed.std())}


def _items(n_infants=24, per=3, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_infants):
        label = int(i % 3 == 0)
        base = rng.normal(0.004, 0.0015)  # infant-level variation larger than the class difference
        for r in range(per):
            step = abs(base + 0.0012 * label + rng.normal(0, 0.0005))
            kp = np.zeros((60, 20, 3), dtype=np.float32)
            kp[..., :2] = 0.5 + np.cumsum(rng.normal(0, step, (60, 20, 2)), axis=0)
            kp[..., 2] = 1.0
            rec = PoseRecording(keypoints=kp, schema="infant20", fps=30, frame_size=(640, 480))
            items.append(LabeledRecording(recording=rec, infant_id=f"b{i:02d}", label=label, age_weeks=5.0 + r,
                                          source="synthetic", key=f"b{i:02d}_{r}"))
    return items


def test_logistic_baseline_cv_and_locked_test():
    items = _items()
    train, locked = hold_out_locked_test(items, 0.25, seed=0)
    folds = grouped_kfold(train, 4, seed=0)
    result = logistic_baseline(train, folds, seed=0, feature_fn=_speed_features, n_boot=100, prevalence=0.05,
                               test_items=locked.unlock("baseline unit test"))
    assert len(result.fold_aucs) == 4 and not np.isnan(result.oof_scores).any()
    assert 0.6 < result.cv.auc <= 1.0  # learnable
    assert result.cv.operating_point["chosen_on"] == "validation" and result.cv.sensitivity >= 0.9
    assert result.test is not None and result.test.threshold == result.cv.threshold
    assert "frozen" in result.test.operating_point["chosen_on"]
    d = result.to_dict()
    assert d["feature_names"] == ["speed_mean", "speed_sd"] and d["cv"]["n_infants"] == len({i.infant_id for i in train})
    assert "synthetic data — not for clinical use" in d["cv"]["notes"]
    again = logistic_baseline(train, folds, seed=0, feature_fn=_speed_features, n_boot=100)
    np.testing.assert_array_equal(again.oof_scores, result.oof_scores)  # deterministic


def test_baseline_refuses_leaky_test_and_one_class_folds():
    items = _items(12)
    folds = grouped_kfold(items, 3, seed=0)
    with pytest.raises(LeakageError):
        logistic_baseline(items, folds, feature_fn=_speed_features, n_boot=0, test_items=items[:3])
    typical = [it for it in items if it.label == 0]
    with pytest.warns(UserWarning):
        folds = grouped_kfold(typical, 3, seed=0)
    with pytest.raises(BaselineError, match="one class only"):
        logistic_baseline(typical, folds, feature_fn=_speed_features, n_boot=0)


def test_features_nan_is_imputed():
    items = _items(12)
    calls = iter(range(10_000))

    def sometimes_nan(rec):
        f = _speed_features(rec)
        if next(calls) % 5 == 0:
            f["speed_sd"] = float("nan")
        return f

    x, names = hand_crafted_features(items, sometimes_nan)
    assert np.isnan(x).any() and names == ["speed_mean", "speed_sd"]
    result = logistic_baseline(items, grouped_kfold(items, 3, seed=1), features=x, n_boot=0)
    assert np.isfinite(result.oof_scores).all()


def test_real_kinematic_features_on_synthetic_cohort():
    from training.data import load_dataset

    items = load_dataset({"kind": "synthetic", "n_infants": 15, "seed": 11, "seconds": [8, 12], "prevalence": 0.4})
    folds = grouped_kfold(items, 3, seed=0)
    result = logistic_baseline(items, folds, seed=0, n_boot=50)  # default: skeleton.kinematics features
    assert "wrist_speed_mean" in result.feature_names
    assert len(result.oof_scores) == len(items) and np.isfinite(result.cv.auc)
    assert result.cv.synthetic and result.cv.n_infants == 15
