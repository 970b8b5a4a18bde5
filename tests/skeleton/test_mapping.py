import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skeleton import COCO_17, INFANT_20, MEDIAPIPE_33, OPENPOSE_18, SchemaError, convert, get_mapping, get_schema

finite01 = st.floats(0.0, 1.0, allow_nan=False, width=32)


def keypoints(n_joints: int, max_frames: int = 6):
    return st.integers(1, max_frames).flatmap(lambda t: arrays(np.float32, (t, n_joints, 3), elements=finite01))


def test_schema_sizes_and_roots():
    assert (len(MEDIAPIPE_33), len(COCO_17), len(INFANT_20), len(OPENPOSE_18)) == (33, 17, 20, 18)
    assert INFANT_20.joints[17:] == ("neck", "spine", "mid_hip") and INFANT_20.root == 17
    assert len(INFANT_20.edges) == 19  # a tree over 20 joints


def test_unknown_schema_is_a_clear_error():
    with pytest.raises(SchemaError, match="unknown joint schema 'body25'.*mediapipe33"):
        get_schema("body25")


def test_impossible_mapping_is_refused():
    with pytest.raises(SchemaError, match="left_eye_inner"):
        get_mapping("coco17", "mediapipe33")


@given(keypoints(33))
def test_mediapipe_to_coco_selects_named_joints(kp):
    coco = convert(kp, "mediapipe33", "coco17")
    for j, name in enumerate(COCO_17.joints):
        np.testing.assert_array_equal(coco[:, j], kp[:, MEDIAPIPE_33[name]])


@given(keypoints(33))
def test_infant20_derived_joints(kp):
    inf = convert(kp, "mediapipe33", "infant20")
    ls, rs, lh, rh = (kp[:, MEDIAPIPE_33[n]] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    neck, mid_hip = (ls[:, :2] + rs[:, :2]) / 2, (lh[:, :2] + rh[:, :2]) / 2
    np.testing.assert_allclose(inf[:, 17, :2], neck, atol=1e-6)
    np.testing.assert_allclose(inf[:, 19, :2], mid_hip, atol=1e-6)
    np.testing.assert_allclose(inf[:, 18, :2], (neck + 2 * mid_hip) / 3, atol=1e-6)
    # a derived joint is only as visible as its least visible source
    np.testing.assert_array_equal(inf[:, 18, 2], np.min([ls[:, 2], rs[:, 2], lh[:, 2], rh[:, 2]], axis=0))


@given(keypoints(33))
def test_composition_equals_direct(kp):
    via_coco = convert(convert(kp, "mediapipe33", "coco17"), "coco17", "infant20")
    np.testing.assert_allclose(via_coco, convert(kp, "mediapipe33", "infant20"), atol=1e-6)


@given(keypoints(33))
def test_openpose18_neck_and_roundtrip_to_coco(kp):
    op = convert(kp, "mediapipe33", "openpose18")
    np.testing.assert_allclose(op[:, 1, :2], (kp[:, 11, :2] + kp[:, 12, :2]) / 2, atol=1e-6)
    np.testing.assert_allclose(convert(op, "openpose18", "coco17"), convert(kp, "mediapipe33", "coco17"), atol=1e-6)


@settings(max_examples=25)
@given(keypoints(33), st.floats(-3, 3), st.floats(0.2, 3))
def test_mapping_commutes_with_affine_motion(kp, angle, scale):
    # linear joint maps commute with rotation + scaling of the coordinates
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float32) * scale
    moved = kp.copy()
    moved[..., :2] = kp[..., :2] @ rot.T
    a = convert(moved, "mediapipe33", "infant20")[..., :2]
    b = convert(kp, "mediapipe33", "infant20")[..., :2] @ rot.T
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_mirror_permutation_swaps_sides():
    perm = MEDIAPIPE_33.mirror_permutation
    assert perm[MEDIAPIPE_33["left_wrist"]] == MEDIAPIPE_33["right_wrist"]
    assert perm[MEDIAPIPE_33["nose"]] == MEDIAPIPE_33["nose"]
    assert sorted(perm) == list(range(33))


def test_wrong_joint_count_is_refused():
    with pytest.raises(SchemaError, match=r"\[..., 33, 3\]"):
        convert(np.zeros((4, 17, 3), np.float32), "mediapipe33", "infant20")
