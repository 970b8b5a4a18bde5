"""Desktop pose backend: MediaPipe Tasks PoseLandmarker (mediapipe 1.2.2) in VIDEO mode.

VIDEO mode tracks the pose from frame to frame, so timestamps must increase strictly; they come
from the frame index and the frame rate. The app must notice a second person in the picture (a
parent's arm and face are common) and say so instead of silently mixing two bodies. A tracker
asked for two poses runs the person detector on every frame while it follows only one (43 ms
against 21 ms per 640x480 frame on the 2-core CPU), so the baby is tracked with ``num_poses=1``
and, once tracking is done and its graph closed, every ``PEOPLE_CHECK_EVERY``-th frame is
searched for up to two people in IMAGE mode. Two passes, because each MediaPipe graph holds
80-160 MB: one at a time keeps the peak memory down.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from ..errors import PoseError
from ..video import Frame
from .backend import PoseBackend
from .model import model_path

NUM_POSES = 2  # people looked for in a check (and by the phone backends on every frame)
TRACKED_POSES = 1
PEOPLE_CHECK_EVERY = 10  # frames: three checks a second at 30 fps
MIN_DETECTION_CONFIDENCE = 0.5
MIN_PRESENCE_CONFIDENCE = 0.5
MIN_TRACKING_CONFIDENCE = 0.5
POSE_MODEL_NAME = "mediapipe-tasks PoseLandmarker full (BlazePose tflites of mediapipe 0.10.21)"


def landmarks_to_array(landmarks: list) -> np.ndarray:
    """One MediaPipe pose (33 NormalizedLandmark) -> [33, 3] float32 (x, y, visibility)."""
    return np.array([(lm.x, lm.y, lm.visibility if lm.visibility is not None else 0.0) for lm in landmarks], np.float32)


class MediaPipeDesktopBackend(PoseBackend):
    name = "mediapipe-desktop"
    pose_model = POSE_MODEL_NAME

    def __init__(self, model: Path | None = None, num_poses: int = TRACKED_POSES,
                 people_check_every: int | None = PEOPLE_CHECK_EVERY):
        """``num_poses`` tracked on every frame; with ``people_check_every`` (when tracking one
        pose) every n-th frame is also searched for several people."""
        self.model = Path(model) if model else model_path()
        self.num_poses = num_poses
        self.people_check_every = people_check_every if num_poses == 1 else None
        self.device = f"desktop-{platform.machine() or 'cpu'}"
        self._landmarker = None
        self._last_ts = -1

    def _open(self):
        import mediapipe as mp  # heavy: only when the first frame arrives
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=self.num_poses,
            min_pose_detection_confidence=MIN_DETECTION_CONFIDENCE,
            min_pose_presence_confidence=MIN_PRESENCE_CONFIDENCE,
            min_tracking_confidence=MIN_TRACKING_CONFIDENCE,
        )
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as e:
            raise PoseError(f"the pose model {self.model} cannot be loaded ({e}); rebuild it with "
                            "`python -m mobile_app.pose.build_model --force`") from None
        self._mp_image = lambda rgb: mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)

    def reset(self) -> None:
        # A new landmarker per video: VIDEO mode refuses timestamps that go back.
        self.close()

    @property
    def tracking_share(self) -> float:
        return 0.9 if self.people_check_every else 1.0

    def people_in(self, frame: Frame, poses: list[np.ndarray]) -> int | None:
        if self.people_check_every is None:
            return super().people_in(frame, poses)
        return None  # counted in after_tracking

    def after_tracking(self, source, stride, stats, progress, cancel) -> None:
        """Second pass: every n-th frame searched for up to two people, tracker closed first."""
        from .backend import Cancelled, count_people

        if self.people_check_every is None:
            return
        self.close()
        _release_free_memory()
        step = stride * self.people_check_every
        expected = max(1, -(-source.info.frame_count // step))
        checker = MediaPipeImageDetector(self.model, NUM_POSES)
        try:
            for n, frame in enumerate(source.frames(step), 1):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                found = checker.detect(frame.rgb)
                stats.frames_checked_for_people += 1
                stats.frames_with_several += (count_people(found) if found else 0) > 1
                if progress is not None and n % 5 == 0:
                    progress(0.9 + 0.1 * min(0.99, n / expected), "Checking that only your baby is in the picture")
        finally:
            checker.close()

    def detect(self, frame: Frame) -> list[np.ndarray]:
        if self._landmarker is None:
            self._open()
        ts = max(frame.timestamp_ms, self._last_ts + 1)
        self._last_ts = ts
        rgb = np.ascontiguousarray(frame.rgb, dtype=np.uint8)
        result = self._landmarker.detect_for_video(self._mp_image(rgb), ts)
        return [landmarks_to_array(p) for p in result.pose_landmarks]

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
        self._last_ts = -1


def _release_free_memory() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class MediaPipeImageDetector:
    """Single pictures (camera preview, framing check): IMAGE mode, no tracking state."""

    def __init__(self, model: Path | None = None, num_poses: int = NUM_POSES):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model or model_path())),
            running_mode=vision.RunningMode.IMAGE,
            num_poses=num_poses,
        )
        self._mp = mp
        self._landmarker = vision.PoseLandmarker.create_from_options(options)

    def detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb, dtype=np.uint8))
        return [landmarks_to_array(p) for p in self._landmarker.detect(image).pose_landmarks]

    def close(self) -> None:
        self._landmarker.close()
