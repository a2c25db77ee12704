"""Ops whose axes or permutation are known only when the graph runs.

``reduce_*``, ``argmax``/``argmin``, ``concat``, ``expand_dims``, ``transpose`` and
``gather`` take their axis as an attr: a Python int, or a tensor whose value folds while
the graph is built (``_static``). When it is a graph tensor that does not fold (a
placeholder, a traced function's argument), the public functions build the ``Dynamic*``
op of this module instead, which takes the axis as its last input and reads it when it
runs, as TensorFlow's ops do. The kernels check the axis (``InvalidArgumentError`` from
a session for one out of range or repeated) and then run the static op's kernel.

Static shapes say only what holds for every axis the input could hold: a reduction of a
rank-r input over a scalar axis has rank r - 1 and unknown sizes, with ``keepdims`` rank
r; a concatenation has the rank of its inputs. Gradients are in ``_runtime_axes_grad``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np

from ._array import CONCAT, TRANSPOSE, _same_dtype, is_tensor_like, normalize_axis
from ._core import apply
from ._indexing import GATHER, _gather_rule
from ._reduce import ALL, ANY, ARGMAX, ARGMIN, MAX, MEAN, MIN, PROD, SUM, _axes
from ._registry import Spec, register_op
from ._shape import EXPAND_DIMS
from ._static import is_symbolic, pack_shape, static_value
from ._transform import _PAD_MODES, PAD, _pad_rule

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._registry import OpDef

T = TypeVar("T")

__all__ = ["runtime_axis"]

_INDEX_TYPES: Final = (np.dtype(np.int32), np.dtype(np.int64))


def runtime_axis(
    value: Any, error: TypeError | None, convert: Callable[[Any, str], T] | None, what: str
) -> tuple[T | None, Any]:
    """``(known, tensor)`` for an axis argument that a static path rejected with ``error``.

    ``known`` is ``convert(value, what)`` of the axis's value when it folds while the
    graph is built (the caller then takes its static path), ``tensor`` the int tensor to
    pass as the op's input when it does not. ``error`` is raised again for values
    holding no graph tensor (None: ``(None, None)`` is returned for those).
    """
    holds = is_symbolic(value) or (
        isinstance(value, (list, tuple)) and any(is_symbolic(v) for v in value)
    )
    if holds:
        known = static_value(value)
        if known is None:
            return None, pack_shape(value) if isinstance(value, (list, tuple)) else value
        if convert is not None:
            return convert(known, what), None
    if error is not None:
        raise error
    return None, None


def _axis_count(spec: Spec, what: str, *, scalar: bool) -> int | None:
    """How many axes the axis input holds (None: not known here); rejects bad specs."""
    dtype, shape = spec
    if dtype.kind not in "iu":
        msg = f"{what} must be an integer tensor, got dtype {dtype.name}"
        raise TypeError(msg)
    if shape is None:
        return 1 if scalar else None
    if len(shape) > (0 if scalar else 1):
        kind = "a scalar" if scalar else "a scalar or a vector"
        msg = f"{what} must be {kind}, got a tensor of shape {list(shape)}"
        raise ValueError(msg)
    return 1 if not shape else shape[0]


def _ints(value: np.ndarray[Any, Any], what: str, *, scalar: bool) -> tuple[int, ...]:
    """The axis input's value as ints; ``ValueError`` for a bad rank or dtype."""
    if value.dtype.kind not in "iu" or value.ndim > (0 if scalar else 1):
        kind = "an integer scalar" if scalar else "an integer scalar or vector"
        msg = f"{what} must be {kind}, got {value.dtype.name} of shape {value.shape}"
        raise ValueError(msg)
    return tuple(int(v) for v in value.reshape(-1))


# -- reductions ------------------------------------------------------------------------------


def _reduce_shape(shape: Any, count: int | None, keepdims: bool) -> Any:
    if shape is None:
        return None
    if count is not None and count > len(shape):
        msg = f"axis has {count} entries but the input has rank {len(shape)}"
        raise ValueError(msg)
    if count == 0:
        return shape
    if keepdims:
        # Each size is 1 (reduced) or the input's: known only where both agree.
        return tuple(1 if d == 1 else None for d in shape)
    return None if count is None else (None,) * (len(shape) - count)


def reduction_axes(axes: np.ndarray[Any, Any], rank: int) -> tuple[int, ...]:
    """A reduction's axis input as axes in ``[0, rank)``: ``ValueError`` for a bad one."""
    return _axes(_ints(axes, "axis", scalar=False), rank)


def _dynamic_reduce(static: OpDef, kinds: str, what: str) -> OpDef:
    kernel = static.kernel

    def rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        (dtype, shape), axes = specs
        if dtype.kind not in kinds:
            msg = f"expected {what} inputs, got dtype {dtype.name}"
            raise TypeError(msg)
        count = _axis_count(axes, "axis", scalar=False)
        return ((dtype, _reduce_shape(shape, count, bool(attrs["keepdims"]))),)

    def run(attrs: dict[str, Any], x: np.ndarray[Any, Any], axes: np.ndarray[Any, Any]) -> Any:
        static_attrs = {"axis": reduction_axes(axes, x.ndim), "keepdims": attrs["keepdims"]}
        return kernel(static_attrs, x)

    return register_op(
        f"Dynamic{static.type}", infer=rule, kernel=run, same_dtype=False,
        differentiable=static.differentiable,
    )  # fmt: skip


DYNAMIC_REDUCTIONS: Final = {
    op.type: _dynamic_reduce(op, kinds, what)
    for op, kinds, what in (
        (SUM, "iufc", "numeric"),
        (MEAN, "iufc", "numeric"),
        (MAX, "iuf", "real"),
        (MIN, "iuf", "real"),
        (PROD, "iufc", "numeric"),
        (ANY, "b", "bool"),
        (ALL, "b", "bool"),
    )
}


def reduce(static: OpDef, x: Any, axis: Any, keepdims: bool, name: str | None) -> Any:
    """The reduction ``static`` of ``x`` over the run-time ``axis`` tensor."""
    opdef = DYNAMIC_REDUCTIONS[static.type]
    return apply(opdef, (x, axis), {"keepdims": bool(keepdims)}, name)


# -- argmax / argmin ---------------------------------------------------------------------------


def _dynamic_arg(static: OpDef) -> OpDef:
    kernel = static.kernel

    def rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        (dtype, shape), axis = specs
        if dtype.kind not in "biuf":
            msg = f"expected real or bool inputs, got dtype {dtype.name}"
            raise TypeError(msg)
        _axis_count(axis, "axis", scalar=True)
        out = attrs["output_type"]
        if out not in _INDEX_TYPES:
            msg = f"output_type must be int32 or int64, got {out!r:.40}"
            raise TypeError(msg)
        if shape is None:
            return ((out, None),)
        if not shape:
            msg = "the input is a scalar: there is no axis to reduce"
            raise ValueError(msg)
        return ((out, (None,) * (len(shape) - 1)),)

    def run(attrs: dict[str, Any], x: np.ndarray[Any, Any], axis: np.ndarray[Any, Any]) -> Any:
        (a,) = _ints(axis, "axis", scalar=True)
        return kernel({"axis": a, "output_type": attrs["output_type"]}, x)

    return register_op(
        f"Dynamic{static.type}", infer=rule, kernel=run, same_dtype=False, differentiable=False
    )


DYNAMIC_ARGMAX: Final = _dynamic_arg(ARGMAX)
DYNAMIC_ARGMIN: Final = _dynamic_arg(ARGMIN)


def arg(static: OpDef, x: Any, axis: Any, output_type: Any, name: str | None) -> Any:
    """``argmax``/``argmin`` (``static``) of ``x`` along the run-time ``axis`` tensor."""
    opdef = DYNAMIC_ARGMAX if static is ARGMAX else DYNAMIC_ARGMIN
    return apply(opdef, (x, axis), {"output_type": output_type}, name)


# -- concat ------------------------------------------------------------------------------------


def _concat_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    *values, axis = specs
    if not values:
        msg = "the op concatenates no inputs"
        raise ValueError(msg)
    if type(attrs["N"]) is not int or attrs["N"] != len(values):
        msg = f"attribute N is {attrs['N']!r:.20} but the op concatenates {len(values)} inputs"
        raise ValueError(msg)
    dtype = _same_dtype(tuple(values))
    _axis_count(axis, "axis", scalar=True)
    known = [s for _, s in values if s is not None]
    if not known:
        return ((dtype, None),)
    rank = len(known[0])
    if rank == 0:
        msg = "cannot concatenate scalars; use sf.stack() to make a vector"
        raise ValueError(msg)
    if any(len(s) != rank for s in known):
        msg = f"all inputs must have the same rank, got shapes {known}"
        raise ValueError(msg)
    # Any dimension may be the axis, whose size is the sum of the inputs' sizes.
    return ((dtype, (None,) * rank),)


def concat_axis(axis: np.ndarray[Any, Any], rank: int) -> int:
    """A concatenation's axis input in ``[0, rank)``: ``ValueError`` for a bad one."""
    (a,) = _ints(axis, "axis", scalar=True)
    return normalize_axis(a, rank)


def _concat_kernel(attrs: dict[str, Any], *inputs: np.ndarray[Any, Any]) -> Any:
    *xs, axis = inputs
    return CONCAT.kernel({"axis": concat_axis(axis, xs[0].ndim)}, *xs)


DYNAMIC_CONCAT: Final = register_op("DynamicConcat", infer=_concat_rule, kernel=_concat_kernel)


def concat(xs: tuple[Any, ...], axis: Any, name: str | None) -> Any:
    """The concatenation of ``xs`` along the run-time ``axis`` tensor."""
    # The op's Python values take the dtype of its first tensor: let that be a value.
    if not any(is_tensor_like(x) for x in xs):
        from ._core import convert_to_tensor  # imported here: rarely needed

        xs = tuple(convert_to_tensor(x) for x in xs)
    return apply(DYNAMIC_CONCAT, (*xs, axis), {"N": len(xs)}, name)


# -- expand_dims -------------------------------------------------------------------------------


def _expand_dims_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), axis = specs
    _axis_count(axis, "axis", scalar=True)
    return ((dtype, None if shape is None else (None,) * (len(shape) + 1)),)


def _expand_dims_kernel(
    attrs: dict[str, Any], x: np.ndarray[Any, Any], axis: np.ndarray[Any, Any]
) -> Any:
    (a,) = _ints(axis, "axis", scalar=True)
    return EXPAND_DIMS.kernel({"axis": normalize_axis(a, x.ndim + 1)}, x)


DYNAMIC_EXPAND_DIMS: Final = register_op(
    "DynamicExpandDims", infer=_expand_dims_rule, kernel=_expand_dims_kernel, same_dtype=False
)


# -- transpose ---------------------------------------------------------------------------------


def _transpose_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), perm = specs
    n = _axis_count(perm, "perm", scalar=False)
    if perm[1] is not None and not perm[1]:
        msg = "perm must be a vector, got a scalar"
        raise ValueError(msg)
    if shape is None:
        return ((dtype, None if n is None else (None,) * n),)
    if n is not None and n != len(shape):
        msg = f"perm has {n} entries but the input has rank {len(shape)}"
        raise ValueError(msg)
    if len(set(shape)) == 1:
        return ((dtype, shape),)  # every dimension has the same size (or none is known)
    return ((dtype, (None,) * len(shape)),)


def transpose_perm(perm: np.ndarray[Any, Any], rank: int) -> tuple[int, ...]:
    """A permutation input's value; ``ValueError`` unless it permutes ``range(rank)``."""
    if perm.ndim != 1:
        msg = f"perm must be a vector, got {perm.dtype.name} of shape {perm.shape}"
        raise ValueError(msg)
    p = _ints(perm, "perm", scalar=False)
    if len(p) != rank:
        msg = f"perm {list(p)} has {len(p)} entries but the input has rank {rank}"
        raise ValueError(msg)
    if sorted(p) != list(range(rank)):
        msg = f"perm {list(p)} is not a permutation of 0..{rank - 1}"
        raise ValueError(msg)
    return p


def _transpose_kernel(
    attrs: dict[str, Any], x: np.ndarray[Any, Any], perm: np.ndarray[Any, Any]
) -> Any:
    return TRANSPOSE.kernel({"perm": transpose_perm(perm, x.ndim)}, x)


DYNAMIC_TRANSPOSE: Final = register_op(
    "DynamicTranspose", infer=_transpose_rule, kernel=_transpose_kernel, same_dtype=False
)


def _invert_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    _axis_count((dtype, shape), "perm", scalar=False)
    return ((dtype, shape),)


def _invert_kernel(attrs: dict[str, Any], perm: np.ndarray[Any, Any]) -> Any:
    p = transpose_perm(perm, perm.size)
    return np.argsort(p).astype(perm.dtype)


# The inverse of a permutation vector (the gradient of a run-time transpose).
INVERT_PERMUTATION: Final = register_op(
    "InvertPermutation", infer=_invert_rule, kernel=_invert_kernel, differentiable=False
)


# -- gather ------------------------------------------------------------------------------------


def _gather_dyn_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    params, indices, axis = specs
    _axis_count(axis, "axis", scalar=True)
    batch = attrs["batch_dims"]
    if type(batch) is not int or batch < 0:
        msg = f"batch_dims must be an int >= 0, got {batch!r:.20}"
        raise ValueError(msg)
    # The static rule with the smallest axis the batch dimensions allow: its dtype checks,
    # and the output's rank (which does not depend on the axis).
    ((dtype, shape),) = _gather_rule((params, indices), {"axis": batch, "batch_dims": batch})
    return ((dtype, None if shape is None else (None,) * len(shape)),)


def gather_axis(axis: np.ndarray[Any, Any], rank: int, batch: int) -> int:
    """A gather's axis input in ``[batch, rank)``: ``ValueError`` for a bad one."""
    (a,) = _ints(axis, "axis", scalar=True)
    if not -rank <= a < rank:
        msg = f"axis {a} is out of range for rank {rank} (params): expected {-rank} <= a < {rank}"
        raise ValueError(msg)
    a = normalize_axis(a, rank)
    if a < batch:
        msg = f"axis {a} is less than batch_dims ({batch})"
        raise ValueError(msg)
    return a


def _gather_kernel(
    attrs: dict[str, Any],
    params: np.ndarray[Any, Any],
    idx: np.ndarray[Any, Any],
    axis: np.ndarray[Any, Any],
) -> Any:
    batch = attrs["batch_dims"]
    a = gather_axis(axis, params.ndim, batch)
    return GATHER.kernel({"axis": a, "batch_dims": batch}, params, idx)


DYNAMIC_GATHER: Final = register_op(
    "DynamicGather", infer=_gather_dyn_rule, kernel=_gather_kernel, same_dtype=False
)


# -- pad -------------------------------------------------------------------------------------


def _pad_dyn_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), (pdt, pshape), *c = specs
    if len(c) > 1:
        msg = f"the op takes at most one fill value input, got {len(c)}"
        raise ValueError(msg)
    if attrs["mode"] not in _PAD_MODES:
        msg = f"mode must be one of {', '.join(_PAD_MODES)}, got {attrs['mode']!r:.20}"
        raise ValueError(msg)
    _pad_rule(((dtype, None), *c), {"paddings": (), "mode": attrs["mode"]})  # the fill value
    if pdt.kind not in "iu":
        msg = f"paddings must be an integer tensor, got dtype {pdt.name}"
        raise TypeError(msg)
    if pshape is not None and (len(pshape) != 2 or pshape[1] not in (2, None)):
        msg = f"paddings must have shape [rank, 2], got a tensor of shape {list(pshape)}"
        raise ValueError(msg)
    rows = None if pshape is None else pshape[0]
    if shape is not None and rows is not None and rows != len(shape):
        msg = f"paddings has {rows} rows but the input has rank {len(shape)}"
        raise ValueError(msg)
    rank = len(shape) if shape is not None else rows
    return ((dtype, None if rank is None else (None,) * rank),)


def pad_pairs(paddings: np.ndarray[Any, Any], rank: int) -> tuple[tuple[int, int], ...]:
    """A paddings input's value as pairs; ``ValueError`` for a bad shape or negative size."""
    if paddings.dtype.kind not in "iu" or paddings.shape != (rank, 2) or (paddings < 0).any():
        msg = (
            f"paddings must be a [{rank}, 2] tensor of non-negative ints for an input of "
            f"rank {rank}, got {paddings.tolist()!r:.80}"
        )
        raise ValueError(msg)
    return tuple((int(a), int(b)) for a, b in paddings)


def _pad_dyn_kernel(
    attrs: dict[str, Any], x: np.ndarray[Any, Any], paddings: np.ndarray[Any, Any], *c: Any
) -> Any:
    static_attrs = {**attrs, "paddings": pad_pairs(paddings, x.ndim)}
    return PAD.kernel(static_attrs, x, *c)


# "Pad" with the paddings as its second input (then the fill value, if a tensor).
DYNAMIC_PAD: Final = register_op(
    "DynamicPad", infer=_pad_dyn_rule, kernel=_pad_dyn_kernel, same_dtype=False
)
