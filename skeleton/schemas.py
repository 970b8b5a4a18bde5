"""Joint schemas: names, edges and left/right pairs of every skeleton we use.

Four schemas meet in CoGMA:

* ``mediapipe33`` — what MediaPipe Pose gives on the phone (raw model input).
* ``coco17`` — the common 17-keypoint body (OpenPose/DWPose/COCO datasets).
* ``infant20`` — CoGMA's graph: COCO-17, then neck (17, graph root),
  spine (18) and mid-hip (19); edges as in CoGMA's ``graph/pku.py``.
* ``openpose18`` — the body part of OpenPose/DWPose drawings, which the
  animator is conditioned on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SchemaError


@dataclass(frozen=True)
class JointSchema:
    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    root: int = 0
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.joints)})
        for a, b in self.edges:
            if not (0 <= a < len(self.joints) and 0 <= b < len(self.joints)):
                raise ValueError(f"edge {(a, b)} out of range in schema {self.name}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def __len__(self) -> int:
        return len(self.joints)

    def __getitem__(self, joint: str) -> int:
        return self.index[joint]

    @property
    def mirror_permutation(self) -> tuple[int, ...]:
        """Joint order after a left/right mirror: ``left_x`` <-> ``right_x``."""
        perm = []
        for name in self.joints:
            if name.startswith("left_"):
                perm.append(self.index["right_" + name[5:]])
            elif name.startswith("right_"):
                perm.append(self.index["left_" + name[6:]])
            else:
                perm.append(self.index[name])
        return tuple(perm)


MEDIAPIPE_33 = JointSchema(
    name="mediapipe33",
    joints=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    # MediaPipe's POSE_CONNECTIONS
    edges=(
        (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
        (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
        (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
        (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
        (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
    ),
    root=0,
)

_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

COCO_17 = JointSchema(
    name="coco17",
    joints=_COCO_NAMES,
    edges=(
        (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
        (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    ),
    root=0,
)

INFANT_20 = JointSchema(
    name="infant20",
    joints=_COCO_NAMES + ("neck", "spine", "mid_hip"),
    # CoGMA graph (child, parent); neck (17) is the root.
    edges=(
        (0, 17), (1, 0), (2, 0), (3, 1), (4, 2), (5, 17), (6, 17), (7, 5), (8, 6), (9, 7),
        (10, 8), (11, 19), (12, 19), (13, 11), (14, 12), (15, 13), (16, 14), (18, 17), (19, 18),
    ),
    root=17,
)

OPENPOSE_18 = JointSchema(
    name="openpose18",
    joints=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    ),
    # OpenPose/DWPose limb sequence, in drawing order (its colours follow this order).
    edges=(
        (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
        (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
    ),
    root=1,
)

SCHEMAS: dict[str, JointSchema] = {s.name: s for s in (MEDIAPIPE_33, COCO_17, INFANT_20, OPENPOSE_18)}


def get_schema(name: str | JointSchema) -> JointSchema:
    """The schema called ``name``; a :class:`SchemaError` naming the known ones otherwise."""
    if isinstance(name, JointSchema):
        return name
    try:
        return SCHEMAS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(SCHEMAS))
        raise SchemaError(f"unknown joint schema {name!r}; known schemas: {known}") from None
