"""Building blocks of gradient functions: shape-matching ops that work in every mode.

A gradient function receives the op's record (``inputs``, ``outputs``, ``attrs``) and one
gradient per output, and returns one gradient (or None) per input, built from ordinary
ops: run eagerly on an eager tape, added to the graph when differentiating symbolically.
Shapes may be unknown while a graph is built, so broadcasting is undone by ops that look
at the runtime shape of a reference tensor (``SumToShape``, ``BroadcastLike``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .._context import TAPES, state_get
from .._tensor import EagerTensor, wrap
from ._core import NO_ATTRS, apply
from ._registry import REGISTRY, Spec, register_op

__all__ = [
    "GradRecord",
    "broadcast_like",
    "ones_like",
    "register_gradient",
    "sum_to_shape",
    "unbroadcast",
    "zeros_like",
]


class GradRecord(Protocol):
    """What a gradient function sees of the op it differentiates."""

    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]
    attrs: dict[str, Any]


GradFn = Callable[..., Any]


def register_gradient(op_type: str) -> Callable[[GradFn], GradFn]:
    """Attach the decorated function as the gradient of ``op_type``."""

    def attach(fn: GradFn) -> GradFn:
        REGISTRY[op_type].grad = fn
        return fn

    return attach


def _like_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return (specs[0],)


def _second_shape_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, _), (_, like_shape) = specs
    return ((dtype, like_shape),)


_add_reduce = np.add.reduce


def _sum_to_shape(g: np.ndarray[Any, Any], shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0 and g.shape[extra:] == shape and type(g) is np.ndarray:
        # Only leading dimensions to sum (a bias): the axes below, without the scan, and
        # the reduction g.sum() runs, called directly (~1 µs of a layer's bias gradient).
        return np.asarray(_add_reduce(g, tuple(range(extra))))
    axes = tuple(range(extra)) + tuple(
        i + extra for i, d in enumerate(shape) if d == 1 and g.shape[i + extra] != 1
    )
    return np.asarray(g.sum(axis=axes).reshape(shape))


def _zeros_kernel(attrs: dict[str, Any], x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # np.zeros_like is Python code (~1 µs on small arrays; a traced gradient runs it).
    return np.zeros(x.shape, x.dtype)


def _ones_kernel(attrs: dict[str, Any], x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    ones = np.empty(x.shape, x.dtype)
    ones.fill(1)  # np.ones and np.ones_like are several times slower on small arrays
    return ones


ZEROS_LIKE = register_op("ZerosLike", infer=_like_rule, kernel=_zeros_kernel, differentiable=False)
ONES_LIKE = register_op("OnesLike", infer=_like_rule, kernel=_ones_kernel, differentiable=False)
SUM_TO_SHAPE = register_op(
    "SumToShape",
    infer=_second_shape_rule,
    kernel=lambda attrs, g, like: _sum_to_shape(g, like.shape),
    same_dtype=False,
)
BROADCAST_LIKE = register_op(
    "BroadcastLike",
    infer=_second_shape_rule,
    kernel=lambda attrs, g, like: np.broadcast_to(g, like.shape).copy(),
    same_dtype=False,
)


def zeros_like(x: Any) -> Any:
    """Zeros with the dtype and runtime shape of ``x``."""
    if type(x) is EagerTensor and not state_get()[TAPES]:
        # Nothing to record: skip the op machinery (and np.zeros_like, slow on small arrays).
        value = x._value
        return wrap(np.zeros(value.shape, value.dtype))
    return apply(ZEROS_LIKE, (x,), NO_ATTRS)


def ones_like(x: Any) -> Any:
    """Ones with the dtype and runtime shape of ``x``."""
    if type(x) is EagerTensor and not state_get()[TAPES]:
        value = x._value
        ones = np.empty(value.shape, value.dtype)
        ones.fill(1)  # np.ones and np.ones_like are several times slower on small arrays
        return wrap(ones)
    return apply(ONES_LIKE, (x,), NO_ATTRS)


def sum_to_shape(g: Any, like: Any) -> Any:
    """``g`` summed over the axes along which ``like`` was broadcast to ``g``'s shape."""
    return apply(SUM_TO_SHAPE, (g, like), NO_ATTRS)


def broadcast_like(g: Any, like: Any) -> Any:
    """``g`` broadcast to the runtime shape of ``like``."""
    return apply(BROADCAST_LIKE, (g, like), NO_ATTRS)


def unbroadcast(g: Any, x: Any, other: Any = None) -> Any:
    """The gradient ``g`` of a broadcast result, reduced to the shape of input ``x``.

    ``other``, the op's other operand, lets a symbolic ``g`` pass unchanged where the
    static shapes prove the result has ``x``'s shape (``(None, 4) + (4,)``): without it
    the ``SumToShape`` would keep the forward value ``x`` alive in a backward graph only
    for its run-time shape (a served model's last ``h @ w2``).
    """
    if type(g) is EagerTensor and type(x) is EagerTensor and g._value.shape == x._value.shape:
        return g
    gs, xs = g.shape, x.shape
    if (
        gs is not None
        and xs is not None
        and gs == xs
        and (None not in gs or (other is not None and _spans(xs, other.shape)))
    ):
        return g
    return sum_to_shape(g, x)


def _spans(xs: tuple[Any, ...], os: tuple[Any, ...] | None) -> bool:
    """Whether broadcasting shape ``xs`` with ``os`` surely gives ``xs``: each dimension of
    ``os`` (aligned from the right) is statically 1 or equal to a known one of ``xs``."""
    if os is None or len(os) > len(xs):
        return False
    return all(
        o == 1 or (o is not None and o == d)
        for d, o in zip(xs[len(xs) - len(os) :], os, strict=True)
    )


@register_gradient("SumToShape")
def _sum_to_shape_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return broadcast_like(dy, op.inputs[0]), None


@register_gradient("BroadcastLike")
def _broadcast_like_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return sum_to_shape(dy, op.inputs[0]), None


@register_gradient("Identity")
def _identity_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (dy,)
