"""Android pose backend: MediaPipe Tasks for Android (``com.google.mediapipe:tasks-vision``) via pyjnius.

UNTESTED ON DEVICES. Written against the published Java API (PoseLandmarker, BitmapImageBuilder,
MediaMetadataRetriever); it could not be run here because no Android SDK/NDK can be fetched
on the build machine. There is no python-for-android recipe for mediapipe, so the app calls the
native library that the Gradle dependency in ``buildozer.spec`` puts into the APK.

The model file is the same ``pose_landmarker_full.task`` the desktop uses, shipped in the APK's
private files and mapped into memory (``BaseOptions.setModelAssetBuffer``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import PoseError
from ..video import Frame, VideoInfo, stride_for
from .backend import NUM_LANDMARKS, PoseBackend, PoseStats, ProgressFn
from .desktop import NUM_POSES, POSE_MODEL_NAME

_PKG = "com.google.mediapipe.tasks"


def _jnius():
    try:
        import jnius  # only inside the Android app
    except ImportError:
        raise PoseError("the Android pose backend needs pyjnius and runs only inside the Android app") from None
    return jnius


def _android_model_path() -> Path:
    from .model import packaged_model_path

    # buildozer copies the app's source tree (with .models/) into the private files folder.
    base = Path(os.environ.get("ANDROID_PRIVATE", "."))
    return packaged_model_path([base / "app" / ".models", base / ".models"], "app package (APK)")


class AndroidPoseBackend(PoseBackend):
    name = "mediapipe-android"
    pose_model = POSE_MODEL_NAME
    device = "android"

    def __init__(self, model: Path | None = None, num_poses: int = NUM_POSES):
        jnius = _jnius()
        self._autoclass = jnius.autoclass
        self.model = model or _android_model_path()
        self.num_poses = num_poses
        self._landmarker = None

    # -- MediaPipe objects ---------------------------------------------------------------
    def _model_buffer(self):
        FileInputStream = self._autoclass("java.io.FileInputStream")
        MapMode = self._autoclass("java.nio.channels.FileChannel$MapMode")
        channel = FileInputStream(str(self.model)).getChannel()
        return channel.map(MapMode.READ_ONLY, 0, channel.size())

    def _open(self) -> None:
        ac = self._autoclass
        BaseOptions = ac(f"{_PKG}.core.BaseOptions")
        RunningMode = ac(f"{_PKG}.vision.core.RunningMode")
        PoseLandmarker = ac(f"{_PKG}.vision.poselandmarker.PoseLandmarker")
        Options = ac(f"{_PKG}.vision.poselandmarker.PoseLandmarker$PoseLandmarkerOptions")
        context = ac("org.kivy.android.PythonActivity").mActivity
        base = BaseOptions.builder().setModelAssetBuffer(self._model_buffer()).build()
        options = (
            Options.builder()
            .setBaseOptions(base)
            .setRunningMode(RunningMode.VIDEO)
            .setNumPoses(self.num_poses)
            .setMinPoseDetectionConfidence(0.5)
            .setMinPosePresenceConfidence(0.5)
            .setMinTrackingConfidence(0.5)
            .build()
        )
        self._landmarker = PoseLandmarker.createFromOptions(context, options)
        self._last_ts = -1

    def _poses(self, result) -> list[np.ndarray]:
        poses = []
        for i in range(result.landmarks().size()):
            pose = result.landmarks().get(i)
            arr = np.zeros((NUM_LANDMARKS, 3), np.float32)
            for j in range(min(NUM_LANDMARKS, pose.size())):
                lm = pose.get(j)
                vis = lm.visibility()  # java.util.Optional<Float>
                arr[j] = (lm.x(), lm.y(), vis.get() if vis.isPresent() else 0.0)
            poses.append(arr)
        return poses

    def _detect_bitmap(self, bitmap, timestamp_ms: int) -> list[np.ndarray]:
        if self._landmarker is None:
            self._open()
        ts = max(timestamp_ms, self._last_ts + 1)
        self._last_ts = ts
        image = self._autoclass("com.google.mediapipe.framework.image.BitmapImageBuilder")(bitmap).build()
        return self._poses(self._landmarker.detectForVideo(image, ts))

    # -- PoseBackend -------------------------------------------------------------------------
    def detect(self, frame: Frame) -> list[np.ndarray]:
        """A frame already in memory (camera preview): RGB -> ARGB_8888 Bitmap."""
        ac = self._autoclass
        Bitmap = ac("android.graphics.Bitmap")
        Config = ac("android.graphics.Bitmap$Config")
        ByteBuffer = ac("java.nio.ByteBuffer")
        h, w = frame.rgb.shape[:2]
        rgba = np.dstack([frame.rgb, np.full((h, w), 255, np.uint8)]).tobytes()
        bitmap = Bitmap.createBitmap(w, h, Config.ARGB_8888)
        bitmap.copyPixelsFromBuffer(ByteBuffer.wrap(rgba))
        return self._detect_bitmap(bitmap, frame.timestamp_ms)

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def estimate_video(self, path, progress: ProgressFn | None = None, fps_max: float | None = None, cancel=None,
                       age_weeks=None):
        """Decode with the platform's MediaMetadataRetriever (API 28+), frame by frame."""
        ac = self._autoclass
        Retriever = ac("android.media.MediaMetadataRetriever")
        retriever = Retriever()
        try:
            retriever.setDataSource(str(path))
            count = int(retriever.extractMetadata(Retriever.METADATA_KEY_VIDEO_FRAME_COUNT) or 0)
            duration_ms = float(retriever.extractMetadata(Retriever.METADATA_KEY_DURATION) or 0)
            width = int(retriever.extractMetadata(Retriever.METADATA_KEY_VIDEO_WIDTH) or 0)
            height = int(retriever.extractMetadata(Retriever.METADATA_KEY_VIDEO_HEIGHT) or 0)
        except Exception as e:  # jnius.JavaException: the platform could not read the file
            retriever.release()
            raise PoseError(f"this is not a video the phone can read ({e})") from None
        if count <= 0 or duration_ms <= 0:
            retriever.release()
            raise PoseError("the video has no pictures in it.")
        fps = count / (duration_ms / 1000.0)
        stride = stride_for(fps, fps_max)
        source = _RetrieverFrames(retriever, VideoInfo(fps, (width, height), count))
        try:
            self.reset()
            return self._estimate_bitmaps(source, progress, stride, cancel, age_weeks)
        finally:
            retriever.release()

    def _estimate_bitmaps(self, source: "_RetrieverFrames", progress, stride, cancel, age_weeks):
        keypoints, stats, centre = [], PoseStats(), None
        from .backend import Cancelled, _centre, choose_pose, count_people, sanitize

        for index in range(0, source.info.frame_count, stride):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            bitmap = source.retriever.getFrameAtIndex(index)
            poses = [sanitize(p) for p in self._detect_bitmap(bitmap, round(index * 1000 / source.info.fps))]
            stats.frames_checked_for_people += 1
            stats.frames_with_several += bool(poses) and count_people(poses) > 1
            if poses:
                chosen = choose_pose(poses, centre)
                centre = _centre(chosen)
                keypoints.append(chosen)
                stats.frames_with_pose += 1
            else:
                keypoints.append(np.zeros((NUM_LANDMARKS, 3), np.float32))
            if progress is not None and len(keypoints) % 15 == 0:
                progress(index / source.info.frame_count, f"Looking at picture {index}")
        stats.frames = len(keypoints)
        # Brightness is not measured on Android (reading pixels back through JNI costs too much).
        stats.median_brightness = None
        rec = self._recording(np.stack(keypoints), source.info.fps / stride, source.info.frame_size, stats, age_weeks)
        return rec, stats


class _RetrieverFrames:
    def __init__(self, retriever, info: VideoInfo):
        self.retriever = retriever
        self.info = info
