"""Skeleton preprocessing as a torch module, shared by every model.

It lives inside the models (and so inside the exported student) so that
training and the phone can never disagree. From Infant-20 keypoints
``[B, T, 20, 3]`` (x, y normalised to the frame, visibility) and the frame
rate it makes:

1. joint visibility (``>= min_visibility``) and frame validity (whole trunk seen);
2. centring on the trunk centre (mean of neck and mid-hip) in every frame;
3. rotation so that the mean body axis (mid-hip -> neck) points up, once per
   recording (the infant may lie at any angle in the picture);
4. scale normalisation by the RMS distance of the joints from the trunk centre;
5. velocities at the native frame rate in body scales per second;
6. resampling onto a fixed-rate grid (``grid_fps``, 15 Hz) by linear
   interpolation; so 25, 30 or 60 fps recordings look alike to the network.

The grid has ``grid_len`` samples (default ``T``, the number of input frames;
exact for ``fps == grid_fps``). With a dynamic ``T`` the output length must
not depend on the *value* of ``fps``, so for ``fps > grid_fps`` the tail of
the grid lies past the end of the recording; those samples are zero and
``mask`` says which are real. Everything is static-shape tensor arithmetic:
no data-dependent control flow, friendly to ``torch.export``.

Output: ``features [B, 7, G, 20]`` (x, y, vx, vy, bone x, bone y, seen) and
``mask [B, G]`` (1 where the grid sample is inside the recording and the
trunk is seen).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from skeleton.schemas import INFANT_20

from .graph import spatial_graph

NUM_FEATURES = 7
_J = INFANT_20.index
_TRUNK = (_J["left_shoulder"], _J["right_shoulder"], _J["left_hip"], _J["right_hip"])
_NECK, _MID_HIP = _J["neck"], _J["mid_hip"]


class SkeletonPreprocess(nn.Module):
    def __init__(self, grid_fps: float = 15.0, min_visibility: float = 0.5):
        super().__init__()
        self.grid_fps = float(grid_fps)
        self.min_visibility = float(min_visibility)
        graph = spatial_graph(INFANT_20)
        # bone = joint - parent; one matrix so it is a single matmul: bones = B @ joints.
        bones = torch.eye(graph.num_joints)
        bones[torch.arange(graph.num_joints), torch.as_tensor(graph.parents)] -= 1.0
        self.register_buffer("bone_matrix", bones, persistent=False)
        self.register_buffer("trunk", torch.tensor(_TRUNK), persistent=False)
        self.register_buffer("parents", torch.as_tensor(graph.parents), persistent=False)

    def forward(
        self, keypoints: Tensor, fps: Tensor, lengths: Tensor | None = None, grid_len: int | None = None
    ) -> tuple[Tensor, Tensor]:
        b, t = keypoints.shape[0], keypoints.shape[1]
        fps = fps.to(keypoints.dtype).reshape(b)
        xy, vis = keypoints[..., :2], keypoints[..., 2]
        seen = (vis >= self.min_visibility).to(xy.dtype)  # [B, T, V]
        frame_ok = seen.index_select(2, self.trunk).amin(dim=2)  # [B, T]: 1 if the whole trunk is seen
        frames = torch.arange(t, device=keypoints.device)
        if lengths is None:
            last = torch.ones_like(fps) * (t - 1)
        else:
            last = (lengths.to(fps.dtype) - 1.0).reshape(b)
            frame_ok = frame_ok * (frames[None, :].to(fps.dtype) <= last[:, None]).to(xy.dtype)

        centre = 0.5 * (xy[:, :, _NECK] + xy[:, :, _MID_HIP])  # [B, T, 2]
        rel = (xy - centre[:, :, None, :]) * seen[..., None]
        weight = seen * frame_ok[..., None]  # joints that count for the recording's statistics
        axis = ((xy[:, :, _NECK] - xy[:, :, _MID_HIP]) * frame_ok[..., None]).sum(dim=1)  # [B, 2]
        axis = axis + torch.tensor([0.0, -1e-6], dtype=xy.dtype, device=xy.device)  # no frame seen: keep upright
        u = axis / torch.sqrt((axis * axis).sum(dim=-1, keepdim=True))
        ux, uy = u[:, 0, None, None], u[:, 1, None, None]
        # rotation taking u to (0, -1), "up" in image coordinates
        x = -uy * rel[..., 0] + ux * rel[..., 1]
        y = -ux * rel[..., 0] - uy * rel[..., 1]
        sq = ((x * x + y * y) * weight).sum(dim=(1, 2))
        scale = torch.sqrt(sq / weight.sum(dim=(1, 2)).clamp_min(1.0)).clamp_min(1e-3)
        pos = torch.stack([x, y], dim=-1) / scale[:, None, None, None]  # [B, T, V, 2]

        # central differences at the native rate; a velocity needs both neighbours seen
        pos_prev = torch.cat([pos[:, :1], pos[:, :-1]], dim=1)
        pos_next = torch.cat([pos[:, 1:], pos[:, -1:]], dim=1)
        seen_prev = torch.cat([seen[:, :1], seen[:, :-1]], dim=1)
        seen_next = torch.cat([seen[:, 1:], seen[:, -1:]], dim=1)
        vel = (pos_next - pos_prev) * (0.5 * fps)[:, None, None, None]
        vel = vel * (seen_prev * seen_next * seen)[..., None]

        ok = torch.ones_like(seen)[..., None] * frame_ok[:, :, None, None]  # broadcast, not expand (Core ML)
        per_frame = torch.cat([pos, vel, seen[..., None], ok], -1)
        grid, valid = self._resample(per_frame, fps, last, t if grid_len is None else grid_len)
        seen_g, ok_g = grid[..., 4], grid[..., 5]
        mask = valid * ok_g[:, :, 0]  # [B, G]
        pos_g = grid[..., 0:2] * seen_g[..., None]
        vel_g = grid[..., 2:4] * seen_g[..., None]
        # a bone exists only where both of its joints are seen
        bone_g = torch.matmul(self.bone_matrix, pos_g) * (seen_g * seen_g.index_select(2, self.parents))[..., None]
        feats = torch.cat([pos_g, vel_g, bone_g, seen_g[..., None]], dim=-1) * mask[:, :, None, None]
        return feats.permute(0, 3, 1, 2).contiguous(), mask

    def _resample(self, per_frame: Tensor, fps: Tensor, last: Tensor, grid_len: int) -> tuple[Tensor, Tensor]:
        """Linear interpolation of ``[B, T, V, C]`` at ``grid_fps``; visibility flags take the min of neighbours."""
        b, _, v, c = per_frame.shape
        steps = torch.arange(grid_len, device=per_frame.device).to(fps.dtype)
        pos = steps[None, :] * (fps / self.grid_fps)[:, None]  # [B, G] in native frames
        valid = (pos <= last[:, None] + 1e-3).to(per_frame.dtype)
        base = torch.floor(pos)
        frac = (pos - base)[:, :, None, None]
        last_i = last.to(torch.int64)[:, None]
        i0 = torch.minimum(base.to(torch.int64), last_i)
        i1 = torch.minimum(i0 + 1, last_i)
        index0 = i0[:, :, None, None].expand(b, grid_len, v, c)
        index1 = i1[:, :, None, None].expand(b, grid_len, v, c)
        a0 = torch.gather(per_frame, 1, index0)
        a1 = torch.gather(per_frame, 1, index1)
        out = a0 * (1.0 - frac) + a1 * frac
        flags = torch.minimum(a0[..., 4:], a1[..., 4:])
        return torch.cat([out[..., :4], flags], dim=-1), valid


# ---------------------------------------------------------------------------------------------- phone version


def _sources(weights: np.ndarray) -> list[list[int]]:
    """Input joints each Infant-20 joint is made from (nonzero mapping weights)."""
    return [np.flatnonzero(row).tolist() for row in weights]


class GridParts(NamedTuple):
    """Recordings on the grid, before rotation and scale (see :class:`FusedSkeletonPreprocess`).

    Shapes are for one recording; a batch (:meth:`FusedSkeletonPreprocess.parts_batch`) puts ``B`` first."""

    position: Tensor  # [G, 2V] x then y of each joint, centred, masked by seen
    velocity: Tensor  # [G, 2V] native-rate central differences in input units per second
    seen: Tensor  # [G, 2V] 1 where the joint is seen (twice: for x and for y)
    mask: Tensor  # [G, 1] 1 inside the recording where the trunk is seen
    along: Tensor  # [1, 1] rotation and scale: x' = along * x + across * y,
    across: Tensor  # [1, 1]                     y' = along * y - across * x


class _Frames(NamedTuple):
    """Per-frame quantities of :meth:`FusedSkeletonPreprocess._frames` (any leading dimensions)."""

    seen2: Tensor  # [..., T, 2V]
    ok: Tensor  # [..., T, 1]
    rel: Tensor  # [..., T, 2V]
    stats: Tensor  # [..., T, 4]: (x^2 + y^2) seen, number seen, body axis x, y — for frames whose trunk is seen


class FusedSkeletonPreprocess(nn.Module):
    """:class:`SkeletonPreprocess`'s features, arranged for ExecuTorch/XNNPACK (the student's version).

    Same features and mask (equal up to float rounding; tested), computed differently so that the
    exported program is a handful of fast, delegated operations on small tensors:

    * everything linear in the raw coordinates (joint mapping, centring, body axis) is a constant
      matrix product over the flattened input ``[T, 3 * J]`` — the joint mapping
      (``skeleton.mapping``) is folded in, so MediaPipe-33 and Infant-20 input differ only in
      constants;
    * visibility flags are exact 0/1 arithmetic: ``seen = clamp(floor(vis - 0.5) + 1, 0, 1)``
      and "all of these joints seen" = ``relu(sum of seen - (n - 1))`` (a derived joint is seen
      when all its sources are, as in ``skeleton.mapping``);
    * recording statistics (body axis, scale) are per-frame matrix products summed over frames
      in float64 (a float32 running sum drifts by 1e-4 over 10 minutes);
    * resampling gathers the four frames around each grid sample (``index_select`` with flat
      indices) and makes positions and central-difference velocities from them, so no
      frame-rate-sized velocity tensor is ever made;
    * rotation and scale are two per-recording numbers (``along``, ``across``) applied on the
      grid — they commute with interpolation and differences — so a model can fold them into
      its first layer (the student does, in eval mode).

    One difference at the recording's very end: when a grid sample falls within 1e-3 frames past
    the last frame, the reference interpolates towards the last frame's velocity, this one
    towards zero (weight <= 1e-3).

    ``forward`` returns ``features [B, G, 7 * 20]`` (time-major, channel ``c * 20 + v`` with ``c``
    in x, y, vx, vy, bone x, bone y, seen: the reference's ``[B, 7, G, 20]`` flattened) and
    ``mask [B, G]``; :meth:`parts` is the per-recording, pre-rotation form.
    """

    def __init__(self, input_schemas: tuple[str, ...] = ("infant20", "mediapipe33"), grid_fps: float = 15.0,
                 min_visibility: float = 0.5):
        super().__init__()
        from skeleton.mapping import get_mapping

        self.grid_fps = float(grid_fps)
        self.min_visibility = float(min_visibility)
        self.input_schemas = tuple(input_schemas)
        graph = spatial_graph(INFANT_20)
        v = graph.num_joints
        for schema in self.input_schemas:
            w = np.eye(v) if schema == "infant20" else get_mapping(schema, "infant20").weights.astype(np.float64)
            for name, value in self._frame_constants(w).items():
                self.register_buffer(f"{schema}_{name}", torch.from_numpy(value.astype(np.float32)), persistent=False)
        for name, value in self._grid_constants(graph.parents).items():
            self.register_buffer(name, torch.from_numpy(value.astype(np.float32)), persistent=False)

    # ------------------------------------------------------------------ constants

    def _frame_constants(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """Matrices on the flattened input frame ``[3 * J]`` (x, y, visibility per joint)."""
        v, j = w.shape
        src = _sources(w)
        used = sorted(set().union(*src))  # input joints the model reads (17 of MediaPipe's 33)
        col = {joint: i for i, joint in enumerate(used)}
        trunk = sorted(set().union(*(src[i] for i in _TRUNK)))
        rel = w - 0.5 * (w[_NECK] + w[_MID_HIP])[None, :]  # [V, J]: joint minus trunk centre
        axis = w[_NECK] - w[_MID_HIP]  # [J]: body axis mid-hip -> neck

        def on(m: np.ndarray, c: int) -> np.ndarray:  # [n, J] acting on coordinate c -> [n, 3J]
            out = np.zeros((m.shape[0], 3 * j))
            out[:, c::3] = m
            return out

        def all_seen(groups: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
            """1 iff every input joint of a group is seen: relu(sum - (n - 1)), exact on 0/1."""
            mat = np.zeros((len(groups), len(used)))
            for r, g in enumerate(groups):
                mat[r, [col[i] for i in g]] = 1.0
            return mat, 1.0 - mat.sum(axis=1)

        seen2, seen2_bias = all_seen([*src, *src])
        ok, ok_bias = all_seen([trunk])
        vis = np.zeros((len(used), 3 * j))  # picks the visibility of the used input joints
        vis[np.arange(len(used)), 3 * np.asarray(used) + 2] = 1.0
        stats_axis = np.zeros((4, 3 * j))
        stats_axis[2:] = np.concatenate([on(axis[None], 0), on(axis[None], 1)])
        return {"vis": vis, "vis_bias": np.full(len(used), -self.min_visibility),
                "seen2": seen2, "seen2_bias": seen2_bias, "ok": ok, "ok_bias": ok_bias,
                "rel": np.concatenate([on(rel, 0), on(rel, 1)]), "stats_axis": stats_axis}

    @staticmethod
    def _grid_constants(parents: np.ndarray) -> dict[str, np.ndarray]:
        v = len(parents)
        stats_sq = np.zeros((4, 2 * v))
        stats_sq[0] = 1.0  # sum over joints of (x^2 + y^2) * seen
        stats_seen = np.zeros((4, 2 * v))
        stats_seen[1] = 0.5  # number of seen joints (seen is there twice)
        bone = np.eye(v)
        bone[np.arange(v), parents] -= 1.0  # bone = joint - parent (root: zero)
        # a bone needs both of its joints seen: relu(seen(joint) + seen(parent) - 1) (root: its own seen)
        bone_seen = np.zeros((2 * v, 2 * v))
        for block in (0, v):
            bone_seen[block + np.arange(v), block + np.arange(v)] += 1.0
            bone_seen[block + np.arange(v), block + parents] += 1.0
        return {"stats_sq": stats_sq, "stats_seen": stats_seen, "bone": np.kron(np.eye(2), bone),
                "bone_seen": bone_seen, "bone_seen_bias": -np.ones(2 * v),
                "swap": np.kron(np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(v)),  # (x, y) -> (y, x)
                "swap_sign": np.concatenate([np.ones(v), -np.ones(v)])}

    # ------------------------------------------------------------------ forward

    def grid_length(self, frames: int, fps_min: float) -> int:
        """Grid samples that cover ``frames`` at the lowest frame rate (works on symbolic ints)."""
        from fractions import Fraction

        ratio = Fraction(self.grid_fps / fps_min).limit_denominator(1000)
        return (frames - 1) * ratio.numerator // ratio.denominator + 1

    def forward(self, keypoints: Tensor, fps: Tensor, lengths: Tensor | None = None, grid_len: int | None = None,
                schema: str = "infant20") -> tuple[Tensor, Tensor]:
        """``[B, T, J, 3]`` keypoints of ``schema`` -> ``(features [B, G, 140], mask [B, G])``."""
        b, t = keypoints.shape[0], keypoints.shape[1]
        lengths = torch.full((b,), t, device=keypoints.device) if lengths is None else lengths
        p = self.parts_batch(keypoints, fps.reshape(b), lengths, t if grid_len is None else grid_len, schema)
        return self.features(p), p.mask[..., 0]

    def features(self, p: GridParts) -> Tensor:
        """``[..., G, 140]`` rotated, scaled and masked features from :meth:`parts` or :meth:`parts_batch`."""
        v = p.seen.shape[-1] // 2
        lin = nn.functional.linear
        bone = lin(p.position, self.bone) * torch.relu(lin(p.seen, self.bone_seen, self.bone_seen_bias))
        feats = [self.turn(p.position, p), self.turn(p.velocity, p), self.turn(bone, p), p.seen[..., :v]]
        return torch.cat(feats, dim=-1) * p.mask

    def turn(self, x: Tensor, p: GridParts) -> Tensor:
        """Rotation and scale of ``[G, 2V]`` (x then y of each joint) by the recording's ``along``/``across``."""
        return x * p.along + nn.functional.linear(x, self.swap) * (p.across * self.swap_sign)

    def parts(self, keypoints: Tensor, fps: Tensor, grid_len: int, schema: str) -> GridParts:
        """One recording ``[T, J, 3]`` (or ``[1, T, J, 3]``) at ``fps [1]`` on a grid of ``grid_len`` samples:
        the phone's program.

        Two-dimensional throughout: a reshape that merges a batch dimension into the symbolic
        grid length makes torch.export guard on it; and ``index_select`` with 1-D indices is the
        fast gather in ExecuTorch."""
        t, j = keypoints.shape[-3], keypoints.shape[-2]
        f = self._frames(keypoints.reshape(t, 3 * j), schema)
        sums = f.stats.sum(dim=0, keepdim=True, dtype=torch.float64).to(keypoints.dtype)  # [1, 4]
        last = torch.ones_like(fps) * (t - 1)  # [1]; a tensor, so a symbolic T stays an integer
        return self._on_grid(f, sums, fps, last, grid_len, lambda x, i: x.index_select(0, i))

    def parts_batch(self, keypoints: Tensor, fps: Tensor, lengths: Tensor, grid_len: int, schema: str) -> GridParts:
        """A zero-padded batch ``[B, T, J, 3]`` at ``fps [B]``, each recording ``lengths [B]`` frames long, at
        once (training and evaluation): the numbers of :meth:`parts` for each recording cut to its length."""
        b, t, j = keypoints.shape[0], keypoints.shape[1], keypoints.shape[2]
        f = self._frames(keypoints.reshape(b, t, 3 * j), schema)
        inside = (torch.arange(t, device=keypoints.device)[None, :] < lengths[:, None]).to(keypoints.dtype)
        sums = (f.stats * inside[..., None]).sum(dim=1, keepdim=True, dtype=torch.float64).to(keypoints.dtype)
        last = (lengths.to(fps.dtype) - 1.0)[:, None]  # [B, 1]

        def take(x: Tensor, i: Tensor) -> Tensor:  # x [B, T, C], i [B, G] -> [B, G, C]
            return torch.gather(x, 1, i[..., None].expand(-1, -1, x.shape[-1]))

        return self._on_grid(f, sums, fps[:, None], last, grid_len, take)

    def _frames(self, flat: Tensor, schema: str) -> _Frames:
        """Per-frame quantities from flattened frames ``[..., T, 3 * J]`` (x, y, visibility per joint)."""
        c = lambda name: getattr(self, f"{schema}_{name}")  # noqa: E731 - constant of this input schema
        lin = nn.functional.linear
        # (constant matrix products pick columns: a column gather is a slow portable kernel in ExecuTorch)
        seen_in = torch.clamp(torch.floor(lin(flat, c("vis"), c("vis_bias"))) + 1.0, 0.0, 1.0)  # [T, U]: vis >= 0.5
        seen2 = torch.relu(lin(seen_in, c("seen2"), c("seen2_bias")))  # [T, 2V]
        ok = torch.relu(lin(seen_in, c("ok"), c("ok_bias")))  # [T, 1]: the whole trunk is seen
        rel = lin(flat, c("rel")) * seen2  # [T, 2V]: joint - trunk centre where seen
        stats = (lin(rel * rel, self.stats_sq) + lin(seen2, self.stats_seen) + lin(flat, c("stats_axis"))) * ok
        return _Frames(seen2, ok, rel, stats)

    def _on_grid(self, f: _Frames, sums: Tensor, fps: Tensor, last: Tensor, grid_len: int,
                 take: Callable[[Tensor, Tensor], Tensor]) -> GridParts:
        """Rotation/scale from the recording sums and resampling onto the grid. ``fps`` and ``last`` are
        ``[1]`` for one recording or ``[B, 1]`` for a batch; ``take(x, index)`` gathers frames."""
        sq, count, ax, ay = sums.split(1, dim=-1)
        ay = ay - 1e-6  # no frame seen: keep upright
        norm = torch.sqrt(ax * ax + ay * ay)
        scale = torch.sqrt(sq / count.clamp_min(1.0)).clamp_min(1e-3)
        # u = axis / |axis| is turned to "up" (0, -1): x' = -uy x + ux y, y' = -ux x - uy y; then / scale
        along, across = -ay / (norm * scale), ax / (norm * scale)

        pos = torch.arange(grid_len, device=fps.device).to(fps.dtype) * (fps / self.grid_fps)  # [..., G] in frames
        valid = (pos <= last + 1e-3).to(fps.dtype)
        base = torch.floor(pos)
        frac = (pos - base)[..., None]
        # the frames around each sample, in float (exact integers) and cast once: i0 - 1, i0, i1 = i0 + 1, i1 + 1
        i0 = torch.minimum(base, last)
        i1 = torch.minimum(base + 1.0, last)
        index = [x.to(torch.int64) for x in (torch.clamp(i0 - 1.0, min=0.0), i0, i1, torch.minimum(i1 + 1.0, last))]
        ra, rp, rq, rd = (take(f.rel, i) for i in index)
        sa, sp, sq_, sd = (take(f.seen2, i) for i in index)
        both = sp * sq_  # a joint is seen at a grid sample if it is at both neighbouring frames
        position = (rp + (rq - rp) * frac) * both
        vel0 = (rq - ra) * (sa * both)  # central differences at the native rate, each needing
        vel1 = (rd - rp) * (sd * both)  # both of its neighbours seen
        velocity = (vel0 + (vel1 - vel0) * frac) * (0.5 * fps[..., None])
        mask = valid[..., None] * take(f.ok, index[1]) * take(f.ok, index[2])
        return GridParts(position, velocity, both, mask, along, across)
