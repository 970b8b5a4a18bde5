"""Grouped k-fold, locked test set and the leakage check."""

import copy
import pickle

import numpy as np
import pytest

from skeleton.recording import PoseRecording
from training.data import LabeledRecording
from training.splits import (
    LeakageError, LockedTestSet, LockedTestSetError, SplitError, check_no_leakage, grouped_kfold,
    hold_out_locked_test,
)

_KP = np.zeros((30, 20, 3), dtype=np.float32)
_KP[..., :2] = 0.5
_KP[..., 2] = 1.0


def make_items(n_infants: int, per_infant: int = 3, n_atypical: int | None = None) -> list[LabeledRecording]:
    n_atypical = n_infants // 3 if n_atypical is None else n_atypical
    rec = PoseRecording(keypoints=_KP, schema="infant20", fps=30, frame_size=(640, 480))
    items = []
    for i in range(n_infants):
        for r in range(per_infant):
            items.append(LabeledRecording(
                recording=rec, infant_id=f"inf{i:03d}", label=int(i < n_atypical), age_weeks=4.0 + r,
                source="synthetic", key=f"inf{i:03d}_r{r}",
            ))
    return items


def test_kfold_grouped_stratified_and_covering():
    items = make_items(30, per_infant=3, n_atypical=10)
    folds = grouped_kfold(items, k=5, seed=1)
    assert len(folds) == 5
    all_val = sorted(i for f in folds for i in f.val)
    assert all_val == list(range(len(items)))  # every recording validated exactly once
    for f in folds:
        assert not set(f.train) & set(f.val)
        train_ids = {items[i].infant_id for i in f.train}
        val_ids = {items[i].infant_id for i in f.val}
        assert not train_ids & val_ids
        # stratified: 10 atypical infants over 5 folds -> 2 per fold
        assert len({items[i].infant_id for i in f.val if items[i].label == 1}) == 2


def test_kfold_deterministic_and_seed_dependent():
    items = make_items(20)
    a, b = grouped_kfold(items, 4, seed=3), grouped_kfold(items, 4, seed=3)
    assert a == b
    assert a != grouped_kfold(items, 4, seed=4)


def test_kfold_unstratifiable_still_grouped():
    items = make_items(10, n_atypical=2)  # 2 atypical infants < k
    with pytest.warns(UserWarning, match="not stratified"):
        folds = grouped_kfold(items, k=5, seed=0)
    for f in folds:
        check_no_leakage([items[i] for i in f.train], [items[i] for i in f.val])


def test_kfold_too_few_infants():
    with pytest.raises(SplitError, match="at least 5 infants"):
        grouped_kfold(make_items(3), k=5, seed=0)
    with pytest.raises(SplitError, match="k >= 2"):
        grouped_kfold(make_items(6), k=1, seed=0)


def test_leakage_check_names_infants():
    items = make_items(6)
    check_no_leakage(items[:6], items[6:])  # infants 0, 1 vs the rest: fine
    with pytest.raises(LeakageError, match="inf001") as e:
        check_no_leakage(items[:5], items[5:])  # infant 1 has recordings on both sides
    assert "inf000" not in str(e.value)
    with pytest.raises(LeakageError, match="inf002"):
        check_no_leakage(["inf002"], items)


def test_locked_test_set_is_locked():
    items = make_items(20, n_atypical=6)
    rest, locked = hold_out_locked_test(items, fraction=0.25, seed=7)
    assert isinstance(locked, LockedTestSet)
    assert len(rest) + len(locked) == len(items)
    assert locked.n_infants == 6  # per class: round(0.25 * 14 typical) = 4, round(0.25 * 6 atypical) = 2
    check_no_leakage(rest, locked)
    with pytest.raises(LeakageError):
        check_no_leakage(items, locked)
    for attempt in (lambda: list(locked), lambda: locked[0], lambda: pickle.dumps(locked),
                    lambda: copy.deepcopy(locked)):
        with pytest.raises(LockedTestSetError, match="locked"):
            attempt()
    assert not hasattr(locked, "items") and not locked.was_unlocked
    with pytest.raises(LockedTestSetError, match="reason"):
        locked.unlock("  ")
    test = locked.unlock("final evaluation in test_splits")
    assert locked.was_unlocked and locked.unlocks[0].reason == "final evaluation in test_splits"
    assert {it.infant_id for it in test} == locked.infant_ids
    assert {it.label for it in test} == {0, 1}
    assert locked.summary()["unlocks"][0]["reason"] == "final evaluation in test_splits"


def test_locked_test_set_deterministic():
    items = make_items(20)
    _, a = hold_out_locked_test(items, 0.2, seed=1)
    _, b = hold_out_locked_test(items, 0.2, seed=1)
    _, c = hold_out_locked_test(items, 0.2, seed=2)
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_locked_test_bad_fraction(fraction):
    with pytest.raises(SplitError, match="fraction"):
        hold_out_locked_test(make_items(10), fraction, seed=0)
