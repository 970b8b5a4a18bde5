"""PteRunner: the real ExecuTorch runtime, with the contract checked before the runtime sees an input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.bundle import MODEL_INT8_PTE, MODEL_PTE, BundleError, load_bundle
from export.runtime import PteRunner


def test_fp32_runner_matches_eager(bundle_dir, standin, cohorts):
    runner = PteRunner(bundle_dir / MODEL_PTE)  # contract from the bundle around it
    for s in cohorts[1][:4]:
        got = runner.run(s.landmarks, s.fps)
        with torch.no_grad():
            want = standin.module(*s.tensors()).numpy()[0]
        assert got.shape == (3,) and got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-4
        assert got[1] <= got[0] <= got[2]


def test_int8_runner_is_close(bundle_dir, standin, cohorts):
    runner = PteRunner.from_bundle(load_bundle(bundle_dir), MODEL_INT8_PTE)
    s = cohorts[1][0]
    with torch.no_grad():
        want = standin.module(*s.tensors()).numpy()[0]
    assert np.abs(runner.run(s.landmarks, s.fps) - want).max() < 0.1


def test_recording_outside_contract_never_reaches_runtime(bundle_dir, cohorts, make_recording, monkeypatch):
    runner = PteRunner(bundle_dir / MODEL_PTE)
    reached = []
    monkeypatch.setattr(runner, "run_unchecked", lambda *a: reached.append(a))
    s = cohorts[1][0]
    cases = [
        (s.cropped(100).landmarks, s.fps, "too short"),
        (s.cropped(5401).landmarks, s.fps, "too long"),
        (s.landmarks, 10.0, "frame rate 10 fps"),
        (s.landmarks, 120.0, "frame rate 120 fps"),
        (s.landmarks[:, :17], s.fps, r"\[frames, 33, 3\]"),
        (s.landmarks[None], s.fps, r"\[frames, 33, 3\]"),
    ]
    for landmarks, fps, message in cases:
        with pytest.raises(BundleError, match=message):
            runner.run(landmarks, fps)
    with pytest.raises(BundleError, match="joint schema 'coco17'"):
        runner.run_recording(make_recording(s).to_schema("coco17"))
    assert reached == []


def test_without_check_the_runtime_fails_obscurely(bundle_dir, contract, cohorts):
    """Why the check exists: past the exported bound ExecuTorch only says 'error 0x..'."""
    runner = PteRunner(bundle_dir / MODEL_PTE)
    too_long = cohorts[1][0].cropped(contract.max_frames + 10)
    with pytest.raises(BundleError, match="ExecuTorch runtime failed"):
        runner.run_unchecked(too_long.landmarks, too_long.fps)


def test_pte_outside_a_bundle_needs_a_contract(bundle_dir, tmp_path, contract, cohorts):
    loose = tmp_path / "model.pte"
    loose.write_bytes((bundle_dir / MODEL_PTE).read_bytes())
    with pytest.raises(BundleError, match="input contract is unknown"):
        PteRunner(loose)
    s = cohorts[1][0]
    assert PteRunner(loose, contract=contract).run(s.landmarks, s.fps).shape == (3,)


def test_tampered_pte_in_bundle_is_refused_before_loading(bundle_copy):
    p = bundle_copy / MODEL_PTE
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(BundleError, match="truncated"):
        PteRunner(p)


def test_garbage_program_gives_clear_error(tmp_path, contract):
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"this is not an executorch program" * 10)
    with pytest.raises(BundleError, match="cannot load this program"):
        PteRunner(bad, contract=contract)
