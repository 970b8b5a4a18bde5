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

    Shapes are for one recording; a batch (:meth:`FusedSkeletonPreprocess.parts_batch`) puts ``B`` first.
    Joint columns come in blocks of ``V + 1``: the ``V`` joints and one extra column (in ``position`` and
    ``velocity`` a by-product of the body axis, not a feature: give it zero weight; in ``seen`` the mask),
    so that a ``[.., 2, V + 1]`` view lines the x and y blocks up with the seen flags."""

    position: Tensor  # [G, 2(V+1)] x then y of each joint, centred, times seen and mask
    velocity: Tensor  # [G, 2(V+1)] native-rate central differences, in input units per two frames (x rate)
    seen: Tensor  # [G, V+1] 1 where the joint is seen and the sample is real; last column: the mask
    mask: Tensor  # [G, 1] 1 inside the recording where the trunk is seen
    along: Tensor  # [1, 1] rotation and scale: x' = along * x + across * y,
    across: Tensor  # [1, 1]                     y' = along * y - across * x
    rate: Tensor  # [1, 1] half the frame rate: velocity * rate is in input units per second


class _Frames(NamedTuple):
    """Per-frame quantities of :meth:`FusedSkeletonPreprocess._frames` (any leading dimensions)."""

    seen: Tensor  # [..., T, V+1] seen flags of the joints; last column: the whole trunk is seen (ok)
    rel: Tensor  # [..., T, 2(V+1)] joint - trunk centre where seen; extra columns: body axis where ok
    stats: Tensor  # [..., T, 4]: (x^2 + y^2) seen, number seen, body axis x, y — for frames whose trunk is seen


def _xy(x: Tensor, rows: int = 2) -> Tensor:
    """``[..., G, rows * C]`` -> ``[..., G, rows, C]``. The sizes are spelled out: with a symbolic length the
    exported reshape is a free view in ExecuTorch (inside an XNNPACK delegate, a reshape is a copy)."""
    return x.reshape(*x.shape[:-1], rows, x.shape[-1] // rows)


def _flat(x: Tensor) -> Tensor:
    """``[..., G, rows, C]`` -> ``[..., G, rows * C]`` (a free view, as :func:`_xy`)."""
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def _joints(x: Tensor, blocks: int = 2) -> Tensor:
    """The joint columns of a grid part: ``[..., G, blocks * (V + 1)]`` -> ``[..., G, blocks * V]``."""
    return _flat(_xy(x, blocks)[..., :-1])


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
    * per joint, x, y and the seen flag line up as ``[T, 2, V + 1]`` and ``[T, 1, V + 1]`` views: the
      flags are computed and gathered once per joint (not once per coordinate), and the extra
      column carries the trunk flag (``ok``) beside them and the body axis beside the positions,
      so the body axis costs no matrix product of its own;
    * resampling gathers the four frames around each grid sample (``index_select`` with flat
      indices) and makes positions and central-difference velocities from them, so no
      frame-rate-sized velocity tensor is ever made; the interpolation weights, seen flags and
      mask are multiplied together on the ``V + 1`` flags first, then applied once to the
      coordinates;
    * rotation, scale and the velocities' frame rate are three per-recording numbers (``along``,
      ``across``, ``rate``) applied on the grid — they commute with interpolation and differences —
      so a model can fold them into its first layer (the student does, in eval mode).

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

        seen, seen_bias = all_seen([*src, trunk])  # [V + 1]: each joint, then the whole trunk (ok)
        vis = np.zeros((len(used), 3 * j))  # picks the visibility of the used input joints
        vis[np.arange(len(used)), 3 * np.asarray(used) + 2] = 1.0
        # x block: the V joints' x, then the body axis' x (masked by ok, as the recording statistics want it)
        rel_xy = np.concatenate([on(rel, 0), on(axis[None], 0), on(rel, 1), on(axis[None], 1)])
        vis_bias = np.full(len(used), -self.min_visibility)
        return {"rel_vis": np.concatenate([rel_xy, vis]), "rel_vis_bias": np.r_[np.zeros(len(rel_xy)), vis_bias],
                "seen": seen, "seen_bias": seen_bias}

    @staticmethod
    def _grid_constants(parents: np.ndarray) -> dict[str, np.ndarray]:
        v = len(parents)
        w = v + 1  # a block: the joints and the extra column
        joints = np.r_[np.arange(v), w + np.arange(v)]  # the joint columns of [x block, y block]
        stats_sq = np.zeros((4, 2 * w))
        stats_sq[0, joints] = 1.0  # sum over joints of (x^2 + y^2) * seen (then * ok)
        stats_seen = np.zeros((4, w))
        stats_seen[1, :v] = 1.0  # number of seen joints (then * ok)
        stats_axis = np.zeros((4, 2 * w))
        stats_axis[2, v] = stats_axis[3, w + v] = 1.0  # the body axis, already * ok
        bone = np.eye(v)
        bone[np.arange(v), parents] -= 1.0  # bone = joint - parent (root: zero)
        # a bone needs both of its joints seen: relu(seen(joint) + seen(parent) - 1) (root: its own seen)
        bone_seen = np.zeros((2 * v, 2 * v))
        for block in (0, v):
            bone_seen[block + np.arange(v), block + np.arange(v)] += 1.0
            bone_seen[block + np.arange(v), block + parents] += 1.0
        last = np.zeros((1, w))
        last[0, v] = 1.0
        return {"stats_sq": stats_sq, "stats_seen": stats_seen, "stats_axis": stats_axis,
                "pick_last": last,  # the extra column of a [.., V + 1] tensor
                "bone": np.kron(np.eye(2), bone), "bone_seen": bone_seen, "bone_seen_bias": -np.ones(2 * v),
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
        lin = nn.functional.linear
        position, velocity, seen = self.joint_parts(p)
        seen2 = torch.cat([seen, seen], dim=-1)
        bone = lin(position, self.bone) * torch.relu(lin(seen2, self.bone_seen, self.bone_seen_bias))
        feats = [self.turn(position, p), self.turn(velocity, p), self.turn(bone, p), seen]
        return torch.cat(feats, dim=-1) * p.mask

    @staticmethod
    def joint_parts(p: GridParts) -> tuple[Tensor, Tensor, Tensor]:
        """Position ``[..., G, 2V]``, velocity per second ``[..., G, 2V]`` and seen ``[..., G, V]``: the joint
        columns of the grid parts, before rotation and scale."""
        return _joints(p.position), _joints(p.velocity) * p.rate, _joints(p.seen, 1)

    def turn(self, x: Tensor, p: GridParts) -> Tensor:
        """Rotation and scale of ``[G, 2V]`` (x then y of each joint) by the recording's ``along``/``across``."""
        return x * p.along + nn.functional.linear(x, self.swap) * (p.across * self.swap_sign)

    def parts(self, keypoints: Tensor, fps: Tensor, grid_len: int, schema: str) -> GridParts:
        """One recording ``[T, J, 3]`` (or ``[1, T, J, 3]``) at ``fps [1]`` on a grid of ``grid_len`` samples:
        the phone's program.

        Two-dimensional throughout, but for ``[.., 2, V + 1]`` views that infer the time axis: a reshape
        that merges a batch dimension into the symbolic grid length makes torch.export guard on it; and
        ``index_select`` with 1-D indices is the fast gather in ExecuTorch."""
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
        # one product for coordinates and visibility, [T, 2(V+1) + U] (4 column tiles, not 5), then two slices
        out = lin(flat, c("rel_vis"), c("rel_vis_bias"))
        n = 2 * self.pick_last.shape[-1]  # the coordinate columns: x and y blocks of V + 1
        coords, vis = out[..., :n], out[..., n:]
        seen_in = torch.clamp(torch.floor(vis) + 1.0, 0.0, 1.0)  # [T, U]: vis >= 0.5
        seen = torch.relu(lin(seen_in, c("seen"), c("seen_bias")))  # [T, V+1]: each joint; the whole trunk (ok)
        ok = lin(seen, self.pick_last)  # [T, 1]
        # [T, 2(V+1)]: joint - trunk centre where the joint is seen; the body axis where the trunk is
        rel = _flat(_xy(coords) * _xy(seen, 1))
        stats = (lin(rel * rel, self.stats_sq) + lin(seen, self.stats_seen)) * ok + lin(rel, self.stats_axis)
        return _Frames(seen, rel, stats)

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
        valid = torch.clamp(torch.floor(last + 1e-3 - pos) + 1.0, 0.0, 1.0)[..., None]  # pos <= last + 1e-3, 0/1
        base = torch.floor(pos)
        frac = (pos - base)[..., None]
        # the frames around each sample, in float (exact integers) and cast once: i0 - 1, i0, i1 = i0 + 1, i1 + 1
        i0 = torch.minimum(base, last)
        i1 = torch.minimum(base + 1.0, last)
        index = [x.to(torch.int64) for x in (torch.clamp(i0 - 1.0, min=0.0), i0, i1, torch.minimum(i1 + 1.0, last))]
        ra, rp, rq, rd = (_xy(take(f.rel, i)) for i in index)
        sa, sp, sq_, sd = (take(f.seen, i) for i in index)
        # per joint (and, in the last column, the trunk): seen at both neighbouring frames, inside the recording
        both = sp * sq_
        mask = nn.functional.linear(both, self.pick_last) * valid  # [G, 1]: real sample, trunk seen at both frames
        seen = both * mask
        # the interpolation weights times the flags, on V + 1 columns, then applied to x and y at once
        wq = seen * frac
        wp = seen - wq
        position = rp * _xy(wp, 1) + rq * _xy(wq, 1)
        # central differences at the native rate, each needing both of its neighbours seen
        velocity = (rq - ra) * _xy(wp * sa, 1) + (rd - rp) * _xy(wq * sd, 1)
        rate = 0.5 * fps[..., None]
        return GridParts(_flat(position), _flat(velocity), seen, mask, along, across, rate)
