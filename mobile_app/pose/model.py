"""The BlazePose model file for MediaPipe Tasks' PoseLandmarker, built once in the set-up step.

mediapipe 1.2.2 ships no model files and nothing may be downloaded while the app runs. The
Apache-2.0 BlazePose tflites are inside older mediapipe wheels on PyPI, so the set-up step
(``python -m mobile_app.pose.build_model``) fetches one such wheel with pip, takes only the two
tflites out of it, checks their sha256 against the values below, adds the TFLite metadata the
Tasks API requires (input normalization) and writes the ``.task`` bundle the Tasks API reads:
a zip whose entries are stored uncompressed and start on 64-byte boundaries.

Building is idempotent: when the ``.task`` is already there with the expected checksum it
returns at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import PoseModelMissing

TASK_FILE_NAME = "pose_landmarker_full.task"
MODEL_DIR_ENV = "COGMA_MODEL_DIR"

# The wheel is named explicitly for Linux x86_64 / CPython 3.11, so pip fetches the same file
# on any host (a Mac, CI's 2-core Linux box); it is only unzipped, never installed.
WHEEL_REQUIREMENT = "mediapipe==0.10.21"
WHEEL_PLATFORM_ARGS = (
    "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
    "--implementation", "cp", "--abi", "cp311",
)


@dataclass(frozen=True)
class SourceModel:
    member: str  # path inside the wheel
    entry: str  # name inside the .task bundle, as PoseLandmarker expects it
    sha256: str
    norm_mean: float  # input normalization: (pixel - mean) / std
    norm_std: float


SOURCE_MODELS = (
    # Detector input in [-1, 1].
    SourceModel(
        member="mediapipe/modules/pose_detection/pose_detection.tflite",
        entry="pose_detector.tflite",
        sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        norm_mean=127.5,
        norm_std=127.5,
    ),
    # Landmark model input in [0, 1].
    SourceModel(
        member="mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        entry="pose_landmarks_detector.tflite",
        sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        norm_mean=0.0,
        norm_std=255.0,
    ),
)

# sha256 of the finished .task (the build is deterministic); checked after every build and
# used to recognise an already-built file.
TASK_SHA256 = "981833b810bf43f5720df42ef1ffb8a38700d0c2b5f2305a109c5d1b78924d74"

ZIP_ALIGNMENT = 64  # TFLite maps the model in place only if its buffer is aligned
_ALIGN_EXTRA_ID = 0xD935  # the zip "extra field" id Android's zipalign uses for padding
_FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # no build time in the file: same input, same bytes
_LOCAL_HEADER_SIZE = 30  # fixed part of a zip local file header


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def model_dir() -> Path:
    """Where the built model lives: $COGMA_MODEL_DIR, else ``<repo>/.models``, else the user cache."""
    if os.environ.get(MODEL_DIR_ENV):
        return Path(os.environ[MODEL_DIR_ENV])
    root = _repo_root()
    if root is not None:
        return root / ".models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("cogma")) / "models"


def packaged_model_path(folders: list[Path], package: str) -> Path:
    """The ``.task`` file inside a phone app's package (the first of ``folders`` that holds it)."""
    for folder in folders:
        if (folder / TASK_FILE_NAME).is_file():
            return folder / TASK_FILE_NAME
    raise PoseModelMissing(f"the pose model is missing from the {package}; rebuild it after `make setup`")


def model_path() -> Path:
    """The PoseLandmarker ``.task`` file; a clear error if the set-up step has not built it."""
    path = model_dir() / TASK_FILE_NAME
    if not path.is_file():
        raise PoseModelMissing(
            f"the pose model {path} is missing. Build it once with "
            "`python -m mobile_app.pose.build_model` (part of `make setup`)."
        )
    return path


def sha256_of(data: bytes | Path) -> str:
    if isinstance(data, Path):
        h = hashlib.sha256()
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    return hashlib.sha256(data).hexdigest()


def is_built(path: Path | None = None) -> bool:
    path = path or model_dir() / TASK_FILE_NAME
    return path.is_file() and sha256_of(path) == TASK_SHA256


def download_wheel(dest: Path) -> Path:
    """``pip download`` the old mediapipe wheel (no dependencies, nothing installed)."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        *WHEEL_PLATFORM_ARGS, "--dest", str(dest), WHEEL_REQUIREMENT,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("mediapipe-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PoseModelMissing(f"could not download {WHEEL_REQUIREMENT} with pip: {' / '.join(tail)}")
    return wheels[0]


def read_source_models(wheel: Path) -> dict[str, bytes]:
    """The two tflites from the wheel, each checked against its recorded sha256."""
    blobs: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for src in SOURCE_MODELS:
                blobs[src.entry] = zf.read(src.member)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise PoseModelMissing(f"{wheel} is not a mediapipe wheel holding the BlazePose models ({e})") from None
    for src in SOURCE_MODELS:
        got = sha256_of(blobs[src.entry])
        if got != src.sha256:
            raise PoseModelMissing(
                f"{src.member} in {wheel.name} has sha256 {got}, expected {src.sha256}; refusing to use it"
            )
    return blobs


@contextlib.contextmanager
def _metadata_writers() -> Iterator[types.ModuleType]:
    """mediapipe 1.2.2's metadata writers, with the one pybind module they import stubbed.

    mediapipe 1.2.2 ships the writers but not ``_pywrap_metadata_version``; the writers only ask
    it for the minimum parser version to record, for which "1.0.0" is right for these models.
    The stub is removed again afterwards.
    """
    names = (
        "mediapipe.tasks.cc",
        "mediapipe.tasks.cc.metadata",
        "mediapipe.tasks.cc.metadata.python",
        "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version",
    )
    added = [n for n in names if n not in sys.modules]
    for name in added:
        sys.modules[name] = types.ModuleType(name)
    version_mod = sys.modules[names[-1]]
    if not hasattr(version_mod, "GetMinimumMetadataParserVersion"):
        version_mod.GetMinimumMetadataParserVersion = lambda _buf: "1.0.0"
        sys.modules[names[-2]]._pywrap_metadata_version = version_mod
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

        yield types.SimpleNamespace(metadata_writer=metadata_writer, writer_utils=writer_utils)
    finally:
        for name in added:
            sys.modules.pop(name, None)


def with_input_metadata(tflite: bytes, name: str, mean: float, std: float) -> bytes:
    """The model with TFLite metadata giving its input normalization (required by Tasks)."""
    with _metadata_writers() as mw:
        n_outputs = len(mw.writer_utils.get_output_tensor_types(bytearray(tflite)))
        writer = mw.metadata_writer.MetadataWriter.create(bytearray(tflite)).add_general_info(name)
        writer.add_image_input(norm_mean=[mean], norm_std=[std])
        for _ in range(n_outputs):
            writer.add_feature_output()
        model, _json = writer.populate()
    return bytes(model)


def write_aligned_zip(path: Path, entries: dict[str, bytes], alignment: int = ZIP_ALIGNMENT) -> None:
    """A zip with entries stored uncompressed, each one's data starting on an ``alignment`` boundary.

    The padding goes into the local header's extra field (as Android's zipalign does), so the
    archive stays a standard zip.
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            extra_header = 4  # id + size of the padding field
            data_start = zf.fp.tell() + _LOCAL_HEADER_SIZE + len(name.encode()) + extra_header
            pad = -data_start % alignment
            info.extra = struct.pack("<HH", _ALIGN_EXTRA_ID, pad) + b"\0" * pad
            zf.writestr(info, data)


def check_alignment(path: Path, alignment: int = ZIP_ALIGNMENT) -> None:
    """Raise if an entry of the zip at ``path`` is compressed or not aligned."""
    with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
        for info in zf.infolist():
            raw.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", raw.read(4))
            start = info.header_offset + _LOCAL_HEADER_SIZE + name_len + extra_len
            if info.compress_type != zipfile.ZIP_STORED or start % alignment:
                raise PoseModelMissing(f"{path}: entry {info.filename} is compressed or misaligned")


def build_task(wheel: Path, out: Path) -> Path:
    """Write the PoseLandmarker ``.task`` from a mediapipe wheel (atomically)."""
    sources = read_source_models(wheel)
    entries = {
        src.entry: with_input_metadata(sources[src.entry], Path(src.member).name, src.norm_mean, src.norm_std)
        for src in SOURCE_MODELS
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".task")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_aligned_zip(tmp, entries)
        check_alignment(tmp)
        got = sha256_of(tmp)
        if got != TASK_SHA256:
            raise PoseModelMissing(f"the built pose model has sha256 {got}, expected {TASK_SHA256}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def build_model(dest_dir: Path | None = None, wheel: Path | None = None, force: bool = False) -> Path:
    """Build the pose model into ``dest_dir`` (default :func:`model_dir`); fast no-op when built."""
    out = (dest_dir or model_dir()) / TASK_FILE_NAME
    if not force and is_built(out):
        return out
    if wheel is not None:
        return build_task(wheel, out)
    with tempfile.TemporaryDirectory(prefix="cogma-mediapipe-wheel-") as tmp:
        return build_task(download_wheel(Path(tmp)), out)
