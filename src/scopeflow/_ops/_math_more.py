"""More element-wise math: rounding, trigonometry, integer division, clipping, bit logic.

These follow TensorFlow's names and semantics: ``round`` rounds half to even, ``mod`` is a
floor modulo (the result takes the sign of the divisor), ``floordiv`` rounds toward
negative infinity, and integer division by zero is an error rather than a silent 0. The
operators ``% // & | ^ ~`` dispatch here (``& | ^ ~`` are logical on bool tensors and
bitwise on integer ones).

Gradients: ``floor``, ``round``, ``sign`` and ``floordiv`` are piecewise constant, so, as
in TensorFlow, they have no gradient (a path through them contributes nothing, and a
source reached only through them gets ``None``). The comparisons and bit ops have integer
or bool outputs and no gradient either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from ._array import where
from ._core import NO_ATTRS, apply
from ._grad_util import GradRecord, ones_like, register_gradient, unbroadcast, zeros_like
from ._math import (
    LOGICAL_AND,
    LOGICAL_NOT,
    LOGICAL_OR,
    _binary,
    _kinds,
    _unary,
    add,
    divide,
    greater,
    less,
    logical_or,
    multiply,
    negative,
    square,
)
from ._registry import OpDef, Spec, broadcast_shapes, check_same_dtype, register_op

__all__ = [
    "clip_by_value",
    "cos",
    "floor",
    "floordiv",
    "log1p",
    "mod",
    "operator_and",
    "operator_invert",
    "operator_or",
    "operator_xor",
    "reciprocal",
    "round",
    "rsqrt",
    "sign",
    "sin",
]

_INTS: Final = "iu"


def _check_int_divisor(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], what: str) -> None:
    # NumPy quietly yields 0 for an integer division by zero; TensorFlow refuses.
    if y.dtype.kind in _INTS and not np.all(y):
        zeros = y.size - np.count_nonzero(y)
        msg = (
            f"integer {what} by zero ({zeros} of the {y.size} divisors of shape {y.shape} "
            f"are 0); no integer result exists"
        )
        raise ValueError(msg)


def _floordiv_kernel(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Any:
    if x.dtype.kind == "f":
        # floor(x / y), as TensorFlow computes it (NumPy's // differs when x / y rounds
        # up to an integer: 1.0 // 0.1 is 9.0 there, floor(1.0 / 0.1) is 10.0).
        return np.floor(np.true_divide(x, y))
    _check_int_divisor(x, y, "division")
    return np.floor_divide(x, y)


def _mod_kernel(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Any:
    _check_int_divisor(x, y, "modulo")
    return np.remainder(x, y)


def _round_kernel(x: np.ndarray[Any, Any]) -> Any:
    # np.round rounds half to even ("banker's rounding"), as TensorFlow's Round does.
    return x if x.dtype.kind in _INTS else np.round(x)


def _rsqrt_kernel(x: np.ndarray[Any, Any]) -> Any:
    return np.reciprocal(np.sqrt(x))


_REAL = "iuf"
_FLOAT = "fc"

# Piecewise constant: no gradient (SPEC section 9), so they are not recorded by tapes.
SIGN = _unary("Sign", np.sign, _REAL, "real")  # its gradient is zeros, as in TensorFlow
FLOOR = _unary("Floor", np.floor, "f", "floating-point", differentiable=False)
ROUND = _unary("Round", _round_kernel, _REAL, "real", differentiable=False)
FLOORDIV = _binary("FloorDiv", _floordiv_kernel, _REAL, "real", differentiable=False)

SIN = _unary("Sin", np.sin, _FLOAT, "floating-point")
COS = _unary("Cos", np.cos, _FLOAT, "floating-point")
MOD = _binary("FloorMod", _mod_kernel, _REAL, "real")
LOG1P = _unary("Log1p", np.log1p, _FLOAT, "floating-point")
RSQRT = _unary("Rsqrt", _rsqrt_kernel, _FLOAT, "floating-point")
RECIPROCAL = _unary("Reciprocal", np.reciprocal, _FLOAT, "floating-point")

BITWISE_AND = _binary("BitwiseAnd", np.bitwise_and, _INTS, "integer", differentiable=False)
BITWISE_OR = _binary("BitwiseOr", np.bitwise_or, _INTS, "integer", differentiable=False)
BITWISE_XOR = _binary("BitwiseXor", np.bitwise_xor, _INTS, "integer", differentiable=False)
INVERT = _unary("Invert", np.invert, _INTS, "integer", differentiable=False)
LOGICAL_XOR = _binary("LogicalXor", np.logical_xor, "b", "bool", differentiable=False)


def _clip_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), (dlo, slo), (dhi, shi) = specs
    check_same_dtype(dtype, dlo)
    check_same_dtype(dtype, dhi)
    _kinds(dtype, _REAL, "real")
    if shape is None:
        return ((dtype, None),)
    out = list(shape)
    for label, bound in (("clip_value_min", slo), ("clip_value_max", shi)):
        try:
            merged = broadcast_shapes(shape, bound)
        except ValueError:
            msg = f"{label} of shape {bound} does not broadcast to t of shape {shape}"
            raise ValueError(msg) from None
        if merged is None:
            continue
        if len(merged) != len(shape):
            msg = f"{label} of shape {bound} has a higher rank than t of shape {shape}"
            raise ValueError(msg)
        for i, (d, m) in enumerate(zip(shape, merged, strict=True)):
            if d == 1 and m is not None and m != 1:
                msg = f"{label} of shape {bound} would broadcast t of shape {shape} to {merged}"
                raise ValueError(msg)
            # A size the bound pins where t's is unknown must hold at run time (the
            # kernel checks that t is not enlarged), so the output may know it.
            if out[i] is None:
                out[i] = m
    return ((dtype, tuple(out)),)


def _clip_kernel(attrs: dict[str, Any], t: Any, lo: Any, hi: Any) -> Any:
    # TensorFlow's order: min with the upper bound first, then max with the lower one, so a
    # lower bound above the upper one wins (np.clip would give the upper bound).
    out = np.maximum(np.minimum(t, hi), lo)
    if out.shape != t.shape:
        msg = (
            f"clip values of shapes {lo.shape} and {hi.shape} would broadcast t of shape "
            f"{t.shape} to {out.shape}; they must broadcast to t's shape"
        )
        raise ValueError(msg)
    return out


CLIP = register_op("ClipByValue", infer=_clip_rule, kernel=_clip_kernel)


# -- public functions -------------------------------------------------------------------


def sign(x: Any, name: str | None = None) -> Any:
    """-1, 0 or 1 element-wise, by the sign of ``x`` (no gradient: piecewise constant).

    Example:
        >>> import scopeflow as sf
        >>> sf.sign([-2.5, 0.0, 3.0]).numpy()
        array([-1.,  0.,  1.], dtype=float32)
    """
    return apply(SIGN, (x,), NO_ATTRS, name)


def floor(x: Any, name: str | None = None) -> Any:
    """The largest integer not greater than ``x``, element-wise (floating-point inputs).

    No gradient: the function is piecewise constant.

    Example:
        >>> import scopeflow as sf
        >>> sf.floor([-1.5, 1.5]).numpy()
        array([-2.,  1.], dtype=float32)
    """
    return apply(FLOOR, (x,), NO_ATTRS, name)


def round(x: Any, name: str | None = None) -> Any:  # noqa: A001 - TensorFlow's name
    """``x`` rounded to the nearest integer, halves to even (banker's rounding).

    Integer inputs are returned unchanged. No gradient: the function is piecewise constant.

    Example:
        >>> import scopeflow as sf
        >>> sf.round([0.5, 1.5, 2.5, -0.5, 2.7]).numpy()
        array([ 0.,  2.,  2., -0.,  3.], dtype=float32)
    """
    return apply(ROUND, (x,), NO_ATTRS, name)


def sin(x: Any, name: str | None = None) -> Any:
    """The element-wise sine (floating-point inputs).

    Example:
        >>> import scopeflow as sf
        >>> sf.sin([0.0]).numpy()
        array([0.], dtype=float32)
    """
    return apply(SIN, (x,), NO_ATTRS, name)


def cos(x: Any, name: str | None = None) -> Any:
    """The element-wise cosine (floating-point inputs).

    Example:
        >>> import scopeflow as sf
        >>> sf.cos([0.0]).numpy()
        array([1.], dtype=float32)
    """
    return apply(COS, (x,), NO_ATTRS, name)


def log1p(x: Any, name: str | None = None) -> Any:
    """``log(1 + x)`` element-wise, accurate for small ``x`` (floating-point inputs).

    Example:
        >>> import scopeflow as sf
        >>> sf.log1p(sf.constant([1e-10, 1.0], sf.float64)).numpy()
        array([1.00000000e-10, 6.93147181e-01])
    """
    return apply(LOG1P, (x,), NO_ATTRS, name)


def rsqrt(x: Any, name: str | None = None) -> Any:
    """``1 / sqrt(x)`` element-wise (floating-point inputs).

    Example:
        >>> import scopeflow as sf
        >>> sf.rsqrt([4.0, 0.25]).numpy()
        array([0.5, 2. ], dtype=float32)
    """
    return apply(RSQRT, (x,), NO_ATTRS, name)


def reciprocal(x: Any, name: str | None = None) -> Any:
    """``1 / x`` element-wise (floating-point inputs).

    Example:
        >>> import scopeflow as sf
        >>> sf.reciprocal([4.0, -0.5]).numpy()
        array([ 0.25, -2.  ], dtype=float32)
    """
    return apply(RECIPROCAL, (x,), NO_ATTRS, name)


def floordiv(x: Any, y: Any, name: str | None = None) -> Any:
    """``x // y``: the quotient rounded toward negative infinity, with broadcasting.

    Integer inputs give integers (an integer division by zero raises
    ``InvalidArgumentError``), floating-point inputs ``floor(x / y)``. No gradient: the
    function is piecewise constant.

    Example:
        >>> import scopeflow as sf
        >>> sf.floordiv([7, -7], 2).numpy()
        array([ 3, -4], dtype=int32)
    """
    return apply(FLOORDIV, (x, y), NO_ATTRS, name)


def mod(x: Any, y: Any, name: str | None = None) -> Any:
    """``x % y`` with the sign of the divisor (a floor modulo, as Python's ``%``).

    ``x == floordiv(x, y) * y + mod(x, y)``. An integer modulo by zero raises
    ``InvalidArgumentError``.

    Example:
        >>> import scopeflow as sf
        >>> sf.mod([7, -7, 7], [3, 3, -3]).numpy()
        array([ 1,  2, -2], dtype=int32)
    """
    return apply(MOD, (x, y), NO_ATTRS, name)


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any, name: str | None = None) -> Any:
    """``t`` with values below ``clip_value_min`` raised to it and above ``clip_value_max``
    lowered to it.

    The bounds broadcast to ``t``'s shape (scalars, or shapes ``t`` already has) and must
    not enlarge it. Gradients flow to ``t`` where it lies within the bounds and to the
    bound it was clipped to elsewhere. As in TensorFlow, the result is
    ``maximum(minimum(t, clip_value_max), clip_value_min)``: where the lower bound lies above
    the upper one, the lower bound wins.

    Raises:
        ValueError: a bound's shape would broadcast ``t`` to a larger shape.
        TypeError: the dtypes differ or are not real numbers.

    Example:
        >>> import scopeflow as sf
        >>> sf.clip_by_value([-2.0, 0.5, 3.0], -1.0, 1.0).numpy()
        array([-1. ,  0.5,  1. ], dtype=float32)
    """
    return apply(CLIP, (t, clip_value_min, clip_value_max), NO_ATTRS, name)


# -- operators --------------------------------------------------------------------------


def _bit_logic(
    symbol: str, word: str, logical: OpDef, bitwise: OpDef, tensor: Any, inputs: tuple[Any, ...]
) -> Any:
    kind = tensor.dtype.kind
    if kind == "b":
        return apply(logical, inputs, NO_ATTRS)
    if kind in _INTS:
        return apply(bitwise, inputs, NO_ATTRS)
    msg = (
        f"operator {symbol} is the logical {word} of bool tensors and the bitwise {word} of "
        f"integer tensors; it is not defined for a {tensor.dtype.name} tensor "
        f"(shape {tensor.shape}): compare first (x > 0) or use sf.cast()"
    )
    raise TypeError(msg)


def operator_and(tensor: Any, x: Any, y: Any) -> Any:
    """``x & y`` where ``tensor`` (one of them) decides between logical and bitwise."""
    return _bit_logic("&", "AND", LOGICAL_AND, BITWISE_AND, tensor, (x, y))


def operator_or(tensor: Any, x: Any, y: Any) -> Any:
    """``x | y`` where ``tensor`` (one of them) decides between logical and bitwise."""
    return _bit_logic("|", "OR", LOGICAL_OR, BITWISE_OR, tensor, (x, y))


def operator_xor(tensor: Any, x: Any, y: Any) -> Any:
    """``x ^ y`` where ``tensor`` (one of them) decides between logical and bitwise."""
    return _bit_logic("^", "XOR", LOGICAL_XOR, BITWISE_XOR, tensor, (x, y))


def operator_invert(x: Any) -> Any:
    """``~x``: logical NOT of a bool tensor, bitwise NOT of an integer one."""
    return _bit_logic("~", "NOT", LOGICAL_NOT, INVERT, x, (x,))


# -- gradients --------------------------------------------------------------------------


@register_gradient("FloorMod")
def _mod_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    # x mod y = x - floor(x / y) * y, and the floor is piecewise constant.
    quotient = apply(FLOORDIV, (x, y), NO_ATTRS)
    return unbroadcast(dy, x), unbroadcast(negative(multiply(dy, quotient)), y)


@register_gradient("Sign")
def _sign_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (zeros_like(op.inputs[0]),)


@register_gradient("Sin")
def _sin_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (multiply(dy, cos(op.inputs[0])),)


@register_gradient("Cos")
def _cos_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (negative(multiply(dy, sin(op.inputs[0]))),)


@register_gradient("Log1p")
def _log1p_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    return (divide(dy, add(ones_like(x), x)),)


@register_gradient("Rsqrt")
def _rsqrt_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (out,) = op.outputs
    # d(x ** -1/2) = -1/2 x ** -3/2 = -out ** 3 / 2
    return (multiply(multiply(dy, -0.5), multiply(out, square(out))),)


@register_gradient("Reciprocal")
def _reciprocal_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (out,) = op.outputs
    return (negative(multiply(dy, square(out))),)


@register_gradient("ClipByValue")
def _clip_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, lo, hi = op.inputs
    zero = zeros_like(dy)
    below = less(x, lo)
    above = greater(x, hi)
    dx = where(logical_or(below, above), zero, dy)
    return dx, unbroadcast(where(below, dy, zero), lo), unbroadcast(where(above, dy, zero), hi)
