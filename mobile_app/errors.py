"""Errors a user of the app can cause; each message says what is wrong and what to do."""

from skeleton.errors import CogmaError


class AppError(CogmaError):
    """Base class of the app's user-facing errors."""


class PoseModelMissing(AppError):
    """The pose model file has not been built by the set-up step."""


class VideoError(AppError):
    """A video that cannot be read, is empty, or cannot be used."""


class PoseError(AppError):
    """Pose estimation failed or found nobody to track."""


class ScorerError(AppError):
    """The model bundle cannot score this recording (wrong bundle, outside its contract)."""


class UploadError(AppError):
    """Sharing is not possible right now (no consent, server refused, offline)."""


class StoreError(AppError):
    """The app's local data cannot be read or written."""
