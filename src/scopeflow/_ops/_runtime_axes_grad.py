"""Gradients of the ops of ``_runtime_axes``, whose axes are read when the graph runs.

As TensorFlow does, a reduction's gradient reshapes ``dy`` to the reduced shape with the
kept dimensions (``ReducedShape``, computed from the input's run-time shape and the axis
input) and broadcasts it back over the input, with ordinary differentiable ops, so higher
derivatives come for free. The other gradients pass the axis input on to a run-time
version of the static op's gradient (``DynamicSplitLike``, ``DynamicGatherGrad``) or
invert the permutation when the graph runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._array_grad import (
    _prod_others_grad_kernel,
    _prod_others_kernel,
    _reshape_like,
    _split_like_kernel,
)
from ._core import NO_ATTRS, apply
from ._grad_util import GradRecord, broadcast_like, ones_like, register_gradient
from ._math import cast, divide, equal, multiply, subtract
from ._reduce import reduce_sum
from ._registry import Spec, register_op
from ._runtime_axes import (
    DYNAMIC_CONCAT,
    DYNAMIC_GATHER,
    DYNAMIC_PAD,
    DYNAMIC_REDUCTIONS,
    DYNAMIC_TRANSPOSE,
    INVERT_PERMUTATION,
    _axis_count,
    _gather_dyn_rule,
    _pad_dyn_rule,
    concat_axis,
    gather_axis,
    pad_pairs,
    reduction_axes,
)
from ._shape import reshape
from ._shape_grad import _gather_grad_kernel, _mirror_pad_grad_kernel

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__: list[str] = []

_INT32: Final = np.dtype(np.int32)


# -- reductions ------------------------------------------------------------------------------


def _reduced_shape_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (_, shape), axes = specs
    _axis_count(axes, "axis", scalar=False)
    return ((_INT32, (None,) if shape is None else (len(shape),)),)


def _reduced_shape_kernel(attrs: dict[str, Any], x: NDArray[Any], axes: NDArray[Any]) -> Any:
    reduced = reduction_axes(axes, x.ndim)
    return np.array([1 if i in reduced else d for i, d in enumerate(x.shape)], _INT32)


# The run-time shape of ``x`` reduced over the axis input with keepdims=True.
REDUCED_SHAPE: Final = register_op(
    "ReducedShape", infer=_reduced_shape_rule, kernel=_reduced_shape_kernel,
    same_dtype=False, differentiable=False,
)  # fmt: skip


def _kept(op: GradRecord, g: Any) -> Any:
    """``g``, shaped like the op's output, reshaped as if the op had kept its dimensions."""
    return reshape(g, apply(REDUCED_SHAPE, tuple(op.inputs), NO_ATTRS))


def _sum(x: Any, axes: Any) -> Any:
    return apply(DYNAMIC_REDUCTIONS["Sum"], (x, axes), {"keepdims": True})


@register_gradient("DynamicSum")
def _sum_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return broadcast_like(_kept(op, dy), op.inputs[0]), None


@register_gradient("DynamicMean")
def _mean_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, axes = op.inputs
    # How many elements each mean combined, from the run-time shape (as for "Mean").
    count = _sum(ones_like(x), axes)
    return broadcast_like(divide(_kept(op, dy), count), x), None


@register_gradient("DynamicMax")
@register_gradient("DynamicMin")
def _extreme_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    # Ties share the gradient evenly, as for "Max".
    x, axes = op.inputs
    hits = cast(equal(x, _kept(op, op.outputs[0])), dy.dtype)
    ties = _sum(hits, axes)
    return multiply(divide(hits, ties), _kept(op, dy)), None


def _prod_others_rule(n_inputs: int) -> Any:
    def rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        if len(specs) != n_inputs:
            msg = f"the op takes {n_inputs} inputs, got {len(specs)}"
            raise ValueError(msg)
        _axis_count(specs[-1], "axis", scalar=False)
        return (specs[0],)

    return rule


def _prod_others_run(attrs: dict[str, Any], x: NDArray[Any], axes: NDArray[Any]) -> Any:
    return _prod_others_kernel({"axis": reduction_axes(axes, x.ndim)}, x)


def _prod_others_grad_run(
    attrs: dict[str, Any], g: NDArray[Any], x: NDArray[Any], axes: NDArray[Any]
) -> Any:
    return _prod_others_grad_kernel({"axis": reduction_axes(axes, x.ndim)}, g, x)


# "ProdOthers" and "ProdOthersGrad" with the axes as an input (see ``_array_grad``).
DYNAMIC_PROD_OTHERS: Final = register_op(
    "DynamicProdOthers", infer=_prod_others_rule(2), kernel=_prod_others_run, same_dtype=False
)
DYNAMIC_PROD_OTHERS_GRAD: Final = register_op(
    "DynamicProdOthersGrad", infer=_prod_others_rule(3), kernel=_prod_others_grad_run,
    same_dtype=False,
)  # fmt: skip


@register_gradient("DynamicProd")
def _prod_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, axes = op.inputs
    others = apply(DYNAMIC_PROD_OTHERS, (x, axes), NO_ATTRS)
    return multiply(broadcast_like(_kept(op, dy), x), others), None


@register_gradient("DynamicProdOthers")
def _prod_others_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, axes = op.inputs
    return apply(DYNAMIC_PROD_OTHERS_GRAD, (dy, x, axes), NO_ATTRS), None


@register_gradient("DynamicProdOthersGrad")
def _prod_others_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    msg = (
        "No gradient is defined for op type 'DynamicProdOthersGrad': third and higher "
        "derivatives of reduce_prod are not implemented"
    )
    raise LookupError(msg)


# -- concat ------------------------------------------------------------------------------------


def _split_like_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, g_shape), *parts, axis = specs
    _axis_count(axis, "axis", scalar=True)
    out: list[Spec] = []
    for _, shape in parts:
        if shape is None and g_shape is not None:
            shape = (None,) * len(g_shape)
        out.append((dtype, shape))  # each piece has its part's run-time shape
    return tuple(out)


def _split_like_run(attrs: dict[str, Any], g: NDArray[Any], *inputs: NDArray[Any]) -> Any:
    *parts, axis = inputs
    return _split_like_kernel({"axis": concat_axis(axis, g.ndim)}, g, *parts)


# "SplitLike" with the axis as its last input: the gradient of a run-time concat.
DYNAMIC_SPLIT_LIKE: Final = register_op(
    "DynamicSplitLike", infer=_split_like_rule, kernel=_split_like_run, same_dtype=False
)


@register_gradient("DynamicConcat")
def _concat_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    *xs, axis = op.inputs
    if len(xs) == 1:
        return dy, None
    pieces = apply(DYNAMIC_SPLIT_LIKE, (dy, *xs, axis), NO_ATTRS)
    return (*pieces, None)


@register_gradient("DynamicSplitLike")
def _split_like_grad(op: GradRecord, *dys: Any) -> Sequence[Any]:
    axis = op.inputs[-1]
    joined = apply(DYNAMIC_CONCAT, (*dys, axis), {"N": len(dys)})
    return (joined, *([None] * len(dys)), None)


# -- expand_dims, transpose, gather --------------------------------------------------------


@register_gradient("DynamicExpandDims")
def _expand_dims_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return _reshape_like(dy, op.inputs[0]), None


@register_gradient("DynamicTranspose")
def _transpose_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    inverse = apply(INVERT_PERMUTATION, (op.inputs[1],), NO_ATTRS)
    return apply(DYNAMIC_TRANSPOSE, (dy, inverse), NO_ATTRS), None


def _gather_grad_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    g, params, indices, axis = specs
    _gather_dyn_rule((params, indices, axis), attrs)  # the forward op's checks
    return ((g[0], params[1]),)


def _gather_grad_run(
    attrs: dict[str, Any], g: NDArray[Any], params: Any, idx: Any, axis: NDArray[Any]
) -> Any:
    batch = attrs["batch_dims"]
    a = gather_axis(axis, params.ndim, batch)
    return _gather_grad_kernel({"axis": a, "batch_dims": batch}, g, params, idx)


# "GatherGrad" with the axis as its last input.
DYNAMIC_GATHER_GRAD: Final = register_op(
    "DynamicGatherGrad", infer=_gather_grad_rule, kernel=_gather_grad_run, same_dtype=False
)


@register_gradient("DynamicGather")
def _gather_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    params, indices, axis = op.inputs
    return apply(DYNAMIC_GATHER_GRAD, (dy, params, indices, axis), op.attrs), None, None


@register_gradient("DynamicGatherGrad")
def _gather_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    _, _, indices, axis = op.inputs
    return apply(DYNAMIC_GATHER, (dy, indices, axis), op.attrs), None, None, None


# -- pad -------------------------------------------------------------------------------------


def _pad_grad_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), paddings = specs
    # The forward rule's checks of the mode and paddings, on the padded shape's rank.
    _pad_dyn_rule(((dtype, shape), paddings), {"mode": attrs["mode"]})
    return ((dtype, None if shape is None else (None,) * len(shape)),)


def _pad_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], paddings: NDArray[Any]) -> Any:
    pairs = pad_pairs(paddings, g.ndim)
    if attrs["mode"] != "CONSTANT":
        return _mirror_pad_grad_kernel({"mode": attrs["mode"], "paddings": pairs}, g)
    return g[tuple(slice(a, n - b) for n, (a, b) in zip(g.shape, pairs, strict=True))].copy()


# The gradient of a run-time pad with respect to its input: the inner part of ``g``, with
# the mirrored copies' gradients added back for REFLECT and SYMMETRIC.
DYNAMIC_PAD_GRAD: Final = register_op(
    "DynamicPadGrad", infer=_pad_grad_rule, kernel=_pad_grad_kernel, same_dtype=False
)


@register_gradient("DynamicPad")
def _pad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    mode = op.attrs["mode"]
    inner = apply(DYNAMIC_PAD_GRAD, (dy, op.inputs[1]), {"mode": mode})
    if len(op.inputs) == 2:
        return inner, None
    # Every padded element is the constant: its gradient is what the inner part lacks.
    return inner, None, subtract(reduce_sum(dy), reduce_sum(inner))


@register_gradient("DynamicPadGrad")
def _pad_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    # Linear in g: its adjoint pads with zeros (CONSTANT) or mirrors (the other modes).
    zero = np.zeros((), dy.dtype)
    attrs = {"mode": op.attrs["mode"], "constant_values": zero}
    return apply(DYNAMIC_PAD, (dy, op.inputs[1]), attrs), None
