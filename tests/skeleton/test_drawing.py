import cv2
import numpy as np
import pytest

from skeleton import CogmaError, PoseRecording
from skeleton.drawing import (
    OPENPOSE_COLORS,
    CanvasFit,
    VideoWriter,
    draw_openpose,
    draw_skeleton,
    openpose_frames,
    render_video,
)


def openpose_frame() -> np.ndarray:
    kp = np.zeros((18, 3), np.float32)
    kp[:, 2] = 1.0
    kp[:, 0] = np.linspace(0.2, 0.8, 18)
    kp[:, 1] = np.linspace(0.1, 0.9, 18)
    return kp


def test_letterbox_fit_keeps_aspect_and_inverts():
    fit = CanvasFit(frame_size=(1280, 720), canvas_size=(576, 1024))
    assert fit.scale == pytest.approx(576 / 1280)
    assert fit.offset[0] == pytest.approx(0.0) and fit.offset[1] > 0  # padded top and bottom
    pts = np.random.default_rng(0).uniform(0, 1, (10, 2))
    np.testing.assert_allclose(fit.to_normalized(fit.to_pixels(pts)), pts, atol=1e-9)


def test_openpose_joints_have_dwpose_colours():
    kp = openpose_frame()
    img = draw_openpose(kp, (256, 256))
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    for j in (0, 4, 10, 17):
        x, y = (kp[j, :2] * 256).astype(int)
        np.testing.assert_array_equal(img[y, x], OPENPOSE_COLORS[j])


def test_invisible_joints_are_not_drawn():
    kp = openpose_frame()
    kp[:, 2] = 0.0
    assert draw_openpose(kp, (64, 64)).max() == 0


def test_openpose_frames_from_mediapipe_recording_are_letterboxed():
    kp = np.full((30, 33, 3), 0.5, np.float32)
    kp[:, :, 0] = np.linspace(0.05, 0.95, 33)
    rec = PoseRecording(kp, "mediapipe33", 30, (1280, 720))
    frames = list(openpose_frames(rec, (64, 128)))
    assert len(frames) == 30 and frames[0].shape == (128, 64, 3)
    rows = np.flatnonzero(frames[0].any(axis=(1, 2)))
    assert rows.min() > 40 and rows.max() < 88  # drawn inside the letterboxed band only


def test_overlay_draws_on_the_image():
    img = np.zeros((100, 100, 3), np.uint8)
    kp = np.zeros((33, 3), np.float32)
    kp[:, :2] = np.random.default_rng(1).uniform(0.2, 0.8, (33, 2))
    kp[:, 2] = 1.0
    assert draw_skeleton(img, kp).sum() > 0


def test_render_video_writes_a_readable_mp4(tmp_path):
    kp = np.full((45, 33, 3), 0.5, np.float32)
    out = render_video(PoseRecording(kp, "mediapipe33", 15, (320, 240)), tmp_path / "v.mp4", style="openpose")
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 45
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 240)


def test_unknown_style_is_refused(tmp_path):
    with pytest.raises(CogmaError, match="unknown render style"):
        render_video(PoseRecording(np.full((45, 33, 3), 0.5, np.float32), "mediapipe33", 15, (32, 32)),
                     tmp_path / "v.mp4", style="neon")


def test_video_writer_names_the_file_only_when_done(tmp_path):
    out = tmp_path / "v.mp4"
    frame = np.zeros((32, 48, 3), np.uint8)
    with VideoWriter(out, 10.0, (48, 32)) as w:
        for _ in range(5):
            w.write(frame)
    first = out.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, 10.0, (48, 32)) as w:
            w.write(frame + 255)
            raise KeyboardInterrupt  # Ctrl-C half way
    assert out.read_bytes() == first and [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


@pytest.mark.parametrize("name, message", [("v.npz", "must end in .mp4"), ("v", "must end in .mp4"),
                                           ("folder.mp4", "is a folder")])
def test_video_writer_wants_an_mp4_file(tmp_path, name, message):
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(CogmaError, match=message):
        VideoWriter(tmp_path / name, 10.0, (48, 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.mp4"]
