"""The model bundle: what the phone and ``cogma screen`` load.

A bundle is a directory (or a zip of one) holding

* ``model.pte`` — ExecuTorch program, XNNPACK, float32;
* ``model_int8.pte`` — ExecuTorch program, XNNPACK, PT2E int8;
* ``model.mlpackage/`` — Core ML program (fp16 compute, float32 I/O, flexible T);
* ``model_bundled.bpte`` — ExecuTorch BundledProgram: the fp32 program plus test inputs and
  expected outputs, for parity checks on a phone;
* ``MODEL_CARD.md`` — intended use, training data, metrics, limitations;
* ``manifest.json`` — version, sha256 and size of every file (each file inside the
  ``.mlpackage`` too), input and output contract, decision threshold and its operating point,
  evaluation metrics with their data provenance.

:func:`load_bundle` refuses, with a :class:`BundleError` that says what is wrong, a bundle
with a missing, extra, truncated or altered file, a manifest that is not what this software
reads, or a contract the app cannot feed. Checksums catch corruption and careless edits; they
are not a signature against deliberate tampering (whoever can edit a file can edit the
manifest too).

No torch import here: the app loads bundles without PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import weakref
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from skeleton.errors import CogmaError
from skeleton.recording import PoseRecording
from skeleton.schemas import get_schema

BUNDLE_FORMAT = "cogma.model_bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"

MODEL_PTE = "model.pte"
MODEL_INT8_PTE = "model_int8.pte"
MODEL_MLPACKAGE = "model.mlpackage"
MODEL_BUNDLED = "model_bundled.bpte"
MODEL_CARD = "MODEL_CARD.md"
# Every bundle holds these; the .mlpackage is a directory, the others are files.
REQUIRED = (MODEL_PTE, MODEL_INT8_PTE, MODEL_MLPACKAGE, MODEL_BUNDLED, MODEL_CARD)

# What the app feeds: raw MediaPipe Pose landmarks and the frame rate.
INPUT_SCHEMA = "mediapipe33"
INPUT_NAMES = ("landmarks", "fps")
OUTPUT_NAME = "scores"
OUTPUT_NAMES = ("risk", "risk_low", "risk_high")

# Refuse absurd archives before unpacking them (a bundle is a few MB at most).
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MAX_BUNDLE_FILES = 1000


class BundleError(CogmaError):
    """A model bundle (or an input for it) that cannot be used, with the reason."""


@dataclass(frozen=True)
class InputContract:
    """What a recording must be for this model: schema, frame-rate range and length in frames."""

    schema: str
    fps_min: float
    fps_max: float
    min_frames: int
    max_frames: int

    @classmethod
    def from_dict(cls, d: Any, where: str = "input contract") -> "InputContract":
        if not isinstance(d, dict):
            raise BundleError(f"{where} must be an object")
        missing = [k for k in ("schema", "fps_min", "fps_max", "min_frames", "max_frames") if k not in d]
        if missing:
            raise BundleError(f"{where} lacks {', '.join(missing)}")
        fps_min, fps_max = _number(d["fps_min"], f"{where}: fps_min"), _number(d["fps_max"], f"{where}: fps_max")
        min_frames, max_frames = _count(d["min_frames"], f"{where}: min_frames"), _count(d["max_frames"], f"{where}: max_frames")
        if not 0 < fps_min <= fps_max:
            raise BundleError(f"{where}: frame-rate range {fps_min:g}..{fps_max:g} fps is empty or not positive")
        if not 2 <= min_frames <= max_frames:
            raise BundleError(f"{where}: frame range {min_frames}..{max_frames} is empty")
        if not isinstance(d["schema"], str):
            raise BundleError(f"{where}: schema must be a name")
        return cls(schema=d["schema"], fps_min=fps_min, fps_max=fps_max, min_frames=min_frames, max_frames=max_frames)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def num_joints(self) -> int:
        return get_schema(self.schema).num_joints

    def check(self, num_frames: int, fps: float, schema: str | None = None, shape: tuple[int, ...] | None = None) -> None:
        """Raise :class:`BundleError` if a recording of this size, rate and schema is outside the contract."""
        if schema is not None and schema != self.schema:
            raise BundleError(
                f"the recording uses joint schema {schema!r}, but this model reads {self.schema!r} "
                f"(raw MediaPipe Pose landmarks); record with the app's MediaPipe pose backend"
            )
        if shape is not None and (len(shape) != 3 or shape[1:] != (self.num_joints, 3)):
            raise BundleError(
                f"landmarks have shape {tuple(shape)}, but this model needs [frames, {self.num_joints}, 3] "
                f"({self.schema}: x, y, visibility)"
            )
        if isinstance(fps, bool) or not isinstance(fps, (int, float, np.floating)) or not math.isfinite(fps):
            raise BundleError(f"frame rate must be a finite number, not {fps!r}")
        if not self.fps_min <= fps <= self.fps_max:
            raise BundleError(
                f"frame rate {fps:g} fps is outside what this model supports "
                f"({self.fps_min:g}-{self.fps_max:g} fps)"
                + ("; please record at 30 frames per second, the usual camera setting" if fps < self.fps_min else "")
            )
        if num_frames < self.min_frames:
            raise BundleError(
                f"recording too short for this model: {num_frames} frames ({num_frames / fps:.1f} s at {fps:g} fps); "
                f"it needs at least {self.min_frames} frames"
            )
        if num_frames > self.max_frames:
            raise BundleError(
                f"recording too long for this model: {num_frames} frames ({num_frames / fps:.1f} s at {fps:g} fps); "
                f"it reads at most {self.max_frames} frames — score a shorter stretch"
            )


@dataclass
class ModelBundle:
    """A verified bundle on disk (a zip is unpacked to a private temporary folder)."""

    root: Path
    manifest: dict
    version: str
    threshold: float
    not_for_clinical_use: bool
    input_contract: InputContract
    notice: str = ""
    _cleanup: Any = field(default=None, repr=False, compare=False)

    def path(self, name: str) -> Path:
        """Path of a bundle member, e.g. ``"model.pte"``; refuses names outside the bundle."""
        if name not in self.manifest.get("files", {}) and name not in (MODEL_MLPACKAGE, MANIFEST):
            raise BundleError(f"this bundle has no {name!r}; it holds {', '.join(REQUIRED)}")
        return self.root / name

    def check_recording(self, rec: PoseRecording) -> None:
        """Raise :class:`BundleError` if ``rec`` is outside the model's input contract."""
        self.input_contract.check(rec.num_frames, rec.fps, schema=rec.schema, shape=tuple(rec.keypoints.shape))

    def check_landmarks(self, landmarks: np.ndarray, fps: float) -> None:
        """Same as :meth:`check_recording` for a bare ``[T, 33, 3]`` array."""
        check_landmarks(landmarks, fps, self.input_contract)

    @property
    def output_names(self) -> list[str]:
        return list(self.manifest["output_contract"]["names"])


def check_landmarks(landmarks: Any, fps: Any, contract: InputContract) -> None:
    """Refuse landmarks that the runtime must not see (wrong type, shape, values, length or fps)."""
    if not isinstance(landmarks, np.ndarray):
        raise BundleError(f"landmarks must be a numpy array [frames, {contract.num_joints}, 3], not {type(landmarks).__name__}")
    if landmarks.ndim != 3:
        raise BundleError(f"landmarks must be [frames, {contract.num_joints}, 3], got shape {tuple(landmarks.shape)}")
    contract.check(int(landmarks.shape[0]), fps, shape=tuple(landmarks.shape))
    if landmarks.dtype.kind != "f":
        raise BundleError(f"landmarks must be floating point (x, y normalized, visibility), not {landmarks.dtype}")
    if not np.isfinite(landmarks).all():
        raise BundleError("landmarks contain NaN or infinite values; a frame without a pose must hold zeros")


# ---------------------------------------------------------------- hashing and manifest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` except the manifest, as sorted POSIX relative paths."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            raise BundleError(f"bundle member {p.relative_to(root).as_posix()} is a symbolic link; links are refused")
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return out


def file_table(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "bytes"}}`` for every file in the bundle (inside the .mlpackage too)."""
    return {rel: {"sha256": sha256_file(root / rel), "bytes": (root / rel).stat().st_size} for rel in list_files(root)}


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal_manifest(manifest: dict) -> dict:
    """Add the manifest's own checksum (over its canonical JSON), so an edited manifest is noticed."""
    sealed = dict(manifest)
    sealed["manifest_sha256"] = hashlib.sha256(_canonical(manifest)).hexdigest()
    return sealed


def write_manifest(root: Path, manifest: dict) -> Path:
    """Hash every file under ``root``, seal and write ``manifest.json``."""
    manifest = dict(manifest)
    manifest["files"] = file_table(root)
    path = root / MANIFEST
    path.write_text(json.dumps(seal_manifest(manifest), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- loading


def load_bundle(path: str | os.PathLike) -> ModelBundle:
    """Open and verify a bundle directory or ``.zip``; :class:`BundleError` says what is wrong."""
    path = Path(path)
    if path.is_dir():
        return _load_dir(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise BundleError(f"{path}: not a model bundle (neither a folder nor a zip archive, or a truncated zip)")
        tmp = Path(tempfile.mkdtemp(prefix="cogma-bundle-"))
        try:
            _unpack(path, tmp)
            bundle = _load_dir(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        bundle._cleanup = weakref.finalize(bundle, shutil.rmtree, tmp, ignore_errors=True)
        return bundle
    raise BundleError(f"{path}: no such model bundle (folder or .zip)")


def _unpack(zip_path: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > MAX_BUNDLE_FILES or sum(i.file_size for i in infos) > MAX_BUNDLE_BYTES:
                raise BundleError(f"{zip_path}: archive is absurdly large for a model bundle; refused")
            names = [PurePosixPath(i.filename) for i in infos]
            prefix = _common_folder(names)
            for info, name in zip(infos, names):
                if name.is_absolute() or ".." in name.parts:
                    raise BundleError(f"{zip_path}: member {info.filename!r} points outside the bundle; refused")
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise BundleError(f"{zip_path}: member {info.filename!r} is a symbolic link; refused")
                rel = PurePosixPath(*name.parts[len(prefix):])
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    except BundleError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise BundleError(f"{zip_path}: the bundle archive is truncated or corrupt ({e})") from None


def _common_folder(names: list[PurePosixPath]) -> tuple[str, ...]:
    """A zip of ``bundle/…`` and a zip of the bundle's contents both load: strip one shared top folder."""
    if any(n.name == MANIFEST and len(n.parts) == 1 for n in names):
        return ()
    tops = {n.parts[0] for n in names if len(n.parts) > 1}
    if len(tops) == 1 and all(len(n.parts) > 1 for n in names):
        return (tops.pop(),)
    return ()


def _read_manifest(root: Path) -> dict:
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{root}: not a model bundle (no {MANIFEST})")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{MANIFEST} is not valid JSON (truncated or edited?): {e}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{MANIFEST} must be a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a CoGMA model bundle ({MANIFEST} format is {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{MANIFEST}: invalid format_version {version!r}")
    if version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"incompatible bundle: format version {version} is newer than this software reads "
            f"(up to {BUNDLE_FORMAT_VERSION}); update CoGMA"
        )
    expected = hashlib.sha256(_canonical(manifest)).hexdigest()
    if manifest.get("manifest_sha256") != expected:
        raise BundleError(f"{MANIFEST} was altered after the bundle was made (its own checksum does not match)")
    return manifest


def _check_files(root: Path, manifest: dict) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{MANIFEST} lists no files")
    for name in REQUIRED:
        listed = name in files or any(k.startswith(name + "/") for k in files)
        if not listed:
            raise BundleError(f"incompatible bundle: {MANIFEST} does not list {name}, which every bundle must hold")
    on_disk = set(list_files(root))
    missing = sorted(set(files) - on_disk)
    if missing:
        raise BundleError(f"bundle is incomplete: missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    extra = sorted(on_disk - set(files))
    if extra:
        raise BundleError(f"bundle holds files its manifest does not list (tampered?): {', '.join(extra[:5])}")
    for name, entry in sorted(files.items()):
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("bytes"), int):
            raise BundleError(f"{MANIFEST}: entry for {name} needs sha256 and bytes")
        size = (root / name).stat().st_size
        if size != entry["bytes"]:
            what = "truncated" if size < entry["bytes"] else "changed"
            raise BundleError(f"{name} is {what}: {size} bytes, the manifest says {entry['bytes']}")
        if sha256_file(root / name) != entry["sha256"]:
            raise BundleError(f"{name} was altered or corrupted: its sha256 does not match the manifest")


def _check_contracts(manifest: dict) -> InputContract:
    contract = InputContract.from_dict(manifest.get("input_contract"), f"{MANIFEST} input_contract")
    if contract.schema != INPUT_SCHEMA:
        raise BundleError(
            f"incompatible bundle: the model reads {contract.schema!r} landmarks, but the app provides {INPUT_SCHEMA!r}"
        )
    names = [i.get("name") for i in manifest["input_contract"].get("inputs", []) if isinstance(i, dict)]
    if names != list(INPUT_NAMES):
        raise BundleError(f"incompatible bundle: model inputs are {names}, the app feeds {list(INPUT_NAMES)}")
    out = manifest.get("output_contract")
    if not isinstance(out, dict) or list(out.get("names", [])) != list(OUTPUT_NAMES):
        got = out.get("names") if isinstance(out, dict) else None
        raise BundleError(f"incompatible bundle: model outputs are {got}, the app reads {list(OUTPUT_NAMES)}")
    return contract


def _load_dir(root: Path) -> ModelBundle:
    manifest = _read_manifest(root)
    for key in ("model", "threshold", "operating_point", "metrics", "not_for_clinical_use"):
        if key not in manifest:
            raise BundleError(f"{MANIFEST} lacks {key!r}")
    contract = _check_contracts(manifest)
    _check_files(root, manifest)
    threshold = _number(manifest["threshold"], f"{MANIFEST}: threshold")
    if not 0.0 <= threshold <= 1.0:
        raise BundleError(f"{MANIFEST}: decision threshold {threshold:g} is not a probability")
    version = manifest["model"].get("version") if isinstance(manifest["model"], dict) else None
    if not isinstance(version, str) or not version:
        raise BundleError(f"{MANIFEST}: model version missing")
    synthetic = manifest["not_for_clinical_use"]
    if not isinstance(synthetic, bool):
        raise BundleError(f"{MANIFEST}: not_for_clinical_use must be true or false")
    notice = str(manifest.get("notice", ""))
    if synthetic and "not for clinical use" not in notice:
        raise BundleError(f"{MANIFEST}: a bundle not for clinical use must say so in its notice")
    return ModelBundle(
        root=root, manifest=manifest, version=version, threshold=threshold,
        not_for_clinical_use=synthetic, input_contract=contract, notice=notice,
    )


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BundleError(f"{where} must be a finite number, not {v!r}")
    return float(v)


def _count(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise BundleError(f"{where} must be a whole number, not {v!r}")
    return int(v)


def zip_bundle(root: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Pack a bundle folder into a zip (members relative to the bundle root); written atomically."""
    root, zip_path = Path(root), Path(zip_path)
    load_bundle(root)  # never pack a broken bundle
    fd, tmp = tempfile.mkstemp(dir=zip_path.parent, suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in [*list_files(root), MANIFEST]:
                zf.write(root / rel, rel)
        os.replace(tmp, zip_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return zip_path
