"""Scoring with the real ExecuTorch runtime (what the phone runs), never eager PyTorch.

``PteRunner(path).run(landmarks [T, 33, 3] float32, fps) -> np.ndarray[3]`` = (risk, risk_low,
risk_high). The input contract is checked before anything reaches the runtime: inputs outside
the exported bounds would otherwise fail deep inside it with a bare error code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from skeleton.recording import PoseRecording

from .bundle import MANIFEST, MODEL_PTE, BundleError, InputContract, ModelBundle, check_landmarks, load_bundle


def set_runtime_threads(n: int) -> None:
    """Size of ExecuTorch's (process-wide) XNNPACK thread pool; benchmarks use 1, like torch."""
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(int(n))


def runtime_threads() -> int:
    from executorch.extension.pybindings import portable_lib

    return int(portable_lib._threadpool_get_thread_count())


class PteRunner:
    """One loaded ``.pte`` program and the input contract it is run under.

    ``contract`` defaults to the one of the bundle the file lies in (that bundle is verified
    first); a ``.pte`` outside a bundle needs an explicit contract.
    """

    def __init__(self, path: str | os.PathLike, contract: InputContract | None = None) -> None:
        self.path = Path(path)
        if contract is None:
            if not (self.path.parent / MANIFEST).is_file():
                raise BundleError(
                    f"{self.path}: not inside a model bundle, so its input contract is unknown; pass contract=..."
                )
            contract = load_bundle(self.path.parent).input_contract
        self.contract = contract
        if not self.path.is_file():
            raise BundleError(f"{self.path}: no such ExecuTorch program")
        # the Program owns the memory the Method runs in: keep both alive together
        self._program, self._method = _load_method(self.path.read_bytes(), self.path.name)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, name: str = MODEL_PTE) -> "PteRunner":
        """A runner for a program of an already verified bundle."""
        return cls(bundle.path(name), contract=bundle.input_contract)

    def run(self, landmarks: np.ndarray, fps: float) -> np.ndarray:
        """(risk, risk_low, risk_high) for raw MediaPipe-33 landmarks ``[T, 33, 3]`` at ``fps``."""
        check_landmarks(landmarks, fps, self.contract)
        return self.run_unchecked(landmarks, fps)

    def run_recording(self, rec: PoseRecording) -> np.ndarray:
        self.contract.check(rec.num_frames, rec.fps, schema=rec.schema, shape=tuple(rec.keypoints.shape))
        return self.run(rec.keypoints, rec.fps)

    def run_unchecked(self, landmarks: np.ndarray, fps: float) -> np.ndarray:
        """For callers that checked the contract already (benchmarks time the runtime alone)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32))[None]
        f = torch.tensor([float(fps)], dtype=torch.float32)
        try:
            out = self._method.execute([x, f])[0]
        except RuntimeError as e:
            raise BundleError(f"{self.path.name}: the ExecuTorch runtime failed on this input ({e})") from None
        scores = out.detach().numpy().reshape(-1).astype(np.float32)
        if scores.shape != (3,) or not np.isfinite(scores).all():
            raise BundleError(f"{self.path.name}: the model returned {scores!r}, not three finite scores")
        return scores


def _load_method(data: bytes, name: str) -> tuple[Any, Any]:
    from executorch.runtime import Runtime

    try:
        program = Runtime.get().load_program(data)
        method = program.load_method("forward")
    except RuntimeError as e:
        raise BundleError(f"{name}: the ExecuTorch runtime cannot load this program ({e})") from None
    if method is None:
        raise BundleError(f"{name}: the program has no 'forward' method")
    return program, method
