"""Pose estimation on the phone: one interface (:class:`PoseBackend`), one backend per platform.

Importing this package is light; MediaPipe loads when the first frame is processed.
"""

from .backend import PoseBackend, PoseStats, open_backend, platform_name
from .model import model_path

__all__ = ["PoseBackend", "PoseStats", "open_backend", "platform_name", "model_path"]
