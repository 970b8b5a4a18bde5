"""Zero-shot fidgety assessment: compare skeleton embeddings with text-prompt embeddings.

The teacher is trained on writhing-age recordings only, with co-learning
aligning its embedding (through the ``text`` head) to the multimodal LLM's
text features. Fidgety-age recordings are then scored, without any training
on fidgety labels, by ``cos(z, absent) - cos(z, present)`` where ``z`` is the
projected skeleton embedding and the prompts are
:data:`training.colearning.FIDGETY_PROMPTS` embedded by the same LLM
(cached by ``cogma features``). Higher = fidgety movements more likely absent.

What it can show depends entirely on the text encoder: with the tiny
random-weight stand-ins used in tests and benchmarks the prompt embeddings
carry no meaning, so chance-level results are the honest expectation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .colearning import ColearningHeads, FeatureCache
from .engine import PreparedRecording, autocast
from .models.windowed import WindowedClassifier


@torch.no_grad()
def recording_embeddings(model: WindowedClassifier, recordings: Sequence[PreparedRecording],
                         device: str = "cpu") -> torch.Tensor:
    device = torch.device(device)
    model.eval().to(device)
    out = []
    for rec in recordings:
        kp = torch.from_numpy(rec.keypoints)[None].to(device)
        fps = torch.tensor([rec.fps], dtype=torch.float32, device=device)
        grid_len = int(np.ceil((kp.shape[1] - 1) * model.windows.grid_fps / rec.fps)) + 1
        with autocast(device, True):
            out.append(model(kp, fps, grid_len=grid_len).embedding.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def zero_shot_scores(model: WindowedClassifier, heads: ColearningHeads, cache: FeatureCache,
                     recordings: Sequence[PreparedRecording], space: str = "text", device: str = "cpu") -> np.ndarray:
    """``cos(z, absent) - cos(z, present)`` per recording (higher: fidgety movements more likely absent)."""
    if space not in heads.heads:
        raise ValueError(f"the teacher has no {space!r} co-learning head (heads: {', '.join(heads.heads)})")
    present, absent = cache.prompts.get(f"{space}/present"), cache.prompts.get(f"{space}/absent")
    if present is None or absent is None:
        raise ValueError(f"the feature cache holds no {space} prompt embeddings (make it with `cogma features`)")
    z = torch.nn.functional.normalize(heads.heads[space](recording_embeddings(model, recordings, device)), dim=-1)
    p = torch.nn.functional.normalize(torch.as_tensor(present, dtype=torch.float32), dim=0)
    a = torch.nn.functional.normalize(torch.as_tensor(absent, dtype=torch.float32), dim=0)
    return (z @ a - z @ p).numpy().astype(np.float64)
