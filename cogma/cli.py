"""The ``cogma`` command: one front for every part of the project.

Each package registers its own sub-commands in ``<package>/cli.py`` through
``register(subparsers)``; registration imports nothing heavy, so ``--help``
is quick and one part's missing optional model never breaks another's.
User errors (:class:`skeleton.errors.CogmaError`, and paths the system refuses to read
or write) are printed as one line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from skeleton.errors import CogmaError

# Packages that contribute sub-commands, in the order of the user's path.
_COMMAND_MODULES = (
    "skeleton.cli",
    "training.cli",
    "export.cli",
    "mobile_app.cli",
    "server_animator.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from cogma import __version__

    parser = argparse.ArgumentParser(
        prog="cogma",
        description="CoGMA: early screening for cerebral palsy from infant pose (screening aid, not a diagnosis).",
    )
    parser.add_argument("--version", action="version", version=f"cogma {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that part is not written yet
                continue
            raise
        module.register(sub)
    parser.command_parsers = sub.choices  # name -> the sub-command's parser
    return parser


def os_error_message(e: OSError) -> str:
    """``cannot use 'out/x.npz': Read-only file system`` — the path the user gave (a rename's target), not a
    temporary file next to it."""
    path = e.filename2 if e.filename2 is not None else e.filename
    reason = e.strerror or str(e)
    return f"cannot use {str(path)!r}: {reason}" if path is not None else reason


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("KIVY_NO_ARGS", "1")  # Kivy must not eat our flags
    # torchao warns on import that its CUDA-only kernels (mxfp8, CUTLASS) did not load: nothing a user can act
    # on, and it buried the one-line errors of `cogma export` / `verify` on a CPU.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the sub-command's parser, so the usage shown is that command's
        parser.command_parsers.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CogmaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path that cannot be read or written: the user's to fix, not a crash
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
