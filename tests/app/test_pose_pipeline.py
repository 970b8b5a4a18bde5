"""The real pose pipeline (MediaPipe Tasks, VIDEO mode) on videos made from real photographs,
and the screening pipeline's answers to bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mobile_app.errors import AppError, VideoError
from mobile_app.pipeline import REASON_DARK, REASON_NO_PERSON, screen
from mobile_app.pose.backend import Cancelled, open_backend
from mobile_app.sample_media import FRAME_SIZE, compose_frame, photo
from mobile_app.video import ArrayFrames, VideoFile
from skeleton.schemas import MEDIAPIPE_33


@pytest.fixture(scope="module")
def person_run(media):
    with open_backend("desktop") as backend:
        return backend.estimate(VideoFile(media["person"]))


def test_mediapipe_finds_the_astronaut_in_every_frame(person_run, media):
    rec, stats = person_run
    assert rec.schema == "mediapipe33" and rec.keypoints.shape == (60, 33, 3)
    assert rec.fps == pytest.approx(30.0) and rec.frame_size == FRAME_SIZE
    assert stats.frames == stats.frames_with_pose == 60 and stats.frames_with_several == 0
    assert stats.frames_checked_for_people == 6  # every 10th frame is searched for other people
    # The face and shoulders are clearly seen, where the photo puts them: the nose is above the
    # shoulders and between them; the hips are at the bottom edge of the picture.
    kp = rec.keypoints
    nose, ls, rs = kp[:, MEDIAPIPE_33["nose"]], kp[:, MEDIAPIPE_33["left_shoulder"]], kp[:, MEDIAPIPE_33["right_shoulder"]]
    assert (nose[:, 2] > 0.9).all() and (ls[:, 2] > 0.9).all() and (rs[:, 2] > 0.9).all()
    assert (nose[:, 1] < ls[:, 1]).all() and (nose[:, 1] < rs[:, 1]).all()
    assert (np.minimum(ls[:, 0], rs[:, 0]) < nose[:, 0]).all() and (nose[:, 0] < np.maximum(ls[:, 0], rs[:, 0])).all()
    # Tracking is steady: the photo sways by a few pixels, the nose moves as little.
    assert np.abs(np.diff(nose[:, :2], axis=0)).max() < 0.03
    assert rec.pose_model.startswith("mediapipe-tasks")
    assert rec.extra["pose_stats"]["frames_with_pose"] == 60


def test_image_and_video_modes_agree_on_one_frame(person_run):
    from mobile_app.pose.desktop import MediaPipeImageDetector

    rec, _ = person_run
    frame = compose_frame([photo("astronaut")], 0.0)
    detector = MediaPipeImageDetector()
    try:
        (pose,) = detector.detect(frame)
    finally:
        detector.close()
    err_px = np.abs(pose[:25, :2] - rec.keypoints[0, :25, :2]) * np.array(FRAME_SIZE)
    assert np.median(err_px) < 6.0


def test_two_people_are_noticed_and_one_is_followed(media, scorer):
    result = screen(media["two_people"], scorer=scorer)
    assert not result.scorable
    checked = result.pose["frames_checked_for_people"]
    assert checked >= result.frames // 10 and result.pose["frames_with_several_people"] >= 0.8 * checked
    assert any("More than one person" in r for r in result.reasons)
    # One body is followed throughout, not a mix of the two.
    nose_x = result.recording.keypoints[:, 0, 0]
    assert np.ptp(nose_x) < 0.1


def test_no_person(media, scorer):
    result = screen(media["no_person"], scorer=scorer)
    assert not result.scorable and result.pose["frames_with_pose"] == 0
    assert result.reasons[0] == REASON_NO_PERSON
    assert not any("whole body was found" in r for r in result.reasons)  # no redundant noise


def test_too_dark(media, scorer):
    result = screen(media["dark"], scorer=scorer)
    assert not result.scorable and REASON_DARK in result.reasons
    assert result.pose["median_brightness"] < 40


def test_too_short(media, scorer):
    result = screen(media["too_short"], scorer=scorer)
    assert not result.scorable
    assert any("The recording is only" in r and "At least 1 minute" in r for r in result.reasons)


def test_far_too_short_is_a_clear_error(media, scorer):
    with pytest.raises(AppError, match=r"only 0.5 seconds long. At least 1 minute"):
        screen(media["blink"], scorer=scorer)


def test_adult_upper_body_is_found_but_not_scorable(media, scorer):
    result = screen(media["person"], scorer=scorer, age_weeks=10.0)
    assert result.input_kind == "video" and result.frames == 60 and result.age_weeks == 10.0
    assert not result.scorable and result.risk is None and result.band is None
    assert any("whole body" in r for r in result.reasons)  # legs are not in the photograph
    d = result.to_dict()
    assert "recording" not in d and d["not_for_clinical_use"] == scorer.bundle.not_for_clinical_use


@pytest.mark.parametrize("name, message", [
    ("garbage", "not a video the app can read"),
    ("empty", "the file is empty"),
    ("text", "not a video or pose recording"),
])
def test_unusable_files_get_a_clear_error(media, scorer, name, message):
    with pytest.raises(AppError, match=message):
        screen(media[name], scorer=scorer)


def test_missing_file_or_a_folder(tmp_path, scorer):
    with pytest.raises(VideoError, match="does not exist"):
        screen(tmp_path / "nope.mp4", scorer=scorer)
    with pytest.raises(VideoError, match="this is a folder"):
        screen(tmp_path, scorer=scorer)


def test_video_without_frames(tmp_path):
    import cv2

    path = tmp_path / "noframes.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    writer.release()
    with pytest.raises(VideoError):
        VideoFile(path)


def test_cancel_stops_pose_estimation():
    import threading

    frames = ArrayFrames([compose_frame([photo("astronaut")], i / 30) for i in range(40)], 30.0)
    cancel = threading.Event()
    seen = []

    def progress(fraction, _msg):
        seen.append(fraction)
        cancel.set()

    with open_backend("desktop") as backend, pytest.raises(Cancelled):
        backend.estimate(frames, progress, cancel=cancel)
    assert seen and seen[0] < 1.0


def test_high_frame_rate_video_is_thinned_to_what_the_model_reads(tmp_path, scorer):
    from mobile_app.sample_media import make_video

    fps_max = scorer.bundle.input_contract.fps_max
    fast = make_video(tmp_path / "fast.mp4", ["astronaut"], 1.0, fps=2 * fps_max)
    result = screen(fast, scorer=scorer)
    assert result.fps == pytest.approx(fps_max)
    assert result.frames == pytest.approx(fps_max, abs=1)


def test_worker_process_gives_the_same_poses_as_in_process(media, person_run):
    from mobile_app.pose.worker import IsolatedPoseBackend

    rec, stats = IsolatedPoseBackend().estimate_video(media["person"], age_weeks=9.5)
    in_process, _ = person_run
    assert rec.num_frames == in_process.num_frames and rec.age_weeks == 9.5
    assert np.abs(rec.keypoints - in_process.keypoints).max() < 1e-5
    assert stats.frames_with_pose == 60


def test_worker_crash_is_a_clear_error_and_cancel_stops_it(media):
    import threading

    from mobile_app.errors import PoseError
    from mobile_app.pose.worker import IsolatedPoseBackend

    with pytest.raises(PoseError, match="stopped unexpectedly"):
        IsolatedPoseBackend().estimate_video(media["person"], fps_max=0.0)  # the worker dies dividing by 0
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        IsolatedPoseBackend().estimate_video(media["person"], progress=lambda f, m: cancel.set(), cancel=cancel)
