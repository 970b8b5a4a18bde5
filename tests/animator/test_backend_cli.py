"""The server's diffusion backend and `cogma animate`, end to end on tiny random weights (64x64, 2 steps)."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest
import torch

from skeleton.errors import CogmaError, RecordingError

from server_animator.animator.backend import AnimatorError, AnimatorSettings, DiffusionBackend
from server_animator.animator.reference import ASSET, draw_reference_infant

from animator_testkit import moving_infant

TINY = {"random_weights": "tiny", "dtype": "fp32", "steps": 2}


def _frames_in(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from server_animator.config import ServerConfig

    config = ServerConfig(data_dir=tmp_path_factory.mktemp("server"), backend="diffusion",
                          backend_options=TINY, render_width=64, render_height=64)
    return DiffusionBackend(config)


def test_backend_matches_the_server_protocol_and_checks_its_output(backend, tmp_path):
    from server_animator.backends import AnimationResult, AnimatorBackend

    assert isinstance(backend, AnimatorBackend)
    seen = []
    result = backend.animate(moving_infant(20, fps=10.0), tmp_path / "job", seen.append)
    assert isinstance(result, AnimationResult)
    assert result.video_path.is_file() and _frames_in(result.video_path) == 20
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3
    report = result.qa_report
    assert report["backend"] == "diffusion" and report["video"]["frames"] == 20
    assert "random weights" in report["video"]["weights"]
    # random weights draw noise: the pose check (real MediaPipe when its model is built) must fail it
    if report["pose_check"]["status"] == "ok":
        assert not result.passed and report["reasons"]
    else:
        assert report["pose_check"]["message"] == "pose check unavailable: no pose model configured"


def test_withdrawn_job_stops_the_animation(backend, tmp_path):
    from server_animator.backends import JobCancelled

    def cancel(fraction: float) -> None:
        if fraction > 0.1:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        backend.animate(moving_infant(20, fps=10.0), tmp_path / "job", cancel)


def test_backend_options_are_checked():
    with pytest.raises(AnimatorError, match="needs weights"):
        AnimatorSettings.from_options({})
    with pytest.raises(AnimatorError, match="unknown diffusion backend option 'stepz'"):
        AnimatorSettings.from_options({**TINY, "stepz": 3})
    with pytest.raises(AnimatorError, match="overlap"):
        AnimatorSettings.from_options({**TINY, "overlap": 15})
    bad = [({"guidance": float("nan")}, "guidance must be a number >= 0"), ({"width": 0, "height": 0}, "at least 64"),
           ({"device": "banana"}, "device must be cpu, cuda or cuda:N"),
           ({"device": f"cuda:{torch.cuda.device_count()}"}, "no such CUDA GPU"),
           ({"cache_pose": "no"}, "cache_pose must be true or false, not 'no'")]
    for options, message in bad:
        with pytest.raises(AnimatorError, match=message):
            AnimatorSettings.from_options({**TINY, **options})
    s = AnimatorSettings.from_options({"weights": "/models/ia", "qa": {"min_pck": 0.8}})
    assert s.weights_dir == "/models/ia" and s.qa.min_pck == 0.8


def _parser():
    from server_animator.animator.cli import register_animate

    parser = argparse.ArgumentParser(prog="cogma")
    register_animate(parser.add_subparsers())
    return parser


def test_cogma_animate_writes_video_and_qa_report(tmp_path, capsys):
    rec = tmp_path / "rec.npz"
    moving_infant(20, fps=10.0).save(rec)
    out = tmp_path / "out" / "anon.mp4"
    args = _parser().parse_args(["animate", str(rec), "--out", str(out), "--random-weights", "tiny",
                                 "--size", "64x64", "--steps", "2"])
    code = args.func(args)
    assert out.is_file() and _frames_in(out) == 20
    assert (tmp_path / "out" / "anon.qa.json").is_file()
    printed = capsys.readouterr()
    assert "wrote" in printed.out
    assert code in (0, 1) and (code == 1) == ("QA failed" in printed.err)


def test_cogma_animate_refuses_bad_input_clearly(tmp_path, monkeypatch):
    monkeypatch.delenv("COGMA_ANIMATOR_WEIGHTS", raising=False)
    rec = tmp_path / "rec.npz"
    moving_infant(20, fps=10.0).save(rec)
    parse = _parser().parse_args
    cases = [
        (["animate", str(rec), "--out", str(tmp_path / "a.mp4")], "no weights"),
        (["animate", str(rec), "--out", str(tmp_path / "a.avi"), "--random-weights", "tiny"], "must end in .mp4"),
        (["animate", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "a.mp4")], "no such file"),
        (["animate", str(rec), "--out", str(tmp_path / "a.mp4"), "--weights", str(tmp_path)], "no animator weights"),
    ]
    for argv, message in cases:
        args = parse(argv)
        with pytest.raises(CogmaError, match=message):
            args.func(args)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    args = parse(["animate", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "a.mp4"), "--random-weights", "tiny"])
    with pytest.raises(RecordingError):
        args.func(args)


def test_shipped_reference_is_the_synthetic_drawing():
    shipped = cv2.cvtColor(cv2.imread(str(ASSET)), cv2.COLOR_BGR2RGB)
    drawn = draw_reference_infant()
    assert shipped.shape == (1024, 576, 3)
    assert np.abs(shipped.astype(int) - drawn.astype(int)).max() <= 1
