"""Scoring through the shipped bundle, and `cogma screen` (the app's pipeline without screens)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cogma import NOT_FOR_CLINICAL_USE
from mobile_app.errors import ScorerError
from mobile_app.pipeline import screen
from mobile_app.scoring import BANDS, Score, band_for, open_scorer
from skeleton.timing import resample_fps

REPO = Path(__file__).resolve().parents[2]
JSON_KEYS = {"risk", "band", "interval", "scorable", "reasons", "model_version", "not_for_clinical_use"}


def cogma(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cogma", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_real_video_through_mediapipe_and_the_bundle(tmp_path, scorer):
    """video -> MediaPipe -> PoseRecording -> bundle (ExecuTorch runtime) -> score."""
    from mobile_app.pose.backend import open_backend
    from mobile_app.sample_media import make_video
    from mobile_app.video import VideoFile

    c = scorer.bundle.input_contract
    fps = max(c.fps_min, 10.0)
    seconds = c.min_frames / fps + 0.5
    video = make_video(tmp_path / "astronaut.mp4", ["astronaut"], seconds, fps=fps)
    with open_backend("desktop") as backend:
        rec, stats = backend.estimate(VideoFile(video))
    assert stats.frames_with_pose == rec.num_frames >= c.min_frames
    score = scorer.score(rec)  # the recording fits the model's contract, so the runtime scores it
    assert 0.0 <= score.low <= score.risk <= score.high <= 1.0
    assert band_for(score, scorer.bundle.threshold).name in BANDS


@pytest.mark.parametrize("name", ["typical", "atypical"])
def test_scorable_recording_gets_a_result(recordings, scorer, name):
    result = screen(recordings[name], scorer=scorer)
    assert result.scorable and not result.reasons
    assert 0 <= result.interval[0] <= result.risk <= result.interval[1] <= 1
    assert result.band in BANDS and result.headline == BANDS[result.band].headline
    assert result.model_version == scorer.bundle.version
    assert result.notice == (NOT_FOR_CLINICAL_USE if scorer.bundle.not_for_clinical_use else "")
    again = screen(recordings[name], scorer=scorer)
    assert again.risk == result.risk  # same input, same score


def test_bands_follow_the_interval_and_threshold():
    assert band_for(Score(0.2, 0.1, 0.3), 0.5).name == "low"
    assert band_for(Score(0.45, 0.3, 0.6), 0.5).name == "unclear"
    assert band_for(Score(0.8, 0.5, 0.9), 0.5).name == "raised"
    for band in BANDS.values():  # never a diagnosis
        assert "diagnos" not in (band.headline + band.advice).lower() or "not" in band.advice.lower()


def test_model_output_is_checked():
    with pytest.raises(ScorerError):
        Score.from_output(np.array([np.nan, 0.1, 0.2]))
    with pytest.raises(ScorerError):
        Score.from_output(np.array([1.7, 0.1, 0.2]))
    s = Score.from_output(np.array([0.5, 0.6, 0.4]))  # a swapped interval is repaired around the risk
    assert s.low <= s.risk <= s.high


def test_recording_outside_the_contract_is_refused_before_the_runtime(recordings, scorer, tmp_path):
    from dataclasses import replace

    from skeleton.recording import load_recording

    rec = load_recording(recordings["typical"])
    short = replace(rec, keypoints=rec.keypoints[: scorer.bundle.input_contract.min_frames - 1])
    with pytest.raises(ScorerError, match="too short"):
        scorer.score(short)


def test_fast_and_slow_recordings_are_fitted_to_the_models_frame_rate(recordings, scorer, tmp_path):
    """60 fps keypoints are scored at 30 fps (every 2nd frame, as for videos); 20 fps ones are
    interpolated up to 30 and the result says so; the same movement scores alike at every rate."""
    from dataclasses import replace

    from skeleton.recording import load_recording

    rec = load_recording(recordings["typical"])
    at_30 = screen(recordings["typical"], scorer=scorer)
    doubled = np.repeat(rec.keypoints, 2, axis=0)  # the same movement at 60 fps
    fast = replace(rec, keypoints=doubled, fps=2 * rec.fps).save(tmp_path / "fast.npz")
    result = screen(fast, scorer=scorer)
    assert result.scorable and result.fps == pytest.approx(60.0)
    assert result.risk == pytest.approx(at_30.risk, abs=1e-6)
    c = scorer.bundle.input_contract
    assert c.fps_min > 20.0
    for name in ("typical", "atypical"):
        rec = load_recording(recordings[name])
        slow = replace(rec, keypoints=resample_fps(rec.keypoints, rec.fps, 20.0), fps=20.0)  # the same 75 s at 20 fps
        result = screen(slow.save(tmp_path / f"slow_{name}.npz"), scorer=scorer)
        assert result.scorable and result.fps == pytest.approx(20.0)
        assert any("interpolated" in w and "20 frames per second" in w for w in result.warnings), result.warnings
        at_30 = screen(recordings[name], scorer=scorer)
        assert result.risk == pytest.approx(at_30.risk, abs=0.05)


def test_a_recording_longer_than_the_model_reads_is_scored_on_its_start_and_says_so(recordings, scorer, tmp_path):
    from dataclasses import replace

    from skeleton.recording import load_recording

    rec = load_recording(recordings["atypical"])
    c = scorer.bundle.input_contract
    repeats = c.max_frames // rec.num_frames + 1
    long = replace(rec, keypoints=np.tile(rec.keypoints, (repeats, 1, 1)))  # > 10 minutes at 30 fps
    result = screen(long.save(tmp_path / "long.npz"), scorer=scorer)
    assert result.scorable and result.frames == long.num_frames
    assert any("Only the first 10 minutes" in w for w in result.warnings), result.warnings
    slow = replace(long, keypoints=resample_fps(long.keypoints, long.fps, 20.0), fps=20.0)
    result = screen(slow.save(tmp_path / "long_slow.npz"), scorer=scorer)
    assert result.scorable
    assert any("interpolated" in w for w in result.warnings) and any("Only the first" in w for w in result.warnings)


def test_a_recording_below_the_quality_checks_frame_rate_is_refused_with_the_reason(recordings, scorer, tmp_path):
    from dataclasses import replace

    from skeleton.recording import load_recording

    rec = load_recording(recordings["typical"])
    slow = replace(rec, keypoints=rec.keypoints[::3], fps=10.0)  # 75 s at 10 fps
    result = screen(slow.save(tmp_path / "slow.npz"), scorer=scorer)
    assert not result.scorable and result.risk is None
    assert any("frame" in r.lower() and "10" in r for r in result.reasons), result.reasons


def tampered_copy(bundle_dir: Path, dest: Path) -> Path:
    shutil.copytree(bundle_dir, dest)
    pte = dest / "model.pte"
    data = bytearray(pte.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pte.write_bytes(bytes(data))
    return dest


def test_wrong_bundles_are_refused_with_the_reason(tmp_path, bundle_dir):
    with pytest.raises(ScorerError, match="altered or corrupted"):
        open_scorer(tampered_copy(bundle_dir, tmp_path / "tampered"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScorerError, match="not a model bundle"):
        open_scorer(tmp_path / "empty")
    with pytest.raises(ScorerError, match="no such model bundle"):
        open_scorer(tmp_path / "missing")


# -- the command line ------------------------------------------------------------------------
def test_cli_screen_json(recordings):
    done = cogma("screen", str(recordings["typical"]), "--json", "--age-weeks", "12")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert JSON_KEYS <= out.keys()
    assert out["scorable"] is True and out["band"] in BANDS and len(out["interval"]) == 2
    assert out["age_weeks"] == 12.0 and out["screening_aid"].startswith("This is a screening aid")


def test_cli_screen_text_for_a_video_that_cannot_be_scored(media):
    done = cogma("screen", str(media["no_person"]))
    assert done.returncode == 1, done.stderr
    assert "cannot be scored" in done.stdout and "No person was found" in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_bad_input_is_one_clear_line(media, tmp_path, bundle_dir, recordings):
    done = cogma("screen", str(media["garbage"]))
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "not a video the app can read" in done.stderr
    done = cogma("screen", str(media["empty"]), "--json")
    assert done.returncode == 2 and "the file is empty" in json.loads(done.stdout)["error"]
    bad = tampered_copy(bundle_dir, tmp_path / "bad_bundle")
    done = cogma("screen", str(recordings["typical"]), "--bundle", str(bad))
    assert done.returncode == 2 and "model bundle cannot be used" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name, code, words", [
    ("two_people", 1, "More than one person was seen"),
    ("dark", 1, "The video is too dark"),
    ("too_short", 1, "The recording is only 2 seconds long"),
    ("blink", 2, "error: the video is only 0.5 seconds long"),
])
def test_cli_says_what_is_wrong_with_a_video(media, capsys, name, code, words):
    from cogma.cli import main

    assert main(["screen", str(media[name])]) == code
    out = capsys.readouterr()
    assert words in out.out + out.err and "Traceback" not in out.err


def test_the_apps_worker_scorer_gives_the_same_score(recordings, scorer, bundle_dir):
    from skeleton.recording import load_recording

    rec = load_recording(recordings["atypical"])
    isolated = open_scorer(bundle_dir, "desktop-worker")
    assert isolated.score(rec) == pytest.approx(scorer.score(rec), abs=1e-6)
