"""Recordings with known movement for the animator tests (MediaPipe-33 layout)."""

from __future__ import annotations

import numpy as np

from skeleton.recording import PoseRecording
from skeleton.schemas import MEDIAPIPE_33

# A supine infant seen from above, normalised to a portrait frame (x, y).
_REST = {
    "nose": (0.50, 0.22), "left_eye": (0.53, 0.20), "right_eye": (0.47, 0.20),
    "left_ear": (0.56, 0.21), "right_ear": (0.44, 0.21),
    "left_shoulder": (0.62, 0.34), "right_shoulder": (0.38, 0.34),
    "left_elbow": (0.74, 0.42), "right_elbow": (0.26, 0.42),
    "left_wrist": (0.78, 0.31), "right_wrist": (0.22, 0.31),
    "left_hip": (0.57, 0.57), "right_hip": (0.43, 0.57),
    "left_knee": (0.68, 0.67), "right_knee": (0.32, 0.67),
    "left_ankle": (0.63, 0.80), "right_ankle": (0.37, 0.80),
}


def moving_infant(frames: int = 40, fps: float = 30.0, frame_size=(720, 1280), seed: int = 0) -> PoseRecording:
    """Limbs swing smoothly (distal joints more); joints MediaPipe has beyond COCO-17 stay invisible."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    kp = np.zeros((frames, 33, 3), dtype=np.float32)
    for name, (x, y) in _REST.items():
        j = MEDIAPIPE_33.index[name]
        amp = 0.04 if any(k in name for k in ("wrist", "ankle")) else 0.02 if any(
            k in name for k in ("elbow", "knee")) else 0.0
        phase = rng.uniform(0, 2 * np.pi)
        kp[:, j, 0] = x + amp * np.sin(2 * np.pi * 0.8 * t + phase)
        kp[:, j, 1] = y + amp * np.cos(2 * np.pi * 0.6 * t + phase)
        kp[:, j, 2] = 0.95
    return PoseRecording(kp, "mediapipe33", fps, frame_size, pose_model="test", device="test", age_weeks=12.0)
