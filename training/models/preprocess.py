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
