"""Shared fixtures for the export tests.

Exporting is slow (torch.export, XNNPACK lowering, PT2E, Core ML), so one bundle is built per
session from a small stand-in student that follows the training contract exactly:
``forward(landmarks [1, T, 33, 3], fps [1]) -> [1, 3]`` with the joint mapping as a buffer,
root centring, scale normalisation, velocities at the recording's frame rate, convolutions over
time and mean pooling, and a meta dict with every StudentMeta field. The shipped demo bundle
(made from the real demo student) is tested separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skeleton.mapping import get_mapping

REPO = Path(__file__).resolve().parents[2]
DEMO_BUNDLE = REPO / "export" / "demo_bundle"
DEMO_STUDENT = REPO / "training" / "demo" / "student.pt"

# Small contract so the fixtures stay quick: 20 s at 15 fps .. 3 min at 30 fps.
CONTRACT = {"schema": "mediapipe33", "fps_min": 15.0, "fps_max": 30.0, "min_frames": 300, "max_frames": 5400}
CAL_SPEC = {"kind": "synthetic", "n_infants": 6, "seed": 11, "seconds": [40.0, 60.0], "prevalence": 0.5}
HELD_SPEC = {"kind": "synthetic", "n_infants": 12, "seed": 1011, "seconds": [40.0, 60.0], "prevalence": 0.5,
             "infant_prefix": "heldout"}


class StandInStudent(nn.Module):
    """A ~6k-parameter student with real preprocessing-like ops (see module docstring)."""

    def __init__(self, hidden: int = 24):
        super().__init__()
        self.register_buffer("mapping", torch.from_numpy(get_mapping("mediapipe33", "infant20").weights.copy()))
        self.conv1 = nn.Conv1d(20 * 5, hidden, 5, padding=2)
        self.conv2 = nn.Conv1d(hidden, hidden, 5, padding=4, dilation=2)
        self.head = nn.Linear(hidden, 2)

    def forward(self, landmarks: torch.Tensor, fps: torch.Tensor) -> torch.Tensor:
        xy = torch.matmul(self.mapping, landmarks[..., :2])  # [1, T, 20, 2] Infant-20
        # visibility of a derived joint = min over its sources (the real student's construct:
        # where() with a constant [20, 33] mask, which coremltools 9.0 needs a fix for)
        vis = landmarks[..., 2]
        vis = torch.where(self.mapping != 0, vis[..., None, :], torch.ones_like(vis[..., None, :])).amin(dim=-1)
        trunk_seen = (vis[:, :, 5:7] >= 0.5).to(xy.dtype).prod(dim=2)  # [1, T]: prod.dim_int, also fixed
        vis = vis[..., None] * trunk_seen[:, :, None, None]
        xy = xy - 0.5 * (xy[:, :, 17:18] + xy[:, :, 19:20])  # centre on the trunk
        scale = xy.square().sum(-1).mean(dim=(1, 2)).sqrt().clamp_min(1e-3)
        xy = xy / scale[:, None, None, None]
        vel = torch.cat([xy[:, 1:] - xy[:, :-1], torch.zeros_like(xy[:, :1])], dim=1) * fps[:, None, None, None]
        t = xy.shape[1]
        feats = torch.cat([xy, 0.1 * vel, vis], dim=-1).reshape(1, t, 100).transpose(1, 2)
        h = F.relu(self.conv2(F.relu(self.conv1(feats))))
        logit, spread = self.head(h.mean(dim=2)).unbind(dim=1)
        spread = F.softplus(spread)
        return torch.sigmoid(torch.stack([logit, logit - spread, logit + spread], dim=1))


@dataclass
class StandIn:
    module: nn.Module
    meta: dict


def standin_meta() -> dict:
    return {
        "version": "standin-0.1",
        "architecture": {"name": "StandInStudent", "hidden": 24},
        "input_contract": dict(CONTRACT),
        "output_contract": {"names": ["risk", "risk_low", "risk_high"], "range": [0.0, 1.0]},
        "threshold": 0.42,
        "operating_point": {"target_sensitivity": 0.9, "sensitivity": 0.91, "specificity": 0.55, "chosen_on": "validation folds"},
        "metrics": {"auc": 0.8, "auc_ci": [0.7, 0.88], "sensitivity": 0.9, "specificity": 0.55, "ppv": 0.33, "npv": 0.96,
                    "brier": 0.15, "ece": 0.04, "n_recordings": 40, "n_infants": 16,
                    "provenance": "stand-in figures for tests (synthetic cohort seed 11)"},
        "training_data": {"text": "stand-in: a synthetic cohort", "cohort": dict(CAL_SPEC)},
        "not_for_clinical_use": True,
        "notice": "synthetic data — not for clinical use",
    }


def _train(module: nn.Module, samples) -> None:
    """A few full-batch steps so scores spread over recordings (a random net scores everything alike)."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    batch = [s.cropped(300).tensors() for s in samples]
    labels = torch.tensor([float(s.label) for s in samples])
    for _ in range(25):
        opt.zero_grad()
        risk = torch.cat([module(x, f)[:, 0] for x, f in batch])
        F.binary_cross_entropy(risk.clamp(1e-4, 1 - 1e-4), labels).backward()
        opt.step()
    module.eval()


@pytest.fixture(scope="session")
def contract():
    from export.bundle import InputContract

    return InputContract.from_dict(CONTRACT)


@pytest.fixture(scope="session")
def cohorts(contract):
    from export.data import load_samples

    return load_samples(CAL_SPEC, contract), load_samples(HELD_SPEC, contract)


@pytest.fixture(scope="session")
def standin(cohorts) -> StandIn:
    torch.manual_seed(0)
    module = StandInStudent()
    _train(module, cohorts[0])
    return StandIn(module.eval(), standin_meta())


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, standin, cohorts) -> Path:
    """One exported bundle for the whole session (treat as read-only; copy it to tamper)."""
    from export.exporter import export_bundle

    out = tmp_path_factory.mktemp("bundle") / "standin_bundle"
    calibration, heldout = cohorts
    export_bundle(standin.module, standin.meta, out, calibration=calibration, heldout=heldout, heldout_spec=HELD_SPEC,
                  source={"checkpoint": {"path": "stand-in", "sha256": "0" * 64}}, log=lambda m: None)
    return out


@pytest.fixture()
def bundle_copy(bundle_dir, tmp_path) -> Path:
    import shutil

    dst = tmp_path / "bundle"
    shutil.copytree(bundle_dir, dst)
    return dst


def recording(sample, **overrides):
    from skeleton.recording import PoseRecording

    kw = dict(keypoints=sample.landmarks, schema="mediapipe33", fps=sample.fps, frame_size=(720, 1280))
    kw.update(overrides)
    return PoseRecording(**kw)


@pytest.fixture(scope="session")
def make_recording():
    return recording


@pytest.fixture(scope="session")
def np_rng():
    return np.random.default_rng(0)
