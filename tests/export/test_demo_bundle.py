"""The shipped demo bundle (made from the shipped demo student) and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cogma.cli import main as cogma
from export.bundle import MODEL_INT8_PTE, MODEL_PTE, load_bundle, sha256_file
from export.runtime import PteRunner

REPO = Path(__file__).resolve().parents[2]
DEMO_BUNDLE = REPO / "export" / "demo_bundle"
DEMO_STUDENT = REPO / "training" / "demo" / "student.pt"

SMALL_HELDOUT = {"kind": "synthetic", "n_infants": 6, "seed": 2024, "seconds": [40.0, 60.0], "prevalence": 0.5,
                 "infant_prefix": "heldout"}


@pytest.fixture(scope="module")
def demo():
    return load_bundle(DEMO_BUNDLE)


@pytest.fixture(scope="module")
def demo_student():
    from training.models.student import load_student

    return load_student(DEMO_STUDENT)[0]


def test_demo_bundle_loads_and_is_small(demo):
    assert demo.not_for_clinical_use and "synthetic data — not for clinical use" in demo.notice
    files = demo.manifest["files"]
    assert files[MODEL_PTE]["bytes"] <= 1_000_000
    assert files[MODEL_INT8_PTE]["bytes"] <= 300_000
    assert sum(f["bytes"] for f in files.values()) < 3_000_000  # shipped in the repository
    assert demo.input_contract.schema == "mediapipe33"


def test_demo_bundle_is_made_from_the_shipped_student(demo):
    """If the demo student is retrained, the bundle must be exported again (`cogma export`)."""
    src = demo.manifest["source"]["checkpoint"]
    assert src["path"] == "training/demo/student.pt"
    assert src["sha256"] == sha256_file(DEMO_STUDENT), "export/demo_bundle is stale: re-export the demo student"


def test_demo_bundle_scores_like_the_student(demo, demo_student):
    from skeleton.synthetic import synthesize

    rec = synthesize("cramped_synchronized", 3.0, 40.0, seed=5, fps=25.0)
    demo.check_recording(rec)
    x, f = torch.from_numpy(rec.keypoints)[None], torch.tensor([rec.fps])
    with torch.no_grad():
        want = demo_student(x, f).numpy()[0]
    for name in (MODEL_PTE, MODEL_INT8_PTE):
        got = PteRunner.from_bundle(demo, name).run(rec.keypoints, rec.fps)
        assert np.all((0 <= got) & (got <= 1)) and got[1] <= got[0] <= got[2]
        assert np.abs(got - want).max() <= (1e-4 if name == MODEL_PTE else 0.05)


def test_cogma_verify_demo_bundle(tmp_path, capsys):
    spec = tmp_path / "heldout.yaml"
    spec.write_text(json.dumps(SMALL_HELDOUT))
    code = cogma(["verify", str(DEMO_BUNDLE), "--heldout-data", str(spec), "--json"])
    report = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["fp32_max_abs_diff"]["passed"] and checks["fp32_max_abs_diff"]["value"] <= 1e-4
    assert checks["bundled_program"]["passed"] and checks["coreml_spec"]["passed"]
    assert checks["coreml_prediction"]["status"] == "skipped" and "Linux" in checks["coreml_prediction"]["detail"]
    assert report["n_recordings"] >= 10 and report["heldout_data"]["seed"] == 2024
    assert code == (0 if report["ok"] else 1)


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    assert cogma(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such student checkpoint" in err and "Traceback" not in err

    assert cogma(["verify", str(tmp_path / "nothing")]) == 2
    assert "no such model bundle" in capsys.readouterr().err

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{")
    assert cogma(["verify", str(broken)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_export_never_replaces_files_that_are_not_a_bundle(tmp_path, capsys):
    precious = tmp_path / "thesis"
    (precious / "chapters").mkdir(parents=True)
    (precious / "thesis.txt").write_text("years of work")
    student = str(REPO / "training" / "demo" / "student.pt")
    cases = [(["--out", str(precious), "--force"], "not a model bundle; --force only replaces a bundle folder"),
             (["--out", str(precious / "thesis.txt")], "is a file"),
             (["--out", str(tmp_path / "new"), "--heldout-infants", "0"], "--heldout-infants must be at least 2")]
    for extra, message in cases:
        assert cogma(["export", student, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, err
    assert (precious / "thesis.txt").read_text() == "years of work" and (precious / "chapters").is_dir()
    assert not (tmp_path / "new").exists()


def test_verify_names_a_missing_checkpoint(tmp_path, capsys):
    assert cogma(["verify", str(DEMO_BUNDLE), "--checkpoint", str(tmp_path / "gone.pt")]) == 2
    assert "pass --checkpoint" in capsys.readouterr().err
