"""CoGMA/PKU feeder layout: one numpy array ``[N, C, T, V, M]`` plus a label pickle.

Facts from the public CoGMA feeder (``feeders/feeder_pku.py``): joints are the
Infant-20 graph (V = 20), 30 fps, the infant id is the first four characters
of a sample name and the class is the digit after the first ``N`` in the name.
Here C is 2 (x, y) or 3 (x, y, confidence); of M persons the first is the
infant. ST-GCN-style arrays are zero-padded at the end to a common T; the
padding is trimmed. The label pickle holds ``(names, labels)`` (or just the
names) and is read with a restricted unpickler (see ``safe_pickle``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from skeleton.errors import RecordingError
from skeleton.recording import COORD_LIMIT, PoseRecording
from skeleton.schemas import INFANT_20

from .safe_pickle import load_label_pickle
from .spec import age_of, binary_label, check_keys, fps_of, frame_size_of, label_map_of, path_of
from .types import DatasetError, LabeledRecording

KIND = "pku"
SPEC_KEYS = {"data", "labels", "fps", "frame_size", "age_weeks", "label_map"}
DEFAULT_FPS = 30.0  # CoGMA's videos
UNKNOWN_FRAME_SIZE = (1000, 1000)  # placeholder when coordinates come normalized; flagged in extra
_CLASS_IN_NAME = re.compile(r"N(\d)")


def load_pku(spec: dict) -> list[LabeledRecording]:
    check_keys(spec, SPEC_KEYS, KIND)
    data_path = path_of(spec, "data", KIND, must_be="file")
    labels_path = path_of(spec, "labels", KIND, must_be="file")
    fps = fps_of(spec, KIND, DEFAULT_FPS)
    frame_size = frame_size_of(spec, KIND)
    age = age_of(spec.get("age_weeks"), f"dataset spec of kind {KIND!r}")
    label_map = label_map_of(spec, KIND)

    data = _open_array(data_path)
    names, raw_labels = _read_labels(labels_path, expected=data.shape[0])
    items = []
    for n, name in enumerate(names):
        where = f"{data_path}: sample {n} ({name!r})"
        pickled = raw_labels[n] if raw_labels is not None else None
        raw = _class_of(name, pickled, f"{labels_path}: sample {n} ({name!r})")
        keypoints, size, normalized_given = _sample_keypoints(data, n, frame_size, where)
        extra = {"source_file": data_path.name, "sample": name}
        if normalized_given:
            extra["frame_size_unknown"] = True
        try:
            rec = PoseRecording(
                keypoints=keypoints, schema=INFANT_20.name, fps=fps, frame_size=size,
                pose_model="unknown (PKU feeder)", age_weeks=age, label=binary_label(raw, label_map, where),
                infant_id=name[:4], extra=extra,
            )
        except RecordingError as e:
            raise DatasetError(f"{where}: {e}") from None
        items.append(LabeledRecording(
            recording=rec, infant_id=name[:4], label=rec.label, age_weeks=age, source=KIND,
            key=Path(name).stem,
        ))
    return items


def _open_array(path: Path) -> np.ndarray:
    try:
        # mmap: a feeder array can be many GB; only one sample at a time is read.
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise DatasetError(f"{path}: not a numeric .npy array ({e})") from None
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: cannot read the array ({e})") from None
    if not isinstance(data, np.ndarray):
        raise DatasetError(f"{path}: expected one .npy array [N, C, T, V, M], found an archive")
    if data.ndim != 5:
        raise DatasetError(f"{path}: array has shape {data.shape}; the PKU feeder layout is [N, C, T, V, M]")
    n, c, t, v, m = data.shape
    if c not in (2, 3):
        raise DatasetError(f"{path}: C = {c} channels; expected 2 (x, y) or 3 (x, y, confidence)")
    if v != INFANT_20.num_joints:
        raise DatasetError(f"{path}: V = {v} joints; the PKU layout uses the {INFANT_20.num_joints} Infant-20 joints")
    if n == 0 or t == 0 or m == 0:
        raise DatasetError(f"{path}: empty array {data.shape}")
    if data.dtype.kind not in "fiu":
        raise DatasetError(f"{path}: array holds {data.dtype}, not numbers")
    return data


def _read_labels(path: Path, expected: int) -> tuple[list[str], list[int] | None]:
    obj = load_label_pickle(path)
    labels = None
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and isinstance(obj[0], (list, tuple, np.ndarray)) \
            and not isinstance(obj[0], str):
        names, labels = obj
    else:
        names = obj
    if isinstance(names, np.ndarray):
        names = names.tolist()
    if not isinstance(names, (list, tuple)) or not all(isinstance(s, str) for s in names):
        raise DatasetError(f"{path}: expected (names, labels) with names a list of strings")
    if len(names) != expected:
        raise DatasetError(f"{path}: {len(names)} names but the data array has {expected} samples")
    short = [s for s in names if len(s) < 4]
    if short:
        raise DatasetError(f"{path}: sample name {short[0]!r} is shorter than the 4-character infant id")
    if len(set(names)) != len(names):
        dup = next(s for s in names if names.count(s) > 1)
        raise DatasetError(f"{path}: sample name {dup!r} occurs more than once")
    if labels is not None:
        labels = np.asarray(labels).tolist()
        if len(labels) != expected:
            raise DatasetError(f"{path}: {len(labels)} labels but the data array has {expected} samples")
        bad = [x for x in labels if isinstance(x, bool) or not isinstance(x, int)]
        if bad:
            raise DatasetError(f"{path}: labels must be whole class numbers, found {bad[0]!r}")
    return list(names), labels


def _class_of(name: str, pickled: int | None, where: str) -> int:
    match = _CLASS_IN_NAME.search(name)
    from_name = int(match.group(1)) if match else None
    if from_name is None and pickled is None:
        raise DatasetError(f"{where}: no label (no 'N<digit>' in the name and no labels in the pickle)")
    if from_name is not None and pickled is not None and from_name != pickled:
        raise DatasetError(f"{where}: the name says class {from_name} but the pickle says {pickled}")
    return from_name if from_name is not None else pickled


def _sample_keypoints(
    data: np.ndarray, n: int, frame_size: tuple[int, int] | None, where: str
) -> tuple[np.ndarray, tuple[int, int], bool]:
    """[T, 20, 3] normalized keypoints of sample ``n``, its frame size and whether the size is unknown."""
    arr = np.asarray(data[n, :, :, :, 0], dtype=np.float64).transpose(1, 2, 0)  # [T, V, C]
    if not np.isfinite(arr).all():
        raise DatasetError(f"{where}: contains NaN or infinite values")
    filled = np.flatnonzero(np.any(arr != 0, axis=(1, 2)))
    if filled.size == 0:
        raise DatasetError(f"{where}: all zeros (no pose in any frame)")
    arr = arr[: filled[-1] + 1]  # drop the zero padding at the end
    xy = arr[..., :2]
    if arr.shape[-1] == 3:
        vis = arr[..., 2]
        if vis.min() < 0 or vis.max() > 1:
            raise DatasetError(
                f"{where}: third channel ranges {vis.min():.3g}..{vis.max():.3g}, not a confidence in 0..1 "
                "(3-D coordinates are not supported)"
            )
    else:
        vis = np.any(xy != 0, axis=-1).astype(np.float64)  # (0, 0) is how the feeder marks a missing joint
    if frame_size is not None:
        xy = xy / np.asarray(frame_size, dtype=np.float64)
        size, unknown = frame_size, False
    else:
        lo, hi = COORD_LIMIT
        if xy.min() < lo or xy.max() > hi:
            raise DatasetError(
                f"{where}: coordinates range {xy.min():.1f}..{xy.max():.1f}, so they look like pixels; "
                "give 'frame_size': [width, height] in the dataset spec"
            )
        size, unknown = UNKNOWN_FRAME_SIZE, True
    keypoints = np.concatenate([xy, vis[..., None]], axis=-1).astype(np.float32)
    return keypoints, size, unknown
