"""From body motion to the 33 MediaPipe landmarks (body frame, BL units).

Also returns a per-landmark "self-occlusion" visibility factor: an ear turned
away from the camera, or a face point on the far side of a turned head, is
reported with low visibility, as MediaPipe does.
"""

from __future__ import annotations

import numpy as np

from ..schemas import MEDIAPIPE_33
from .motion import BodyMotion, limb_roots
from .traits import InfantTraits

J = MEDIAPIPE_33.index

# Face points in the head frame: (x lateral, + = infant's left; y towards the crown; z towards the camera),
# as fractions of half the head breadth.
_FACE = {
    "nose": (0.0, -0.15, 1.0),
    "left_eye_inner": (0.2, 0.2, 0.85), "left_eye": (0.36, 0.22, 0.8), "left_eye_outer": (0.52, 0.2, 0.7),
    "right_eye_inner": (-0.2, 0.2, 0.85), "right_eye": (-0.36, 0.22, 0.8), "right_eye_outer": (-0.52, 0.2, 0.7),
    "left_ear": (1.0, 0.05, 0.0), "right_ear": (-1.0, 0.05, 0.0),
    "mouth_left": (0.25, -0.5, 0.8), "mouth_right": (-0.25, -0.5, 0.8),
}


def _rot(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate [..., 2] vectors by angle (broadcast over leading dims)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _two_link(root: np.ndarray, end: np.ndarray, a: float, b: float, outward: np.ndarray, swivel: np.ndarray) -> np.ndarray:
    """Middle joint [T, 2] of a two-link chain (root -> mid -> end) bending towards ``outward``.

    ``swivel`` < 1 pulls the middle joint towards the root-end line: the limb is lifted towards the
    camera, so seen from above it looks straighter and shorter than it is.
    """
    v = end - root
    d = np.clip(np.linalg.norm(v, axis=-1), abs(a - b) + 1e-4, a + b - 1e-4)
    u = _unit(v)
    along = (a * a + d * d - b * b) / (2 * d)
    h = np.sqrt(np.maximum(a * a - along * along, 0.0))
    perp = np.stack([-u[:, 1], u[:, 0]], axis=-1)
    sign = np.sign((perp * outward).sum(-1, keepdims=True))
    sign = np.where(sign == 0, 1.0, sign)
    return root + u * along[:, None] + sign * perp * (h * swivel)[:, None]


def landmarks(motion: BodyMotion, traits: InfantTraits) -> tuple[np.ndarray, np.ndarray]:
    """(xy [T, 33, 2] in BL body units, visibility factor [T, 33] in (0, 1])."""
    m = motion
    n = m.endpoints.shape[0]
    xy = np.zeros((n, 33, 2))
    vis = np.ones((n, 33))
    roots = limb_roots(traits)

    # Trunk frame -> body frame: rotate by trunk angle about the mid-hip, then translate.
    sh_shift = np.zeros((n, 4, 2))
    sh_shift[:, :2, 1] = ((m.trunk_scale - 1.0) * traits.trunk)[:, None]
    sh_shift[:, :2] += m.shoulder_offset[:, None]
    root_t = roots[None] + sh_shift  # [T, 4, 2]
    end_t = m.endpoints + sh_shift  # arms move with the shoulder girdle

    def to_body(p: np.ndarray) -> np.ndarray:
        ang = m.trunk_angle.reshape((n,) + (1,) * (p.ndim - 2))
        hip = m.hip_centre.reshape((n,) + (1,) * (p.ndim - 2) + (2,))
        return _rot(p, ang) + hip

    outward = np.array([[1.0, -0.6], [-1.0, -0.6], [1.0, 0.4], [-1.0, 0.4]])
    lengths = [(traits.upper_arm, traits.forearm)] * 2 + [(traits.thigh, traits.shank)] * 2
    mids = np.stack(
        [_two_link(root_t[:, i], end_t[:, i], *lengths[i], outward[i], m.swivel[:, i]) for i in range(4)], axis=1
    )
    root_b, mid_b, end_b = to_body(root_t), to_body(mids), to_body(end_t)
    for i, (r, mid, e) in enumerate(zip(
        ("left_shoulder", "right_shoulder", "left_hip", "right_hip"),
        ("left_elbow", "right_elbow", "left_knee", "right_knee"),
        ("left_wrist", "right_wrist", "left_ankle", "right_ankle"),
    )):
        xy[:, J[r]], xy[:, J[mid]], xy[:, J[e]] = root_b[:, i], mid_b[:, i], end_b[:, i]

    # Hands: knuckles and thumb fan out from the wrist along the forearm, turned by the wrist angle.
    for i, side in enumerate(("left", "right")):
        fore = _unit(end_b[:, i] - mid_b[:, i])
        sgn = 1.0 if side == "left" else -1.0
        for name, length, spread in (("index", 1.0, 0.2), ("pinky", 0.85, -0.35), ("thumb", 0.6, 0.9)):
            d = _rot(fore, m.distal_angle[:, i] + sgn * spread)
            xy[:, J[f"{side}_{name}"]] = end_b[:, i] + traits.hand * length * d
    # Feet: heel continues the shank a little; toes point away from the shank, foreshortened from above.
    for k, side in enumerate(("left", "right")):
        i = 2 + k
        shank = _unit(end_b[:, i] - mid_b[:, i])
        sgn = 1.0 if side == "left" else -1.0
        xy[:, J[f"{side}_heel"]] = end_b[:, i] + 0.3 * traits.foot * shank
        toe_dir = _rot(shank, sgn * 0.6 + m.distal_angle[:, i])
        xy[:, J[f"{side}_foot_index"]] = end_b[:, i] + traits.foot * m.foot_foreshortening[:, k, None] * toe_dir

    # Head: centre above the mid-shoulder along the trunk axis; face points turned by the yaw.
    mid_sh = 0.5 * (root_b[:, 0] + root_b[:, 1])
    axis = _rot(np.array([0.0, 1.0])[None].repeat(n, 0), m.trunk_angle)
    head = mid_sh + axis * traits.neck_to_head + m.head_offset
    r = traits.head_breadth / 2
    yaw = m.head_yaw[:, None]
    for name, (fx, fy, fz) in _FACE.items():
        x_turned = fx * np.cos(yaw) + fz * np.sin(yaw)
        depth = -fx * np.sin(yaw) + fz * np.cos(yaw)
        local = np.concatenate([x_turned, np.full_like(x_turned, fy)], axis=1) * r
        xy[:, J[name]] = head + _rot(local, m.trunk_angle + m.head_tilt)
        vis[:, J[name]] = 1.0 / (1.0 + np.exp(-(depth[:, 0] + 0.25) / 0.08))  # far side of the head is hidden
    return xy, vis
