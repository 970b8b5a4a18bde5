"""User-facing errors.

Every error a person can cause by giving the wrong input derives from
:class:`CogmaError`; the command line prints its message and exits non-zero
without a traceback. Anything else is a bug and keeps its traceback.
"""


class CogmaError(Exception):
    """An error whose message is meant for the user, not a developer."""


class RecordingError(CogmaError):
    """A pose recording file or array that breaks the PoseRecording contract."""


class SchemaError(CogmaError):
    """An unknown joint schema or an impossible mapping between schemas."""
