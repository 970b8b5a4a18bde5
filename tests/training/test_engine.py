"""Engine: configs with overrides, determinism by seed, resume, padding, inference."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from training.colearning import SupervisedTask
from training.config import ConfigError, TrainConfig, config_from_dict, load_config
from training.engine import CropDataset, DistEnv, collate, predict_logits, prepare, train
from training.models import build_model

TINY_SPEC = {"kind": "synthetic", "n_infants": 4, "seed": 11, "seconds": [14.0, 18.0], "prevalence": 0.5}


@pytest.fixture(scope="module")
def recordings():
    from training.data import load_dataset

    return prepare(load_dataset(TINY_SPEC))


def test_config_file_overrides_and_clear_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntask: student\nteacher:\n  model: teacher_tiny\n  train: {epochs: 3}\n")
    cfg = load_config(path, ["teacher.train.lr=0.01", "data.spec.n_infants=12", "student.model_overrides={dropout: 0.0}"])
    assert (cfg.teacher.model, cfg.teacher.train.epochs, cfg.teacher.train.lr) == ("teacher_tiny", 3, 0.01)
    assert cfg.data.spec == {"kind": "synthetic", "n_infants": 12, "seed": 0}
    assert cfg.student.model_overrides == {"dropout": 0.0}
    with pytest.raises(ConfigError, match="unknown key.*epochz"):
        load_config(path, ["teacher.train.epochz=3"])
    with pytest.raises(ConfigError, match="expected an integer"):
        config_from_dict({"teacher": {"train": {"epochs": "many"}}})
    with pytest.raises(ConfigError, match="task must be one of"):
        config_from_dict({"task": "dance"})
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("override, message", [
    ("teacher.train.epochs=0", "teacher.train: epochs must be at least 1"),
    ("student.train.batch_size=0", "student.train: batch_size must be at least 1"),
    ("teacher.train.lr=-1", "teacher.train: lr must be a number > 0"),
    ("teacher.train.crop_seconds=0", "crop_seconds must be a number > 0"),
    ("teacher.train.device=gpu", "device must be auto, cpu or cuda"),
    ("teacher.model=nonexistent", "teacher: unknown model 'nonexistent'"),
    ("seed=-3", "seed must be at least 0"),
    ("evaluation.n_boot=-1", "n_boot must be at least 0"),
    ("evaluation.prevalence=1.5", "prevalence must be between 0 and 1"),
])
def test_config_refuses_values_training_cannot_use(tmp_path, override, message):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, [override])


def test_config_file_must_be_yaml_text_with_settings(tmp_path):
    (tmp_path / "empty.yaml").write_text("  \n")
    (tmp_path / "binary.yaml").write_bytes(b"\x93NUMPY\xff\x00")
    with pytest.raises(ConfigError, match="empty"):  # not a silent full default training run
        load_config(tmp_path / "empty.yaml")
    with pytest.raises(ConfigError, match="not a YAML config"):
        load_config(tmp_path / "binary.yaml")


def test_collate_pads_and_keeps_lengths(recordings):
    data = CropDataset(recordings[:3], crop_seconds=12.0, seed=0)
    batch = collate([data[i] for i in range(3)])
    lengths = [int(12.0 * r.fps) for r in recordings[:3]]
    assert batch["lengths"].tolist() == lengths
    assert batch["keypoints"].shape[1] == max(lengths)
    assert batch["grid_len"] >= 180


def _train_once(recordings, tmp_path, epochs, seed=0, resume=False, ckpt="ck"):
    torch.manual_seed(seed)  # initial weights from the run's seed
    task = SupervisedTask(build_model("teacher_tiny"))
    cfg = TrainConfig(epochs=epochs, batch_size=4, crop_seconds=12.0, progress=False, lr=3e-3)
    data = CropDataset(recordings, crop_seconds=cfg.crop_seconds, seed=seed, augment=True)
    summary = train(task, data, cfg, seed=seed, env=DistEnv(), checkpoint_dir=tmp_path / ckpt, resume=resume)
    return task.model, summary


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_is_deterministic_and_resumes_exactly(recordings, tmp_path):
    a, sa = _train_once(recordings, tmp_path, epochs=2, ckpt="a")
    b, _ = _train_once(recordings, tmp_path, epochs=2, ckpt="b")
    assert torch.equal(_flat(a), _flat(b))
    assert np.isfinite(sa["final_loss"])
    # one epoch, then a "crash", then resume for the second epoch from last.pt
    _train_once(recordings, tmp_path, epochs=1, ckpt="c")
    c, sc = _train_once(recordings, tmp_path, epochs=2, resume=True, ckpt="c")
    assert sc["start_epoch"] == 1 and sc["resumed_from"].endswith("last.pt")
    torch.testing.assert_close(_flat(c), _flat(a), rtol=0, atol=1e-6)
    d, _ = _train_once(recordings, tmp_path, epochs=2, seed=1, ckpt="d")
    assert not torch.equal(_flat(d), _flat(a))


def test_predict_scores_whole_recordings(recordings):
    torch.manual_seed(0)
    logits = predict_logits(build_model("stgcn_tiny"), recordings[:3])
    assert logits.shape == (3,) and np.isfinite(logits).all()


def test_a_run_folder_resumes_only_its_own_config(tmp_path):
    import yaml

    from training.experiment import check_run_folder

    path = tmp_path / "c.yaml"
    path.write_text((Path(__file__).resolve().parents[2] / "training/configs/demo_student.yaml").read_text())
    out = tmp_path / "run"
    cfg = load_config(path, [f"output={out}"])
    check_run_folder(out, cfg)  # a new folder
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    check_run_folder(out, cfg)  # the same run: resume
    check_run_folder(out, load_config(path, [f"output={out}", "teacher.train.num_threads=2"]))  # speed only
    changed = load_config(path, [f"output={out}", "teacher.train.epochs=1", "data.spec.n_infants=12"])
    with pytest.raises(ConfigError, match=r"another config \(data.spec.n_infants, teacher.train.epochs differ\)"):
        check_run_folder(out, changed)
    check_run_folder(out, load_config(path, [f"output={out}", "teacher.train.epochs=1", "resume=false"]))
    (out / "config.yaml").write_text("- not a config\n")
    with pytest.raises(ConfigError, match="not a config this program wrote"):
        check_run_folder(out, cfg)
