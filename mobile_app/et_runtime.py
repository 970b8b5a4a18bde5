"""Load the ExecuTorch runtime's Python bindings without the ExecuTorch compiler.

``executorch.extension.pybindings.portable_lib`` imports ``executorch.exir._warnings`` for one
decorator, and importing that pulls in the whole ``executorch.exir`` compiler package (torch.export,
passes, dialects): on the 2-core CPU that costs about 6 s and 150 MB before the first score,
for nothing the runtime uses. Here that one small module is loaded on its own under a temporary
stand-in package, the bindings are imported, and the stand-in is removed, so a later
``import executorch.exir`` (export, tests) loads the real package as usual.
"""

from __future__ import annotations

import importlib.util
import sys
import types

_BINDINGS = "executorch.extension.pybindings.portable_lib"


def preload_runtime() -> None:
    if _BINDINGS in sys.modules or "executorch.exir" in sys.modules:
        return  # already loaded (with the real compiler or through here)
    import executorch

    root = list(executorch.__path__)[0]
    spec = importlib.util.spec_from_file_location("executorch.exir._warnings", f"{root}/exir/_warnings.py")
    if spec is None or spec.loader is None:  # layout changed: take the slow, ordinary path
        importlib.import_module(_BINDINGS)
        return
    warnings_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(warnings_mod)
    stand_in = types.ModuleType("executorch.exir")
    stand_in.__path__ = []  # a package that can hold nothing else
    stand_in._warnings = warnings_mod
    sys.modules["executorch.exir"] = stand_in
    sys.modules["executorch.exir._warnings"] = warnings_mod
    try:
        importlib.import_module(_BINDINGS)
    finally:
        sys.modules.pop("executorch.exir", None)
        sys.modules.pop("executorch.exir._warnings", None)
        if getattr(executorch, "exir", None) is stand_in:
            delattr(executorch, "exir")
