"""Shape and indexing ops: reshape, transpose, concat, stack, fill, where and indexing.

Rules infer static shapes as far as the input shapes allow: a ``None`` size stays unknown
unless the op pins it (``reshape`` to a known size), and an unknown rank stays unknown
unless the attrs fix it (``transpose`` with a ``perm``). Attrs (shapes, axes,
permutations, index keys) are Python values, normalized by the public functions; an axis
or permutation known only at run time builds an op of ``_runtime_axes`` instead.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .._graph import Shape, Tensor
from .._tensor import EagerTensor, as_dtype, to_array
from ._core import NO_ATTRS, apply
from ._registry import Spec, broadcast_shapes, register_op

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["concat", "fill", "getitem", "ones", "reshape", "stack", "transpose", "where", "zeros"]

_BOOL: Final = np.dtype(np.bool_)
_INT64: Final = np.dtype(np.int64)


# -- argument and shape helpers (normalize_axis and as_int_tuple serve _reduce too) ---


def is_tensor_like(x: Any) -> bool:
    """True for graph and eager tensors and for objects that turn into one (variables)."""
    return isinstance(x, (Tensor, EagerTensor)) or hasattr(x, "__sf_tensor__")


def as_int(value: Any, what: str) -> int:
    """``value`` as a Python int (ints, NumPy integers, 0-d integer eager tensors)."""
    if isinstance(value, (bool, np.bool_)):
        msg = f"{what} must be an int, got the bool {value!r}"
        raise TypeError(msg)
    try:
        return operator.index(value)
    except TypeError:
        msg = f"{what} must be an int known while building the graph, got {value!r}"
        raise TypeError(msg) from None


def as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    """An int or a sequence of ints (also a 1-D integer array or eager tensor) as a tuple."""
    if isinstance(value, Tensor) or hasattr(value, "__sf_tensor__"):
        msg = (
            f"{what} must be known while building the graph: pass a Python list of ints, "
            f"not {value!r}"
        )
        raise TypeError(msg)
    if isinstance(value, (EagerTensor, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "iu" or arr.ndim > 1:
            msg = f"{what} must be an int or a 1-D list of ints, got {arr!r}"
            raise TypeError(msg)
        return tuple(int(v) for v in arr.reshape(-1))
    if isinstance(value, (list, tuple)):
        return tuple(as_int(v, what) for v in value)
    return (as_int(value, what),)


def normalize_axis(axis: int, rank: int) -> int:
    """``axis`` in ``[0, rank)``; ``ValueError`` unless ``-rank <= axis < rank``."""
    if not -rank <= axis < rank:
        msg = (
            f"axis {axis} is out of range for rank {rank} (expected {-rank} <= axis < {rank})"
            if rank
            else f"axis {axis} is out of range: the input is a scalar"
        )
        raise ValueError(msg)
    return axis + rank if axis < 0 else axis


def _same_dtype(specs: tuple[Spec, ...]) -> np.dtype[Any]:
    first = specs[0][0]
    for i, (dtype, _) in enumerate(specs):
        if dtype != first:
            msg = (
                f"all inputs must have the same dtype, but input 0 is {first.name} and "
                f"input {i} is {dtype.name}; use sf.cast() to convert"
            )
            raise TypeError(msg)
    return first


def _merge_known(shapes: list[Shape], what: str) -> Shape:
    """The most precise shape compatible with every shape of the non-empty ``shapes``."""
    first = shapes[0]
    out: list[int | None] = list(first)
    for s in shapes[1:]:
        if len(s) != len(first):
            msg = f"{what}: got shapes of different ranks {first} and {s}"
            raise ValueError(msg)
        for i, d in enumerate(s):
            if out[i] is None:
                out[i] = d
            elif d is not None and d != out[i]:
                msg = f"{what}: shapes {first} and {s} differ in dimension {i}"
                raise ValueError(msg)
    return tuple(out)


def _values_list(values: Any, what: str) -> tuple[Any, ...]:
    if not isinstance(values, (list, tuple)):
        msg = f"{what}(): values must be a list or tuple of tensors, got {values!r}"
        raise TypeError(msg)
    if not values:
        msg = f"{what}(): values is empty; pass at least one tensor"
        raise ValueError(msg)
    return tuple(values)


# -- reshape -------------------------------------------------------------------------------


def _reshape_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    target: tuple[int, ...] = attrs["shape"]
    if any(d < -1 for d in target) or target.count(-1) > 1:
        msg = f"shape {target} is invalid: sizes are >= 0, with at most one -1 (inferred)"
        raise ValueError(msg)
    fixed = math.prod(d for d in target if d != -1)
    infer = -1 in target
    if shape is not None and None not in shape:
        total = math.prod(d for d in shape if d is not None)
        if infer and fixed and total % fixed == 0:
            return ((dtype, tuple(total // fixed if d == -1 else d for d in target)),)
        if infer or total != fixed:
            msg = f"cannot reshape a tensor of {total} elements (shape {shape}) to {target}"
            raise ValueError(msg)
        return ((dtype, target),)
    if shape is not None and not infer:
        # The known sizes of the input must divide the element count of the output.
        partial = math.prod(d for d in shape if d is not None)
        if (fixed % partial if partial else fixed) != 0:
            count = f"{partial}*k" if partial else "0"
            msg = f"a tensor of shape {shape} ({count} elements) cannot have shape {target}"
            raise ValueError(msg)
    return ((dtype, tuple(None if d == -1 else d for d in target)),)


def _reshape_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> NDArray[Any]:
    return np.reshape(x, attrs["shape"])


RESHAPE = register_op("Reshape", infer=_reshape_rule, kernel=_reshape_kernel)


def reshape(x: Any, shape: Any, name: str | None = None) -> Any:
    """``x`` with the same elements in a new shape (one ``-1`` size is inferred).

    Args:
        x: the tensor.
        shape: a list of ints; at most one is ``-1``.
        name: the op name in graph mode.

    Raises:
        ValueError: the element counts cannot match (at build time when known).

    Example:
        >>> import scopeflow as sf
        >>> sf.reshape([1, 2, 3, 4, 5, 6], [2, -1]).numpy()
        array([[1, 2, 3],
               [4, 5, 6]], dtype=int32)
    """
    return apply(RESHAPE, (x,), {"shape": as_int_tuple(shape, "reshape(): shape")}, name)


# -- transpose -----------------------------------------------------------------------------


def _transpose_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    perm: tuple[int, ...] | None = attrs["perm"]
    if perm is None:
        return ((dtype, None if shape is None else shape[::-1]),)
    if shape is not None and len(shape) != len(perm):
        msg = f"perm {perm} has {len(perm)} entries but the input has rank {len(shape)}"
        raise ValueError(msg)
    if sorted(perm) != list(range(len(perm))):
        msg = f"perm {perm} is not a permutation of 0..{len(perm) - 1}"
        raise ValueError(msg)
    if shape is None:
        return ((dtype, (None,) * len(perm)),)
    return ((dtype, tuple(shape[p] for p in perm)),)


def _transpose_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> NDArray[Any]:
    return np.transpose(x, attrs["perm"])


TRANSPOSE = register_op("Transpose", infer=_transpose_rule, kernel=_transpose_kernel)


def transpose(a: Any, perm: Any = None, conjugate: bool = False, name: str | None = None) -> Any:
    """``a`` with its dimensions permuted: output dimension ``i`` is input dimension
    ``perm[i]``; by default the dimensions are reversed.

    Args:
        a: the tensor.
        perm: a permutation of ``range(rank)``, or a run-time tensor; None reverses.
        conjugate: also conjugate complex values; a no-op for real dtypes. Complex
            conjugation is not implemented and raises ``TypeError``.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.transpose(sf.zeros([2, 3, 4]), perm=[2, 0, 1]).shape
        (4, 2, 3)
    """
    if conjugate:
        reject_complex_conjugate(a, "transpose(): conjugate=True")
    try:
        p = None if perm is None else as_int_tuple(perm, "transpose(): perm")
    except TypeError as error:  # a graph tensor: folded, or the op reads it at run time
        from . import _runtime_axes  # imported here: it builds on this module

        p, tensor = _runtime_axes.runtime_axis(perm, error, as_int_tuple, "transpose(): perm")
        if tensor is not None:
            return apply(_runtime_axes.DYNAMIC_TRANSPOSE, (a, tensor), NO_ATTRS, name)
    return apply(TRANSPOSE, (a,), {"perm": p}, name)


def reject_complex_conjugate(x: Any, what: str) -> None:
    """Raise ``TypeError`` when ``x`` is complex: conjugation has no kernel yet.

    For real dtypes conjugating is the identity, so the flag is accepted and ignored.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtype = np.asarray(x).dtype
    if np.dtype(dtype).kind == "c":
        msg = f"{what} on a complex tensor is not supported (no conjugate op); pass real values"
        raise TypeError(msg)


# -- concat and stack ----------------------------------------------------------------------


def _concat_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    dtype = _same_dtype(specs)
    shapes = [s for _, s in specs]
    known = [s for s in shapes if s is not None]
    if not known:
        return ((dtype, None),)
    rank = len(known[0])
    if rank == 0:
        msg = "cannot concatenate scalars; use sf.stack() to make a vector"
        raise ValueError(msg)
    if any(len(s) != rank for s in known):
        msg = f"all inputs must have the same rank, got shapes {known}"
        raise ValueError(msg)
    axis = normalize_axis(attrs["axis"], rank)
    # Sizes off the axis must agree; along the axis they add up.
    out: list[int | None] = [None] * rank
    for s in known:
        for i, d in enumerate(s):
            if i == axis or d is None:
                continue
            if out[i] is not None and out[i] != d:
                msg = (
                    f"shapes {known} differ in dimension {i}; only dimension {axis} (the "
                    f"concat axis) may differ"
                )
                raise ValueError(msg)
            out[i] = d
    sizes = [None if s is None else s[axis] for s in shapes]
    out[axis] = None if None in sizes else sum(d for d in sizes if d is not None)
    return ((dtype, tuple(out)),)


def _concat_kernel(attrs: dict[str, Any], *xs: NDArray[Any]) -> NDArray[Any]:
    return np.concatenate(xs, axis=attrs["axis"])


CONCAT = register_op("Concat", infer=_concat_rule, kernel=_concat_kernel)


def concat(values: Any, axis: Any, name: str | None = None) -> Any:
    """Join tensors of one dtype and rank along an existing dimension ``axis``.

    Args:
        values: a list or tuple of tensors; their sizes off ``axis`` must agree. A
            single tensor (or variable) counts as a list of one, as in TensorFlow.
        axis: the dimension to join along (negative counts from the end), or a tensor.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.concat([[[1, 2]], [[3, 4]]], axis=-1).numpy()
        array([[1, 2, 3, 4]], dtype=int32)
    """
    xs = _values_list([values] if is_tensor_like(values) else values, "concat")
    try:
        ax: int | None = as_int(axis, "concat(): axis")
    except TypeError as error:  # a graph tensor: folded, or the op reads it at run time
        from . import _runtime_axes  # imported here: it builds on this module

        ax, tensor = _runtime_axes.runtime_axis(axis, error, as_int, "concat(): axis")
        if tensor is not None:
            return _runtime_axes.concat(xs, tensor, name)
    return apply(CONCAT, xs, {"axis": ax, "N": len(xs)}, name)


def _stack_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    dtype = _same_dtype(specs)
    known = [s for _, s in specs if s is not None]
    if not known:
        return ((dtype, None),)
    shape = _merge_known(known, "all inputs must have one shape")
    axis = normalize_axis(attrs["axis"], len(shape) + 1)
    return ((dtype, (*shape[:axis], attrs["N"], *shape[axis:])),)


def _stack_kernel(attrs: dict[str, Any], *xs: NDArray[Any]) -> NDArray[Any]:
    return np.stack(xs, axis=attrs["axis"])


STACK = register_op("Stack", infer=_stack_rule, kernel=_stack_kernel)


def stack(values: Any, axis: Any = 0, name: str | None = None) -> Any:
    """Join tensors of one dtype and shape along a new dimension ``axis``.

    Example:
        >>> import scopeflow as sf
        >>> sf.stack([[1, 2], [3, 4]], axis=1).numpy()
        array([[1, 3],
               [2, 4]], dtype=int32)
    """
    xs = _values_list(values, "stack")
    attrs = {"axis": as_int(axis, "stack(): axis"), "N": len(xs)}
    return apply(STACK, xs, attrs, name)


# -- zeros, ones, fill ---------------------------------------------------------------------


def _fill_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ((attrs["dtype"], attrs["shape"]),)


def _fill_kernel(attrs: dict[str, Any]) -> NDArray[Any]:
    return np.full(attrs["shape"], attrs["value"], dtype=attrs["dtype"])


# No inputs, like Const: the value and shape are attrs, so there is nothing to
# differentiate.
FILL = register_op("Fill", infer=_fill_rule, kernel=_fill_kernel, differentiable=False)


def _dims(dims: Any, what: str) -> tuple[int, ...]:
    shape = as_int_tuple(dims, f"{what}(): shape")
    if any(d < 0 for d in shape):
        msg = f"{what}(): shape {shape} has a negative size"
        raise ValueError(msg)
    return shape


def _fill(dims: tuple[int, ...], value: NDArray[Any], name: str | None, default: str) -> Any:
    value.flags.writeable = False
    attrs = {"shape": dims, "dtype": value.dtype, "value": value}
    return apply(FILL, (), attrs, name or default)


def _fill_dtype(dtype: Any, what: str) -> np.dtype[Any]:
    dt = as_dtype(dtype)
    if dt.kind not in "biufc":
        msg = f"{what}(): dtype {dt} is not numeric or bool"
        raise TypeError(msg)
    return dt


def zeros(shape: Any, dtype: Any = np.float32, name: str | None = None) -> Any:
    """A tensor of ``shape`` filled with zeros.

    Example:
        >>> import scopeflow as sf
        >>> sf.zeros([2], sf.int32).numpy()
        array([0, 0], dtype=int32)
    """
    return _fill(_dims(shape, "zeros"), np.zeros((), _fill_dtype(dtype, "zeros")), name, "zeros")


def ones(shape: Any, dtype: Any = np.float32, name: str | None = None) -> Any:
    """A tensor of ``shape`` filled with ones.

    Example:
        >>> import scopeflow as sf
        >>> sf.ones([2, 1]).numpy()
        array([[1.],
               [1.]], dtype=float32)
    """
    return _fill(_dims(shape, "ones"), np.ones((), _fill_dtype(dtype, "ones")), name, "ones")


def fill(dims: Any, value: Any, name: str | None = None) -> Any:
    """A tensor of shape ``dims`` filled with the scalar ``value`` (and of its dtype).

    Args:
        dims: the shape, a list of ints.
        value: a Python or NumPy scalar, or a scalar tensor.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.fill([3], 7).numpy()
        array([7, 7, 7], dtype=int32)
    """
    shape = _dims(dims, "fill")
    if is_tensor_like(value):
        if value.shape is not None and value.shape != ():
            msg = f"fill(): value must be a scalar, got {value!r}"
            raise ValueError(msg)
        # Select broadcasts the tensor to ``shape`` for every dtype, and its gradient sums
        # back into ``value`` (eagerly on a tape, too).
        return where(_fill(shape, np.ones((), _BOOL), None, "fill"), value, value, name)
    arr = to_array(value)
    _fill_dtype(arr.dtype, "fill")
    if arr.ndim:
        msg = f"fill(): value must be a scalar, got shape {arr.shape}"
        raise ValueError(msg)
    return _fill(shape, arr, name, "fill")


# -- where ---------------------------------------------------------------------------------


def _select_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dc, sc), (dx, sx), (dy, sy) = specs
    if dc != _BOOL:
        msg = f"condition must be a bool tensor, got dtype {dc.name}; compare (x > 0) to make one"
        raise TypeError(msg)
    if dx != dy:
        msg = f"x and y must have the same dtype, got {dx.name} and {dy.name}"
        raise TypeError(msg)
    return ((dx, broadcast_shapes(broadcast_shapes(sc, sx), sy)),)


def _select_kernel(attrs: dict[str, Any], c: NDArray[Any], x: NDArray[Any], y: NDArray[Any]) -> Any:
    return np.where(c, x, y)


def _where_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    if dtype.kind not in "biuf":
        msg = f"condition must be bool or real, got dtype {dtype.name}"
        raise TypeError(msg)
    return ((_INT64, (None, None if shape is None else len(shape))),)


def _where_kernel(attrs: dict[str, Any], c: NDArray[Any]) -> NDArray[Any]:
    return np.argwhere(c).astype(np.int64)


SELECT = register_op("Select", infer=_select_rule, kernel=_select_kernel, same_dtype=False)
WHERE = register_op("Where", infer=_where_rule, kernel=_where_kernel, differentiable=False)


def _plain(value: Any, dtype: np.dtype[Any] | None, what: str) -> Any:
    """A Python value as an array of ``dtype``; tensors and arrays pass unchanged."""
    if is_tensor_like(value) or isinstance(value, np.ndarray):
        return value
    try:
        return to_array(value, dtype)
    except TypeError as err:
        msg = f"where(): {what}: {err}"
        raise TypeError(msg) from None


def _paired(x: Any, y: Any) -> tuple[Any, Any]:
    """Python values among ``x`` and ``y`` take the dtype of the other: a tensor, else x."""
    if is_tensor_like(x):
        dtype = x.dtype
    elif is_tensor_like(y):
        dtype = y.dtype
    else:
        x = _plain(x, None, "x")
        dtype = x.dtype
    return _plain(x, dtype, "x"), _plain(y, dtype, "y")


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Any:
    """Pick from ``x`` where ``condition`` is true and from ``y`` elsewhere (broadcasting).

    Without ``x`` and ``y``, the int64 coordinates of the true (non-zero) elements of
    ``condition``, one row per element, of shape ``(None, rank)`` in a graph.

    Args:
        condition: a bool tensor.
        x: values where ``condition`` is true; ``x`` and ``y`` have one dtype.
        y: values where ``condition`` is false.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.where([True, False], [1.0, 2.0], 0.0).numpy()
        array([1., 0.], dtype=float32)
        >>> sf.where([[True, False], [False, True]]).numpy()
        array([[0, 0],
               [1, 1]])
    """
    if x is None and y is None:
        return apply(WHERE, (condition,), NO_ATTRS, name)
    if x is None or y is None:
        msg = "where(): pass both x and y, or neither (to get the indices of true elements)"
        raise ValueError(msg)
    x, y = _paired(x, y)
    return apply(SELECT, (condition, x, y), NO_ATTRS, name)


# -- indexing ------------------------------------------------------------------------------


def _index_part(part: Any) -> Any:
    if part is None or part is Ellipsis:
        return part
    if isinstance(part, slice):
        bounds = [None if v is None else as_int(v, "a slice bound") for v in
                  (part.start, part.stop, part.step)]  # fmt: skip
        if bounds[2] == 0:
            msg = "slice step cannot be zero"
            raise ValueError(msg)
        return slice(*bounds)
    if isinstance(part, (bool, np.bool_)) or not hasattr(part, "__index__"):
        msg = (
            f"tensors are indexed with ints, slices, ... and None known while building the "
            f"graph; {part!r} is not supported"
        )
        raise TypeError(msg)
    return as_int(part, "an index")


def _getitem_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    key: tuple[Any, ...] = attrs["key"]
    if shape is None:
        return ((dtype, None),)
    rank = len(shape)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > rank:
        msg = f"too many indices: {key} indexes {used} dimensions of a rank-{rank} tensor"
        raise ValueError(msg)
    out: list[int | None] = []
    dim = 0
    for k in key:
        if k is None:
            out.append(1)
        elif k is Ellipsis:
            out.extend(shape[dim : dim + rank - used])
            dim += rank - used
        elif isinstance(k, slice):
            size = shape[dim]
            out.append(None if size is None else len(range(*k.indices(size))))
            dim += 1
        else:
            size = shape[dim]
            if size is not None and not -size <= k < size:
                msg = f"index {k} is out of bounds for dimension {dim} of size {size}"
                raise ValueError(msg)
            dim += 1
    out.extend(shape[dim:])
    return ((dtype, tuple(out)),)


def _getitem_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    return x[attrs["key"]]


GETITEM = register_op("GetItem", infer=_getitem_rule, kernel=_getitem_kernel)


def getitem(x: Any, key: Any, name: str | None = None) -> Any:
    """``x[key]`` for basic indexing: ints, slices with steps, ``...`` and ``None``.

    Ints index from the end when negative; an int out of range of a known size raises
    ``ValueError`` while the graph is built.

    Example:
        >>> import scopeflow as sf
        >>> t = sf.reshape(sf.constant(list(range(6))), [2, 3])
        >>> t[1, ::-1].numpy(), t[..., None].shape
        (array([5, 4, 3], dtype=int32), (2, 3, 1))
    """
    parts = key if isinstance(key, tuple) else (key,)
    norm = tuple(_index_part(p) for p in parts)
    if norm.count(Ellipsis) > 1:
        msg = f"an index can have only one ellipsis (...), got {key!r}"
        raise ValueError(msg)
    return apply(GETITEM, (x,), {"key": norm}, name)
