import numpy as np
import pytest

from skeleton import MEDIAPIPE_33, PoseRecording, QualityThresholds, assess

# A supine infant seen from above, roughly centred, in normalized coordinates of a portrait frame.
_TEMPLATE = {
    "nose": (0.50, 0.25), "left_eye_inner": (0.51, 0.24), "left_eye": (0.52, 0.24), "left_eye_outer": (0.53, 0.24),
    "right_eye_inner": (0.49, 0.24), "right_eye": (0.48, 0.24), "right_eye_outer": (0.47, 0.24),
    "left_ear": (0.55, 0.25), "right_ear": (0.45, 0.25), "mouth_left": (0.51, 0.27), "mouth_right": (0.49, 0.27),
    "left_shoulder": (0.58, 0.33), "right_shoulder": (0.42, 0.33), "left_elbow": (0.65, 0.42),
    "right_elbow": (0.35, 0.42), "left_wrist": (0.66, 0.50), "right_wrist": (0.34, 0.50),
    "left_pinky": (0.67, 0.52), "right_pinky": (0.33, 0.52), "left_index": (0.66, 0.53), "right_index": (0.34, 0.53),
    "left_thumb": (0.65, 0.52), "right_thumb": (0.35, 0.52), "left_hip": (0.55, 0.55), "right_hip": (0.45, 0.55),
    "left_knee": (0.60, 0.66), "right_knee": (0.40, 0.66), "left_ankle": (0.58, 0.77), "right_ankle": (0.42, 0.77),
    "left_heel": (0.58, 0.79), "right_heel": (0.42, 0.79), "left_foot_index": (0.59, 0.80), "right_foot_index": (0.41, 0.80),
}
BASE = np.array([_TEMPLATE[n] for n in MEDIAPIPE_33.joints], np.float32)


def infant(seconds=90.0, fps=30.0, scale=1.0, shift=(0.0, 0.0), drift=0.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = int(seconds * fps)
    xy = (BASE - 0.5) * scale + 0.5 + np.array(shift, np.float32)
    wiggle = 0.01 * np.sin(np.arange(t)[:, None, None] / fps * 2.0 + rng.uniform(0, 6, (1, 33, 1)))
    kp = np.empty((t, 33, 3), np.float32)
    kp[..., :2] = xy + wiggle + drift * np.arange(t)[:, None, None] / fps * np.array([1.0, 0.0])
    kp[..., 2] = 0.95
    return kp


def rec(kp, fps=30.0) -> PoseRecording:
    return PoseRecording(kp, "mediapipe33", fps, (720, 1280))


def test_good_recording_is_scorable_with_a_length_hint():
    report = assess(rec(infant(90)))
    assert report.scorable, report.reasons
    assert any("3 minutes" in w for w in report.warnings)
    assert report.metrics["detected_fraction"] == 1.0


def test_three_minutes_gives_no_warning():
    report = assess(rec(infant(181)))
    assert report.scorable and not report.warnings


def test_short_recording_is_flagged():
    report = assess(rec(infant(40)))
    assert not report.scorable
    assert any("only 40 seconds long" in r for r in report.reasons)


def test_dropouts_are_flagged():
    kp = infant(120)
    legs = [MEDIAPIPE_33[j] for j in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    kp[::3, legs, 2] = 0.1  # legs lost in every third frame
    report = assess(rec(kp))
    assert not report.scorable
    assert report.metrics["detected_fraction"] == pytest.approx(2 / 3, abs=0.01)
    assert any("whole body was found in only 67%" in r for r in report.reasons)


def test_brief_loss_of_a_hand_or_foot_is_tolerated():
    kp = infant(90)
    kp[::2, MEDIAPIPE_33["left_wrist"], 2] = 0.1
    kp[1::2, MEDIAPIPE_33["right_ankle"], 2] = 0.1
    assert assess(rec(kp)).scorable


def test_lost_torso_is_not_a_detection():
    kp = infant(90)
    kp[:, MEDIAPIPE_33["left_hip"], 2] = 0.1
    assert assess(rec(kp)).metrics["detected_fraction"] == 0.0


def test_long_gap_breaks_continuity():
    kp = infant(100)
    kp[45 * 30 : 50 * 30, :, 2] = 0.0  # 5 s without a body in the middle
    report = assess(rec(kp))
    assert not report.scorable
    assert report.metrics["longest_gap_s"] == pytest.approx(5.0, abs=0.05)
    assert any("without interruption" in r for r in report.reasons)


def test_short_gaps_are_bridged():
    kp = infant(70)
    kp[::20, :, 2] = 0.0  # single lost frames
    report = assess(rec(kp), QualityThresholds(min_detected_fraction=0.9))
    assert report.metrics["longest_continuous_s"] > 60


def test_off_frame_is_flagged():
    report = assess(rec(infant(90, shift=(0.0, 0.3))))  # feet below the picture
    assert not report.scorable
    assert any("outside the picture" in r for r in report.reasons)


def test_small_infant_is_flagged():
    report = assess(rec(infant(90, scale=0.2)))
    assert not report.scorable
    assert any("too small" in r for r in report.reasons)


def test_camera_motion_is_flagged():
    kp = infant(90, scale=0.5)
    kp[..., 0] += 0.08 * np.sin(np.arange(len(kp)) / 30 * 6.0)[:, None]  # handheld sway
    report = assess(rec(kp))
    assert any("camera moved" in r for r in report.reasons)


def test_low_frame_rate_is_flagged():
    report = assess(rec(infant(90, fps=10), fps=10))
    assert any("frames per second" in r for r in report.reasons)
