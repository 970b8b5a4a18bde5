"""Writing files so that a crash or Ctrl-C never leaves half a file under the name the user gave."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import CogmaError


def temp_file_beside(path: Path, suffix: str, error: type[CogmaError] = CogmaError) -> tuple[int, Path]:
    """An open temporary file (descriptor, path) in ``path``'s folder, to be renamed to ``path`` when complete.

    A ``path`` that is a folder is ``error``; a folder that cannot be made or written to is an ``OSError`` that
    names ``path``, not the temporary file."""
    if path.is_dir():
        raise error(f"{path} is a folder; give a file name ending in {suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    return fd, Path(tmp)
