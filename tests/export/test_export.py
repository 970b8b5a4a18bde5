"""The exported bundle: artefacts, manifest, model card, parity checks, and clear export errors."""

from __future__ import annotations

import json
import platform

import pytest
import torch
from torch import nn

from export.bundle import MANIFEST, MODEL_BUNDLED, MODEL_CARD, MODEL_MLPACKAGE, load_bundle
from export.exporter import ExportError, bundled_program, check_meta, export_bundle, torch_export
from export.verify import coreml_spec_problems, run_checks


def test_bundle_holds_every_artefact(bundle_dir):
    names = {p.name for p in bundle_dir.iterdir()}
    assert {"model.pte", "model_int8.pte", "model.mlpackage", "model_bundled.bpte", "MODEL_CARD.md", MANIFEST} <= names
    assert (bundle_dir / "model_int8.pte").stat().st_size < (bundle_dir / "model.pte").stat().st_size


def test_manifest_contents(bundle_dir, standin):
    m = json.loads((bundle_dir / MANIFEST).read_text())
    assert m["model"]["version"] == "standin-0.1"
    assert m["model"]["parameters"] == sum(p.numel() for p in standin.module.parameters())
    ic = m["input_contract"]
    assert ic["schema"] == "mediapipe33" and ic["min_frames"] == 300 and ic["max_frames"] == 5400
    assert [i["name"] for i in ic["inputs"]] == ["landmarks", "fps"]
    assert m["output_contract"]["names"] == ["risk", "risk_low", "risk_high"]
    assert m["threshold"] == 0.42 and m["operating_point"]["target_sensitivity"] == 0.9
    assert "provenance" in m["metrics"]
    assert m["training_data"]["cohort"]["kind"] == "synthetic"
    q = m["artifacts"]["model_int8.pte"]["quantization"]
    assert q["calibration_recordings"] > 0 and q["tried"][0]["accepted"] in (True, False)
    assert m["artifacts"]["model.mlpackage"]["compute_precision"].startswith("float16")
    assert m["artifacts"]["model.mlpackage"]["converted_from"] == "torch.export"  # no silent fallback to tracing
    assert m["not_for_clinical_use"] is True and "synthetic data — not for clinical use" in m["notice"]
    assert set(m["toolchain"]) >= {"torch", "executorch", "coremltools"}


def test_export_time_verification_passed(bundle_dir):
    ver = load_bundle(bundle_dir).manifest["verification"]
    status = {c["name"]: c for c in ver["checks"]}
    assert status["fp32_max_abs_diff"]["passed"] and status["fp32_max_abs_diff"]["value"] <= 1e-4
    assert status["int8_auc_drop"]["passed"] and status["int8_correlation"]["passed"]
    assert status["bundled_program"]["passed"] and status["coreml_spec"]["passed"]
    if platform.system() != "Darwin":
        assert status["coreml_prediction"]["passed"] is None
        assert "only predict on macOS, this is Linux" in status["coreml_prediction"]["detail"]
    assert ver["heldout_data"]["infant_prefix"] == "heldout"


def test_model_card(bundle_dir):
    card = (bundle_dir / MODEL_CARD).read_text()
    for heading in ("## Intended use", "## Out-of-scope uses", "## Training data", "## Evaluation",
                    "## Limitations", "## Ethical considerations", "## Decision threshold"):
        assert heading in card
    assert "Synthetic data — not for clinical use" in card
    assert "screening aid, never a diagnosis" in card
    assert "| AUC | 0.8 | [0.7, 0.88] |" in card  # metric with its CI
    assert "stand-in figures for tests" in card  # provenance


def test_coreml_spec_and_metadata(bundle_dir):
    import coremltools as ct

    spec = ct.models.MLModel(str(bundle_dir / MODEL_MLPACKAGE), skip_model_load=True).get_spec()
    meta = spec.description.metadata
    assert meta.author and meta.license == "Apache-2.0" and meta.versionString == "standin-0.1"
    assert "not for clinical use" in meta.shortDescription
    ranges = [(r.lowerBound, r.upperBound) for r in spec.description.input[0].type.multiArrayType.shapeRange.sizeRanges]
    assert ranges[1] == (300, 5400)  # flexible T (RangeDim)
    assert coreml_spec_problems(bundle_dir / MODEL_MLPACKAGE, json.loads((bundle_dir / MANIFEST).read_text())) == []


def test_coreml_spec_check_notices_a_different_contract(bundle_dir):
    m = json.loads((bundle_dir / MANIFEST).read_text())
    m["input_contract"]["max_frames"] = 9000
    m["threshold"] = 0.5
    problems = coreml_spec_problems(bundle_dir / MODEL_MLPACKAGE, m)
    assert any("shape range" in p for p in problems) and any("threshold" in p for p in problems)


def test_verify_detects_a_model_that_differs(bundle_dir, standin, cohorts):
    """The same checks fail against a student whose weights changed after export."""
    other = type(standin.module)()
    other.load_state_dict(standin.module.state_dict())
    with torch.no_grad():
        other.head.bias += 0.5
    bundle = load_bundle(bundle_dir)
    few = [s for s in cohorts[1] if s.label == 0][:4] + [s for s in cohorts[1] if s.label == 1][:4]
    report = run_checks(bundle.root, bundle.manifest, other.eval(), few)
    status = {c.name: c for c in report.checks}
    assert not report.ok and status["fp32_max_abs_diff"].passed is False


def test_bundled_program_with_wrong_expectations_fails(bundle_dir, standin, cohorts, tmp_path):
    import shutil

    from export.verify import _bundled_check

    shifted = type(standin.module)()
    shifted.load_state_dict(standin.module.state_dict())
    with torch.no_grad():
        shifted.head.bias += 1.0
    root = tmp_path / "b"
    root.mkdir()
    # the bundle's own program, but expected outputs from a different model
    bundled_program(bundle_dir / "model.pte", shifted.eval(), [s.cropped(300) for s in cohorts[1][:1]], root / MODEL_BUNDLED)
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["artifacts"][MODEL_BUNDLED]["test_cases"] = 1
    check = _bundled_check(root, manifest)
    assert check.passed is False and "verification failed" in check.detail
    shutil.copy(bundle_dir / MODEL_BUNDLED, root / MODEL_BUNDLED)
    manifest["artifacts"][MODEL_BUNDLED]["test_cases"] = 2
    assert _bundled_check(root, manifest).passed is True


class DataDependent(nn.Module):
    """Breaks the contract: Python control flow on a tensor value."""

    def forward(self, landmarks, fps):
        if landmarks[..., 0].mean() > 0.5:
            return torch.sigmoid(landmarks.mean(dim=(1, 2)))
        return torch.zeros(1, 3)


def test_non_exportable_student_gets_a_clear_error(contract, cohorts):
    with pytest.raises(ExportError, match=r"torch.export of the student failed.*(data-dependent|[Dd]ata dependent|guard)"):
        torch_export(DataDependent(), (cohorts[0][0].cropped(600).tensors()), contract)


def test_incomplete_meta_is_refused(standin):
    meta = dict(standin.meta)
    del meta["threshold"]
    with pytest.raises(ExportError, match="lacks threshold"):
        check_meta(meta)
    meta = dict(standin.meta, input_contract={**standin.meta["input_contract"], "schema": "coco17"})
    with pytest.raises(ExportError, match="phone feeds 'mediapipe33'"):
        check_meta(meta)


def test_existing_output_is_not_overwritten(bundle_dir, standin, cohorts):
    with pytest.raises(ExportError, match="exists; .*--force"):
        export_bundle(standin.module, standin.meta, bundle_dir, calibration=cohorts[0], heldout=cohorts[1],
                      heldout_spec=None, log=lambda m: None)
    assert load_bundle(bundle_dir).version == "standin-0.1"


def test_heldout_with_one_class_is_refused(standin, cohorts, tmp_path):
    typical = [s for s in cohorts[1] if s.label == 0]
    with pytest.raises(ExportError, match="both typical and atypical"):
        export_bundle(standin.module, standin.meta, tmp_path / "x", calibration=cohorts[0], heldout=typical,
                      heldout_spec=None, log=lambda m: None)
    assert not (tmp_path / "x").exists()


class LongSum(nn.Module):
    """A recording statistic: a sum over every frame and joint (the student's body scale)."""

    def forward(self, landmarks, fps):
        s = landmarks[..., :2].square().sum(dim=(1, 2, 3))
        return torch.stack([s, s, s], dim=1) / landmarks.shape[1]


def test_long_sums_accumulate_in_float64_in_the_runtime(contract):
    from executorch.runtime import Runtime

    from export.exporter import lower_xnnpack
    from export.tooling import accumulate_long_sums_in_float64, reexport

    x = torch.rand(1, contract.max_frames, 33, 3)
    f = torch.tensor([30.0])
    gm = torch_export(LongSum(), (x, f), contract).module()
    assert accumulate_long_sums_in_float64(gm) == 1
    program = Runtime.get().load_program(lower_xnnpack(reexport(gm, (x, f), contract, "fp32"), "fp32").buffer)
    got = program.load_method("forward").execute([x, f])[0].double()
    exact = LongSum()(x.double(), f.double())
    assert ((got - exact).abs() / exact).max() < 1e-6  # naive float32 accumulation: ~1e-5


def test_programs_read_the_landmarks_in_place(contract):
    """No arena copy of the input per call: the program's inputs have no planned memory, and each call reads the
    buffer it is given."""
    from executorch.runtime import Runtime

    from export.exporter import lower_xnnpack

    x = torch.rand(1, contract.min_frames, 33, 3)
    f = torch.tensor([30.0])
    manager = lower_xnnpack(torch_export(LongSum(), (x, f), contract), "fp32")
    plan = manager.executorch_program.execution_plan[0]
    assert [plan.values[i].val.allocation_info for i in plan.inputs] == [None, None]
    method = Runtime.get().load_program(manager.buffer).load_method("forward")
    for scale in (1.0, 2.0):
        y = x * scale
        assert torch.allclose(method.execute([y, f])[0], LongSum()(y, f), rtol=1e-5)
