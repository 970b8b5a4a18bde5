"""Splits grouped by infant: k-fold cross-validation, a locked test set, a leakage check.

Recordings of one infant are never on both sides of a split: a model that has
seen an infant's other recordings would be graded on recognising the infant,
not its movements. Every split made here is checked with
:func:`check_no_leakage` before it is returned.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from skeleton.errors import CogmaError

from training.data.types import LabeledRecording

log = logging.getLogger(__name__)


class LeakageError(CogmaError):
    """The same infant appears on both sides of a split."""


class SplitError(CogmaError):
    """A split that cannot be made from the data given (too few infants, bad fraction, …)."""


class LockedTestSetError(CogmaError):
    """Test data were reached without :meth:`LockedTestSet.unlock`."""


@dataclass(frozen=True)
class Fold:
    train: list[int]  # indices into the items given to grouped_kfold
    val: list[int]


def _infant_labels(items: Sequence[LabeledRecording]) -> dict[str, int]:
    """One label per infant: atypical if any of its recordings is atypical."""
    out: dict[str, int] = {}
    for it in items:
        out[it.infant_id] = max(out.get(it.infant_id, 0), it.label)
    return out


def grouped_kfold(items: Sequence[LabeledRecording], k: int, seed: int) -> list[Fold]:
    """``k`` folds with every infant in exactly one validation fold, stratified by label where possible.

    Stratification needs at least ``k`` infants of each class; with fewer the
    folds are grouped but not stratified (a warning says so).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise SplitError(f"k-fold cross-validation needs k >= 2, not {k!r}")
    infant_label = _infant_labels(items)
    if len(infant_label) < k:
        raise SplitError(f"{k}-fold cross-validation needs at least {k} infants; the data have {len(infant_label)}")
    groups = np.array([it.infant_id for it in items])
    y = np.array([it.label for it in items])
    per_class = np.bincount(list(infant_label.values()), minlength=2)
    if per_class.min() >= k:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            splits = list(splitter.split(np.zeros(len(items)), y, groups))
    else:
        warnings.warn(
            f"only {per_class.min()} infants in the smaller class, fewer than k={k}: folds are grouped by "
            "infant but not stratified by label",
            stacklevel=2,
        )
        splits = list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(items)), y, groups))
    folds = [Fold(train=sorted(map(int, tr)), val=sorted(map(int, va))) for tr, va in splits]
    for fold in folds:
        check_no_leakage([items[i] for i in fold.train], [items[i] for i in fold.val])
    return folds


@dataclass(frozen=True)
class UnlockRecord:
    reason: str
    at: str  # UTC ISO time


class LockedTestSet:
    """Held-out test recordings that can only be read through :meth:`unlock`.

    Iterating, indexing or pickling the set raises :class:`LockedTestSetError`;
    what is public is only what a leakage check or a report needs (infant ids,
    recording keys, counts, a fingerprint). Each unlock is recorded with its
    reason and time, and logged.
    """

    def __init__(self, items: Sequence[LabeledRecording], *, seed: int, fraction: float) -> None:
        self.__items = list(items)  # name-mangled: not reachable as .items by accident
        self.seed = seed
        self.fraction = fraction
        self.unlocks: list[UnlockRecord] = []

    @property
    def infant_ids(self) -> frozenset[str]:
        return frozenset(it.infant_id for it in self.__items)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(it.key for it in self.__items))

    @property
    def fingerprint(self) -> str:
        """sha256 of the sorted recording keys: reports can show which test set they used."""
        return hashlib.sha256("\n".join(self.keys).encode()).hexdigest()

    @property
    def n_recordings(self) -> int:
        return len(self.__items)

    @property
    def n_infants(self) -> int:
        return len(self.infant_ids)

    @property
    def was_unlocked(self) -> bool:
        return bool(self.unlocks)

    def unlock(self, reason: str) -> list[LabeledRecording]:
        """The test recordings. ``reason`` (e.g. "final evaluation of model v3") is recorded."""
        if not isinstance(reason, str) or not reason.strip():
            raise LockedTestSetError("unlocking the test set needs a reason (e.g. 'final evaluation of model v3')")
        record = UnlockRecord(reason=reason.strip(), at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.unlocks.append(record)
        log.warning("locked test set %s unlocked: %s", self.fingerprint[:12], record.reason)
        return list(self.__items)

    def summary(self) -> dict:
        return {
            "n_recordings": self.n_recordings,
            "n_infants": self.n_infants,
            "fraction": self.fraction,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "unlocks": [vars(u) for u in self.unlocks],
        }

    def _refuse(self, *_args, **_kwargs):
        raise LockedTestSetError(
            "the test set is locked; call .unlock(reason) once, for the final evaluation"
        )

    __iter__ = _refuse
    __getitem__ = _refuse
    __reduce_ex__ = _refuse  # no pickling: a copy would escape the record of unlocks

    def __len__(self) -> int:
        return self.n_recordings

    def __repr__(self) -> str:
        return f"LockedTestSet({self.n_recordings} recordings, {self.n_infants} infants, locked)"


def hold_out_locked_test(
    items: Sequence[LabeledRecording], fraction: float, seed: int
) -> tuple[list[LabeledRecording], LockedTestSet]:
    """Move about ``fraction`` of the infants (all their recordings) into a locked test set.

    Infants are drawn per class (an infant is atypical if any recording is), so
    both classes are in the test set whenever each has at least two infants.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise SplitError(f"test fraction must be between 0 and 1, not {fraction!r}")
    infant_label = _infant_labels(items)
    if len(infant_label) < 2:
        raise SplitError(f"a locked test set needs at least 2 infants; the data have {len(infant_label)}")
    rng = np.random.default_rng(seed)
    test_ids: set[str] = set()
    for cls in (0, 1):
        ids = sorted(i for i, lab in infant_label.items() if lab == cls)
        if not ids:
            continue
        n = int(round(fraction * len(ids)))
        if len(ids) >= 2:
            n = min(max(n, 1), len(ids) - 1)  # both sides keep some of each class
        test_ids.update(rng.permutation(ids)[:n].tolist())
    if not test_ids or len(test_ids) == len(infant_label):
        raise SplitError(f"cannot hold out {fraction:g} of {len(infant_label)} infants and keep both sides non-empty")
    rest = [it for it in items if it.infant_id not in test_ids]
    test = [it for it in items if it.infant_id in test_ids]
    locked = LockedTestSet(test, seed=seed, fraction=float(fraction))
    check_no_leakage(rest, locked)
    return rest, locked


def _infant_ids(side: Iterable[LabeledRecording] | LockedTestSet | Iterable[str]) -> set[str]:
    if isinstance(side, LockedTestSet):
        return set(side.infant_ids)
    ids = set()
    for x in side:
        ids.add(x if isinstance(x, str) else x.infant_id)
    return ids


def check_no_leakage(
    a: Iterable[LabeledRecording] | LockedTestSet | Iterable[str],
    b: Iterable[LabeledRecording] | LockedTestSet | Iterable[str],
) -> None:
    """Raise :class:`LeakageError` naming every infant that is on both sides.

    Each side is a list of recordings, a :class:`LockedTestSet` (checked
    without unlocking it) or a list of infant ids.
    """
    both = sorted(_infant_ids(a) & _infant_ids(b))
    if both:
        shown = ", ".join(both[:20]) + (f" and {len(both) - 20} more" if len(both) > 20 else "")
        raise LeakageError(f"data leakage: {len(both)} infant(s) on both sides of the split: {shown}")
