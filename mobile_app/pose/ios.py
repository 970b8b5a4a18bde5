"""iOS pose backend: MediaPipe Tasks for iOS (``MediaPipeTasksVision``) via pyobjus.

UNTESTED ON DEVICES. Written against the published Objective-C API (MPPPoseLandmarker,
MPPPoseLandmarkerOptions, MPPImage) and AVFoundation's AVAssetImageGenerator; it could not be
built here (kivy-ios needs macOS and Xcode). There is no kivy-ios recipe for mediapipe: the
Xcode project links the ``MediaPipeTasksVision`` pod and the app calls it through pyobjus.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import PoseError
from ..video import Frame
from .backend import NUM_LANDMARKS, PoseBackend
from .desktop import NUM_POSES, POSE_MODEL_NAME

MPP_RUNNING_MODE_VIDEO = 1  # MPPRunningModeImage = 0, Video = 1, LiveStream = 2


def _pyobjus():
    try:
        import pyobjus  # only inside the iOS app
        from pyobjus.dylib_manager import load_framework
    except ImportError:
        raise PoseError("the iOS pose backend needs pyobjus and runs only inside the iOS app") from None
    return pyobjus, load_framework


def _ios_model_path() -> Path:
    from .model import packaged_model_path

    base = Path(os.environ.get("KIVY_HOME", "."))
    return packaged_model_path([Path.cwd() / ".models", base / ".models"], "app bundle")


class IOSPoseBackend(PoseBackend):
    name = "mediapipe-ios"
    pose_model = POSE_MODEL_NAME
    device = "ios"

    def __init__(self, model: Path | None = None, num_poses: int = NUM_POSES):
        pyobjus, load_framework = _pyobjus()
        load_framework("/System/Library/Frameworks/AVFoundation.framework")
        load_framework("/System/Library/Frameworks/UIKit.framework")
        self._autoclass = pyobjus.autoclass
        self._objc_str = pyobjus.objc_str
        self.model = model or _ios_model_path()
        self.num_poses = num_poses
        self._landmarker = None

    def _open(self) -> None:
        ac = self._autoclass
        options = ac("MPPPoseLandmarkerOptions").alloc().init()
        options.baseOptions.modelAssetPath = self._objc_str(str(self.model))
        options.runningMode = MPP_RUNNING_MODE_VIDEO
        options.numPoses = self.num_poses
        options.minPoseDetectionConfidence = 0.5
        options.minPosePresenceConfidence = 0.5
        options.minTrackingConfidence = 0.5
        self._landmarker = ac("MPPPoseLandmarker").alloc().initWithOptions_error_(options, None)
        if self._landmarker is None:
            raise PoseError("the pose model could not be loaded on this iPhone")
        self._last_ts = -1

    def _uiimage(self, rgb: np.ndarray):
        """RGB pixels -> UIImage (through a PNG in memory: simple, and fast enough for previews)."""
        import cv2

        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        data = self._autoclass("NSData").dataWithBytes_length_(png.tobytes(), len(png))
        return self._autoclass("UIImage").imageWithData_(data)

    def _detect_uiimage(self, uiimage, timestamp_ms: int) -> list[np.ndarray]:
        if self._landmarker is None:
            self._open()
        ts = max(timestamp_ms, self._last_ts + 1)
        self._last_ts = ts
        image = self._autoclass("MPPImage").alloc().initWithUIImage_error_(uiimage, None)
        result = self._landmarker.detectVideoFrame_timestampInMilliseconds_error_(image, ts, None)
        poses = []
        for i in range(result.landmarks.count()):
            pose = result.landmarks.objectAtIndex_(i)
            arr = np.zeros((NUM_LANDMARKS, 3), np.float32)
            for j in range(min(NUM_LANDMARKS, pose.count())):
                lm = pose.objectAtIndex_(j)
                vis = lm.visibility.floatValue() if lm.visibility is not None else 0.0
                arr[j] = (lm.x, lm.y, vis)
            poses.append(arr)
        return poses

    def detect(self, frame: Frame) -> list[np.ndarray]:
        return self._detect_uiimage(self._uiimage(frame.rgb), frame.timestamp_ms)

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        self._landmarker = None  # ARC releases it
