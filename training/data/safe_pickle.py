"""A restricted unpickler for researchers' label files.

The CoGMA/PKU feeder layout keeps labels in a pickle of ``(names, labels)``.
Unpickling can run arbitrary code, so we never call ``pickle.load`` on it:
this unpickler only builds plain Python containers, strings and numbers and
the few numpy classes that numeric arrays and scalars need. Anything else
(a function, a class, ``os.system`` …) is refused with a clear error. Still,
only load label files you or your collaborators made.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from .types import DatasetError

MAX_PICKLE_BYTES = 64 * 1024 * 1024

# (module, name) pairs a label pickle may reference. Plain lists, tuples, dicts, str, int and
# float need no lookup at all; these cover numpy arrays and numpy scalars (numpy 1 and 2 paths).
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


class _Refused(pickle.UnpicklingError):
    """The pickle references something other than plain data."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"refusing to load {module}.{name}")


def load_label_pickle(path: Path) -> object:
    """Load a label pickle allowing only data types; :class:`DatasetError` otherwise."""
    if not path.is_file():
        raise DatasetError(f"{path}: label pickle not found")
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise DatasetError(f"{path}: label pickle is {size} bytes, more than the limit of {MAX_PICKLE_BYTES}")
    data = path.read_bytes()
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except _Refused as e:
        raise DatasetError(
            f"{path}: not a plain label pickle ({e}); only names, labels and numpy arrays are accepted"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, MemoryError) as e:
        raise DatasetError(f"{path}: label pickle is truncated or corrupt ({type(e).__name__}: {e})") from None
