"""Parity checks of a bundle against the eager student on held-out recordings.

* fp32 ``.pte`` vs eager PyTorch: max abs difference <= 1e-4 (every output, every recording, and
  inputs at the contract's shortest and longest length);
* int8 ``.pte``: AUC drop <= 0.01 and correlation of the risk scores >= 0.99;
* BundledProgram: the runtime's own bundled-IO verification of every test case;
* Core ML: the spec's inputs, outputs, shapes, dtypes and metadata match the manifest (every
  platform, no model load); prediction parity only where Core ML can predict (macOS).

The limits are fixed here; a bundle that misses one fails, it is never loosened.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import (
    INPUT_NAMES,
    MODEL_BUNDLED,
    MODEL_INT8_PTE,
    MODEL_MLPACKAGE,
    MODEL_PTE,
    OUTPUT_NAME,
    InputContract,
)
from .data import ExportDataError, Sample

FP32_MAX_ABS_DIFF = 1e-4
INT8_MAX_AUC_DROP = 0.01
INT8_MIN_CORR = 0.99
COREML_FP16_MAX_ABS_DIFF = 2e-2  # fp16 compute: only checked on macOS


@dataclass
class Check:
    name: str
    passed: bool | None  # None: skipped (detail says why)
    value: float | None
    limit: str
    detail: str = ""

    @property
    def status(self) -> str:
        return "skipped" if self.passed is None else ("pass" if self.passed else "FAIL")


@dataclass
class VerifyReport:
    checks: list[Check]
    n_recordings: int
    n_infants: int
    platform: str
    info: dict[str, Any] = field(default_factory=dict)
    heldout_data: dict | None = None

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{**asdict(c), "status": c.status} for c in self.checks],
            "n_recordings": self.n_recordings,
            "n_infants": self.n_infants,
            "platform": self.platform,
            "info": self.info,
            "heldout_data": self.heldout_data,
        }

    def table(self) -> str:
        rows = [f"{'check':<22} {'status':<8} {'value':>12}  limit / detail"]
        for c in self.checks:
            value = "" if c.value is None else f"{c.value:.4g}"
            rows.append(f"{c.name:<22} {c.status:<8} {value:>12}  {c.limit}" + (f" — {c.detail}" if c.detail else ""))
        return "\n".join(rows)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def run_checks(root: Path, manifest: dict, module: Any, samples: Sequence[Sample]) -> VerifyReport:
    """Every check on the bundle files under ``root`` (the manifest may still be unwritten)."""
    from .exporter import eager_scores
    from .runtime import PteRunner

    contract = InputContract.from_dict(manifest["input_contract"])
    labels = np.array([s.label for s in samples])
    if len(set(labels.tolist())) < 2:
        raise ExportDataError("held-out recordings must hold both typical and atypical infants to check int8 AUC")
    eager = np.stack([eager_scores(module, s) for s in samples])
    fp32 = PteRunner(root / MODEL_PTE, contract=contract)
    int8 = PteRunner(root / MODEL_INT8_PTE, contract=contract)
    got32 = np.stack([fp32.run(s.landmarks, s.fps) for s in samples])
    got8 = np.stack([int8.run(s.landmarks, s.fps) for s in samples])

    checks = [_fp32_check(module, fp32, samples, eager, got32, contract)]
    auc_eager, auc_int8 = auc(labels, eager[:, 0]), auc(labels, got8[:, 0])
    drop = auc_eager - auc_int8
    checks.append(Check("int8_auc_drop", drop <= INT8_MAX_AUC_DROP, drop, f"<= {INT8_MAX_AUC_DROP}",
                        f"AUC eager {auc_eager:.4f}, int8 {auc_int8:.4f}"))
    corr = pearson(eager[:, 0], got8[:, 0])
    checks.append(Check("int8_correlation", bool(corr >= INT8_MIN_CORR), corr, f">= {INT8_MIN_CORR}",
                        "Pearson r of risk, int8 .pte vs eager" + (" (a score is constant)" if math.isnan(corr) else "")))
    checks.append(_bundled_check(root, manifest))
    checks.append(_coreml_spec_check(root / MODEL_MLPACKAGE, manifest))
    checks.append(_coreml_predict_check(root / MODEL_MLPACKAGE, eager, samples))
    info = {
        "auc_eager": auc_eager, "auc_fp32_pte": auc(labels, got32[:, 0]), "auc_int8_pte": auc_int8,
        "int8_max_abs_diff": float(np.abs(got8 - eager).max()),
        "risk_range_eager": [float(eager[:, 0].min()), float(eager[:, 0].max())],
    }
    return VerifyReport(checks, len(samples), len({s.infant_id for s in samples}), _platform(), info)


def _fp32_check(module: Any, runner: Any, samples: Sequence[Sample], eager: np.ndarray, got: np.ndarray,
                contract: InputContract) -> Check:
    from .exporter import eager_scores

    diff = float(np.abs(got - eager).max())
    # the exported bounds too: a dynamic-shape bug shows at the shortest and longest input
    bounds = [samples[0].cropped(contract.min_frames), samples[-1].cropped(contract.max_frames)]
    for s in bounds:
        diff = max(diff, float(np.abs(runner.run(s.landmarks, s.fps) - eager_scores(module, s)).max()))
    return Check("fp32_max_abs_diff", diff <= FP32_MAX_ABS_DIFF, diff, f"<= {FP32_MAX_ABS_DIFF:g}",
                 f"{len(samples)} recordings + {contract.min_frames} and {contract.max_frames} frames")


def _bundled_check(root: Path, manifest: dict) -> Check:
    from executorch.extension.pybindings.portable_lib import _load_bundled_program_from_buffer

    art = manifest["artifacts"][MODEL_BUNDLED]
    atol, rtol, n = float(art["atol"]), float(art["rtol"]), int(art["test_cases"])
    limit = f"atol {atol:g}, rtol {rtol:g}"
    try:
        bundled = _load_bundled_program_from_buffer((root / MODEL_BUNDLED).read_bytes())
        for i in range(n):
            bundled.verify_result_with_bundled_expected_output(art.get("method", "forward"), i, rtol=rtol, atol=atol)
    except RuntimeError as e:
        return Check("bundled_program", False, None, limit, f"runtime verification failed: {e}")
    return Check("bundled_program", True, float(n), limit, f"{n} bundled test cases verified by the ExecuTorch runtime")


def coreml_spec_problems(path: Path, manifest: dict) -> list[str]:
    """Differences between the .mlpackage's spec and the manifest (empty: they agree)."""
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    desc = spec.description
    contract = manifest["input_contract"]
    problems = []
    names = [i.name for i in desc.input]
    if names != list(INPUT_NAMES):
        problems.append(f"inputs {names} != {list(INPUT_NAMES)}")
    float32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    for inp in desc.input:
        arr = inp.type.multiArrayType
        if arr.dataType != float32:
            problems.append(f"input {inp.name} is not float32")
        if inp.name == "landmarks":
            ranges = [(r.lowerBound, r.upperBound) for r in arr.shapeRange.sizeRanges]
            want = [(1, 1), (contract["min_frames"], contract["max_frames"]), (33, 33), (3, 3)]
            if ranges != want:
                problems.append(f"landmarks shape range {ranges} != {want}")
        if inp.name == "fps" and list(arr.shape) != [1]:
            problems.append(f"fps shape {list(arr.shape)} != [1]")
    outs = [o.name for o in desc.output]
    if outs != [OUTPUT_NAME]:
        problems.append(f"outputs {outs} != [{OUTPUT_NAME!r}]")
    for out in desc.output:
        arr = out.type.multiArrayType
        if arr.dataType != float32:
            problems.append(f"output {out.name} is not float32")
        if list(arr.shape) not in ([], [1, 3]):
            problems.append(f"output shape {list(arr.shape)} != [1, 3]")
    meta = desc.metadata
    if meta.versionString != manifest["model"]["version"]:
        problems.append(f"Core ML version {meta.versionString!r} != manifest {manifest['model']['version']!r}")
    if not meta.author or not meta.license or not meta.shortDescription:
        problems.append("Core ML metadata lacks author, license or description")
    ud = dict(meta.userDefined)
    if ud.get("cogma.threshold") != repr(float(manifest["threshold"])):
        problems.append(f"Core ML threshold {ud.get('cogma.threshold')!r} != manifest {manifest['threshold']!r}")
    if manifest["not_for_clinical_use"] and "not for clinical use" not in meta.shortDescription:
        problems.append("Core ML description does not say it is not for clinical use")
    return problems


def _coreml_spec_check(path: Path, manifest: dict) -> Check:
    problems = coreml_spec_problems(path, manifest)
    return Check("coreml_spec", not problems, None, "inputs, outputs, shapes, dtypes, metadata = manifest",
                 "; ".join(problems) if problems else "matches the manifest")


def _coreml_predict_check(path: Path, eager: np.ndarray, samples: Sequence[Sample]) -> Check:
    limit = f"<= {COREML_FP16_MAX_ABS_DIFF:g} (fp16 compute)"
    if platform.system() != "Darwin":
        return Check("coreml_prediction", None, None, limit,
                     f"skipped: Core ML can only predict on macOS, this is {platform.system()}")
    import coremltools as ct

    model = ct.models.MLModel(str(path))
    diff = 0.0
    for s, ref in zip(samples, eager):
        out = model.predict({"landmarks": s.landmarks[None], "fps": np.array([s.fps], np.float32)})[OUTPUT_NAME]
        diff = max(diff, float(np.abs(np.asarray(out).reshape(-1) - ref).max()))
    return Check("coreml_prediction", diff <= COREML_FP16_MAX_ABS_DIFF, diff, limit, f"{len(samples)} recordings")


def _platform() -> str:
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
