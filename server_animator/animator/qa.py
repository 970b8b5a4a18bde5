"""Anonymization QA on every generated video.

* **Pose check**: pose is re-extracted from the generated frames (MediaPipe
  Pose Landmarker, or any injected extractor ``frames -> [T, 33, 3]``) and
  compared with the input keypoints on the 17 COCO body joints: PCK (share of
  joints within ``alpha`` x the body's bounding-box diagonal), normalised mean
  error per joint, and the share of frames where a pose was found.
* **Identity check** (when a face model is configured): cosine similarity
  between faces in the output and the reference picture's face — the output
  should look like the synthetic reference, not like anyone else.

A check that cannot run says so ("pose check unavailable: no pose model
configured"); thresholds decide whether the job passes and whether a missing
check fails it. The report is plain JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from skeleton.drawing import CanvasFit
from skeleton.mapping import convert
from skeleton.schemas import COCO_17
from skeleton.errors import CogmaError

PoseExtractor = Callable[[np.ndarray], np.ndarray]  # uint8 [T, H, W, 3] -> [T, 33, 3] normalised to the frame
FaceEmbedder = Callable[[np.ndarray], "np.ndarray | None"]  # RGB frame -> 512-d unit vector, or None
POSE_MODEL_ENV = "COGMA_POSE_MODEL"
NO_POSE_MODEL = "pose check unavailable: no pose model configured"
NO_FACE_MODEL = "identity check unavailable: no face model configured"
QA_VERSION = 1


class QAError(CogmaError):
    """The QA itself cannot run as configured (e.g. a pose model path that does not exist)."""


@dataclass(frozen=True)
class QAThresholds:
    pck_alpha: float = 0.1  # a joint is right within alpha x bounding-box diagonal of the input body
    min_pck: float = 0.6
    max_mean_error: float = 0.15  # normalised by the same diagonal
    min_detection_rate: float = 0.8  # share of frames where a pose is found in the output
    min_visibility: float = 0.5  # joints below this (input or output) are not compared
    min_identity_similarity: float = 0.3  # cosine similarity to the reference's face
    require_pose_check: bool = False  # fail the job when no pose model is configured
    require_identity_check: bool = False  # fail the job when no face model is configured


@dataclass
class PoseComparison:
    pck: float
    mean_error: float
    detection_rate: float
    frames: int
    per_joint_error: dict[str, float | None]
    per_joint_pck: dict[str, float | None]


@dataclass
class QAReport:
    passed: bool
    reasons: list[str]
    pose_check: dict[str, Any]
    identity_check: dict[str, Any]
    thresholds: dict[str, Any]
    video: dict[str, Any] = field(default_factory=dict)
    version: int = QA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path


# ---------------------------------------------------------------- pose extraction


def configured_pose_model(path: str | Path | None = None) -> Path | None:
    """The MediaPipe ``.task`` file to use: ``path``, else ``$COGMA_POSE_MODEL``, else the app's model if built."""
    candidate = path or os.environ.get(POSE_MODEL_ENV)
    if candidate:
        p = Path(candidate).expanduser()
        if not p.is_file():
            raise QAError(f"pose model {p} does not exist")
        return p
    try:  # the mobile app builds the same landmarker model; reuse it when present
        from mobile_app import pose as app_pose  # type: ignore[attr-defined]

        found = app_pose.model_path() if hasattr(app_pose, "model_path") else None
    except Exception:  # not written yet, or its model not built: no pose check, said plainly
        return None
    return Path(found) if found and Path(found).is_file() else None


class MediaPipePoseExtractor:
    """MediaPipe Pose Landmarker (Tasks API, VIDEO mode) over a clip: ``[T, 33, 3]`` (x, y, visibility)."""

    def __init__(self, model_path: str | Path, fps: float = 30.0, min_confidence: float = 0.5):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise QAError(f"pose model {self.model_path} does not exist")
        self.fps = fps
        self.min_confidence = min_confidence

    def _landmarker(self):
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode

        options = PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=RunningMode.VIDEO,
            num_poses=1,
            min_pose_detection_confidence=self.min_confidence,
            min_tracking_confidence=self.min_confidence,
        )
        return PoseLandmarker.create_from_options(options)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import mediapipe as mp

        out = np.zeros((len(frames), 33, 3), dtype=np.float32)  # no pose found: zeros, visibility 0
        with self._landmarker() as landmarker:
            for i, rgb in enumerate(frames):
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
                result = landmarker.detect_for_video(image, int(round(i * 1000.0 / self.fps)))
                if result.pose_landmarks:
                    out[i] = [(lm.x, lm.y, lm.visibility or 0.0) for lm in result.pose_landmarks[0]]
        return out


# ---------------------------------------------------------------- metrics


def to_canvas(keypoints: np.ndarray, fit: CanvasFit) -> np.ndarray:
    """Keypoints normalised to the recording's frame -> normalised to the animator's canvas."""
    px = fit.to_pixels(np.asarray(keypoints, dtype=np.float64)[..., :2])
    w, h = fit.canvas_size
    xy = px / np.array([w, h])
    return np.concatenate([xy, np.asarray(keypoints)[..., 2:3]], axis=-1).astype(np.float32)


def compare_poses(
    expected: np.ndarray,
    extracted: np.ndarray,
    canvas_size: tuple[int, int],
    alpha: float = 0.1,
    min_visibility: float = 0.5,
    schema: str = "mediapipe33",
) -> PoseComparison:
    """Compare ``[T, J, 3]`` poses normalised to the same canvas, on the COCO-17 body joints."""
    if expected.shape != extracted.shape:
        raise ValueError(f"pose shapes differ: {expected.shape} vs {extracted.shape}")
    exp, ext = convert(expected, schema, "coco17"), convert(extracted, schema, "coco17")
    size = np.array(canvas_size, dtype=np.float64)
    exp_px, ext_px = exp[..., :2] * size, ext[..., :2] * size
    seen = exp[..., 2] >= min_visibility  # [T, 17] joints the input shows
    found = ext[..., 2] >= min_visibility
    frames_with_body = seen.sum(axis=1) >= 2
    scale = np.full(len(exp), np.nan)
    for t in np.flatnonzero(frames_with_body):
        pts = exp_px[t, seen[t]]
        scale[t] = max(float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0))), 1.0)
    error = np.linalg.norm(exp_px - ext_px, axis=-1) / scale[:, None]  # [T, 17], NaN where no body
    compared = seen & frames_with_body[:, None]
    correct = compared & found & (error <= alpha)
    measured = compared & found
    detected = (ext[..., 2] > 0).any(axis=1) & frames_with_body
    n_frames = int(frames_with_body.sum())

    def ratio(num: np.ndarray, den: np.ndarray) -> float | None:
        return float(num.sum() / den.sum()) if den.sum() else None

    per_joint_error = {
        name: (float(error[measured[:, j], j].mean()) if measured[:, j].any() else None)
        for j, name in enumerate(COCO_17.joints)
    }
    per_joint_pck = {name: ratio(correct[:, j], compared[:, j]) for j, name in enumerate(COCO_17.joints)}
    return PoseComparison(
        pck=ratio(correct, compared) or 0.0,
        mean_error=float(error[measured].mean()) if measured.any() else float("inf"),
        detection_rate=float(detected.sum() / n_frames) if n_frames else 0.0,
        frames=n_frames,
        per_joint_error=per_joint_error,
        per_joint_pck=per_joint_pck,
    )


def identity_similarity(frames: np.ndarray, reference_embedding: np.ndarray, embed: FaceEmbedder,
                        every: int = 10) -> dict[str, Any]:
    """Cosine similarity of faces in every ``every``-th frame to the reference's face embedding."""
    ref = np.asarray(reference_embedding, dtype=np.float64)
    ref = ref / (np.linalg.norm(ref) or 1.0)
    sims = []
    sampled = range(0, len(frames), max(1, every))
    for i in sampled:
        e = embed(frames[i])
        if e is not None:
            e = np.asarray(e, dtype=np.float64)
            sims.append(float(e @ ref / (np.linalg.norm(e) or 1.0)))
    return {
        "frames_sampled": len(sampled),
        "faces_found": len(sims),
        "mean_similarity": float(np.mean(sims)) if sims else None,
        "min_similarity": float(np.min(sims)) if sims else None,
    }


# ---------------------------------------------------------------- the report


def run_qa(
    frames: np.ndarray,
    input_keypoints: np.ndarray,
    fit: CanvasFit,
    extractor: PoseExtractor | None,
    thresholds: QAThresholds = QAThresholds(),
    face_embedder: FaceEmbedder | None = None,
    reference_embedding: np.ndarray | None = None,
    schema: str = "mediapipe33",
    video: dict[str, Any] | None = None,
) -> QAReport:
    """Check generated ``frames`` (uint8 ``[T, H, W, 3]``) against the recording's keypoints."""
    reasons: list[str] = []
    h, w = frames.shape[1:3]
    if (w, h) != tuple(fit.canvas_size):
        raise ValueError(f"frames are {w}x{h} but the canvas is {fit.canvas_size[0]}x{fit.canvas_size[1]}")
    if extractor is None:
        pose_check: dict[str, Any] = {"status": "unavailable", "message": NO_POSE_MODEL}
        if thresholds.require_pose_check:
            reasons.append(NO_POSE_MODEL)
    else:
        extracted = np.asarray(extractor(frames), dtype=np.float32)
        if extracted.shape != (len(frames), 33, 3):
            raise QAError(f"pose extractor returned {extracted.shape}, expected {(len(frames), 33, 3)}")
        cmp = compare_poses(to_canvas(input_keypoints, fit), extracted, fit.canvas_size, thresholds.pck_alpha,
                            thresholds.min_visibility, schema)
        pose_check = {"status": "ok", **asdict(cmp)}
        if cmp.frames == 0:
            reasons.append("pose check: the input shows no body to compare with")
        if cmp.detection_rate < thresholds.min_detection_rate:
            reasons.append(f"pose found in {cmp.detection_rate:.0%} of frames (< {thresholds.min_detection_rate:.0%})")
        if cmp.pck < thresholds.min_pck:
            reasons.append(f"PCK@{thresholds.pck_alpha:g} {cmp.pck:.2f} is below {thresholds.min_pck:.2f}")
        if not cmp.mean_error <= thresholds.max_mean_error:
            reasons.append(f"mean pose error {cmp.mean_error:.3f} is above {thresholds.max_mean_error:.3f}")
        if not np.isfinite(cmp.mean_error):
            pose_check["mean_error"] = None  # JSON has no infinity: nothing could be measured
    if face_embedder is None or reference_embedding is None:
        identity_check: dict[str, Any] = {"status": "unavailable", "message": NO_FACE_MODEL}
        if thresholds.require_identity_check:
            reasons.append(NO_FACE_MODEL)
    else:
        sims = identity_similarity(frames, reference_embedding, face_embedder)
        identity_check = {"status": "ok", **sims}
        if sims["mean_similarity"] is None:
            reasons.append("identity check: no face found in the output")
        elif sims["mean_similarity"] < thresholds.min_identity_similarity:
            reasons.append(
                f"output faces resemble the reference too little ({sims['mean_similarity']:.2f} "
                f"< {thresholds.min_identity_similarity:.2f})"
            )
    return QAReport(
        passed=not reasons,
        reasons=reasons,
        pose_check=pose_check,
        identity_check=identity_check,
        thresholds=asdict(thresholds),
        video=video or {},
    )
