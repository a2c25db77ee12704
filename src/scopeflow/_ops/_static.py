"""What a graph tensor's value is known to be while the graph is built.

Ops that take shapes, sizes or axes (``zeros``, ``reshape``, ``tile``, ``range``...)
accept tensors for them. When such a tensor is computed only from constants and from
static shapes that are fully known (``sf.shape(x)`` of a placeholder of shape ``(2, 3)``),
its value is folded here so the op knows its static shape, or can take the value as an
attr. :func:`partial_shape` goes further for shape vectors: it knows ``[None, 3]`` for
``sf.stack([sf.shape(x)[0], 3])`` when ``x`` has shape ``(None, 5)``.

The walks are bounded (``_DEPTH``) so a deep chain of ops costs nothing much and never
hits the recursion limit: past the bound the value is simply unknown.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from .._graph import Shape, Tensor
from .._tensor import EagerTensor
from ._array import as_int, is_tensor_like

__all__ = [
    "PartialShape",
    "dim_sources",
    "is_symbolic",
    "pack_shape",
    "partial_shape",
    "static_int",
    "static_value",
]

PartialShape = tuple[int | None, ...]
"""A shape vector's entries as far as they are known: ints (``-1`` kept), None unknown."""

_DEPTH: Final = 16


def is_symbolic(x: Any) -> bool:
    """True for graph tensors and objects resolving to one (graph-mode variables)."""
    if type(x) is Tensor:
        return True
    hook = getattr(x, "__sf_tensor__", None)
    if hook is None or isinstance(x, EagerTensor):
        return False
    return type(hook()) is Tensor


def _op_value(t: Tensor, depth: int) -> np.ndarray[Any, Any] | None:
    op = t._op
    kind = op._type
    if kind == "Const":
        return op._attrs["value"]  # type: ignore[no-any-return]
    if depth <= 0:
        return None
    if kind == "Placeholder":
        return _captured_value(op, depth)
    if kind in ("Shape", "Size", "Rank"):
        shape = op._inputs[0]._shape
        if kind == "Rank":
            return None if shape is None else np.asarray(len(shape), np.int32)
        if shape is None or None in shape:
            return None
        if kind == "Size":
            return np.asarray(math.prod(d for d in shape if d is not None), op._attrs["out_type"])
        return np.asarray(shape, op._attrs["out_type"])
    if kind in ("Identity", "Cast", "GetItem", "Stack", "Concat"):
        values = [_op_value(x, depth - 1) for x in op._inputs]
        if any(v is None for v in values):
            return None
        if kind == "Identity":
            return values[0]
        if kind == "Cast":
            return np.asarray(values[0]).astype(op._attrs["dtype"])
        if kind == "GetItem":
            return np.asarray(np.asarray(values[0])[op._attrs["key"]])
        if kind == "Stack":
            return np.stack(values, axis=op._attrs["axis"])  # type: ignore[arg-type]
        return np.concatenate(values, axis=op._attrs["axis"])  # type: ignore[arg-type]
    return None


def _captured_value(op: Any, depth: int) -> np.ndarray[Any, Any] | None:
    """The known value of the outer graph tensor a function graph's placeholder captures
    (a constant, or folded from one), as TensorFlow knows it inside a loop body: a
    capture is bound to that same tensor on every call."""
    captures = getattr(op._graph, "_captures", None)
    if not captures:
        return None
    with op._graph._capture_lock:
        entries = tuple(captures.values())
    for _, outer, ph in entries:
        if ph._op is op:
            return _op_value(outer, depth - 1) if type(outer) is Tensor else None
    return None


def static_value(x: Any) -> np.ndarray[Any, Any] | None:
    """The value of ``x`` if it is known while building: Python and NumPy values, eager
    tensors, and graph tensors folded from constants and fully known static shapes."""
    if type(x) is Tensor:
        return _op_value(x, _DEPTH)
    if isinstance(x, EagerTensor):
        return np.asarray(x)
    if is_symbolic(x):
        return _op_value(x.__sf_tensor__(), _DEPTH)
    if is_tensor_like(x):
        return np.asarray(x.__sf_tensor__())
    if isinstance(x, (list, tuple)) and any(is_tensor_like(v) for v in x):
        values = [static_value(v) for v in x]
        if any(v is None for v in values):
            return None
        return np.asarray(values)
    return np.asarray(x)


def static_int(value: Any, what: str) -> int:
    """``value`` as a Python int; a graph tensor must have a value known while building."""
    if is_tensor_like(value):
        known = static_value(value)
        if known is None or known.ndim != 0 or known.dtype.kind not in "iu":
            msg = (
                f"{what} must be an int known while building the graph (a Python int or a "
                f"constant), got {value!r}"
            )
            raise TypeError(msg)
        return int(known)
    return as_int(value, what)


def _partial(t: Tensor, depth: int) -> PartialShape | None:
    known = _op_value(t, depth)
    if known is not None:
        if known.ndim != 1:
            return None
        return tuple(int(v) for v in known)
    op = t._op
    kind = op._type
    if depth > 0:
        if kind == "Shape":
            return op._inputs[0]._shape
        if kind in ("Identity", "Cast"):
            return _partial(op._inputs[0], depth - 1)
        if kind == "Stack" and op._attrs["axis"] in (0, -1):
            entries: list[int | None] = []
            for x in op._inputs:
                v = _op_value(x, depth - 1)
                entries.append(None if v is None or v.ndim != 0 else int(v))
            return tuple(entries)
        if kind == "Concat" and op._attrs["axis"] in (0, -1):
            pieces = [_partial(x, depth - 1) for x in op._inputs]
            if all(p is not None for p in pieces):
                return tuple(d for p in pieces if p is not None for d in p)
        if kind == "GetItem":
            key = op._attrs["key"]
            inner = _partial(op._inputs[0], depth - 1)
            if inner is not None and len(key) == 1 and isinstance(key[0], slice):
                return inner[key[0]]
    shape = t._shape
    if shape is None or len(shape) != 1 or shape[0] is None:
        return None
    return (None,) * shape[0]


def partial_shape(t: Tensor) -> PartialShape | None:
    """What is known of the 1-D shape vector ``t``; None when even its length is not."""
    return _partial(t, _DEPTH)


def _dim_source(t: Tensor) -> tuple[Tensor, int] | None:
    """``(x, i)`` when ``t`` is ``sf.shape(x)[i]`` (an int index, not a slice)."""
    op = t._op
    if op._type != "GetItem" or op._inputs[0]._op._type != "Shape":
        return None
    key = op._attrs["key"]
    if len(key) != 1 or type(key[0]) is not int:
        return None
    return op._inputs[0]._op._inputs[0], key[0]


def dim_sources(t: Tensor) -> tuple[tuple[Tensor, int] | None, ...] | None:
    """For each entry of the shape vector ``t``, the dimension ``(x, i)`` of a tensor it
    is read from (``sf.shape(x)[i]`` or ``sf.shape(x)`` itself), if any."""
    op = t._op
    if op._type == "Shape":
        shape = op._inputs[0]._shape
        x = op._inputs[0]
        return None if shape is None else tuple((x, i) for i in range(len(shape)))
    if op._type == "Stack" and op._attrs["axis"] in (0, -1):
        return tuple(_dim_source(x) for x in op._inputs)
    return None


def pack_shape(value: Any) -> Any:
    """A list mixing ints and scalar tensors as one int tensor (``[sf.shape(x)[0], -1]``);
    other values pass unchanged."""
    if isinstance(value, (list, tuple)) and any(is_tensor_like(v) for v in value):
        from ._array import stack

        dtype = next(v.dtype for v in value if is_tensor_like(v))
        if dtype.kind not in "iu":
            msg = f"shape entries must be ints, got a {dtype.name} tensor in {value!r}"
            raise TypeError(msg)
        return stack([v if is_tensor_like(v) else _entry(v, dtype, value) for v in value])
    return value


def _entry(v: Any, dtype: np.dtype[Any], value: Any) -> np.ndarray[Any, Any]:
    """A Python int of a packed list as a scalar of the list's tensors' dtype."""
    n = as_int(v, "a size")
    if not np.iinfo(dtype).min <= n <= np.iinfo(dtype).max:
        msg = f"{n} does not fit the {dtype.name} of the tensors in {value!r:.80}"
        raise ValueError(msg)
    return np.asarray(n, dtype)


def merge_partial(partial: PartialShape | None, length: int | None) -> Shape | None:
    """The static shape a shape vector of ``partial`` entries gives (negative unknown)."""
    if partial is None:
        return None if length is None else (None,) * length
    return tuple(None if d is None or d < 0 else d for d in partial)
