"""Reductions (sum, mean, max, min, prod, any, all, argmax) and matrix multiplication.

Reductions keep the input dtype, as in TensorFlow: the sum of int32 values is int32 and
the mean of integers is an integer (rounded toward zero); ``reduce_any``/``reduce_all``
take and give bools. The ``axis`` attr is None (all dimensions) or a tuple of ints that
may be negative; rules check it against the rank when the rank is known, kernels when it
is not. ``argmax``/``argmin`` reduce one axis to integer indices, which have no gradient.
An axis that is a graph tensor known only at run time builds the ``Dynamic*`` op of
``_runtime_axes`` instead.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .._context import EAGER, PAUSED, TAPES, state_get
from .._graph import Shape
from .._quiet import QUIET, quiet_reset, quiet_set
from .._tensor import EagerTensor, as_dtype, wrap
from ..errors import InvalidArgumentError
from ._array import as_int, as_int_tuple, normalize_axis, reject_complex_conjugate
from ._core import EAGER_READS, apply, offer_read
from ._math import cast
from ._registry import Spec, broadcast_shapes, check_same_dtype, register_op

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from ._registry import OpDef

__all__ = [
    "argmax",
    "argmin",
    "matmul",
    "reduce_all",
    "reduce_any",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
]


def _axes(
    axis: tuple[int, ...], rank: int, duplicate: type[ValueError] = ValueError
) -> tuple[int, ...]:
    """``axis`` normalized to ``[0, rank)``; ``ValueError`` for a bad or repeated axis.

    The messages carry TensorFlow's wording ("Invalid reduction dimension", "Axes
    contains duplicate dimension"), which ported tests match. Shape rules pass
    ``duplicate=InvalidArgumentError`` (a ``ValueError``), TensorFlow's type for a
    repeated axis; kernels keep ``ValueError``, which the session reports as an
    ``InvalidArgumentError`` naming the op.
    """
    for a in axis:
        if not -rank <= a < rank:
            where = (
                f"for rank {rank} (expected {-rank} <= axis < {rank})"
                if rank
                else ": the input is a scalar"
            )
            msg = (
                f"axis {a} is out of range{' ' if rank else ''}{where}; Invalid reduction "
                f"dimension {a} for input with {rank} dimensions"
            )
            raise ValueError(msg)
    axes = tuple(normalize_axis(a, rank) for a in axis)
    if len(set(axes)) != len(axes):
        dup = next(a for i, a in enumerate(axes) if a in axes[:i])
        msg = (
            f"axis {axis} names a dimension more than once (rank {rank}): Axes contains "
            f"duplicate dimension: {dup}"
        )
        raise duplicate(msg)
    return axes


def _reduced_shape(shape: Shape | None, axis: tuple[int, ...] | None, keepdims: bool) -> Any:
    if axis is None:
        if not keepdims:
            return ()
        return None if shape is None else (1,) * len(shape)
    if shape is None:
        return None
    axes = _axes(axis, len(shape), InvalidArgumentError)
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_rule(kinds: str, what: str) -> Callable[..., tuple[Spec, ...]]:
    def rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        ((dtype, shape),) = specs
        if dtype.kind not in kinds:
            msg = f"expected {what} inputs, got dtype {dtype.name}"
            raise TypeError(msg)
        return ((dtype, _reduced_shape(shape, attrs["axis"], attrs["keepdims"])),)

    return rule


def _count(x: NDArray[Any], axis: tuple[int, ...] | None) -> int:
    """How many elements each output element of a reduction combines."""
    if axis is None:
        return int(x.size)
    return math.prod(x.shape[a] for a in _axes(axis, x.ndim))


# What ``np.sum`` calls for an ndarray, called directly: np.sum's keyword handling in
# Python costs ~1.3 µs of a small sum's 2.3 µs (bench_functions, the MLP's loss).
_add_reduce: Final = np.add.reduce


def _sum_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    if type(x) is np.ndarray:
        return _add_reduce(x, attrs["axis"], x.dtype, None, keepdims=attrs["keepdims"])
    return np.sum(x, axis=attrs["axis"], dtype=x.dtype, keepdims=attrs["keepdims"])


def _mean_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    axis, keepdims = attrs["axis"], attrs["keepdims"]
    n = _count(x, axis)
    if x.dtype.kind in "iu":
        if n == 0:
            msg = f"the mean of no elements (input shape {x.shape}, axis {axis}) is undefined"
            raise ValueError(msg)
        wide = np.int64 if x.dtype.kind == "i" else np.uint64
        total = np.sum(x, axis=axis, dtype=wide, keepdims=keepdims)
        # Integer division rounding toward zero, as TensorFlow's integer mean does.
        quotient = np.where(total < 0, -(-total // n), total // n)
        return quotient.astype(x.dtype)
    # float16 accumulates in float32 to avoid losing most of the sum; an empty mean is
    # NaN (computed without numpy.mean, whose warning the strict test settings reject).
    acc = np.float32 if x.dtype == np.float16 else x.dtype
    if type(x) is np.ndarray:
        total = _add_reduce(x, axis, acc, None, keepdims=keepdims)  # np.sum's call
    else:
        total = np.sum(x, axis=axis, dtype=acc, keepdims=keepdims)
    return np.true_divide(total, n).astype(x.dtype)


def _extreme_kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    lowest = fn is np.max

    def _identity(dtype: np.dtype[Any]) -> Any:
        if dtype.kind == "f":
            return -np.inf if lowest else np.inf
        info = np.iinfo(dtype)
        return info.min if lowest else info.max

    # What np.max/np.min call for an ndarray, called directly (see _add_reduce).
    reduce = {np.max: np.maximum.reduce, np.min: np.minimum.reduce}.get(fn)

    def kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
        axis = attrs["axis"]
        if _count(x, axis) == 0:
            # As in TensorFlow, the reduction's identity (where NumPy refuses): the lowest
            # value of the dtype for a max (-inf for floats), the highest for a min.
            return fn(x, axis=axis, keepdims=attrs["keepdims"], initial=_identity(x.dtype))
        if reduce is not None and type(x) is np.ndarray:
            return reduce(x, axis, None, None, keepdims=attrs["keepdims"])
        return fn(x, axis=axis, keepdims=attrs["keepdims"])

    return kernel


def _prod_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    return np.prod(x, axis=attrs["axis"], dtype=x.dtype, keepdims=attrs["keepdims"])


def _any_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    return np.any(x, axis=attrs["axis"], keepdims=attrs["keepdims"])


def _all_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    return np.all(x, axis=attrs["axis"], keepdims=attrs["keepdims"])


SUM = register_op("Sum", infer=_reduce_rule("iufc", "numeric"), kernel=_sum_kernel)
MEAN = register_op("Mean", infer=_reduce_rule("iufc", "numeric"), kernel=_mean_kernel)
MAX = register_op("Max", infer=_reduce_rule("iuf", "real"), kernel=_extreme_kernel(np.max))
MIN = register_op("Min", infer=_reduce_rule("iuf", "real"), kernel=_extreme_kernel(np.min))
PROD = register_op("Prod", infer=_reduce_rule("iufc", "numeric"), kernel=_prod_kernel)
ANY = register_op("Any", infer=_reduce_rule("b", "bool"), kernel=_any_kernel, differentiable=False)
ALL = register_op("All", infer=_reduce_rule("b", "bool"), kernel=_all_kernel, differentiable=False)


def _reduce(opdef: OpDef, what: str, x: Any, axis: Any, keepdims: bool, name: str | None) -> Any:
    if isinstance(axis, (list, tuple)) and any(isinstance(a, (list, tuple)) for a in axis):
        msg = f"{what}(): axis must be an int or a list of ints (at most rank 1), got {axis!r}"
        raise ValueError(msg)
    try:
        axes = None if axis is None else as_int_tuple(axis, f"{what}(): axis")
    except TypeError as error:  # a graph tensor: folded, or the op reads it at run time
        from . import _runtime_axes  # imported here: it builds on this module

        axes, tensor = _runtime_axes.runtime_axis(axis, error, as_int_tuple, f"{what}(): axis")
        if tensor is not None:
            return _runtime_axes.reduce(opdef, x, tensor, keepdims, name)
    return apply(opdef, (x,), {"axis": axes, "keepdims": bool(keepdims)}, name)


def reduce_sum(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """The sum of ``input_tensor`` over ``axis`` (an int or ints; all dimensions by default).

    Args:
        input_tensor: a numeric tensor; the result has its dtype.
        axis: the dimensions to reduce; negative ones count from the end. In a graph it
            may be an int tensor known only when the graph runs (a scalar or a vector).
        keepdims: keep the reduced dimensions with size 1.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_sum([[1, 2], [3, 4]], axis=0).numpy()
        array([4, 6], dtype=int32)
    """
    return _reduce(SUM, "reduce_sum", input_tensor, axis, keepdims, name)


def reduce_mean(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """The mean over ``axis``; integer means round toward zero and stay integers.

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_mean([[1.0, 2.0], [3.0, 5.0]], axis=-1, keepdims=True).numpy()
        array([[1.5],
               [4. ]], dtype=float32)
        >>> sf.reduce_mean([1, 2]).numpy()
        array(1, dtype=int32)
    """
    return _reduce(MEAN, "reduce_mean", input_tensor, axis, keepdims, name)


def reduce_max(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """The maximum of ``input_tensor`` over ``axis``; over no elements, the lowest value of
    the dtype (``-inf`` for floats), as in TensorFlow.

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_max([[1, 5], [3, 4]], axis=[0, 1]).numpy()
        array(5, dtype=int32)
    """
    return _reduce(MAX, "reduce_max", input_tensor, axis, keepdims, name)


def reduce_min(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """The minimum of ``input_tensor`` over ``axis``; over no elements, the highest value of
    the dtype (``inf`` for floats), as in TensorFlow.

    Ties share the gradient evenly, as for ``reduce_max``.

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_min([[1, 5], [3, 4]], axis=1).numpy()
        array([1, 3], dtype=int32)
    """
    return _reduce(MIN, "reduce_min", input_tensor, axis, keepdims, name)


def reduce_prod(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """The product over ``axis`` (1 for no elements), in ``input_tensor``'s dtype.

    The gradient is exact where some inputs are zero (it is the product of the other
    elements, never a division by ``x``).

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_prod([[1.0, 2.0], [3.0, 4.0]], axis=0).numpy()
        array([3., 8.], dtype=float32)
    """
    return _reduce(PROD, "reduce_prod", input_tensor, axis, keepdims, name)


def reduce_any(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """Whether any element of the bool ``input_tensor`` is true over ``axis`` (False if none).

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_any([[True, False], [False, False]], axis=1).numpy()
        array([ True, False])
    """
    return _reduce(ANY, "reduce_any", input_tensor, axis, keepdims, name)


def reduce_all(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Any:
    """Whether every element of the bool ``input_tensor`` is true over ``axis`` (True if none).

    Example:
        >>> import scopeflow as sf
        >>> sf.reduce_all([[True, False], [True, True]], axis=1).numpy()
        array([False,  True])
    """
    return _reduce(ALL, "reduce_all", input_tensor, axis, keepdims, name)


# -- argmax / argmin -----------------------------------------------------------------------

_INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _arg_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    if dtype.kind not in "biuf":
        msg = f"expected real or bool inputs, got dtype {dtype.name}"
        raise TypeError(msg)
    out = attrs["output_type"]
    if shape is None:
        return ((out, None),)
    axis = _arg_axis(attrs["axis"], len(shape))
    # An empty axis fails when the op runs (InvalidArgumentError), as in TensorFlow.
    return ((out, shape[:axis] + shape[axis + 1 :]),)


def _arg_axis(axis: int, rank: int) -> int:
    """``axis`` in ``[0, rank)``, with TensorFlow's wording when it is out of range."""
    if rank and not -rank <= axis < rank:
        msg = (
            f"axis {axis} is out of range for rank {rank}: Expected dimension in the range "
            f"[{-rank}, {rank}), but got {axis}"
        )
        raise ValueError(msg)
    return normalize_axis(axis, rank)  # a scalar input gets its own message there


def _arg_kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    def kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
        axis = _arg_axis(attrs["axis"], x.ndim)
        if x.shape[axis] == 0:
            # TensorFlow's words and shape format ("[0,3]"), which ported tests match.
            dims = ",".join(map(str, x.shape))
            msg = (
                f"Reduction axis {attrs['axis']} is empty in shape [{dims}]: there is no "
                f"index to return"
            )
            raise ValueError(msg)
        return fn(x, axis=axis).astype(attrs["output_type"])

    return kernel


ARGMAX = register_op("ArgMax", infer=_arg_rule, kernel=_arg_kernel(np.argmax), differentiable=False)
ARGMIN = register_op("ArgMin", infer=_arg_rule, kernel=_arg_kernel(np.argmin), differentiable=False)


def _arg(opdef: OpDef, what: str, x: Any, axis: Any, output_type: Any, name: str | None) -> Any:
    out = as_dtype(output_type)
    if out not in _INDEX_TYPES:
        msg = f"{what}(): output_type must be sf.int32 or sf.int64, got {out.name}"
        raise TypeError(msg)
    try:
        ax: int | None = 0 if axis is None else as_int(axis, f"{what}(): axis")
    except TypeError as error:  # a graph tensor: folded, or the op reads it at run time
        from . import _runtime_axes  # imported here: it builds on this module

        ax, tensor = _runtime_axes.runtime_axis(axis, error, as_int, f"{what}(): axis")
        if tensor is not None:
            return _runtime_axes.arg(opdef, x, tensor, out, name)
    return apply(opdef, (x,), {"axis": ax, "output_type": out}, name)


def argmax(
    input: Any,  # noqa: A002 - TensorFlow's name
    axis: Any = None,
    output_type: Any = np.int64,
    name: str | None = None,
) -> Any:
    """The index of the largest value along ``axis`` (0 when None, as in TensorFlow).

    The first index wins a tie. The result has ``input``'s shape without ``axis`` and the
    dtype ``output_type`` (int64 or int32); it has no gradient.

    Raises:
        ValueError: ``axis`` is out of range (when the op is built, if the rank is known).
        TypeError: ``output_type`` is not an integer index type.
        InvalidArgumentError: the dimension ``axis`` is empty, or an ``axis`` known only at
            run time (a graph tensor) is out of range (when the op runs).

    Example:
        >>> import scopeflow as sf
        >>> sf.argmax([[1, 9, 3], [7, 2, 7]], axis=1).numpy()
        array([1, 0])
    """
    return _arg(ARGMAX, "argmax", input, axis, output_type, name)


def argmin(
    input: Any,  # noqa: A002 - TensorFlow's name
    axis: Any = None,
    output_type: Any = np.int64,
    name: str | None = None,
) -> Any:
    """The index of the smallest value along ``axis`` (0 when None), like ``argmax``.

    Example:
        >>> import scopeflow as sf
        >>> sf.argmin([[1, 9, 3], [7, 2, 7]]).numpy()
        array([0, 1, 0])
    """
    return _arg(ARGMIN, "argmin", input, axis, output_type, name)


# -- matmul --------------------------------------------------------------------------------


def _matmul_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (da, sa), (db, sb) = specs
    check_same_dtype(da, db)
    if da.kind not in "iufc":
        msg = f"expected numeric inputs, got dtype {da.name}"
        raise TypeError(msg)
    if sa is not None and sb is not None and len(sa) == 2 and len(sb) == 2:
        # Two matrices (no batch dimensions): the checks below, without their loops
        # (~0.5 µs of an eager matmul, bench_functions' MLP).
        m, ka = (sa[1], sa[0]) if attrs["transpose_a"] else sa
        kb, n = (sb[1], sb[0]) if attrs["transpose_b"] else sb
        if ka is None or kb is None or ka == kb:
            return ((da, (m, n)),)
    for label, s in (("a", sa), ("b", sb)):
        if s is not None and len(s) < 2:
            msg = f"{label} must have rank >= 2 (a batch of matrices), got shape {s}"
            raise ValueError(msg)
    if sa is None or sb is None:
        return ((da, None),)
    ta, tb = attrs["transpose_a"], attrs["transpose_b"]
    m, ka = (sa[-1], sa[-2]) if ta else (sa[-2], sa[-1])
    kb, n = (sb[-1], sb[-2]) if tb else (sb[-2], sb[-1])
    if ka is not None and kb is not None and ka != kb:
        msg = (
            f"inner dimensions differ: a{' (transposed)' if ta else ''} {sa} has {ka} "
            f"columns but b{' (transposed)' if tb else ''} {sb} has {kb} rows"
        )
        raise ValueError(msg)
    try:
        batch = broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        msg = f"batch dimensions {sa[:-2]} and {sb[:-2]} cannot be broadcast together"
        raise ValueError(msg) from None
    return ((da, (*(batch or ()), m, n)),)


def _matmul_kernel(attrs: dict[str, Any], a: NDArray[Any], b: NDArray[Any]) -> Any:
    # The rule only sees ranks that are known statically; NumPy would treat 1-D
    # operands as vectors instead of failing.
    if a.ndim < 2 or b.ndim < 2:
        msg = f"matmul needs inputs of rank >= 2, got shapes {a.shape} and {b.shape}"
        raise ValueError(msg)
    # The methods np.swapaxes calls, called directly (~0.7 µs less each: a gradient's
    # matmuls transpose one operand).
    if attrs["transpose_a"]:
        a = a.swapaxes(-1, -2)
    if attrs["transpose_b"]:
        b = b.swapaxes(-1, -2)
    return np.matmul(a, b)


def _matmul_plain(a: NDArray[Any], b: NDArray[Any]) -> Any:
    """``_matmul_kernel`` without transposes, as run plans call it."""
    if a.ndim < 2 or b.ndim < 2:
        msg = f"matmul needs inputs of rank >= 2, got shapes {a.shape} and {b.shape}"
        raise ValueError(msg)
    return np.matmul(a, b)


def _matmul_bind(attrs: dict[str, Any]) -> Any:
    if attrs["transpose_a"] or attrs["transpose_b"]:
        return functools.partial(_matmul_kernel, attrs)
    return _matmul_plain


MATMUL = register_op("MatMul", infer=_matmul_rule, kernel=_matmul_kernel, bind=_matmul_bind)


def _check_adjoint(a: Any, b: Any, ta: bool, tb: bool, adj_a: bool, adj_b: bool) -> None:
    for label, t, adj, x in (("a", ta, adj_a, a), ("b", tb, adj_b, b)):
        if adj:
            if t:
                msg = f"matmul(): only one of transpose_{label} and adjoint_{label} can be True"
                raise ValueError(msg)
            reject_complex_conjugate(x, f"matmul(): adjoint_{label}=True")


def matmul(
    a: Any,
    b: Any,
    transpose_a: bool = False,
    transpose_b: bool = False,
    adjoint_a: bool = False,
    adjoint_b: bool = False,
    a_is_sparse: bool = False,
    b_is_sparse: bool = False,
    output_type: Any = None,
    name: str | None = None,
) -> Any:
    """The matrix product ``a @ b`` over the last two dimensions; batch dimensions broadcast.

    Args:
        a: a tensor of rank >= 2, ``[..., m, k]`` (``[..., k, m]`` if ``transpose_a``).
        b: a tensor of the same dtype, ``[..., k, n]`` (``[..., n, k]`` if ``transpose_b``).
        transpose_a: transpose the last two dimensions of ``a`` first.
        transpose_b: transpose the last two dimensions of ``b`` first.
        adjoint_a: conjugate-transpose ``a``; for real dtypes the same as ``transpose_a``
            (complex conjugation is not implemented and raises ``TypeError``).
        adjoint_b: the same for ``b``.
        a_is_sparse: a hint TensorFlow uses to pick a kernel; ignored (dense NumPy).
        b_is_sparse: the same hint for ``b``; ignored.
        output_type: the result dtype; the inputs are cast to it before the product
            (TensorFlow allows it for int8 inputs, giving exact int32 products).
        name: the op name in graph mode.

    Raises:
        TypeError: the dtypes differ or are not numeric.
        ValueError: a rank below 2, inner or batch dimensions that cannot match, or both
            ``transpose_x`` and ``adjoint_x`` set for one input.

    Example:
        >>> import scopeflow as sf
        >>> sf.matmul([[1.0, 2.0]], [[3.0, 4.0]], transpose_b=True).numpy()
        array([[11.]], dtype=float32)
    """
    if adjoint_a or adjoint_b:
        _check_adjoint(a, b, transpose_a, transpose_b, adjoint_a, adjoint_b)
    if output_type is not None:
        out = as_dtype(output_type)
        a, b = cast(a, out), cast(b, out)
    attrs = {
        "transpose_a": bool(transpose_a or adjoint_a),
        "transpose_b": bool(transpose_b or adjoint_b),
    }
    if type(a) is EagerTensor:
        product = _matmul_eagerly(a, b, attrs)
        if product is not None:
            return product
    return apply(MATMUL, (a, b), attrs, name)


def _matmul_eagerly(a: EagerTensor, b: Any, attrs: dict[str, Any]) -> EagerTensor | None:
    """The eager MatMul of two float matrices (``b`` a tensor or a variable, a layer's
    weights) without the op machinery: what the rule would check, the kernel, and the
    records ``apply`` would make (~1.5 µs less per layer, bench_functions' MLP). None
    where ``apply`` must run (other operands, or a mismatch whose error it reports)."""
    frame = state_get()
    if not frame[EAGER]:
        return None
    y = b
    reader = None
    if type(b) is not EagerTensor:
        reader = EAGER_READS.get(type(b))
        if reader is None:
            return None
        y = reader[0](b, frame)
        if y is None:
            return None
    x = a._value
    v = y._value
    dtype = x.dtype
    if dtype is not v.dtype or dtype.kind not in "fc" or x.ndim != 2 or v.ndim != 2:
        return None
    if x.shape[0 if attrs["transpose_a"] else 1] != v.shape[1 if attrs["transpose_b"] else 0]:
        return None
    token = quiet_set(QUIET)
    try:
        r = _matmul_kernel(attrs, x, v)
    finally:
        quiet_reset(token)
    out = wrap(r if type(r) is np.ndarray else np.asarray(r))
    if frame[TAPES] and not frame[PAUSED]:
        if reader is not None:
            offer_read(frame, reader[1], b, y)  # recorded before the op, as apply does
        for entry in frame[TAPES]:
            entry._offer(MATMUL, (a, y), (out,), attrs)
    return out
