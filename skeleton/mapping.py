"""Vectorized mappings between joint schemas.

Each target joint is a fixed linear combination of source joints (a copy, a
mean, or CoGMA's spine formula), so a whole mapping is one weight matrix
``W[J_dst, J_src]``: ``xy_dst = W @ xy_src``. The same matrix is what the
exported student model embeds, so the phone and training map joints
identically. A derived joint is only as visible as its least visible source.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import SchemaError
from .schemas import JointSchema, get_schema

# Joints that some schemas lack, defined from others (CoGMA's 2-D helpers).
_DERIVED: dict[str, dict[str, float]] = {
    "neck": {"left_shoulder": 0.5, "right_shoulder": 0.5},
    "mid_hip": {"left_hip": 0.5, "right_hip": 0.5},
    "spine": {"neck": 1.0 / 3.0, "mid_hip": 2.0 / 3.0},
}


def _recipe(joint: str, src: JointSchema) -> dict[int, float]:
    """Weights over ``src`` joints that produce ``joint``."""
    if joint in src.index:
        return {src.index[joint]: 1.0}
    if joint not in _DERIVED:
        raise SchemaError(f"cannot map to {joint!r}: schema {src.name} has no such joint")
    weights: dict[int, float] = {}
    for part, w in _DERIVED[joint].items():
        for j, v in _recipe(part, src).items():
            weights[j] = weights.get(j, 0.0) + w * v
    return weights


@dataclass(frozen=True)
class JointMapping:
    source: JointSchema
    target: JointSchema
    weights: np.ndarray  # float32 [J_dst, J_src]

    @property
    def sources(self) -> np.ndarray:
        """bool [J_dst, J_src]: which source joints each target joint uses."""
        return self.weights != 0

    def apply(self, keypoints: np.ndarray) -> np.ndarray:
        """Map ``[..., J_src, 3]`` (x, y, visibility) to ``[..., J_dst, 3]``."""
        kp = np.asarray(keypoints, dtype=np.float32)
        if kp.shape[-2:] != (self.source.num_joints, 3):
            raise SchemaError(
                f"expected keypoints [..., {self.source.num_joints}, 3] for {self.source.name}, "
                f"got shape {tuple(kp.shape)}"
            )
        xy = np.einsum("dj,...jc->...dc", self.weights, kp[..., :2])
        vis = np.where(self.sources, kp[..., None, :, 2], np.inf).min(axis=-1)
        return np.concatenate([xy, vis[..., None]], axis=-1).astype(np.float32)


@lru_cache(maxsize=None)
def _mapping(src_name: str, dst_name: str) -> JointMapping:
    src, dst = get_schema(src_name), get_schema(dst_name)
    weights = np.zeros((dst.num_joints, src.num_joints), dtype=np.float32)
    for d, joint in enumerate(dst.joints):
        for s, w in _recipe(joint, src).items():
            weights[d, s] = w
    weights.setflags(write=False)
    return JointMapping(src, dst, weights)


def get_mapping(source: str | JointSchema, target: str | JointSchema) -> JointMapping:
    """The mapping from ``source`` to ``target`` schema (cached)."""
    return _mapping(get_schema(source).name, get_schema(target).name)


def convert(keypoints: np.ndarray, source: str | JointSchema, target: str | JointSchema) -> np.ndarray:
    """Convert ``[..., J, 3]`` keypoints from one schema to another."""
    return get_mapping(source, target).apply(keypoints)
