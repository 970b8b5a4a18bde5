"""What the animator is conditioned on: pose images, the reference picture, a face embedding.

* Pose: MediaPipe-33 (or any schema) -> OpenPose-18 -> DWPose-style images at
  the target size, aspect ratio kept and padded (``skeleton.drawing``).
* Appearance: the shipped synthetic reference infant (never the recorded
  child), or another picture an operator chooses.
* Face identity: an ArcFace embedding of the reference through insightface
  when a face-model directory is configured, zeros otherwise (as the released
  inference does when it finds no face).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image

from skeleton.drawing import CanvasFit, openpose_frames
from skeleton.errors import CogmaError
from skeleton.recording import PoseRecording

from .reference import ASSET as REFERENCE_ASSET

DEFAULT_SIZE = (576, 1024)  # (width, height)
FACE_MODEL_ENV = "COGMA_FACE_MODEL_DIR"
FACE_EMBEDDING_DIM = 512


class ConditioningError(CogmaError):
    """A reference picture, pose input or face model that cannot be used."""


def pose_frames(recording: PoseRecording, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` DWPose-style OpenPose-18 images, letterboxed to ``size`` (width, height)."""
    width, height = size
    out = np.empty((recording.num_frames, height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(openpose_frames(recording, size)):
        out[i] = frame
    return out


def canvas_fit(recording: PoseRecording, size: tuple[int, int] = DEFAULT_SIZE) -> CanvasFit:
    """How the recording's frame sits on the animator's canvas (for mapping keypoints in QA)."""
    return CanvasFit(recording.frame_size, size)


def reference_image(path: str | Path | None = None, size: tuple[int, int] = DEFAULT_SIZE) -> PIL.Image.Image:
    """The reference picture at ``size``, aspect kept, padded with its own edge colour."""
    path = Path(path) if path else REFERENCE_ASSET
    try:
        with PIL.Image.open(path) as im:
            image = im.convert("RGB")
    except FileNotFoundError:
        raise ConditioningError(f"reference image {path} does not exist") from None
    except (OSError, PIL.Image.DecompressionBombError) as e:
        raise ConditioningError(f"cannot read reference image {path}: {e}") from None
    if image.size == tuple(size):
        return image
    scale = min(size[0] / image.width, size[1] / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           PIL.Image.Resampling.LANCZOS)
    edge = np.concatenate([np.asarray(resized)[[0, -1]].reshape(-1, 3), np.asarray(resized)[:, [0, -1]].reshape(-1, 3)])
    canvas = PIL.Image.new("RGB", size, tuple(int(c) for c in np.median(edge, axis=0)))
    canvas.paste(resized, ((size[0] - resized.width) // 2, (size[1] - resized.height) // 2))
    return canvas


class FaceModel:
    """ArcFace embeddings through insightface, from a local model directory only.

    ``model_dir`` holds an insightface model pack (e.g. ``models/antelopev2``
    with its ``.onnx`` files). insightface downloads missing packs by itself,
    so the directory is checked first and nothing is ever fetched.
    """

    def __init__(self, model_dir: str | Path, pack: str = "antelopev2"):
        root = Path(model_dir).expanduser()
        if not list((root / "models" / pack).glob("*.onnx")):
            raise ConditioningError(f"no insightface model pack {pack!r} under {root}/models/{pack}")
        try:
            from insightface.app import FaceAnalysis
        except ImportError:
            raise ConditioningError(
                "a face model directory is configured but the insightface package is not installed"
            ) from None
        self._app = FaceAnalysis(name=pack, root=str(root), providers=["CPUExecutionProvider"])
        self._app.prepare(ctx_id=-1, det_size=(640, 640))

    def embed(self, rgb: np.ndarray) -> np.ndarray | None:
        """The normalised 512-d embedding of the largest face, or None when no face is found."""
        faces = self._app.get(np.ascontiguousarray(rgb[..., ::-1]))  # insightface takes BGR
        if not faces:
            return None
        largest = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        return np.asarray(largest.normed_embedding, dtype=np.float32)


def configured_face_model(model_dir: str | Path | None = None) -> FaceModel | None:
    """A :class:`FaceModel` from ``model_dir`` or ``$COGMA_FACE_MODEL_DIR``; None when neither is set."""
    model_dir = model_dir or os.environ.get(FACE_MODEL_ENV)
    return FaceModel(model_dir) if model_dir else None


def face_embedding(image: PIL.Image.Image, face_model: FaceModel | None) -> np.ndarray:
    """The reference's face embedding, or zeros without a face model or a detectable face."""
    if face_model is not None:
        found = face_model.embed(np.asarray(image.convert("RGB")))
        if found is not None:
            return found
    return np.zeros(FACE_EMBEDDING_DIM, dtype=np.float32)
