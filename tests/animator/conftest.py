"""Shared fixtures: one tiny random-weight pipeline per test session (built from configs, no downloads)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def tiny_pipe():
    from server_animator.animator.configs import build_components
    from server_animator.animator.pipeline import InfantAnimatorPipeline

    pipe = InfantAnimatorPipeline(**build_components("tiny", seed=0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def reference_64():
    from server_animator.animator.conditioning import reference_image

    return reference_image(size=(64, 64))


@pytest.fixture(scope="session")
def pose_64():
    """20 frames of 64x64 OpenPose images of a moving infant (two windows of 16 with overlap 4)."""
    from server_animator.animator.conditioning import pose_frames

    from animator_testkit import moving_infant

    return pose_frames(moving_infant(20, fps=10.0), (64, 64))
