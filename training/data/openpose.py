"""Per-frame OpenPose JSON folders.

OpenPose writes one ``<name>_<frame>_keypoints.json`` per frame with a list of
``people``, each with ``pose_keypoints_2d`` = [x, y, c] * J in pixels, J = 25
(BODY_25) or 18 (COCO-18). One folder (or one file-name prefix within a
folder) is one recording; the labels CSV (``skeleton.labels`` format, default
``<root>/labels.csv``) names it in its ``file`` column, relative to the CSV's
folder: ``baby01`` for ``root/baby01/*_keypoints.json``, ``clips/video7`` for
``root/clips/video7_000000000000_keypoints.json`` beside other videos. We convert to normalized OpenPose-18: COCO-18 is
already in OpenPose-18 order; BODY_25 drops mid-hip and the feet. A frame
without a person, or a missing frame number, becomes a zero-visibility frame.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from skeleton.errors import RecordingError
from skeleton.recording import MAX_FRAMES, PoseRecording
from skeleton.schemas import OPENPOSE_18

from .labels import read_label_rows
from .spec import check_keys, fps_of, frame_size_of, path_of
from .types import DatasetError, LabeledRecording

KIND = "openpose"
SPEC_KEYS = {"root", "labels", "fps", "frame_size"}
DEFAULT_FPS = 30.0
MAX_JSON_BYTES = 1024 * 1024
# BODY_25 indices of the 18 OpenPose-18 joints (BODY_25 adds mid-hip at 8 and six foot points).
BODY25_TO_OPENPOSE18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# Common video sizes, smallest first; used only to guess a frame size nobody gave.
_COMMON_SIZES = (
    (640, 360), (360, 640), (640, 480), (480, 640), (1280, 720), (720, 1280), (1920, 1080), (1080, 1920),
    (2560, 1440), (1440, 2560), (3840, 2160), (2160, 3840),
)
_FRAME_FILE = re.compile(r"^(?P<prefix>.*?)_?(?P<frame>\d+)_keypoints\.json$")


def load_openpose(spec: dict) -> list[LabeledRecording]:
    check_keys(spec, SPEC_KEYS, KIND)
    root = path_of(spec, "root", KIND, must_be="dir")
    labels_path = path_of(spec, "labels", KIND, must_be="file", default=root / "labels.csv")
    fps = fps_of(spec, KIND, DEFAULT_FPS)
    frame_size = frame_size_of(spec, KIND)
    groups = {(root / key).resolve(): files for key, files in find_recordings(root).items()}
    items = []
    for row in read_label_rows(labels_path):
        files = groups.get(row.path.resolve())
        if files is None:
            raise DatasetError(
                f"{labels_path}: recording {row.file!r} has no *_keypoints.json files ({row.path})"
            )
        where = str(row.path)
        rec = read_openpose_recording(files, fps=fps, frame_size=frame_size, where=where)
        try:
            rec = replace(rec, age_weeks=row.age_weeks, label=row.label, infant_id=row.infant_id)
        except RecordingError as e:
            raise DatasetError(f"{labels_path}: row for {row.file!r}: {e}") from None
        items.append(LabeledRecording(
            recording=rec, infant_id=row.infant_id, label=row.label, age_weeks=row.age_weeks, source=KIND,
            movement_class=row.movement_class, clinical=dict(row.clinical), key=row.file.strip("/").replace("/", "__"),
        ))
    return items


def find_recordings(root: Path) -> dict[str, dict[int, Path]]:
    """Recording key -> {frame number: file}. Key = folder relative to ``root``, plus ``/prefix``
    when one folder holds frames of several videos."""
    by_dir: dict[Path, dict[str, dict[int, Path]]] = defaultdict(lambda: defaultdict(dict))
    for path in sorted(root.rglob("*_keypoints.json")):
        m = _FRAME_FILE.match(path.name)
        if m is None:
            raise DatasetError(f"{path}: file name has no frame number (expected <name>_<frame>_keypoints.json)")
        frames = by_dir[path.parent][m.group("prefix")]
        frame = int(m.group("frame"))
        if frame in frames:
            raise DatasetError(f"{path}: frame {frame} appears twice (also {frames[frame].name})")
        frames[frame] = path
    if not by_dir:
        raise DatasetError(f"{root}: no OpenPose *_keypoints.json files found")
    groups: dict[str, dict[int, Path]] = {}
    for folder, prefixes in by_dir.items():
        rel = folder.relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        for prefix, frames in prefixes.items():
            key = rel if len(prefixes) == 1 and rel else "/".join(p for p in (rel, prefix) if p)
            groups[key or prefix or "."] = frames
    return groups


def read_openpose_recording(
    files: dict[int, Path], *, fps: float, frame_size: tuple[int, int] | None, where: str
) -> PoseRecording:
    """One recording from its per-frame JSON files, normalized OpenPose-18 keypoints."""
    first, last = min(files), max(files)
    n_frames = last - first + 1
    if n_frames > MAX_FRAMES:
        raise DatasetError(f"{where}: frame numbers span {n_frames} frames, more than the limit of {MAX_FRAMES}")
    pixels = np.zeros((n_frames, OPENPOSE_18.num_joints, 3), dtype=np.float64)
    for frame, path in files.items():  # missing frame numbers stay zero: no pose seen
        pixels[frame - first] = _read_frame(path)
    inferred = frame_size is None
    size = frame_size or _guess_frame_size(pixels, where)
    kp = pixels.copy()
    kp[..., 0] /= size[0]
    kp[..., 1] /= size[1]
    extra = {"frames_missing": int(n_frames - len(files)), "first_frame": int(first)}
    if inferred:
        extra["frame_size_inferred"] = True
    try:
        return PoseRecording(
            keypoints=kp.astype(np.float32), schema=OPENPOSE_18.name, fps=fps, frame_size=size,
            pose_model="openpose", extra=extra,
        )
    except RecordingError as e:
        raise DatasetError(f"{where}: {e}") from None


def _read_frame(path: Path) -> np.ndarray:
    """[18, 3] pixel keypoints of the most confident person in one JSON file (zeros if nobody)."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise DatasetError(f"{path}: {path.stat().st_size} bytes is too large for one OpenPose frame")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None
    people = doc.get("people") if isinstance(doc, dict) else None
    if not isinstance(people, list):
        raise DatasetError(f"{path}: no 'people' list; not an OpenPose keypoints file")
    best, best_conf = np.zeros((OPENPOSE_18.num_joints, 3)), -1.0
    for i, person in enumerate(people):
        kp = _person_keypoints(person, f"{path}: person {i}")
        conf = float(kp[:, 2].sum())
        # A caregiver's hand or a second body can be detected too; the infant fills the frame,
        # so the most confident skeleton is taken.
        if conf > best_conf:
            best, best_conf = kp, conf
    return best


def _person_keypoints(person: object, where: str) -> np.ndarray:
    values = None
    if isinstance(person, dict):
        # OpenPose before 1.2 called the body keypoints "pose_keypoints".
        values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
    if not isinstance(values, list):
        raise DatasetError(f"{where}: no 'pose_keypoints_2d' list")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise DatasetError(f"{where}: 'pose_keypoints_2d' holds non-numbers or NaN")
    if len(values) == 25 * 3:
        kp = np.asarray(values, dtype=np.float64).reshape(25, 3)[list(BODY25_TO_OPENPOSE18)]
    elif len(values) == 18 * 3:
        kp = np.asarray(values, dtype=np.float64).reshape(18, 3)
    else:
        raise DatasetError(
            f"{where}: 'pose_keypoints_2d' has {len(values)} numbers; expected 75 (BODY_25) or 54 (COCO-18)"
        )
    if kp[:, 2].min() < 0 or kp[:, 2].max() > 1:
        raise DatasetError(f"{where}: confidences must lie between 0 and 1")
    kp[kp[:, 2] == 0, :2] = 0.0  # OpenPose writes 0,0,0 for unseen joints; keep it so
    return kp


def _guess_frame_size(pixels: np.ndarray, where: str) -> tuple[int, int]:
    seen = pixels[..., 2] > 0
    if not seen.any():
        raise DatasetError(f"{where}: no joint is seen in any frame")
    max_x, max_y = pixels[..., 0][seen].max(), pixels[..., 1][seen].max()
    if max_x <= 1.0 and max_y <= 1.0:
        # OpenPose's --keypoint_scale 3 writes coordinates already in 0..1.
        return (1, 1)
    for w, h in _COMMON_SIZES:
        if max_x <= w and max_y <= h:
            return (w, h)
    raise DatasetError(
        f"{where}: keypoints reach x={max_x:.0f}, y={max_y:.0f} pixels, beyond common video sizes; "
        "give 'frame_size': [width, height] in the dataset spec"
    )
