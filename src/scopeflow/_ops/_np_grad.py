"""Gradients of common ops on NumPy arrays, for eager walks that no tape records.

``backprop`` (``_backprop``) differentiates with the op-level gradient functions, built
from ordinary ops so that tapes can record them (higher orders) and graphs can hold them.
When the walk is eager and no tape can see it, that machinery buys nothing: each gradient
op would convert, check, wrap and offer its result to no one. For the ops here the walk
calls ``OpDef.np_grad`` instead, which computes the same values with the same NumPy
kernels, in the same order, on the arrays themselves (a tape step's gradient: about 8.6
µs before, 3 µs after; the MLP training step's gradients: 124 µs before, ~40 µs after).

The contract of an ``np_grad(rec, dy, want)``: it is called only for an op that ran
eagerly (its inputs and outputs are eager tensors) and has one output, with ``dy`` a NumPy
array (or scalar) of that output's dtype and shape, under the ignore-all floating-point
error state the kernels run under. ``want`` holds the ids of the tensors whose gradients
are wanted (None: all); the gradient of another input may be skipped (None); the test
``want is None or id(x) in want`` is written out where it is used (a call less). It returns
one array or None per input, None wherever the op-level gradient gives None (inputs of
integer dtypes included), and never changes an array it is given (results may share
them: nobody writes to a gradient array).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from ._array import normalize_axis
from ._array_grad import _broadcast_reduced_kernel
from ._grad_util import _sum_to_shape
from ._reduce import _matmul_kernel, _sum_kernel
from ._registry import REGISTRY

__all__: list[str] = []

NpGrad = Callable[..., tuple[Any, ...]]
_ndarray: Final = np.ndarray


def _np_gradient(op_type: str) -> Callable[[NpGrad], NpGrad]:
    def attach(fn: NpGrad) -> NpGrad:
        REGISTRY[op_type].np_grad = fn
        return fn

    return attach


def _unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """``unbroadcast`` (``_grad_util``) on arrays: the ``SumToShape`` kernel, and its
    output conversion, where the shapes differ."""
    if g.shape == shape:
        return g
    out = np.asarray(_sum_to_shape(g, shape))
    return out if out.dtype == g.dtype else out.astype(g.dtype)


# The product of the op-level gradients by dtype kind: complex scalar math rounds
# differently from np.multiply (and from the op-level walk), so complex values multiply
# with the ufunc, even as NumPy scalars.
_MUL: Final[dict[str, Callable[[Any, Any], Any]]] = {"f": operator.mul, "c": np.multiply}


def _operand(t: Any) -> Any:
    """The array of eager tensor ``t``, as a NumPy scalar when it is 0-d.

    Element-wise gradients use the arithmetic operators, which on NumPy scalars skip
    the ufunc machinery (``s * s``: ~40 ns; ``np.multiply`` on 0-d arrays: ~330 ns, on
    scalars ~550 ns, mixed ~900 ns) and give the same values as the ufuncs (checked:
    NumPy's scalar math rounds +, -, / and unary - as its ufunc loops do, and * for real
    dtypes), except complex multiplication: there ``_MUL`` gives the ufunc.
    """
    v = t._value
    return v[()] if v.ndim == 0 else v


@_np_gradient("Identity")
def _identity(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    return (dy,)


@_np_gradient("Add")
def _add(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    x, y = rec[1]
    # _unbroadcast's test written out where the shapes usually match (the tape step).
    shape = dy.shape
    xs = x._value.shape
    ys = y._value.shape
    return (
        dy if xs == shape else _unbroadcast(dy, xs) if (want is None or id(x) in want) else None,
        dy if ys == shape else _unbroadcast(dy, ys) if (want is None or id(y) in want) else None,
    )


@_np_gradient("Sub")
def _sub(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    x, y = rec[1]
    return (
        _unbroadcast(dy, x._value.shape) if (want is None or id(x) in want) else None,
        _unbroadcast(-dy, y._value.shape) if (want is None or id(y) in want) else None,
    )


@_np_gradient("Mul")
def _mul(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    x, y = rec[1]
    # _operand and _unbroadcast written out (the tape step: ~0.4 µs of its ~11 µs).
    a = x._value
    b = y._value
    shape = dy.shape
    sa = a.shape
    sb = b.shape
    if not sa:
        a = a[()]
    if not sb:
        b = b[()]
    mul = _MUL[dy.dtype.kind]
    da = db = None
    if want is None or id(x) in want:
        da = mul(dy, b)
        if sa != shape:
            da = _unbroadcast(da, sa)
    if want is None or id(y) in want:
        db = mul(dy, a)
        if sb != shape:
            db = _unbroadcast(db, sb)
    return da, db


@_np_gradient("RealDiv")
def _div(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    x, y = rec[1]
    a = x._value
    b = y._value
    if a.dtype.kind not in "fc":
        return None, None  # integers divide to float64 and get no gradient
    dx = dyy = None
    if want is None or id(x) in want:
        dx = _unbroadcast(np.true_divide(dy, b), a.shape)
    if want is None or id(y) in want:
        dyy = np.negative(np.multiply(dy, np.true_divide(rec[2][0]._value, b)))
        dyy = _unbroadcast(dyy, b.shape)
    return dx, dyy


@_np_gradient("Neg")
def _neg(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    return (-dy,)


@_np_gradient("Square")
def _square(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    a = _operand(rec[1][0])
    return (_MUL[dy.dtype.kind](dy, a + a),)


@_np_gradient("Exp")
def _exp(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    return (_MUL[dy.dtype.kind](dy, _operand(rec[2][0])),)


@_np_gradient("Log")
def _log(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    return (np.true_divide(dy, rec[1][0]._value),)


@_np_gradient("Tanh")
def _tanh(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    out = rec[2][0]._value
    one = np.ones((), out.dtype)
    return (np.multiply(dy, np.subtract(one, np.square(out))),)


@_np_gradient("Sigmoid")
def _sigmoid(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    out = rec[2][0]._value
    one = np.ones((), out.dtype)
    return (np.multiply(dy, np.multiply(out, np.subtract(one, out))),)


@_np_gradient("Relu")
def _relu(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    a = rec[1][0]._value
    # greater(x, zeros_like(x)) cast to dy's dtype (``_mask``), then the product.
    mask = np.greater(a, np.zeros((), a.dtype)).astype(dy.dtype)
    return (np.multiply(dy, mask),)


_NO_TRANSPOSE: Final = {"transpose_a": False, "transpose_b": False}
_TRANSPOSE_A: Final = {"transpose_a": True, "transpose_b": False}
_TRANSPOSE_B: Final = {"transpose_a": False, "transpose_b": True}
_TRANSPOSE_AB: Final = {"transpose_a": True, "transpose_b": True}


@_np_gradient("MatMul")
def _matmul(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    x, y = rec[1]
    a = x._value
    b = y._value
    attrs = rec[3]
    ta, tb = attrs["transpose_a"], attrs["transpose_b"]
    # The matmuls of the op-level gradient (``_array_grad._matmul_grad``), flag for flag;
    # only for the inputs whose gradient is wanted (a layer's input, often a constant,
    # costs as much as its weights).
    da = db = None
    if want is None or id(x) in want:
        if not ta:
            da = _matmul_kernel(_NO_TRANSPOSE if tb else _TRANSPOSE_B, dy, b)
        else:
            da = _matmul_kernel(_TRANSPOSE_AB if tb else _TRANSPOSE_B, b, dy)
        da = _unbroadcast(da, a.shape)
    if want is None or id(y) in want:
        if not tb:
            db = _matmul_kernel(_NO_TRANSPOSE if ta else _TRANSPOSE_A, a, dy)
        else:
            db = _matmul_kernel(_TRANSPOSE_AB if ta else _TRANSPOSE_A, dy, a)
        db = _unbroadcast(db, b.shape)
    return da, db


def _spread(g: Any, like: np.ndarray[Any, Any], attrs: dict[str, Any]) -> Any:
    """``_broadcast_reduced`` on arrays: ``g`` (``like`` reduced over ``attrs``' axis)
    spread over ``like``'s shape. The kernel's ``broadcast_to(...).copy()`` written as a
    copy into a new array (the same values; np.broadcast_to is Python code, ~2 µs)."""
    axis = attrs["axis"]
    if axis is not None and not attrs["keepdims"]:
        return _broadcast_reduced_kernel(attrs, g, like)
    out = np.empty(like.shape, g.dtype)
    np.copyto(out, g)
    return out


@_np_gradient("Sum")
def _sum(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    return (_spread(dy, rec[1][0]._value, rec[3]),)


# The largest element count a sum of ones of each float dtype gives exactly: up to it,
# the op-level gradient's count (a float sum of ones) is the count itself.
_EXACT_COUNTS: Final = {np.dtype(np.float32): 2**24, np.dtype(np.float64): 2**53}


@_np_gradient("Mean")
def _mean(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    a = rec[1][0]._value
    attrs = rec[3]
    limit = _EXACT_COUNTS.get(a.dtype)
    if attrs["axis"] is None and not attrs["keepdims"] and limit is not None and a.size <= limit:
        # The mean of everything (a loss): the count as the sum of ones would give it,
        # without summing (~2 µs less); dy and the count are scalars of a real dtype.
        return (_spread(dy / a.dtype.type(a.size), a, attrs),)
    # The element count as the op-level gradient computes it: a sum of ones of x's dtype.
    ones = np.empty(a.shape, a.dtype)
    ones.fill(1)
    count = np.asarray(_sum_kernel(attrs, ones))
    return (_spread(np.true_divide(dy, count), a, attrs),)


@_np_gradient("Max")
@_np_gradient("Min")
def _extreme(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    a = rec[1][0]._value
    top = rec[2][0]._value
    attrs = rec[3]
    axis = attrs["axis"]
    keepdims = attrs["keepdims"]
    # _max_grad_kernel, with its two broadcast_to(...).copy() left to the broadcasting
    # of the ufuncs (the same element-wise values; np.broadcast_to costs ~2 µs each).
    dims: tuple[int, ...] = ()
    if axis is not None and not keepdims:
        dims = tuple(normalize_axis(i, a.ndim) for i in axis)
        top = np.expand_dims(top, dims)
    hits = (a == top).astype(dy.dtype)
    ties = hits.sum(axis=axis, keepdims=keepdims)
    g = dy / ties
    if dims:
        g = np.expand_dims(g, dims)
    return (hits * g,)


@_np_gradient("Reshape")
def _reshape(rec: Any, dy: Any, want: Any) -> tuple[Any, ...]:
    return (np.reshape(dy, rec[1][0]._value.shape),)
