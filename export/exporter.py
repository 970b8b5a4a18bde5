"""Student model -> model bundle (ExecuTorch fp32 and int8, Core ML, BundledProgram, card, manifest).

The student's forward is ``(landmarks [1, T, 33, 3], fps [1]) -> [1, 3]`` with all preprocessing
inside (training contract), so one ``torch.export`` with a dynamic T is the single source of
every artefact: the ExecuTorch programs are lowered from it and Core ML is converted from it.

The bundle is built in a temporary folder next to ``out`` and moved into place only when every
step and check has run, so a failed export never leaves half a bundle behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    INPUT_NAMES,
    INPUT_SCHEMA,
    MODEL_BUNDLED,
    MODEL_CARD,
    MODEL_INT8_PTE,
    MODEL_MLPACKAGE,
    MODEL_PTE,
    OUTPUT_NAME,
    OUTPUT_NAMES,
    MANIFEST,
    BundleError,
    InputContract,
    load_bundle,
    write_manifest,
)
from .data import Sample, fit_length
from .quantize import QuantRecipe
from .tooling import (
    ExportError,
    accumulate_long_sums_in_float64,
    dynamic_shapes,
    eager_scores,
    first_lines,
    quiet,
    reexport,
    user_frame,
)

__all__ = ["ExportError", "ExportOptions", "ExportReport", "export_bundle", "eager_scores"]

AUTHOR = "CoGMA project"
LICENSE = "Apache-2.0"
NOTICE_SYNTHETIC = "synthetic data — not for clinical use"
INTENDED_USE = (
    "Screening aid for atypical general movements in young infants (General Movements Assessment), "
    "to help decide who should see a clinician trained in GMA. Not a diagnosis."
)
# Parity tolerance for the BundledProgram's expected outputs (same as the fp32 check of `cogma verify`).
BUNDLED_ATOL = 1e-4
BUNDLED_RTOL = 0.0


@dataclass
class ExportOptions:
    calibration_max: int = 24  # training recordings used to calibrate int8 activation ranges
    calibration_frames: int = 1800  # the first minute (at 30 fps) of each is plenty for ranges, and halves the time
    bundled_cases: int = 2  # test cases in the BundledProgram (one typical, one atypical when available)
    int8_min_corr: float = 0.99  # what a quantization recipe must reach on the selection data
    int8_max_auc_drop: float = 0.01
    recipes: tuple[QuantRecipe, ...] | None = None  # None: per-channel, then sensitive layers in fp32


@dataclass
class ExportReport:
    out: Path
    files: dict[str, int]
    quantization: dict[str, Any]
    verification: dict[str, Any]
    coreml_source: str
    seconds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- the steps


def check_meta(meta: dict) -> InputContract:
    """The student's meta as the bundle needs it; ExportError naming the missing part."""
    missing = [k for k in ("version", "input_contract", "output_contract", "threshold", "operating_point",
                           "metrics", "training_data", "not_for_clinical_use") if k not in meta]
    if missing:
        raise ExportError(f"the student's meta lacks {', '.join(missing)} (training contract: StudentMeta)")
    try:
        contract = InputContract.from_dict(meta["input_contract"], "student input_contract")
    except BundleError as e:
        raise ExportError(str(e)) from None
    if contract.schema != INPUT_SCHEMA:
        raise ExportError(f"the student reads {contract.schema!r}; the phone feeds {INPUT_SCHEMA!r} landmarks")
    names = list(meta["output_contract"].get("names", []))
    if names != list(OUTPUT_NAMES):
        raise ExportError(f"the student's outputs are {names}; the bundle contract is {list(OUTPUT_NAMES)}")
    thr = meta["threshold"]
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0:
        raise ExportError(f"the student's decision threshold {thr!r} is not a probability")
    return contract


def example_inputs(contract: InputContract, sample: Sample | None = None) -> tuple[Any, Any]:
    """A 3-minute 30 fps input (clamped to the contract) to trace with; T is dynamic anyway."""
    import torch

    fps = min(max(30.0, contract.fps_min), contract.fps_max)
    frames = min(max(int(180 * fps), contract.min_frames), contract.max_frames)
    if sample is not None:
        kp = fit_length(sample.landmarks, frames)
    else:  # a still body in the middle of the frame, fully visible
        kp = np.tile(np.array([0.5, 0.5, 1.0], np.float32), (frames, 33, 1))
        kp[..., :2] += np.random.default_rng(0).normal(0, 0.05, (frames, 33, 2)).astype(np.float32)
    return torch.from_numpy(kp)[None], torch.tensor([fps], dtype=torch.float32)


def torch_export(module: Any, example: tuple[Any, Any], contract: InputContract) -> Any:
    """``torch.export`` with a dynamic number of frames; a failure names the construct that broke it."""
    from torch.export import export

    try:
        with quiet():
            return export(module, example, dynamic_shapes=dynamic_shapes(contract), strict=False)
    except Exception as e:  # torch raises many unrelated types here; all mean "not exportable"
        raise ExportError(
            "torch.export of the student failed (training contract: dynamic T from "
            f"{contract.min_frames} to {contract.max_frames} frames, no data-dependent control flow): "
            f"{first_lines(e)}{user_frame(e)}"
        ) from None


def lower_xnnpack(exported: Any, what: str) -> Any:
    """Exported program -> ExecuTorch program manager with XNNPACK delegation.

    The inputs are not planned into the program's memory arena: the runtime reads the caller's
    landmark buffer in place. A planned input would be copied in on every call (2 MB for 3 minutes,
    ~0.2 ms here) and would reserve room for the longest recording (7 MB) in the arena."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.passes import MemoryPlanningPass

    config = ExecutorchBackendConfig(memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False))
    try:
        with quiet():
            return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch(config)
    except Exception as e:
        raise ExportError(f"lowering the {what} program to ExecuTorch/XNNPACK failed: {first_lines(e)}") from None


def convert_coreml(exported: Any, module: Any, example: tuple[Any, Any], contract: InputContract, meta: dict,
                   path: Path) -> str:
    """Core ML mlprogram, fp16 compute, float32 I/O, flexible T. Returns which front end converted it."""
    import coremltools as ct

    from . import coreml_ops

    coreml_ops.register()
    default_t = int(example[0].shape[1])
    inputs = [
        ct.TensorType(name="landmarks", shape=(1, ct.RangeDim(contract.min_frames, contract.max_frames, default_t), 33, 3),
                      dtype=np.float32),
        ct.TensorType(name="fps", shape=(1,), dtype=np.float32),
    ]
    outputs = [ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)]
    errors = []
    for source in ("torch.export", "torch.jit.trace"):
        try:
            with quiet():
                if source == "torch.export":
                    program = exported.run_decompositions({})
                else:
                    import torch

                    program = torch.jit.trace(module, example)
                mlmodel = ct.convert(program, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                                     compute_precision=ct.transform.FP16ComputePrecision(op_selector=_fp16_op),
                                     minimum_deployment_target=ct.target.iOS16)
            break
        except Exception as e:
            errors.append(f"{source}: {first_lines(e)}")
    else:
        raise ExportError("Core ML conversion failed: " + " | ".join(errors))
    _coreml_metadata(mlmodel, meta, contract)
    mlmodel.save(str(path))
    return source


def coreml_precision(contract: InputContract) -> str:
    return ("float16 for per-frame ops; float32 for reductions and per-recording statistics "
            f"(sums over up to {contract.max_frames} frames overflow float16's 65504)")


def _fp16_op(op: Any) -> bool:
    """Core ML's fp16 op selector: per-frame tensors (a dynamic T in their shape) run in fp16; sums and
    the recording-level statistics after them (body axis, scale, window-logit mean and spread) stay
    fp32, since a sum over a 10-minute recording exceeds float16's range."""
    from coremltools.converters.mil.mil.types.symbolic import any_symbolic

    if op.op_type.startswith("reduce_"):
        return False
    return any(any_symbolic(getattr(v, "shape", ())) for v in op.outputs)


def _coreml_metadata(mlmodel: Any, meta: dict, contract: InputContract) -> None:
    notice = f" {NOTICE_SYNTHETIC.capitalize()}." if meta["not_for_clinical_use"] else ""
    mlmodel.author = AUTHOR
    mlmodel.license = LICENSE
    mlmodel.version = str(meta["version"])
    mlmodel.short_description = f"CoGMA student: risk of atypical general movements. {INTENDED_USE}{notice}"
    mlmodel.input_description["landmarks"] = (
        f"Raw MediaPipe Pose landmarks [1, T, 33, 3] (x, y normalized to the frame, visibility), "
        f"{contract.min_frames} <= T <= {contract.max_frames}"
    )
    mlmodel.input_description["fps"] = f"Frame rate [1], {contract.fps_min:g} to {contract.fps_max:g} fps"
    mlmodel.output_description[OUTPUT_NAME] = "[1, 3] = risk, risk_low, risk_high (probabilities)"
    ud = mlmodel.user_defined_metadata
    ud["cogma.model_version"] = str(meta["version"])
    ud["cogma.threshold"] = repr(float(meta["threshold"]))
    ud["cogma.schema"] = contract.schema
    ud["cogma.not_for_clinical_use"] = str(bool(meta["not_for_clinical_use"])).lower()
    if meta["not_for_clinical_use"]:
        ud["cogma.notice"] = NOTICE_SYNTHETIC


def bundled_program(program: Any, module: Any, cases: Sequence[Sample], path: Path) -> int:
    """ExecuTorch BundledProgram: the fp32 program (a program manager, or a ``.pte`` path) with test
    inputs and the eager model's outputs, for parity checks on phones."""
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.core import BundledProgram
    from executorch.devtools.bundled_program.serialize import serialize_from_bundled_program_to_flatbuffer

    import torch

    tests = []
    for s in cases:
        x, f = s.tensors()
        with torch.no_grad():
            tests.append(MethodTestCase(inputs=[x, f], expected_outputs=[module(x, f)]))
    suites = [MethodTestSuite("forward", tests)]
    with quiet():
        if isinstance(program, (str, os.PathLike)):
            bundled = BundledProgram(None, suites, pte_file_path=str(program))
        else:  # a manager: BundledProgram also checks the test cases against the program's signature
            bundled = BundledProgram(program, suites)
        data = serialize_from_bundled_program_to_flatbuffer(bundled)
    path.write_bytes(data)
    return len(tests)


def bundled_cases(heldout: Sequence[Sample], contract: InputContract, n: int) -> list[Sample]:
    """Shortest allowed stretch of held-out recordings (keeps the .bpte small), alternating labels."""
    by_label = {0: [s for s in heldout if s.label == 0], 1: [s for s in heldout if s.label == 1]}
    picked: list[Sample] = []
    while len(picked) < n and (by_label[0] or by_label[1]):
        for lab in (0, 1):
            if by_label[lab] and len(picked) < n:
                picked.append(by_label[lab].pop(0))
    return [s.cropped(contract.min_frames) for s in picked]


# ---------------------------------------------------------------- the whole export


def check_output_folder(out: Path, force: bool) -> None:
    """The bundle may go to a new or empty folder; ``force`` replaces an earlier bundle, never other files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out} is a file; give a folder for the bundle")
    if not any(out.iterdir()):
        return
    if not force:
        raise ExportError(f"{out} exists; choose another folder or pass --force to replace it")
    if not (out / MANIFEST).is_file():
        raise ExportError(f"{out} holds files that are not a model bundle; --force only replaces a bundle folder")


def export_bundle(module: Any, meta: dict, out: str | os.PathLike, *, calibration: Sequence[Sample],
                  heldout: Sequence[Sample], heldout_spec: dict | None, source: dict[str, Any] | None = None,
                  options: ExportOptions | None = None, force: bool = False,
                  log: Callable[[str], None] = print) -> ExportReport:
    """Write a verified model bundle for ``module`` (the student, eval mode) to ``out``."""
    import time

    import torch

    from . import model_card, verify

    options = options or ExportOptions()
    out = Path(out)
    check_output_folder(out, force)
    contract = check_meta(meta)
    if not calibration:
        raise ExportError("no calibration recordings for int8 (training recordings within the input contract)")
    if len({s.label for s in heldout}) < 2:
        raise ExportError("held-out recordings must hold both typical and atypical infants to check int8 AUC")
    module = module.eval()
    calibration = [s.cropped(max(contract.min_frames, min(options.calibration_frames, s.landmarks.shape[0])))
                   for s in list(calibration)[: options.calibration_max]]
    seconds: dict[str, float] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            log(f"exporting student {meta['version']} (T from {contract.min_frames} to {contract.max_frames} frames)")
            example = example_inputs(contract, calibration[0])
            exported = torch_export(module, example, contract)
            precise = exported.module()
            n_sums = accumulate_long_sums_in_float64(precise)
            fp32 = lower_xnnpack(reexport(precise, example, contract, "fp32"), "fp32")
            (tmp / MODEL_PTE).write_bytes(fp32.buffer)
            seconds["fp32"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            log("int8: PT2E quantization calibrated on training recordings")
            from .quantize import choose_int8

            q_exported, quant_info = choose_int8(module, exported, contract, calibration, min_corr=options.int8_min_corr,
                                                 max_auc_drop=options.int8_max_auc_drop, recipes=options.recipes, log=log)
            (tmp / MODEL_INT8_PTE).write_bytes(lower_xnnpack(q_exported, "int8").buffer)
            seconds["int8"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            log("Core ML: mlprogram, fp16 compute, flexible T")
            coreml_source = convert_coreml(exported, module, example, contract, meta, tmp / MODEL_MLPACKAGE)
            seconds["coreml"] = time.perf_counter() - t0

            cases = bundled_cases(heldout, contract, options.bundled_cases)
            n_cases = bundled_program(fp32, module, cases, tmp / MODEL_BUNDLED)

        manifest = build_manifest(module, meta, contract, quant_info, coreml_source, n_cases, source)
        manifest["artifacts"][MODEL_PTE]["float64_accumulated_sums"] = n_sums
        t0 = time.perf_counter()
        log(f"verifying on {len(heldout)} held-out recordings")
        report = verify.run_checks(tmp, manifest, module, heldout)
        report.heldout_data = heldout_spec
        manifest["verification"] = report.to_dict()
        seconds["verify"] = time.perf_counter() - t0
        (tmp / MODEL_CARD).write_text(model_card.render(manifest, meta), encoding="utf-8")
        write_manifest(tmp, manifest)
        load_bundle(tmp)  # the bundle we hand out must load
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return ExportReport(out=out, files=files, quantization=quant_info, verification=manifest["verification"],
                        coreml_source=coreml_source, seconds=seconds)


def build_manifest(module: Any, meta: dict, contract: InputContract, quant_info: dict, coreml_source: str,
                   n_cases: int, source: dict | None) -> dict[str, Any]:
    synthetic = bool(meta["not_for_clinical_use"])
    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "model": {
            "name": "cogma-student",
            "version": str(meta["version"]),
            "architecture": meta.get("architecture", meta.get("architecture_config", {})),
            "parameters": int(sum(p.numel() for p in module.parameters())),
        },
        "not_for_clinical_use": synthetic,
        "notice": (NOTICE_SYNTHETIC + "; " if synthetic else "") + "the score is a screening aid, never a diagnosis",
        "intended_use": INTENDED_USE,
        "input_contract": {
            **contract.to_dict(),
            "num_joints": 33,
            "channels": ["x", "y", "visibility"],
            "coordinates": "x, y normalized to the video frame (MediaPipe Pose landmarks); visibility 0..1",
            "inputs": [
                {"name": INPUT_NAMES[0], "shape": [1, "T", 33, 3], "dtype": "float32",
                 "T": [contract.min_frames, contract.max_frames]},
                {"name": INPUT_NAMES[1], "shape": [1], "dtype": "float32"},
            ],
        },
        "output_contract": {
            "name": OUTPUT_NAME, "shape": [1, 3], "dtype": "float32", "names": list(OUTPUT_NAMES), "range": [0.0, 1.0],
            "meaning": "risk = estimated probability of atypical general movements; "
                       "[risk_low, risk_high] = its uncertainty interval",
        },
        "threshold": float(meta["threshold"]),
        "operating_point": meta["operating_point"],
        "metrics": meta["metrics"],
        "training_data": meta["training_data"],
        "artifacts": {
            MODEL_PTE: {"runtime": "executorch", "backend": "xnnpack", "dtype": "float32"},
            MODEL_INT8_PTE: {"runtime": "executorch", "backend": "xnnpack", "dtype": "int8", "quantization": quant_info},
            MODEL_MLPACKAGE: {"runtime": "coreml", "format": "mlprogram", "compute_precision": coreml_precision(contract),
                              "io_dtype": "float32", "minimum_deployment_target": "iOS16", "converted_from": coreml_source},
            MODEL_BUNDLED: {"runtime": "executorch bundled program", "program": MODEL_PTE, "test_cases": n_cases,
                            "atol": BUNDLED_ATOL, "rtol": BUNDLED_RTOL, "method": "forward"},
        },
        "source": source or {},
        "toolchain": toolchain_versions(),
    }


def toolchain_versions() -> dict[str, str]:
    out = {}
    for dist in ("cogma", "torch", "executorch", "torchao", "coremltools"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


