"""Fast paths of the binary arithmetic ops and their operators (SPEC section 11).

``x + y`` on two eager tensors of one dtype (whose shapes broadcast), and ``x * 2.0``
with a Python scalar the tensor's dtype holds exactly, need no conversion and no rule:
these paths skip both, and are what the eager op, scalar-operand and tape-step rows measure.
The same two cases on graph tensors of the default graph (``x + y`` of one shape, and
``x + 1.0``) build their ops directly (``Graph._op1``): the graph op creation,
scalar-operand and bench_tasks rows.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from .._context import EAGER, GRAPH, PAUSED, SCOPES, TAPES, state_get
from .._graph import Tensor
from .._quiet import QUIET, quiet_reset, quiet_set
from .._tensor import _SCALAR_CACHE, PY_SCALARS, EagerTensor, shared_scalar, wrap
from ._core import EAGER_READS, NO_ATTRS, apply, offer_read
from ._registry import OpDef

__all__ = ["const_attrs", "fast_binary", "reflected"]

_new = object.__new__

# The Python operators of the ufuncs, for two 0-d operands of a real floating dtype: on
# NumPy scalars they skip the ufunc machinery (~0.3 µs of a scalar op's ~1.1 µs; the
# tape step runs two) and round exactly as the ufunc loops do (IEEE-754 operations,
# checked on specials, subnormals and overflow for float16/32/64). Not for complex,
# whose scalar product rounds differently, nor integers (kept on the ufunc path).
_SCALAR_OPS: Final = {
    np.add: operator.add,
    np.subtract: operator.sub,
    np.multiply: operator.mul,
    np.true_divide: operator.truediv,
}

# The attrs of a Const op holding a shared scalar (``x + 1.0`` in a graph): one dict per
# (type, value, dtype), shared by all such ops, as their value array already is (saves a
# dict per Const op, about 0.1 µs and 184 bytes). Nothing writes an op's attrs in place.
# Bounded and keyed like _SCALAR_CACHE (zero is never cached: 0.0 == -0.0).
_CONST_ATTRS: dict[tuple[type, Any, np.dtype[Any]], dict[str, Any]] = {}
_CONST_ATTRS_SIZE = 1024


def const_attrs(value: Any, dtype: np.dtype[Any]) -> dict[str, Any] | None:
    """The attrs of a ``Const`` op holding the Python scalar ``value`` as ``dtype`` (see
    :func:`shared_scalar`), or None if it does not convert without a question."""
    key = (type(value), value, dtype)
    attrs = _CONST_ATTRS.get(key)
    if attrs is not None:
        return attrs
    arr = shared_scalar(value, dtype)
    if arr is None:
        return None
    attrs = {"value": arr, "dtype": arr.dtype, "shape": arr.shape}
    if value:
        if len(_CONST_ATTRS) >= _CONST_ATTRS_SIZE:
            _CONST_ATTRS.clear()
        _CONST_ATTRS[key] = attrs
    return attrs


def fast_binary(opdef: OpDef, ufunc: Any, dtypes: frozenset[np.dtype[Any]]) -> Callable[..., Any]:
    """An op function with fast paths for the eager cases that need no checks.

    Two eager tensors of one dtype from ``dtypes`` (of shapes that broadcast), or an eager
    tensor of such a dtype and a Python scalar that converts exactly to it (``x * 2.0``),
    skip conversion and the rule: there is nothing to check. This is the per-op overhead
    SPEC section 11 measures (alone, with a scalar operand and inside a tape step), so it
    stays this small.

    Both paths ignore floating-point errors as the general path and graph runs do, so an
    overflow gives ``inf`` whatever the warning filters say (under ``-W error`` NumPy's
    warning would otherwise become an exception on this path only). Ignoring costs a
    ContextVar set and reset, about 0.2 µs of the op's 1.1 µs.
    """

    scalar_op = _SCALAR_OPS.get(ufunc)
    op_type = opdef.type
    # The scalar, dtype and Const attrs of this op's last ``x + 1.0`` in a graph (and the
    # scalar, dtype and shared array of its last eager one): the scalar of a loop is one
    # object (a literal), found by identity where the lookup in _CONST_ATTRS or
    # _SCALAR_CACHE hashes a tuple with a dtype (bench_ops: graph ``x + 1.0`` about
    # 0.1 µs less, eager ``a + 1.0`` 1.17 -> 1.03 µs). One tuple, replaced whole, so that
    # threads read a consistent triple. Identity is exact: the same object has one type
    # and value (0.0 and -0.0, 1, 1.0 and True are different objects), and only Python
    # scalars of exactly float, int or bool are stored.
    last: tuple[Any, Any, Any] = (None, None, None)
    last_eager: tuple[Any, Any, Any] = (None, None, None)

    def op(x: Any, y: Any, name: str | None = None) -> Any:
        nonlocal last, last_eager
        tx = type(x)
        ty = type(y)
        given = y
        if tx is EagerTensor:
            if ty is not EagerTensor and ty not in PY_SCALARS and ty in EAGER_READS:
                # A variable operand (a layer's bias), read here as the general path
                # would resolve it (~2.5 µs less, bench_functions' MLP); the read is
                # recorded only with the op. Where the fast path declines, the general
                # path gets the variable itself (the same read, errors and records).
                read = EAGER_READS[ty][0](y, state_get())
                if read is not None:
                    y = read
                    ty = EagerTensor
            if ty is EagerTensor:
                frame = state_get()
                if frame[EAGER]:
                    a = x._value
                    b = y._value
                    dt = a.dtype
                    if dt is b.dtype and dt in dtypes:
                        token = quiet_set(QUIET)
                        try:
                            if a.ndim or b.ndim or dt.kind != "f" or scalar_op is None:
                                r = ufunc(a, b)
                            else:
                                r = scalar_op(a[()], b[()])  # see _SCALAR_OPS
                        except ValueError:
                            # Shapes that do not broadcast: the general path raises the
                            # rule's error. (Shapes that do are NumPy's, as in the rule;
                            # a layer's bias add takes this path: ~1.5 µs less.)
                            r = None
                        finally:
                            quiet_reset(token)
                        if r is None:
                            return apply(opdef, (x, given), NO_ATTRS, name)
                        out = _new(EagerTensor)  # wrap(), written out
                        out._value = r if type(r) is np.ndarray else np.asarray(r)
                        if frame[TAPES] and not frame[PAUSED]:
                            if given is not y:  # a variable read above: recorded first
                                offer_read(frame, EAGER_READS[type(given)][1], given, y)
                            # The recording hook's loop, written out (see _core.offer).
                            for entry in frame[TAPES]:
                                entry._offer(opdef, (x, y), (out,), NO_ATTRS)
                        return out
            elif ty in PY_SCALARS:
                # ``x * 2.0``, the commonest form: _run_scalar and the cache lookup of
                # shared_scalar written out here (two calls less: about 0.2 µs of 1.3 µs);
                frame = state_get()
                if frame[EAGER]:
                    a = x._value
                    dtype = a.dtype
                    if dtype in dtypes:
                        memo = last_eager
                        if memo[0] is y and memo[1] is dtype:
                            b = memo[2]
                        else:
                            b = _SCALAR_CACHE.get((ty, y, dtype))
                            if b is None:
                                b = shared_scalar(y, dtype)
                            if b is not None:
                                last_eager = (y, dtype, b)
                        if b is not None:
                            token = quiet_set(QUIET)
                            try:
                                r = ufunc(a, b)
                            finally:
                                quiet_reset(token)
                            # wrap() written out too (a further 0.05 µs).
                            out = _new(EagerTensor)
                            out._value = r if type(r) is np.ndarray else np.asarray(r)
                            if frame[TAPES] and not frame[PAUSED]:
                                for entry in frame[TAPES]:
                                    entry._offer(opdef, (x, wrap(b)), (out,), NO_ATTRS)
                            return out
        elif tx is Tensor:
            # A graph op in the default graph, no tape recording: x + y of one dtype and
            # shape, or x + 1.0, built without conversion, rule or general op path (the
            # rule's checks are the conditions here): 2.5 -> 0.9 µs per op (bench_ops).
            frame = state_get()
            graph = x._graph
            if frame[GRAPH] is graph and not frame[EAGER] and not frame[TAPES] and name is None:
                dtype = x._dtype
                if dtype in dtypes:
                    if ty is Tensor:
                        shape = x._shape
                        if (
                            y._graph is graph
                            and y._dtype is dtype
                            and shape is not None
                            and shape == y._shape
                        ):
                            return graph._op1(op_type, x, y, NO_ATTRS, dtype, shape, frame[SCOPES])
                    else:
                        memo = last
                        if memo[0] is y and memo[1] is dtype:
                            attrs = memo[2]
                        elif ty in PY_SCALARS:
                            attrs = const_attrs(y, dtype)
                            if attrs is not None:
                                last = (y, dtype, attrs)
                        else:
                            attrs = None
                        if attrs is not None:
                            # the rule's shape: x's broadcast with () is x's shape
                            return graph._const_op(
                                op_type, x, attrs, NO_ATTRS, x._shape, frame[SCOPES], False
                            )
        elif ty is EagerTensor and tx in PY_SCALARS:
            frame = state_get()
            if frame[EAGER]:
                b = y._value
                if b.dtype in dtypes:
                    a = shared_scalar(x, b.dtype)
                    if a is not None:
                        return _run_scalar(frame, opdef, ufunc, y, b, a, True)
        return apply(opdef, (x, given), NO_ATTRS, name)

    return op


def reflected(opdef: OpDef, ufunc: Any, dtypes: frozenset[np.dtype[Any]]) -> Callable[..., Any]:
    """``other <op> self`` for the reflected operators (``2.0 * x``), with the scalar path."""

    op_type = opdef.type
    last: tuple[Any, Any, Any] = (None, None, None)  # as in fast_binary
    last_eager: tuple[Any, Any, Any] = (None, None, None)

    def rop(self: Any, other: Any) -> Any:
        nonlocal last, last_eager
        ts = type(self)
        kind = type(other)
        if ts is EagerTensor and kind in PY_SCALARS:
            frame = state_get()
            if frame[EAGER]:
                b = self._value
                dtype = b.dtype
                if dtype in dtypes:
                    memo = last_eager
                    if memo[0] is other and memo[1] is dtype:
                        a = memo[2]
                    else:
                        # shared_scalar's lookup written out (``lr * grad``: a call less)
                        a = _SCALAR_CACHE.get((kind, other, dtype))
                        if a is None:
                            a = shared_scalar(other, dtype)
                        if a is not None:
                            last_eager = (other, dtype, a)
                    if a is not None:
                        return _run_scalar(frame, opdef, ufunc, self, b, a, True)
        elif ts is Tensor and kind in PY_SCALARS:
            # 1.0 + x in the default graph: as in fast_binary, the Const first.
            frame = state_get()
            graph = self._graph
            if frame[GRAPH] is graph and not frame[EAGER] and not frame[TAPES]:
                dtype = self._dtype
                if dtype in dtypes:
                    memo = last
                    if memo[0] is other and memo[1] is dtype:
                        attrs = memo[2]
                    else:
                        attrs = const_attrs(other, dtype)
                        if attrs is not None:
                            last = (other, dtype, attrs)
                    if attrs is not None:
                        return graph._const_op(
                            op_type, self, attrs, NO_ATTRS, self._shape, frame[SCOPES], True
                        )
        return apply(opdef, (other, self), NO_ATTRS, None)

    return rop


def _run_scalar(
    frame: Any,
    opdef: OpDef,
    ufunc: Any,
    t: EagerTensor,
    value: np.ndarray[Any, Any],
    scalar: np.ndarray[Any, Any],
    scalar_first: bool,
) -> EagerTensor:
    """The eager fast path of ``t <op> scalar`` (or ``scalar <op> t``): the 0-d array
    ``scalar`` has ``t``'s dtype, so the result has ``t``'s dtype and shape."""
    token = quiet_set(QUIET)
    try:
        r = ufunc(scalar, value) if scalar_first else ufunc(value, scalar)
    finally:
        quiet_reset(token)
    out = _new(EagerTensor)  # wrap(), written out
    out._value = r if type(r) is np.ndarray else np.asarray(r)
    if frame[TAPES] and not frame[PAUSED]:
        inputs = (wrap(scalar), t) if scalar_first else (t, wrap(scalar))
        for entry in frame[TAPES]:
            entry._offer(opdef, inputs, (out,), NO_ATTRS)
    return out
