"""Framing check for the capture screen: is one whole baby in the picture, big enough?

Works on the poses found in one preview picture (MediaPipe-33, normalized) and answers with
one short sentence the parent can act on while holding the phone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_VISIBILITY = 0.5
MIN_BODY_SIZE = 0.35  # largest side of the body's box, as a share of the picture
EDGE_MARGIN = 0.02
# Head, shoulders, hips, knees, ankles: what must be in view for the check.
KEY_JOINTS = (0, 11, 12, 23, 24, 25, 26, 27, 28)


@dataclass(frozen=True)
class Framing:
    ok: bool
    message: str


def check_framing(poses: list[np.ndarray]) -> Framing:
    if not poses:
        return Framing(False, "No baby found yet. Point the camera at your baby, lying on the back.")
    clear = [p for p in poses if float(p[[11, 12, 23, 24], 2].mean()) >= MIN_VISIBILITY]
    if len(clear) > 1:
        return Framing(False, "More than one person is in the picture. Only your baby should be seen.")
    pose = clear[0] if clear else poses[0]
    key = pose[list(KEY_JOINTS)]
    seen = key[:, 2] >= MIN_VISIBILITY
    inside = ((key[:, :2] >= EDGE_MARGIN) & (key[:, :2] <= 1 - EDGE_MARGIN)).all(axis=1)
    if not (seen & inside).all():
        return Framing(False, "Part of the body is outside the picture. Move the phone up until head and feet fit.")
    size = float(np.ptp(key[:, :2], axis=0).max())
    if size < MIN_BODY_SIZE:
        return Framing(False, "Your baby looks small. Bring the phone a little closer.")
    return Framing(True, "Good: the whole body is in the picture.")
