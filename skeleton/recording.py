"""``PoseRecording``: the one pose contract between phone, training and server.

On disk it is a versioned ``.npz`` with two members: ``keypoints`` (float32
``[T, J, 3]``: x and y normalized to the frame, then visibility/confidence)
and ``meta`` (a JSON string). Nothing is ever unpickled. A frame where no
pose was found holds zeros with visibility 0, never NaN.

Loading checks everything and raises :class:`RecordingError` with a message
that says what is wrong; it reads the array header before the data, so a
file that claims an absurd size is refused before anything is decompressed.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import RecordingError, SchemaError
from .files import temp_file_beside
from .mapping import convert
from .schemas import get_schema

FORMAT_NAME = "cogma.pose_recording"
FORMAT_VERSION = 1

MIN_FPS, MAX_FPS = 5.0, 240.0
MIN_SECONDS = 1.0  # below this a file is refused outright; scorability is quality.assess's job
MAX_FRAMES = 216_000  # one hour at 60 fps
MAX_FRAME_SIDE = 16_384
COORD_LIMIT = (-1.0, 2.0)  # normalized coordinates; MediaPipe reports joints slightly off-frame
AGE_WEEKS_RANGE = (-20.0, 110.0)  # corrected age: negative before term
MAX_TEXT = 256
MAX_META_BYTES = 64 * 1024


@dataclass
class PoseRecording:
    """A pose sequence and what is needed to interpret it. Validated on construction."""

    keypoints: np.ndarray
    schema: str
    fps: float
    frame_size: tuple[int, int]  # (width, height) in pixels
    pose_model: str = "unknown"
    device: str = "unknown"
    age_weeks: float | None = None  # corrected age in weeks, never a birth date
    label: int | None = None  # 0 typical, 1 atypical movements, None unknown
    infant_id: str | None = None  # pseudonymous; groups recordings of one infant
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keypoints = np.ascontiguousarray(self.keypoints, dtype=np.float32)
        self.fps = float(self.fps)
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        _validate(self)

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def to_schema(self, schema: str) -> "PoseRecording":
        """The same recording with joints mapped to another schema."""
        if schema == self.schema:
            return self
        return replace(self, keypoints=convert(self.keypoints, self.schema, schema), schema=schema)

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "schema": self.schema,
            "fps": self.fps,
            "frame_size": list(self.frame_size),
            "pose_model": self.pose_model,
            "device": self.device,
            "age_weeks": self.age_weeks,
            "label": self.label,
            "infant_id": self.infant_id,
            "extra": self.extra,
        }

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, keypoints=self.keypoints, meta=np.array(json.dumps(self.meta())))
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a crash never leaves half a file under ``path``)."""
        path = Path(path)
        fd, tmp = temp_file_beside(path, ".npz", RecordingError)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.to_bytes())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


def _fail(msg: str) -> RecordingError:
    return RecordingError(msg)


def _check_text(name: str, value: Any, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _fail(f"{name} must be a text of at most {MAX_TEXT} characters")


def _validate(rec: PoseRecording) -> None:
    try:
        schema = get_schema(rec.schema)
    except SchemaError as e:
        raise _fail(str(e)) from None
    kp = rec.keypoints
    if kp.ndim != 3 or kp.shape[1:] != (schema.num_joints, 3):
        raise _fail(
            f"keypoints have shape {tuple(kp.shape)}, but schema {schema.name} needs "
            f"[frames, {schema.num_joints}, 3] (x, y, visibility)"
        )
    if not math.isfinite(rec.fps) or not MIN_FPS <= rec.fps <= MAX_FPS:
        raise _fail(f"frame rate {rec.fps:g} fps is outside {MIN_FPS:g}-{MAX_FPS:g} fps")
    if kp.shape[0] > MAX_FRAMES:
        raise _fail(f"{kp.shape[0]} frames is more than the limit of {MAX_FRAMES}")
    if kp.shape[0] < max(2, math.ceil(MIN_SECONDS * rec.fps)):
        raise _fail(
            f"recording too short: {kp.shape[0]} frames at {rec.fps:g} fps "
            f"(at least {MIN_SECONDS:g} s are needed to read it at all)"
        )
    w, h = rec.frame_size
    if not (0 < w <= MAX_FRAME_SIDE and 0 < h <= MAX_FRAME_SIDE):
        raise _fail(f"frame size {w}x{h} is not a plausible video size")
    if not np.isfinite(kp).all():
        bad = int((~np.isfinite(kp)).any(axis=(1, 2)).sum())
        raise _fail(f"keypoints contain NaN or infinite values in {bad} frames")
    lo, hi = COORD_LIMIT
    xy = kp[..., :2]
    if xy.size and (xy.min() < lo or xy.max() > hi):
        raise _fail(
            f"coordinates far outside the frame (range {xy.min():.2f}..{xy.max():.2f}); "
            f"x and y must be normalized to the frame, within {lo:g}..{hi:g}"
        )
    vis = kp[..., 2]
    if vis.size and (vis.min() < 0.0 or vis.max() > 1.0):
        raise _fail("visibility values must lie between 0 and 1")
    if rec.age_weeks is not None:
        a = rec.age_weeks
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not _finite(a):
            raise _fail("age_weeks must be a number (corrected age in weeks)")
        if not AGE_WEEKS_RANGE[0] <= a <= AGE_WEEKS_RANGE[1]:
            raise _fail(f"corrected age {a:g} weeks is outside {AGE_WEEKS_RANGE[0]:g}..{AGE_WEEKS_RANGE[1]:g}")
    if rec.label is not None and (isinstance(rec.label, bool) or rec.label not in (0, 1)):
        raise _fail(f"label must be 0 (typical), 1 (atypical) or absent, not {rec.label!r}")
    for name in ("pose_model", "device"):
        _check_text(name, getattr(rec, name), optional=False)
    _check_text("infant_id", rec.infant_id)
    if not isinstance(rec.extra, dict):
        raise _fail("extra metadata must be a JSON object")
    if any("birth" in str(k).lower() for k in rec.extra):
        raise _fail("recordings must not carry a birth date; store the corrected age in weeks instead")


def _finite(x: int | float) -> bool:
    """A JSON number that is finite as a float (a 400-digit integer overflows ``float()``)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


_FIELDS = ("schema", "fps", "frame_size")


def _open_zip(source: str | os.PathLike | bytes | BinaryIO) -> zipfile.ZipFile:
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            raise _fail(f"{p} is a folder, not a pose recording (.npz)")
        if not p.is_file():
            raise _fail(f"{p}: no such file")
    try:
        return zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise _fail("not an .npz pose recording (not a zip archive, or truncated)") from None
    except OSError as e:
        raise _fail(f"cannot read the file: {e.strerror or e}") from None


def _read_member(zf: zipfile.ZipFile, name: str, max_bytes: int) -> np.ndarray:
    try:
        info = zf.getinfo(name + ".npy")
    except KeyError:
        raise _fail(f"missing field {name!r}") from None
    if info.file_size > max_bytes:
        raise _fail(f"field {name!r} is absurdly large ({info.file_size} bytes uncompressed)")
    try:
        with zf.open(info) as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)  # header only: refuse absurd sizes before decompressing
            if dtype.hasobject:
                raise _fail(f"field {name!r} holds Python objects; pickled data is refused")
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > max_bytes:
                raise _fail(f"field {name!r} declares an absurd size {shape}")
        with zf.open(info) as f:
            return np.load(f, allow_pickle=False)
    except RecordingError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise _fail(f"file is truncated or corrupt (field {name!r} cannot be read)") from None
    except ValueError as e:
        raise _fail(f"field {name!r} is not a valid array: {e}") from None
    except (OSError, RuntimeError) as e:
        raise _fail(f"file is truncated or corrupt (field {name!r}: {e})") from None


def load_recording(source: str | os.PathLike | bytes | BinaryIO) -> PoseRecording:
    """Read and validate a PoseRecording from a path, bytes or a binary file."""
    with _open_zip(source) as zf:
        max_kp = MAX_FRAMES * 33 * 3 * 8
        meta_arr = _read_member(zf, "meta", MAX_META_BYTES * 4)
        kp = _read_member(zf, "keypoints", max_kp)
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise _fail("field 'meta' must be a JSON text")
    try:
        meta = json.loads(str(meta_arr))
    except json.JSONDecodeError as e:
        raise _fail(f"field 'meta' is not valid JSON: {e.msg}") from None
    except RecursionError:  # a small text can nest deeper than Python's stack
        raise _fail("field 'meta' is not valid JSON: nested too deeply") from None
    if not isinstance(meta, dict):
        raise _fail("field 'meta' must be a JSON object")
    if meta.get("format") != FORMAT_NAME:
        raise _fail(f"not a CoGMA pose recording (format {meta.get('format')!r})")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise _fail(f"unsupported recording format version {version!r} (this software reads 1..{FORMAT_VERSION})")
    for key in _FIELDS:
        if key not in meta:
            raise _fail(f"missing field {key!r}")
    if kp.dtype.kind != "f":  # integers would be pixels or a broken writer: x, y are fractions of the frame
        raise _fail(f"keypoints must be floating-point (x, y as fractions of the frame, visibility 0-1), not {kp.dtype}")
    fs = meta["frame_size"]
    if not (isinstance(fs, list) and len(fs) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in fs)):
        raise _fail("frame_size must be [width, height] in pixels")
    fps = meta["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not _finite(fps):
        raise _fail("fps must be a number")
    label = meta.get("label")
    return PoseRecording(
        keypoints=kp,
        schema=meta["schema"],
        fps=fps,
        frame_size=(fs[0], fs[1]),
        pose_model=meta.get("pose_model", "unknown"),
        device=meta.get("device", "unknown"),
        age_weeks=meta.get("age_weeks"),
        label=label,
        infant_id=meta.get("infant_id"),
        extra=meta.get("extra") or {},
    )
