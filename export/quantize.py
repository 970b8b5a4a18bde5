"""int8 for the phone: PT2E static quantization (torchao) with ExecuTorch's XNNPACKQuantizer.

Recipes are tried in order — per-channel int8 everywhere, then with the most sensitive layers
(first and last weighted layers) kept float32 — and the first that holds parity with the eager
model on the calibration (training) recordings is kept. The held-out recordings are never used
to choose, only to check afterwards (``verify``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bundle import InputContract
from .data import Sample
from .tooling import (
    ExportError,
    accumulate_long_sums_in_float64,
    eager_scores,
    first_lines,
    quiet,
    reexport,
    run_graph,
    user_frame,
)

SCHEME = "PT2E static int8 (torchao prepare_pt2e/convert_pt2e, XNNPACKQuantizer, symmetric)"


@dataclass(frozen=True)
class QuantRecipe:
    """One int8 configuration: per-channel weights or not, which modules are quantized at all
    (``only_in``; None: the whole graph) and which of those stay float32 (``keep_fp32``)."""

    name: str
    per_channel: bool = True
    only_in: tuple[str, ...] | None = None
    keep_fp32: tuple[str, ...] = ()

    def node_filter(self) -> Callable[[Any], bool]:
        """For ``XNNPACKQuantizer.set_filter_function``: True where a node may be quantized."""

        def quantize_node(node: Any) -> bool:
            if node.op != "call_function":  # weights, biases, inputs: the op that uses them decides
                return True
            if _is_integer(node):
                return False
            modules = _module_path(node)
            if self.only_in is not None and not any(_within(m, name) for m in modules for name in self.only_in):
                return False
            return not any(_within(m, name) for m in modules for name in self.keep_fp32)

        return quantize_node


def _module_path(node: Any) -> list[str]:
    """Qualified names of the modules a graph node was traced in (``blocks.0.gcn.conv``, ...)."""
    stack = node.meta.get("nn_module_stack") or {}
    return [name.removeprefix("L['self'].") for name, _ in stack.values()]


def _within(module: str, name: str) -> bool:
    return module == name or module.startswith(name + ".")


def default_recipes(module: Any) -> tuple[QuantRecipe, ...]:
    """In order: int8 everywhere; only inside the modules that hold weights (the elementwise arithmetic
    of preprocessing and pooling — coordinates, velocities, logit statistics — stays float32); the
    same with the first and last weighted layers in float32 too (they see the raw features and make
    the logit: the usual sensitive ones)."""
    import torch.nn as nn

    weighted = [n for n, m in module.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    with_weights = tuple(n for n, m in module.named_children() if any(True for _ in m.parameters()))
    recipes = [QuantRecipe("int8 per-channel, whole graph")]
    if with_weights:
        recipes.append(QuantRecipe("int8 per-channel, weighted modules only", only_in=with_weights))
    if with_weights and len(weighted) >= 3:
        recipes.append(QuantRecipe("int8 per-channel, weighted modules only, first and last layers fp32",
                                   only_in=with_weights, keep_fp32=(weighted[0], weighted[-1])))
    return tuple(recipes)


def _is_integer(node: Any) -> bool:
    val = node.meta.get("val")
    return hasattr(val, "dtype") and not val.dtype.is_floating_point


def float_only_quantizer() -> Any:
    """An XNNPACKQuantizer that leaves integer arithmetic alone and obeys its filter everywhere.

    Its ``transform_for_annotation`` (executorch 1.5.1) turns the Python scalar of every
    ``aten.add``/``aten.mul`` into a *float32* tensor constant, also in integer index arithmetic
    such as ``i0 + 1`` before a ``gather``; the index turns float and calibration fails with
    ``gather(): Expected dtype int32/int64 for index``. Integer ops are never quantized, so their
    original scalar arguments are put back and the orphaned constants dropped.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import propagate_annotation

    class FloatOnlyXNNPACKQuantizer(XNNPACKQuantizer):
        def transform_for_annotation(self, model: Any) -> Any:
            integer = {n: n.args for n in model.graph.nodes if n.op == "call_function" and _is_integer(n)}
            model = super().transform_for_annotation(model)
            for node, args in integer.items():
                node.args = args
            for node in list(model.graph.nodes):
                if node.op == "get_attr" and node.target.startswith("_tensor_constant_") and not node.users:
                    model.graph.erase_node(node)
                    delattr(model, node.target)
            model.recompile()
            return model

        def annotate(self, model: Any) -> Any:
            # XNNPACKQuantizer's ``cat`` annotator ignores the filter function (executorch 1.5.1), so
            # feature concatenations in preprocessing were quantized whatever the recipe said. Drop
            # every annotation the filter rejects before annotations are propagated.
            model = self._annotate_for_quantization_config(model)
            if self.filter_fn is not None:
                for node in model.graph.nodes:
                    if node.op == "call_function" and not self.filter_fn(node):
                        node.meta.pop("quantization_annotation", None)
            propagate_annotation(model)
            return model

    return FloatOnlyXNNPACKQuantizer()


def quantize(exported: Any, recipe: QuantRecipe, calibration: Sequence[Sample]) -> Any:
    """PT2E: prepare with the quantizer, calibrate on training recordings, convert."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = float_only_quantizer().set_global(get_symmetric_quantization_config(is_per_channel=recipe.per_channel))
    quantizer.set_filter_function(recipe.node_filter())
    try:
        with quiet():
            prepared = prepare_pt2e(exported.module(), quantizer)
            for s in calibration:
                prepared(*s.tensors())
            return convert_pt2e(prepared)
    except Exception as e:  # torch/torchao raise many types; all mean "this recipe cannot be applied"
        raise ExportError(f"int8 quantization ({recipe.name}) failed: {first_lines(e)}{user_frame(e)}") from None


def _better(corr: float, than: float) -> bool:
    """A NaN correlation (constant scores) never wins."""
    return not np.isnan(corr) and (np.isnan(than) or corr > than)


def choose_int8(module: Any, exported: Any, contract: InputContract, calibration: Sequence[Sample], *,
                min_corr: float, max_auc_drop: float, recipes: Sequence[QuantRecipe] | None = None,
                log: Callable[[str], None] = print) -> tuple[Any, dict[str, Any]]:
    """The first recipe that holds parity on the calibration recordings (else the best one, reported
    as not accepted), re-exported with a dynamic T ready for lowering, and what was tried."""
    from .verify import auc, pearson

    reference = np.stack([eager_scores(module, s) for s in calibration])
    labels = np.array([s.label for s in calibration])
    tried: list[dict[str, Any]] = []
    best: tuple[Any, float, QuantRecipe] | None = None
    for recipe in recipes or default_recipes(module):
        quantized = quantize(exported, recipe, calibration)
        scores = np.stack([run_graph(quantized, s) for s in calibration])
        corr = pearson(reference[:, 0], scores[:, 0])
        drop = auc(labels, reference[:, 0]) - auc(labels, scores[:, 0]) if len(set(labels.tolist())) == 2 else 0.0
        accepted = bool(corr >= min_corr and drop <= max_auc_drop)
        tried.append({"recipe": recipe.name, "per_channel": recipe.per_channel,
                      "only_in": None if recipe.only_in is None else list(recipe.only_in), "keep_fp32": list(recipe.keep_fp32),
                      "selection_corr": round(corr, 6), "selection_auc_drop": round(drop, 6), "accepted": accepted})
        log(f"  {recipe.name}: correlation {corr:.4f}, AUC drop {drop:+.4f} on {len(calibration)} training recordings"
            + (" — accepted" if accepted else ""))
        if accepted:
            best = (quantized, corr, recipe)
            break
        if best is None or _better(corr, best[1]):
            best = (quantized, corr, recipe)
    assert best is not None
    quantized, _, recipe = best
    accumulate_long_sums_in_float64(quantized)
    reexported = reexport(quantized, calibration[0].tensors(), contract, "int8")
    info = {"scheme": SCHEME, "recipe": recipe.name, "per_channel": recipe.per_channel,
            "only_in": None if recipe.only_in is None else list(recipe.only_in), "keep_fp32": list(recipe.keep_fp32), "calibration_recordings": len(calibration),
            "accepted_on_calibration": any(t["accepted"] for t in tried), "tried": tried}
    return reexported, info
