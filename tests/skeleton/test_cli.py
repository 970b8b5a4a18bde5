"""The `cogma` command as a user runs it: a real subprocess, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skeleton import PoseRecording

COGMA = [sys.executable, "-m", "cogma"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([*COGMA, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture
def recording(tmp_path) -> Path:
    kp = np.full((75, 33, 3), 0.5, np.float32)
    return PoseRecording(kp, "mediapipe33", 25, (640, 480), age_weeks=6).save(tmp_path / "r.npz")


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("synth", "synth-cohort", "inspect", "render"):
        assert cmd in out.stdout


def test_an_unknown_option_is_named_with_its_command_usage(recording):
    out = run("inspect", str(recording), "--bogus")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "usage: cogma inspect" in out.stderr and "cogma inspect: error: unrecognized arguments: --bogus" in out.stderr
    top = run("--bogus")
    assert top.returncode == 2 and "usage: cogma [-h]" in top.stderr


def test_inspect_json(recording):
    out = run("inspect", str(recording), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["frames"] == 75 and info["fps"] == 25 and info["age_weeks"] == 6
    assert info["quality"]["scorable"] is False and info["quality"]["reasons"]


@pytest.mark.parametrize("content, message", [(b"garbage", "not an .npz"), (None, "no such file")])
def test_bad_file_is_one_line_error_without_traceback(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    out = run("inspect", str(path))
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_render(recording, tmp_path):
    out = run("render", str(recording), "--out", str(tmp_path / "v.mp4"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "v.mp4").stat().st_size > 0


def test_synth_then_inspect(tmp_path):
    out = run("synth", "--kind", "normal_writhing", "--age-weeks", "4", "--seconds", "70", "--seed", "5",
              "--out", str(tmp_path / "s.npz"))
    assert out.returncode == 0, out.stderr
    assert "not for clinical use" in out.stdout
    info = json.loads(run("inspect", str(tmp_path / "s.npz"), "--json").stdout)
    assert info["synthetic"] and info["frames"] == 70 * 30 and info["label"] == 0


def test_synth_unknown_kind_is_a_clear_error(tmp_path):
    out = run("synth", "--kind", "wobbly", "--age-weeks", "4", "--seed", "1", "--out", str(tmp_path / "x.npz"))
    assert out.returncode == 2 and "unknown movement class 'wobbly'" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x.npz").exists()


def test_synth_cohort_writes_labels(tmp_path):
    out = run("synth-cohort", "--infants", "3", "--seed", "2", "--out", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    rows = (tmp_path / "c" / "labels.csv").read_text().splitlines()
    assert rows[0].startswith("file,infant_id,label") and len(rows) - 1 == len(list((tmp_path / "c").glob("*.npz")))


def test_unwritable_outputs_are_one_line_errors(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    synth = ("synth", "--kind", "normal_writhing", "--age-weeks", "4", "--seconds", "10", "--out")
    for out, message in ((tmp_path / "folder", "is a folder"), (tmp_path / "file" / "x.npz", "cannot use")):
        done = run(*synth, str(out))
        assert done.returncode == 2 and done.stderr.startswith("error: ") and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and str(out) in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]  # no temporary file left behind


def test_synth_cohort_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "labels.csv").write_text("mine\n")
    done = run("synth-cohort", "--infants", "2", "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and "not an empty folder" in done.stderr
    assert (tmp_path / "c" / "labels.csv").read_text() == "mine\n" and len(list((tmp_path / "c").iterdir())) == 1
