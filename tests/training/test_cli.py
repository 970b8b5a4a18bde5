"""`cogma train` and `cogma evaluate` end to end on a tiny synthetic cohort."""

import json

import pytest

from cogma import NOT_FOR_CLINICAL_USE
from cogma.cli import main as cogma_main
from training.models import load_student

CONFIG = """
name: cli_tiny
task: student
seed: 0
data:
  spec: {kind: synthetic, n_infants: 10, seed: 4, seconds: [13.0, 16.0], prevalence: 0.5}
  test_fraction: 0.3
  folds: 2
teacher: {model: teacher_tiny, train: {epochs: 1, batch_size: 8, crop_seconds: 12, progress: false}}
student: {model: student_tiny, train: {epochs: 1, batch_size: 8, crop_seconds: 12, progress: false}}
evaluation: {n_boot: 20}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    cfg = root / "tiny.yaml"
    cfg.write_text(CONFIG)
    rc = cogma_main(["train", "--config", str(cfg), f"output={root / 'run'}", "student.train.augment=false"])
    assert rc == 0
    return root / "run"


def test_train_writes_student_teacher_and_reports(trained):
    assert {"student.pt", "teacher.pt", "summary.json", "config.yaml"} <= {p.name for p in trained.iterdir()}
    for part in ("teacher", "student"):
        assert (trained / "reports" / part / "roc.png").is_file()
    model, meta = load_student(trained / "student.pt")
    assert meta.not_for_clinical_use and meta.notice == NOT_FOR_CLINICAL_USE
    assert meta.training_data["spec"] == {"kind": "synthetic", "n_infants": 10, "seed": 4, "seconds": [13.0, 16.0],
                                          "prevalence": 0.5}
    assert meta.operating_point["chosen_on"].startswith("validation")
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["notice"] == NOT_FOR_CLINICAL_USE and "auc" in summary["student"]["test"]


def test_evaluate_json_has_the_promised_fields(trained, capsys):
    capsys.readouterr()
    rc = cogma_main(["evaluate", str(trained / "student.pt"), "--synthetic", "4", "--seed", "9", "--json",
                     "--n-boot", "20"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("auc", "auc_ci", "sensitivity", "specificity", "ppv", "npv", "ece", "threshold", "n_recordings",
                "n_infants"):
        assert key in out
    assert out["notice"] == NOT_FOR_CLINICAL_USE and out["n_infants"] == 4
    _, meta = load_student(trained / "student.pt")
    assert out["threshold"] == pytest.approx(meta.threshold)  # frozen, not re-chosen on the evaluation data
    rc = cogma_main(["evaluate", str(trained / "teacher.pt"), "--synthetic", "3", "--seed", "9", "--json",
                     "--n-boot", "0"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["model_kind"] == "classifier"


def test_evaluate_text_report_when_a_metric_is_undefined(trained, capsys):
    # 3 synthetic infants of seed 0 are all typical: AUC and sensitivity do not exist, and say so
    rc = cogma_main(["evaluate", str(trained / "teacher.pt"), "--synthetic", "3", "--seed", "0", "--n-boot", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "AUC          n/a (the recordings hold only one class)" in out
    assert "sensitivity  n/a" in out and "specificity  0." in out


def test_user_errors_are_one_line_messages(trained, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(CONFIG)
    cases = [
        (["train", "--config", str(cfg), "teacher.train.epoch=1"], "unknown key(s) epoch"),
        (["train", "--config", str(tmp_path / "none.yaml")], "no such config file"),
        (["train", "--config", str(cfg), "teacher.train.epochs=0"], "epochs must be at least 1"),
        (["evaluate", str(trained / "student.pt"), "--synthetic", "3", "--n-boot", "-1"], "--n-boot must be 0"),
        (["evaluate", str(trained / "student.pt"), "--synthetic", "3", "--out", str(cfg)], "is a file"),
        (["evaluate", str(tmp_path / "none.pt"), "--synthetic", "3"], "no such student checkpoint"),
        (["evaluate", str(trained / "student.pt"), "--data", str(tmp_path / "nowhere")], "not a folder of recordings"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert cogma_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err
