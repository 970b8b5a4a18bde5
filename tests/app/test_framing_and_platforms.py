"""The capture screen's framing check, and the phone backends' honest refusal off the phone."""

from __future__ import annotations

import numpy as np
import pytest

from mobile_app.errors import PoseError, ScorerError
from mobile_app.framing import check_framing
from mobile_app.pose.backend import open_backend, platform_name


def body(cx=0.5, cy=0.5, scale=0.6, vis=0.95) -> np.ndarray:
    """A lying figure: head at the top, feet at the bottom, ``scale`` of the picture tall."""
    pose = np.zeros((33, 3), np.float32)
    pose[:, 0], pose[:, 1], pose[:, 2] = cx, cy, vis
    pose[0, 1] = cy - scale / 2  # nose
    pose[[11, 12], 1] = cy - scale / 4
    pose[[23, 24], 1] = cy + scale / 16
    pose[[25, 26], 1] = cy + scale / 4
    pose[[27, 28], 1] = cy + scale / 2
    pose[[11, 23, 25, 27], 0] = cx - 0.08
    pose[[12, 24, 26, 28], 0] = cx + 0.08
    return pose


def test_whole_body_in_view():
    assert check_framing([body()]).ok


@pytest.mark.parametrize("poses, words", [
    ([], "No baby found"),
    ([body(cx=0.3), body(cx=0.7)], "More than one person"),
    ([body(cy=0.75)], "outside the picture"),
    ([body(scale=0.2)], "looks small"),
])
def test_framing_problems_in_plain_words(poses, words):
    framing = check_framing(poses)
    assert not framing.ok and words in framing.message


def test_a_faint_second_detection_is_not_a_second_person():
    assert check_framing([body(), body(cx=0.9, vis=0.1)]).ok


def test_desktop_is_detected_here():
    assert platform_name() == "desktop"


@pytest.mark.parametrize("platform", ["android", "ios"])
def test_phone_backends_say_where_they_run(platform, bundle_dir):
    from mobile_app.scoring import open_scorer

    with pytest.raises(PoseError, match="only inside the"):
        open_backend(platform)
    with pytest.raises(ScorerError, match="only inside the"):
        open_scorer(bundle_dir, platform)
