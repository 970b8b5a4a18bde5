"""Two fixes to coremltools 9.0's PyTorch front end, registered through its own extension point
(``register_torch_op``, the "composite operator" mechanism) before converting the student.

* ``prod.dim_int`` has no converter ("Unsupported fx node prod"): it is a plain ``reduce_prod``.
* ``where(cond, a, b)`` skips broadcasting when any shape is symbolic (a dynamic T), and
  ``select`` then takes its output shape from ``a`` and ``b`` alone; a condition with more
  dimensions than ``a``/``b`` (``where(mask[20, 33], vis[1, T, 1, 33], ...)``) yields a wrongly
  shaped result and a later ``concat`` fails ("Dimension mismatch in concat"). The fix broadcasts
  ``a`` and ``b`` against the condition by adding an exact zero of the condition's shape.

Both are exact (no change in numbers). Registration is idempotent and only affects conversions
in this process.
"""

from __future__ import annotations

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend import _utils
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op
    from coremltools.converters.mil.mil import types
    from coremltools.converters.mil.mil.ops.defs._utils import promote_input_dtypes
    from coremltools.converters.mil.mil.types.symbolic import any_symbolic
    from coremltools.converters.mil.mil.types.type_mapping import builtin_to_string

    def prod(context, node):  # noqa: ANN001 - coremltools' converter signature
        inputs = _get_inputs(context, node, min_expected=1)
        x = inputs[0]
        dim = inputs[1].val if len(inputs) > 1 and inputs[1] is not None else None
        keep = bool(inputs[2].val) if len(inputs) > 2 and inputs[2] is not None else False
        axes = None if dim is None else [int(dim)]
        context.add(mb.reduce_prod(x=x, axes=axes, keep_dims=keep, name=node.name))

    if _TORCH_OPS_REGISTRY.get_func("prod") is None:  # a later coremltools may bring its own
        register_torch_op(prod, torch_alias=["prod.dim_int"])

    @register_torch_op(torch_alias=["where.self"], override=True)
    def where(context, node):  # noqa: ANN001
        inputs = _get_inputs(context, node)
        if len(inputs) != 3:  # where(cond) = nonzero: coremltools' own converter
            from coremltools.converters.mil.frontend.torch.ops import _nonzero_as_tuple

            _nonzero_as_tuple(context, node, inputs[0])
            return
        cond, a, b = inputs
        a, b = promote_input_dtypes([a, b])
        if not types.is_bool(cond.dtype):
            cond = mb.cast(x=cond, dtype="bool")
        if any(any_symbolic(v.shape) for v in (cond, a, b)):
            c = mb.cast(x=cond, dtype=builtin_to_string(a.dtype))
            zero = mb.sub(x=c, y=c)  # exact zeros, shaped like the condition
            a, b = mb.add(x=a, y=zero), mb.add(x=b, y=zero)
        else:
            cond, a, b = _utils.pymil_broadcast_tensors([cond, a, b])
        context.add(mb.select(cond=cond, a=a, b=b, name=node.name))

    _registered = True
