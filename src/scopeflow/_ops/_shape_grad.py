"""Gradients of the shape, creation and indexing ops of ``_shape``, ``_transform`` and
``_indexing``.

As in ``_array_grad``, sizes may be unknown while a graph is built, so the gradients that
scatter or fold values back (``TileGrad``, ``MirrorPadGrad``, ``GatherGrad``,
``BooleanMaskGrad``, ``TensorGetItemGrad``) are private ops that read the runtime shape
of a reference input. Each is linear in its first input and its own gradient is the
forward op again, which gives second (and higher) derivatives.

``Shape``, ``Size``, ``Rank``, ``Range``, ``ZerosLike`` and ``OnesLike`` have integer or
constant outputs and no gradient (registered as not differentiable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._array import GETITEM, concat, normalize_axis
from ._array_grad import _reshape_like
from ._core import apply
from ._grad_util import GradRecord, register_gradient
from ._indexing import BOOLEAN_MASK, GATHER, TENSOR_GETITEM, _batched, _mask_key, resolve_key
from ._math import multiply, subtract
from ._reduce import reduce_sum
from ._registry import Spec, register_op
from ._shape import runtime_dims
from ._transform import PAD, TILE, one_hot

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__: list[str] = []


def _first_dtype_second_shape(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ((specs[0][0], specs[1][1]),)


def _grad_op(op_type: str, kernel: Any) -> Any:
    return register_op(op_type, infer=_first_dtype_second_shape, kernel=kernel, same_dtype=False)


# -- private ops: the adjoints of tile, mirror pad, gather, boolean_mask, tensor getitem -------


def _tile_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], x: Any, multiples: Any) -> Any:
    reps = runtime_dims(multiples, "multiples")
    # Tile's output along dimension i is multiples[i] copies of the input: view it as
    # (copies, size) pairs and add the copies up.
    folded = g.reshape([n for pair in zip(reps, x.shape, strict=True) for n in pair])
    return folded.sum(axis=tuple(range(0, 2 * x.ndim, 2))).astype(g.dtype, copy=False)


TILE_GRAD = _grad_op("TileGrad", _tile_grad_kernel)


def _mirror_pad_grad_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    pads: tuple[tuple[int, int], ...] = attrs["paddings"]
    if shape is None:
        return ((dtype, (None,) * len(pads)),)
    return (
        (
            dtype,
            tuple(None if d is None else d - a - b for d, (a, b) in zip(shape, pads, strict=True)),
        ),
    )


def _mirror_pad_grad_kernel(attrs: dict[str, Any], g: NDArray[Any]) -> Any:
    edge = 1 if attrs["mode"] == "REFLECT" else 0
    out = g
    for axis, (a, b) in enumerate(attrs["paddings"]):
        moved = np.moveaxis(out, axis, 0)
        n = moved.shape[0] - a - b
        folded = moved[a : a + n].copy()
        # Each padded value is a copy of an inner one: send its gradient back there.
        if a:
            folded[edge : edge + a] += moved[:a][::-1]
        if b:
            folded[n - edge - b : n - edge] += moved[a + n :][::-1]
        out = np.moveaxis(folded, 0, axis)
    # Not np.ascontiguousarray: it turns the gradient of a scalar into a 1-d array.
    return np.asarray(out, order="C")


MIRROR_PAD_GRAD = register_op(
    "MirrorPadGrad", infer=_mirror_pad_grad_rule, kernel=_mirror_pad_grad_kernel
)


def _gather_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], params: Any, idx: Any) -> Any:
    axis = normalize_axis(attrs["axis"], params.ndim)
    batch: int = attrs["batch_dims"]
    out = np.zeros(params.shape, g.dtype)
    if not batch:
        np.add.at(out, (*(slice(None),) * axis, idx), g)
        return out
    flat, i, count = _batched(out, idx, batch)
    gflat = g.reshape(count, *g.shape[batch:])
    for b in range(count):
        np.add.at(flat[b], (*(slice(None),) * (axis - batch), i[b]), gflat[b])
    return flat.reshape(params.shape)


GATHER_GRAD = _grad_op("GatherGrad", _gather_grad_kernel)


def _mask_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], x: Any, mask: Any) -> Any:
    out = np.zeros(x.shape, g.dtype)
    out[_mask_key(attrs["axis"], mask, x)] = g
    return out


BOOLEAN_MASK_GRAD = _grad_op("BooleanMaskGrad", _mask_grad_kernel)


def _getitem_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], x: Any, *slots: Any) -> Any:
    out = np.zeros(x.shape, g.dtype)
    basic, advanced = resolve_key(attrs["key"], x, slots)
    view = out[basic]
    if advanced is None:
        view[...] = g
    elif advanced[1].dtype == np.bool_:
        view[_mask_key(advanced[0], advanced[1], view)] = g
    else:
        # Repeated indices each add their share.
        np.add.at(view, (*(slice(None),) * advanced[0], advanced[1]), g)
    return out


TENSOR_GETITEM_GRAD = _grad_op("TensorGetItemGrad", _getitem_grad_kernel)


@register_gradient("TileGrad")
def _tile_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return apply(TILE, (dy, op.inputs[2]), op.attrs), None, None


@register_gradient("MirrorPadGrad")
def _mirror_pad_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (apply(PAD, (dy,), op.attrs),)


@register_gradient("GatherGrad")
def _gather_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return apply(GATHER, (dy, op.inputs[2]), op.attrs), None, None


@register_gradient("BooleanMaskGrad")
def _mask_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return apply(BOOLEAN_MASK, (dy, op.inputs[2]), op.attrs), None, None


@register_gradient("TensorGetItemGrad")
def _tensor_getitem_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    slots = op.inputs[2:]
    return (apply(TENSOR_GETITEM, (dy, *slots), op.attrs), None, *([None] * len(slots)))


# -- the public ops --------------------------------------------------------------------------


@register_gradient("DynamicFill")
def _dynamic_fill_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return None, reduce_sum(dy)


@register_gradient("DynamicReshape")
def _dynamic_reshape_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return _reshape_like(dy, op.inputs[0]), None


@register_gradient("ExpandDims")
@register_gradient("Squeeze")
def _same_elements_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (_reshape_like(dy, op.inputs[0]),)


@register_gradient("Tile")
def _tile_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, multiples = op.inputs
    return apply(TILE_GRAD, (dy, x, multiples), op.attrs), None


@register_gradient("Split")
def _split_grad(op: GradRecord, *dys: Any) -> Sequence[Any]:
    if len(dys) == 1:
        return (dys[0],)
    return (concat(list(dys), op.attrs["axis"]),)


@register_gradient("Pad")
def _pad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    pads: tuple[tuple[int, int], ...] = op.attrs["paddings"]
    if op.attrs["mode"] != "CONSTANT":
        return (apply(MIRROR_PAD_GRAD, (dy,), op.attrs),)
    inner = apply(GETITEM, (dy,), {"key": tuple(slice(a, -b or None) for a, b in pads)})
    if len(op.inputs) == 1:
        return (inner,)
    # Every padded element is the constant: its gradient is what the inner part lacks.
    return inner, subtract(reduce_sum(dy), reduce_sum(inner))


@register_gradient("OneHot")
def _one_hot_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    indices, on, *rest = op.inputs
    dyn = rest[1:]  # the depth tensor, when only the run time knew it
    if on.dtype.kind not in "fc":
        return (None,) * len(op.inputs)
    depth = dyn[0] if dyn else op.attrs["depth"]
    hot = one_hot(indices, depth, 1, 0, op.attrs["axis"], dy.dtype)
    d_on = reduce_sum(multiply(dy, hot))
    return (None, d_on, subtract(reduce_sum(dy), d_on), *(None for _ in dyn))


@register_gradient("Gather")
def _gather_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    params, indices = op.inputs
    return apply(GATHER_GRAD, (dy, params, indices), op.attrs), None


@register_gradient("BooleanMask")
def _boolean_mask_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, mask = op.inputs
    return apply(BOOLEAN_MASK_GRAD, (dy, x, mask), op.attrs), None


@register_gradient("TensorGetItem")
def _tensor_getitem_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, *slots = op.inputs
    grad = apply(TENSOR_GETITEM_GRAD, (dy, x, *slots), op.attrs)
    return (grad, *([None] * len(slots)))
