"""The int8 recipes and the two XNNPACKQuantizer fixes (integer index arithmetic, filter on cat)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from export.bundle import InputContract
from export.data import Sample
from export.exporter import torch_export
from export.quantize import QuantRecipe, default_recipes, quantize

CONTRACT = InputContract("mediapipe33", 15.0, 30.0, 60, 600)


class IndexAndCat(nn.Module):
    """The constructs of the real student that broke PT2E: ``i0 + 1`` on int64 indices before a
    gather (resampling) and a ``cat`` of preprocessing features before the first weighted layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(33 * 4, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, landmarks, fps):
        t = landmarks.shape[1]
        pos = torch.arange(t).to(fps.dtype) * (fps / 30.0)
        i0 = torch.minimum(torch.floor(pos).to(torch.int64), torch.tensor(t - 1))
        i1 = torch.minimum(i0 + 1, torch.tensor(t - 1))
        idx0 = i0[None, :, None, None].expand(1, t, 33, 3)
        idx1 = i1[None, :, None, None].expand(1, t, 33, 3)
        a0, a1 = torch.gather(landmarks, 1, idx0), torch.gather(landmarks, 1, idx1)
        feats = torch.cat([a0, (a1 - a0) * fps[:, None, None, None] * 100.0], dim=-1)[..., :4]
        h = torch.relu(self.conv(feats.reshape(1, t, 33 * 4).transpose(1, 2))).mean(dim=2)
        return torch.sigmoid(self.head(h))


def _samples(n: int = 4) -> list[Sample]:
    rng = np.random.default_rng(0)
    return [Sample(rng.uniform(0.2, 0.8, (120 + 10 * i, 33, 3)).astype(np.float32), 30.0, i % 2, f"i{i}", f"k{i}")
            for i in range(n)]


def _observed(prepared_or_converted) -> list[str]:
    return [n.args[0].name for n in prepared_or_converted.graph.nodes
            if n.op == "call_function" and "quantize_per_tensor" in str(n.target) and hasattr(n.args[0], "name")]


def test_integer_index_arithmetic_survives_quantization():
    torch.manual_seed(0)
    model = IndexAndCat().eval()
    samples = _samples()
    exported = torch_export(model, samples[0].tensors(), CONTRACT)
    x, f = samples[1].tensors()
    # raised "gather(): Expected dtype int32/int64 for index" before the fix
    whole = quantize(exported, QuantRecipe("whole graph"), samples)
    weighted = quantize(exported, QuantRecipe("weighted only", only_in=("conv", "head")), samples)
    with torch.no_grad():
        assert torch.isfinite(whole(x, f)).all() and whole(x, f).shape == (1, 3)
        assert torch.allclose(weighted(x, f), model(x, f), atol=0.05)


def test_recipe_filter_also_applies_to_cat():
    model = IndexAndCat().eval()
    samples = _samples()
    exported = torch_export(model, samples[0].tensors(), CONTRACT)
    whole = quantize(exported, QuantRecipe("whole graph"), samples)
    weighted = quantize(exported, QuantRecipe("weighted only", only_in=("conv", "head")), samples)
    assert any(name.startswith("cat") for name in _observed(whole))
    assert not any(name.startswith("cat") for name in _observed(weighted))


def test_default_recipes_go_from_whole_graph_to_weighted_units():
    recipes = default_recipes(IndexAndCat())
    assert recipes[0].only_in is None
    assert recipes[1].only_in == ("conv", "head")
