"""Shapes as values and tensors made from them: shape, size, rank, zeros/ones/fill and
reshape with a shape tensor, zeros_like, ones_like, range, expand_dims and squeeze.

``sf.shape(x)`` is a tensor: eager, or an op whose value is only known when the graph
runs. ``zeros``, ``ones``, ``fill`` and ``reshape`` take such tensors as shapes. When the
shape's value can be folded while the graph is built (``_static``), they build the same
op as for a Python list and know their full static shape; otherwise they build a
``DynamicFill`` / ``DynamicReshape`` op that reads the shape at run time, with as much of
the static shape as is known (``[None, 3]`` from ``[sf.shape(x)[0], 3]``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

from .._graph import Tensor
from .._tensor import as_dtype, to_array
from . import _array
from ._array import as_int_tuple, is_tensor_like, normalize_axis
from ._core import NO_ATTRS, apply
from ._grad_util import ONES_LIKE, ZEROS_LIKE
from ._math import cast
from ._registry import Spec, register_op
from ._static import (
    PartialShape,
    dim_sources,
    is_symbolic,
    merge_partial,
    pack_shape,
    partial_shape,
    static_int,
    static_value,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "expand_dims",
    "fill",
    "ones",
    "ones_like",
    "range",
    "rank",
    "reshape",
    "shape",
    "size",
    "squeeze",
    "zeros",
    "zeros_like",
]

_INT32: Final = np.dtype(np.int32)
_INT64: Final = np.dtype(np.int64)


def check_shape_vector(spec: Spec, what: str) -> None:
    """``TypeError``/``ValueError`` unless ``spec`` can be a shape vector (1-D ints)."""
    dtype, shape = spec
    if dtype.kind not in "iu":
        msg = f"{what} must be an int32 or int64 tensor, got dtype {dtype.name}"
        raise TypeError(msg)
    if shape is not None and len(shape) != 1:
        msg = f"{what} must be a 1-D tensor (a shape vector), got shape {shape}"
        raise ValueError(msg)


def runtime_dims(dims: NDArray[Any], what: str, *, allow_infer: bool = False) -> tuple[int, ...]:
    """A shape vector's value as a tuple, or ``ValueError`` saying what is wrong with it."""
    if dims.ndim != 1 or dims.dtype.kind not in "iu":
        msg = f"{what} must be a 1-D int tensor, got {dims.dtype.name} of shape {dims.shape}"
        raise ValueError(msg)
    out = tuple(int(d) for d in dims)
    lowest = -1 if allow_infer else 0
    if any(d < lowest for d in out) or (allow_infer and out.count(-1) > 1):
        rule = "sizes >= 0 with at most one -1" if allow_infer else "sizes >= 0"
        msg = f"{what} {list(out)} is invalid: expected {rule}"
        raise ValueError(msg)
    return out


# -- shape, size, rank ---------------------------------------------------------------------


def _out_type(out_type: Any, what: str) -> np.dtype[Any]:
    dt = as_dtype(out_type)
    if dt not in (_INT32, _INT64):
        msg = f"{what}(): out_type must be int32 or int64, got {dt.name}"
        raise TypeError(msg)
    return dt


def _shape_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((_, shape),) = specs
    return ((attrs["out_type"], (None,) if shape is None else (len(shape),)),)


def _size_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ((attrs["out_type"], ()),)


def _rank_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ((_INT32, ()),)


# Integer outputs: no gradient flows through them (SPEC section 9).
SHAPE = register_op(
    "Shape", infer=_shape_rule, differentiable=False, same_dtype=False,
    kernel=lambda attrs, x: np.asarray(x.shape, attrs["out_type"]),
)  # fmt: skip
SIZE = register_op(
    "Size", infer=_size_rule, differentiable=False, same_dtype=False,
    kernel=lambda attrs, x: np.asarray(x.size, attrs["out_type"]),
)  # fmt: skip
RANK = register_op(
    "Rank", infer=_rank_rule, differentiable=False, same_dtype=False,
    kernel=lambda attrs, x: np.asarray(x.ndim, _INT32),
)  # fmt: skip


def shape(input: Any, out_type: Any = np.int32, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """The shape of ``input`` as a 1-D int tensor, known in a graph only when it runs.

    Unlike ``input.shape`` (the static shape, with None for unknown sizes), this is a
    tensor that ``zeros``, ``ones``, ``fill``, ``reshape`` and ``tile`` accept. It has no
    gradient.

    Example:
        >>> import scopeflow as sf
        >>> sf.shape(sf.zeros([2, 3])).numpy()
        array([2, 3], dtype=int32)
    """
    return apply(SHAPE, (input,), {"out_type": _out_type(out_type, "shape")}, name)


def size(input: Any, out_type: Any = np.int32, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """The number of elements of ``input`` as a scalar int tensor (no gradient).

    Example:
        >>> import scopeflow as sf
        >>> sf.size(sf.zeros([2, 3])).numpy()
        array(6, dtype=int32)
    """
    return apply(SIZE, (input,), {"out_type": _out_type(out_type, "size")}, name)


def rank(input: Any, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """The number of dimensions of ``input`` as a scalar int32 tensor (no gradient).

    Example:
        >>> import scopeflow as sf
        >>> sf.rank(sf.zeros([2, 3])).numpy()
        array(2, dtype=int32)
    """
    return apply(RANK, (input,), NO_ATTRS, name)


# -- zeros, ones, fill and reshape with a shape tensor -----------------------------------


def _dynamic_fill_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    dims, (dtype, value_shape) = specs
    check_shape_vector(dims, "the shape")
    if value_shape not in (None, ()):
        msg = f"the fill value must be a scalar, got shape {value_shape}"
        raise ValueError(msg)
    length = None if dims[1] is None else dims[1][0]
    return ((dtype, merge_partial(attrs["shape"], length)),)


def _dynamic_fill_kernel(attrs: dict[str, Any], dims: NDArray[Any], value: NDArray[Any]) -> Any:
    return np.full(runtime_dims(dims, "the shape"), value, dtype=value.dtype)


DYNAMIC_FILL = register_op(
    "DynamicFill", infer=_dynamic_fill_rule, kernel=_dynamic_fill_kernel, same_dtype=False
)


def _holds_tensor(value: Any) -> bool:
    if is_tensor_like(value):
        return True
    return isinstance(value, (list, tuple)) and any(is_tensor_like(v) for v in value)


class _DynamicShape(NamedTuple):
    tensor: Tensor
    known: PartialShape | None


def _shape_tensor(value: Any, what: str) -> _DynamicShape | tuple[int, ...]:
    """A shape argument holding tensors as ``(shape tensor, what is known of it)``, or as
    a tuple of ints when its value is known while building."""
    value = pack_shape(value)
    if is_symbolic(value):
        known = static_value(value)
        if known is None:
            t = value if type(value) is Tensor else value.__sf_tensor__()
            return _DynamicShape(t, partial_shape(t))
        value = known
    return as_int_tuple(value, what)


def _dynamic_fill(dims: Any, hint: PartialShape | None, value: Any, name: str | None) -> Any:
    if hint is not None and any(d is not None and d < 0 for d in hint):
        msg = f"the shape {list(hint)} has a negative size"
        raise ValueError(msg)
    return apply(DYNAMIC_FILL, (dims, value), {"shape": hint}, name)


def zeros(shape: Any, dtype: Any = np.float32, name: str | None = None) -> Any:
    """A tensor of ``shape`` (a list of ints, or an int tensor such as ``sf.shape(x)``)
    filled with zeros.

    Example:
        >>> import scopeflow as sf
        >>> sf.zeros([2], sf.int32).numpy()
        array([0, 0], dtype=int32)
    """
    try:
        # Python ints and eager values, the common case, pay nothing for shape tensors.
        return _array.zeros(shape, dtype, name)
    except TypeError:
        if not _holds_tensor(shape):
            raise
    found = _shape_tensor(shape, "zeros(): shape")
    if not isinstance(found, _DynamicShape):
        return _array.zeros(found, dtype, name)
    zero = np.zeros((), _array._fill_dtype(dtype, "zeros"))
    return _dynamic_fill(*found, zero, name or "zeros")


def ones(shape: Any, dtype: Any = np.float32, name: str | None = None) -> Any:
    """A tensor of ``shape`` (a list of ints or an int tensor) filled with ones.

    Example:
        >>> import scopeflow as sf
        >>> sf.ones(sf.shape(sf.zeros([2, 1]))).numpy()
        array([[1.],
               [1.]], dtype=float32)
    """
    try:
        return _array.ones(shape, dtype, name)
    except TypeError:
        if not _holds_tensor(shape):
            raise
    found = _shape_tensor(shape, "ones(): shape")
    if not isinstance(found, _DynamicShape):
        return _array.ones(found, dtype, name)
    one = np.ones((), _array._fill_dtype(dtype, "ones"))
    return _dynamic_fill(*found, one, name or "ones")


def fill(dims: Any, value: Any, name: str | None = None) -> Any:
    """A tensor of shape ``dims`` (a list of ints or an int tensor) filled with the
    scalar ``value``; the gradient with respect to a tensor ``value`` is the sum.

    Example:
        >>> import scopeflow as sf
        >>> sf.fill([3], 7).numpy()
        array([7, 7, 7], dtype=int32)
    """
    if not _holds_tensor(dims):
        return _array.fill(dims, value, name)
    found = _shape_tensor(dims, "fill(): dims")
    if not isinstance(found, _DynamicShape):
        return _array.fill(found, value, name)
    if not is_tensor_like(value):
        value = to_array(value)
        _array._fill_dtype(value.dtype, "fill")
    return _dynamic_fill(*found, value, name or "fill")


def _dynamic_reshape_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, in_shape), dims = specs
    check_shape_vector(dims, "the shape")
    hint: PartialShape | None = attrs["shape"]
    if hint is None:
        length = None if dims[1] is None else dims[1][0]
        return ((dtype, merge_partial(None, length)),)
    if any(d is not None and d < -1 for d in hint) or hint.count(-1) > 1:
        msg = f"shape {list(hint)} is invalid: sizes are >= 0, with at most one -1 (inferred)"
        raise ValueError(msg)
    out = list(merge_partial(hint, None) or ())
    unknown = [i for i, d in enumerate(out) if d is None]
    if len(unknown) == 1 and in_shape is not None and None not in in_shape:
        # One size is not known here: the element count pins it.
        total = math.prod(d for d in in_shape if d is not None)
        fixed = math.prod(d for d in out if d is not None)
        if fixed and total % fixed == 0:
            out[unknown[0]] = total // fixed
        elif fixed or total:
            msg = f"cannot reshape a tensor of {total} elements (shape {in_shape}) to {list(hint)}"
            raise ValueError(msg)
    return ((dtype, tuple(out)),)


def _dynamic_reshape_kernel(attrs: dict[str, Any], x: NDArray[Any], dims: NDArray[Any]) -> Any:
    target = runtime_dims(dims, "the shape", allow_infer=True)
    try:
        return np.reshape(x, target)
    except ValueError:
        msg = f"cannot reshape a tensor of {x.size} elements (shape {x.shape}) to {list(target)}"
        raise ValueError(msg) from None


DYNAMIC_RESHAPE = register_op(
    "DynamicReshape", infer=_dynamic_reshape_rule, kernel=_dynamic_reshape_kernel,
    same_dtype=False,
)  # fmt: skip


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Any:
    """``tensor`` with the same elements in a new ``shape`` (one ``-1`` is inferred).

    Args:
        tensor: the tensor.
        shape: a list of ints, an int tensor (``sf.shape(y)``), or a list mixing ints and
            scalar int tensors (``[sf.shape(x)[0], -1]``).
        name: the op name in graph mode.

    Raises:
        ValueError: the element counts cannot match (at build time when known; at run
            time ``InvalidArgumentError``).

    Example:
        >>> import scopeflow as sf
        >>> sf.reshape([1, 2, 3, 4, 5, 6], [2, -1]).numpy()
        array([[1, 2, 3],
               [4, 5, 6]], dtype=int32)
    """
    if not _holds_tensor(shape):
        return _array.reshape(tensor, shape, name)
    found = _shape_tensor(shape, "reshape(): shape")
    if not isinstance(found, _DynamicShape):
        return _array.reshape(tensor, found, name)
    dims, hint = found
    if hint is not None and hint.count(-1) == 1 and type(tensor) is Tensor:
        hint = _infer_matched(tensor, dims, hint)
    return apply(DYNAMIC_RESHAPE, (tensor, dims), {"shape": hint}, name)


def _infer_matched(x: Tensor, dims: Tensor, hint: PartialShape) -> PartialShape:
    """``hint`` with its ``-1`` worked out when each unknown entry is an unknown size of
    ``x`` itself (``reshape(x, [sf.shape(x)[0], -1])`` of a ``(None, 3, 4)`` tensor gives
    ``(None, 12)``): those sizes cancel out of the element counts."""
    in_shape = x._shape
    sources = dim_sources(dims)
    if in_shape is None or sources is None or len(sources) != len(hint):
        return hint
    left = list(in_shape)
    for entry, source in zip(hint, sources, strict=True):
        if entry is not None:
            continue
        if source is None or source[0] is not x or left[source[1]] is not None:
            return hint
        left[source[1]] = 1  # cancelled against this output entry
    if None in left:
        return hint
    total = math.prod(d for d in left if d is not None)
    fixed = math.prod(d for d in hint if d is not None and d != -1)
    if not fixed or total % fixed:
        return hint  # the run time reports the mismatch
    return tuple(total // fixed if d == -1 else d for d in hint)


# -- zeros_like, ones_like -----------------------------------------------------------------


def _like(x: Any, dtype: Any, opdef: Any, fill_value: int, name: str | None) -> Any:
    if dtype is None:
        return apply(opdef, (x,), NO_ATTRS, name)
    dt = _array._fill_dtype(dtype, "zeros_like" if fill_value == 0 else "ones_like")
    if not is_tensor_like(x):
        x = np.asarray(x)
    # No gradient flows through these (like TensorFlow), so the cast adds nothing to tapes.
    return cast(apply(opdef, (x,), NO_ATTRS), dt, name)


def zeros_like(input: Any, dtype: Any = None, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """Zeros with the runtime shape of ``input`` and its dtype (or ``dtype``); no gradient.

    Example:
        >>> import scopeflow as sf
        >>> sf.zeros_like([[1, 2]], dtype=sf.float32).numpy()
        array([[0., 0.]], dtype=float32)
    """
    return _like(input, dtype, ZEROS_LIKE, 0, name)


def ones_like(input: Any, dtype: Any = None, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """Ones with the runtime shape of ``input`` and its dtype (or ``dtype``); no gradient.

    Example:
        >>> import scopeflow as sf
        >>> sf.ones_like(sf.zeros([2])).numpy()
        array([1., 1.], dtype=float32)
    """
    return _like(input, dtype, ONES_LIKE, 1, name)


# -- range -----------------------------------------------------------------------------------

# The dtype an unspecified range takes: the widest among its arguments'.
_RANGE_ORDER: Final = tuple(np.dtype(t) for t in (np.int32, np.int64, np.float32, np.float64))


def _range_size(start: Any, limit: Any, delta: Any) -> int:
    """How many values ``range`` makes; ``ValueError`` for a zero or wrong-way delta."""
    if not all(np.isfinite(v) for v in (start, limit, delta)):
        msg = f"start, limit and delta must be finite, got {start}, {limit} and {delta}"
        raise ValueError(msg)
    if delta == 0:
        msg = "delta must not be zero"
        raise ValueError(msg)
    if (delta > 0 and start > limit) or (delta < 0 and start < limit):
        way = "start <= limit when delta > 0" if delta > 0 else "start >= limit when delta < 0"
        msg = f"requires {way}, got start={start}, limit={limit}, delta={delta}"
        raise ValueError(msg)
    if isinstance(start, np.integer):
        return int((abs(int(limit) - int(start)) + abs(int(delta)) - 1) // abs(int(delta)))
    return math.ceil(abs((float(limit) - float(start)) / float(delta)))


def _range_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    dtype = specs[0][0]
    for what, (dt, shape) in zip(("start", "limit", "delta"), specs, strict=True):
        if dt != dtype:
            msg = f"start, limit and delta must have one dtype, got {dt.name} for {what}"
            raise TypeError(msg)
        if shape not in (None, ()):
            msg = f"{what} must be a scalar, got shape {shape}"
            raise ValueError(msg)
    return ((dtype, (attrs["size"],)),)


def _range_kernel(attrs: dict[str, Any], start: Any, limit: Any, delta: Any) -> Any:
    start, limit, delta = start[()], limit[()], delta[()]
    n = _range_size(start, limit, delta)
    return start + np.arange(n, dtype=start.dtype) * delta


# Integer or piecewise-constant in its arguments: no gradient, as in TensorFlow.
RANGE = register_op("Range", infer=_range_rule, kernel=_range_kernel, differentiable=False)


def range(  # noqa: A001 - TensorFlow's name
    start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None, name: str | None = None
) -> Any:
    """The 1-D tensor ``start, start + delta, ...`` up to but excluding ``limit``.

    With one argument it is the limit and the range starts at 0. Without ``dtype`` the
    result takes the widest dtype of the arguments (Python ints count as int32, floats as
    float32). Arguments may be scalar tensors; the length is static when their values are
    known while the graph is built. No gradient.

    Raises:
        ValueError: ``delta`` is zero, or points away from ``limit`` (at run time
            ``InvalidArgumentError``).
        TypeError: a bool or non-numeric argument or dtype.

    Example:
        >>> import scopeflow as sf
        >>> sf.range(3, 18, 3).numpy()
        array([ 3,  6,  9, 12, 15], dtype=int32)
    """
    if limit is None:
        start, limit = 0, start
    args = (start, limit, delta)
    if dtype is None:
        kinds = [a.dtype if is_tensor_like(a) else to_array(a).dtype for a in args]
        for k in kinds:
            if k.kind not in "iuf":
                msg = f"range(): arguments must be numbers, got dtype {k.name}"
                raise TypeError(msg)
        ranks = [_RANGE_ORDER.index(k) if k in _RANGE_ORDER else
                 (1 if k.kind in "iu" else 3) for k in kinds]  # fmt: skip
        dt = _RANGE_ORDER[max(ranks)]
    else:
        dt = as_dtype(dtype)
        if dt.kind not in "iuf":
            msg = f"range(): dtype must be an int or float type, got {dt.name}"
            raise TypeError(msg)
    converted = tuple(cast(a, dt) if is_tensor_like(a) and a.dtype != dt else
                      (a if is_tensor_like(a) else np.asarray(a, dt)) for a in args)  # fmt: skip
    values = [static_value(a) for a in converted]
    n: int | None = None
    if all(v is not None and v.ndim == 0 for v in values):
        try:
            n = _range_size(*(v[()] for v in values if v is not None))
        except ValueError as err:
            msg = f"range(): {err}"
            raise ValueError(msg) from None
    return apply(RANGE, converted, {"size": n}, name or "range")


# -- expand_dims, squeeze --------------------------------------------------------------------


def _expand_dims_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    if shape is None:
        return ((dtype, None),)
    axis = normalize_axis(attrs["axis"], len(shape) + 1)
    return ((dtype, (*shape[:axis], 1, *shape[axis:])),)


EXPAND_DIMS = register_op(
    "ExpandDims", infer=_expand_dims_rule,
    kernel=lambda attrs, x: np.expand_dims(x, attrs["axis"]),
)  # fmt: skip


def expand_dims(input: Any, axis: Any, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """``input`` with a new dimension of size 1 inserted at ``axis``.

    ``axis`` counts from the end when negative: ``-1`` appends a dimension. In a graph it
    may be a scalar int tensor known only at run time (the sizes are then unknown).

    Example:
        >>> import scopeflow as sf
        >>> sf.expand_dims(sf.zeros([2, 3]), -1).shape
        (2, 3, 1)
    """
    if is_symbolic(axis):
        from . import _runtime_axes  # imported here: it builds on this module

        _, tensor = _runtime_axes.runtime_axis(axis, None, None, "")
        if tensor is not None:
            return apply(_runtime_axes.DYNAMIC_EXPAND_DIMS, (input, tensor), NO_ATTRS, name)
    return apply(EXPAND_DIMS, (input,), {"axis": static_int(axis, "expand_dims(): axis")}, name)


def _squeeze_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    axes: tuple[int, ...] | None = attrs["axis"]
    if shape is None:
        return ((dtype, None),)
    if axes is None:
        if None in shape:
            # Which dimensions are 1 is only known at run time: so is the rank.
            return ((dtype, None),)
        return ((dtype, tuple(d for d in shape if d != 1)),)
    picked = {normalize_axis(a, len(shape)) for a in axes}
    for a in sorted(picked):
        if shape[a] not in (1, None):
            msg = f"cannot squeeze dimension {a}: its size is {shape[a]}, not 1"
            raise ValueError(msg)
    return ((dtype, tuple(d for i, d in enumerate(shape) if i not in picked)),)


def _squeeze_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    axes = attrs["axis"]
    if axes is None:
        return np.squeeze(x)
    for a in axes:
        if x.shape[normalize_axis(a, x.ndim)] != 1:
            msg = f"cannot squeeze dimension {a} of shape {x.shape}: its size is not 1"
            raise ValueError(msg)
    return np.squeeze(x, axis=axes)


SQUEEZE = register_op("Squeeze", infer=_squeeze_rule, kernel=_squeeze_kernel)


def squeeze(input: Any, axis: Any = None, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """``input`` without dimensions of size 1: all of them, or those listed in ``axis``.

    Raises:
        ValueError: a listed dimension is not 1 (at run time ``InvalidArgumentError``).

    Example:
        >>> import scopeflow as sf
        >>> sf.squeeze(sf.zeros([1, 2, 1, 3]), axis=[0]).shape
        (2, 1, 3)
    """
    axes = None
    if axis is not None:
        known = static_value(axis) if is_tensor_like(axis) else axis
        if known is None:
            msg = f"squeeze(): axis must be known while building the graph, got {axis!r}"
            raise TypeError(msg)
        axes = as_int_tuple(known, "squeeze(): axis")
        if len(set(axes)) != len(axes):
            msg = f"squeeze(): axis {list(axes)} lists a dimension twice"
            raise ValueError(msg)
    return apply(SQUEEZE, (input,), {"axis": axes}, name)
