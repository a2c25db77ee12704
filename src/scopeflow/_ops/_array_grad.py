"""Gradients of the shape, indexing, reduction and matmul ops.

Each gradient is written with ordinary ops, so one function serves eager tapes and
symbolic differentiation alike. Sizes may be unknown while a graph is built, so the
gradients never do shape arithmetic in Python when a size matters: a few private ops
read the runtime shape of a reference tensor instead (``ReshapeLike``,
``BroadcastReduced``, ``SplitLike``, ``GetItemGrad``). Those ops are linear in their
first input and have gradients of their own, which is what makes second derivatives
through reshapes, reductions, concatenation and indexing work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._array import GETITEM, concat, getitem, normalize_axis, transpose, where
from ._core import NO_ATTRS, apply
from ._grad_util import GradRecord, ones_like, register_gradient, unbroadcast, zeros_like
from ._math import cast, divide, equal, multiply
from ._reduce import matmul, reduce_sum
from ._registry import Spec, register_op

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__: list[str] = []


# -- private helper ops ----------------------------------------------------------------


def _first_dtype_second_shape(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, _), (_, like_shape) = specs
    return ((dtype, like_shape),)


def _like_first(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return (specs[0],)


def _reshape_like_kernel(attrs: dict[str, Any], g: NDArray[Any], like: NDArray[Any]) -> Any:
    return np.reshape(g, like.shape)


# ``g`` with the elements in order and the runtime shape of ``like``: the gradient of a
# reshape whose input size may be unknown while the graph is built.
RESHAPE_LIKE = register_op(
    "ReshapeLike", infer=_first_dtype_second_shape, kernel=_reshape_like_kernel, same_dtype=False
)


def _broadcast_reduced_kernel(attrs: dict[str, Any], g: NDArray[Any], like: NDArray[Any]) -> Any:
    axis: tuple[int, ...] | None = attrs["axis"]
    if axis is not None and not attrs["keepdims"]:
        # Put back the reduced dimensions (size 1) so ``g`` lines up with ``like``.
        g = np.expand_dims(g, tuple(normalize_axis(a, like.ndim) for a in axis))
    return np.broadcast_to(g, like.shape).copy()


# ``g``, the result of reducing ``like`` over ``axis``, spread back over ``like``'s
# shape: the gradient of a sum, and the building block of the mean and max gradients.
BROADCAST_REDUCED = register_op(
    "BroadcastReduced",
    infer=_first_dtype_second_shape,
    kernel=_broadcast_reduced_kernel,
    same_dtype=False,
)


def _split_like_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, g_shape), *parts = specs
    axis: int = attrs["axis"]
    out: list[Spec] = []
    for _, shape in parts:
        if g_shape is None:
            out.append((dtype, shape))
            continue
        a = normalize_axis(axis, len(g_shape))
        if shape is None:
            out.append((dtype, (*g_shape[:a], None, *g_shape[a + 1 :])))
            continue
        # Off the axis the gradient knows what the concatenation knew; along it, the part.
        merged = tuple(shape[i] if i == a or d is None else d for i, d in enumerate(g_shape))
        out.append((dtype, merged))
    return tuple(out)


def _split_like_kernel(attrs: dict[str, Any], g: NDArray[Any], *parts: NDArray[Any]) -> Any:
    axis: int = attrs["axis"]
    bounds = np.cumsum([p.shape[axis] for p in parts])[:-1]
    return tuple(np.split(g, bounds, axis=axis))


# ``g`` cut along ``axis`` into pieces sized like the runtime shapes of ``parts``: the
# gradient of a concatenation (one output per concatenated input).
SPLIT_LIKE = register_op(
    "SplitLike", infer=_split_like_rule, kernel=_split_like_kernel, same_dtype=False
)


def _getitem_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], like: NDArray[Any]) -> Any:
    out = np.zeros(like.shape, dtype=g.dtype)
    # Basic indexing selects each element at most once, so assigning through the key
    # scatters ``g`` exactly where the indexed elements came from.
    out[attrs["key"]] = g
    return out


# Zeros of ``like``'s runtime shape with ``g`` written at ``key``: the gradient of
# ``like[key]``.
GETITEM_GRAD = register_op(
    "GetItemGrad", infer=_first_dtype_second_shape, kernel=_getitem_grad_kernel, same_dtype=False
)


def _reshape_like(g: Any, like: Any) -> Any:
    return apply(RESHAPE_LIKE, (g, like), NO_ATTRS)


def _broadcast_reduced(g: Any, like: Any, attrs: dict[str, Any]) -> Any:
    """``g`` (``like`` reduced with the reduction ``attrs``) broadcast back to ``like``."""
    reduction = {"axis": attrs["axis"], "keepdims": attrs["keepdims"]}
    return apply(BROADCAST_REDUCED, (g, like), reduction)


@register_gradient("ReshapeLike")
def _reshape_like_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return _reshape_like(dy, op.inputs[0]), None


@register_gradient("BroadcastReduced")
def _broadcast_reduced_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return reduce_sum(dy, op.attrs["axis"], op.attrs["keepdims"]), None


@register_gradient("SplitLike")
def _split_like_grad(op: GradRecord, *dys: Any) -> Sequence[Any]:
    return (concat(list(dys), op.attrs["axis"]), *([None] * len(dys)))


@register_gradient("GetItemGrad")
def _getitem_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return apply(GETITEM, (dy,), {"key": op.attrs["key"]}), None


# -- shape and indexing ops ------------------------------------------------------------


@register_gradient("Reshape")
def _reshape_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (_reshape_like(dy, op.inputs[0]),)


@register_gradient("Transpose")
def _transpose_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    perm: tuple[int, ...] | None = op.attrs["perm"]
    if perm is None:
        # Reversing the dimensions is its own inverse, whatever the rank.
        return (transpose(dy),)
    inverse = sorted(range(len(perm)), key=perm.__getitem__)
    return (transpose(dy, inverse),)


@register_gradient("Concat")
def _concat_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    if len(op.inputs) == 1:
        return (dy,)
    pieces = apply(SPLIT_LIKE, (dy, *op.inputs), {"axis": op.attrs["axis"]})
    return tuple(pieces)


@register_gradient("Stack")
def _stack_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    axis: int = op.attrs["axis"]
    # Index the stacked dimension from the side ``axis`` counts from, so the key needs
    # no rank (which may be unknown while a graph is built).
    if axis >= 0:
        lead: tuple[Any, ...] = (slice(None),) * axis
        return [getitem(dy, (*lead, i)) for i in range(op.attrs["N"])]
    trail: tuple[Any, ...] = (slice(None),) * (-axis - 1)
    return [getitem(dy, (Ellipsis, i, *trail)) for i in range(op.attrs["N"])]


@register_gradient("Select")
def _select_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    condition, x, y = op.inputs
    zero = zeros_like(dy)
    dx = where(condition, dy, zero)
    dyy = where(condition, zero, dy)
    return None, unbroadcast(dx, x), unbroadcast(dyy, y)


@register_gradient("GetItem")
def _getitem_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (apply(GETITEM_GRAD, (dy, op.inputs[0]), {"key": op.attrs["key"]}),)


# -- reductions ------------------------------------------------------------------------


@register_gradient("Sum")
def _sum_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (_broadcast_reduced(dy, op.inputs[0], op.attrs),)


@register_gradient("Mean")
def _mean_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    # How many elements each mean combined, from the runtime shape (a sum of ones of
    # x's shape; ``ones_like`` is not differentiable, so this adds nothing to tapes).
    count = reduce_sum(ones_like(x), op.attrs["axis"], op.attrs["keepdims"])
    return (_broadcast_reduced(divide(dy, count), x, op.attrs),)


def _max_grad_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (_, x_shape), _, (dy_dtype, _) = specs
    return ((dy_dtype, x_shape),)


def _max_grad_kernel(
    attrs: dict[str, Any], x: NDArray[Any], top: NDArray[Any], dy: NDArray[Any]
) -> Any:
    hits = (x == _broadcast_reduced_kernel(attrs, top, x)).astype(dy.dtype)
    ties = hits.sum(axis=attrs["axis"], keepdims=attrs["keepdims"])
    return hits * _broadcast_reduced_kernel(attrs, dy / ties, x)


# The gradient of reduce_max/reduce_min as one op (inputs x, the max, dy): seven eager
# ops before, a third of a traced model's "explain" gradient. Its own gradient (below)
# is built from the separate ops, so higher orders are unchanged.
MAX_GRAD = register_op("MaxGrad", infer=_max_grad_rule, kernel=_max_grad_kernel, same_dtype=False)


def _selected(x: Any, top: Any, dtype: Any, attrs: dict[str, Any]) -> tuple[Any, Any]:
    """(1 where ``x`` equals its reduced ``top``, else 0; how many per reduction)."""
    hits = cast(equal(x, _broadcast_reduced(top, x, attrs)), dtype)
    return hits, reduce_sum(hits, attrs["axis"], attrs["keepdims"])


@register_gradient("MaxGrad")
def _max_grad_grad(op: GradRecord, g: Any) -> Sequence[Any]:
    # Linear in dy; piecewise constant in x and the max (no gradient there).
    x, top, dy = op.inputs
    hits, ties = _selected(x, top, dy.dtype, op.attrs)
    summed = reduce_sum(multiply(g, hits), op.attrs["axis"], op.attrs["keepdims"])
    return None, None, divide(summed, ties)


@register_gradient("Max")
def _max_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    # Ties split the gradient evenly, as TensorFlow does: each of k equal maxima gets
    # dy / k, so the gradient sums to dy whichever element a perturbation would favour.
    (x,) = op.inputs
    (top,) = op.outputs
    reduction = {"axis": op.attrs["axis"], "keepdims": op.attrs["keepdims"]}
    return (apply(MAX_GRAD, (x, top, dy), reduction),)


@register_gradient("Min")
def _min_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    # The same rule as reduce_max: the gradient goes to the selected elements.
    return list(_max_grad(op, dy))


def _group_axes(axis: tuple[int, ...] | None, rank: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(rank))
    return tuple(sorted({normalize_axis(a, rank) for a in axis}))


def _as_groups(x: NDArray[Any], axis: tuple[int, ...] | None) -> tuple[NDArray[Any], Any]:
    """``x`` as a 2-D array (one row per reduction group) and a function undoing it."""
    axes = _group_axes(axis, x.ndim)
    perm = [i for i in range(x.ndim) if i not in axes] + list(axes)
    moved = np.transpose(x, perm)
    n = math.prod(x.shape[a] for a in axes)
    rows = moved.reshape(-1, n)  # callers pass non-empty arrays, so n > 0

    def restore(flat: NDArray[Any]) -> NDArray[Any]:
        return np.transpose(flat.reshape(moved.shape), np.argsort(perm))

    return rows, restore


def _others(rows: NDArray[Any]) -> NDArray[Any]:
    """For each element, the product of the other elements of its row (no division)."""
    ones = np.ones((rows.shape[0], 1), rows.dtype)
    left = np.cumprod(np.concatenate([ones, rows[:, :-1]], axis=1), axis=1)
    right = np.cumprod(np.concatenate([ones, rows[:, :0:-1]], axis=1), axis=1)[:, ::-1]
    out: NDArray[Any] = left * right
    return out


def _prod_others_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    if x.size == 0:
        return np.zeros_like(x)
    rows, restore = _as_groups(x, attrs["axis"])
    return restore(_others(rows))


def _prod_others_grad_kernel(attrs: dict[str, Any], g: NDArray[Any], x: NDArray[Any]) -> Any:
    # d/dx_j of sum_i g_i * prod_{k != i} x_k is sum_{i != j} g_i * prod_{k != i, j} x_k.
    # Rows are sorted by how many zeros they hold, so no term divides by zero:
    if x.size == 0:
        return np.zeros_like(x)
    rows, restore = _as_groups(x, attrs["axis"])
    grows, _ = _as_groups(g, attrs["axis"])
    out = np.zeros_like(rows)
    zeros = rows == 0
    count = zeros.sum(axis=1)
    safe = np.where(zeros, 1, rows)
    nonzero_prod = np.prod(safe, axis=1, keepdims=True)
    # No zero: the sum of every g_i * others_i except the j-th, divided by x_j.
    r = count == 0
    if r.any():
        terms = grows[r] * _others(rows[r])
        out[r] = (terms.sum(axis=1, keepdims=True) - terms) / rows[r]
    # One zero, at k: only the products that leave out x_k survive. For j != k that is
    # the pair (k, j): g_k * P / x_j with P the product of the non-zero elements; for
    # j == k it is every pair (i, k): P * sum_{i != k} g_i / x_i.
    r = count == 1
    if r.any():
        z, q, gr, sr = zeros[r], nonzero_prod[r], grows[r], safe[r]
        g_k = np.sum(np.where(z, gr, 0), axis=1, keepdims=True)
        at_k = q * np.sum(np.where(z, 0, gr / sr), axis=1, keepdims=True)
        out[r] = np.where(z, at_k, g_k * q / sr)
    # Two zeros, at k and l: only the pair (k, l) survives: dx_k = g_l * P, dx_l = g_k * P.
    r = count == 2
    if r.any():
        z, q, gr = zeros[r], nonzero_prod[r], grows[r]
        g_zeros = np.sum(np.where(z, gr, 0), axis=1, keepdims=True)
        out[r] = np.where(z, (g_zeros - gr) * q, 0)
    # Three or more zeros: every product of all-but-two elements is 0.
    return restore(out)


# For each element of ``x``, the product of the other elements of its reduction group:
# the gradient of ``reduce_prod``, exact where some elements are zero.
PROD_OTHERS = register_op("ProdOthers", infer=_like_first, kernel=_prod_others_kernel)
# ``g`` pulled back through ``ProdOthers`` at ``x`` (the second derivative of a product).
PROD_OTHERS_GRAD = register_op(
    "ProdOthersGrad", infer=_like_first, kernel=_prod_others_grad_kernel, same_dtype=False
)


@register_gradient("Prod")
def _prod_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    others = apply(PROD_OTHERS, (x,), {"axis": op.attrs["axis"]})
    return (multiply(_broadcast_reduced(dy, x, op.attrs), others),)


@register_gradient("ProdOthers")
def _prod_others_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (apply(PROD_OTHERS_GRAD, (dy, op.inputs[0]), {"axis": op.attrs["axis"]}),)


@register_gradient("ProdOthersGrad")
def _prod_others_grad_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    msg = (
        "No gradient is defined for op type 'ProdOthersGrad': third and higher "
        "derivatives of reduce_prod are not implemented"
    )
    raise LookupError(msg)


@register_gradient("MatMul")
def _matmul_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    a, b = op.inputs
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    # With A = op(a), B = op(b) and C = A @ B: dA = dC @ B^T and dB = A^T @ dC; each is
    # written back in the layout its input is stored in, folding the transposes into
    # matmul's flags rather than adding transpose ops.
    if not ta and not tb:
        da = matmul(dy, b, transpose_b=True)
        db = matmul(a, dy, transpose_a=True)
    elif not ta:
        da = matmul(dy, b)
        db = matmul(dy, a, transpose_a=True)
    elif not tb:
        da = matmul(b, dy, transpose_b=True)
        db = matmul(a, dy)
    else:
        da = matmul(b, dy, transpose_a=True, transpose_b=True)
        db = matmul(dy, a, transpose_a=True, transpose_b=True)
    sa, sb = a.shape, b.shape
    if sa is not None and sb is not None and len(sa) == 2 and len(sb) == 2:
        # Matrices: no batch dimensions, so each gradient already has its input's shape.
        # (A SumToShape here would keep ``a``, say a hidden layer, alive in a backward
        # graph only for its run-time shape.)
        return da, db
    # Batch dimensions broadcast in the product; sum them back to each input's shape.
    return unbroadcast(da, a), unbroadcast(db, b)
