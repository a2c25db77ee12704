"""Element-wise math: arithmetic, unary functions, comparisons and logic, casts.

Binary ops broadcast like NumPy and, as in TensorFlow, need both inputs of one dtype;
Python numbers take the dtype of the tensor they meet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from .._tensor import as_dtype
from ._core import NO_ATTRS, apply
from ._fast_binary import fast_binary as _fast_binary, reflected as _reflected
from ._grad_util import GradRecord, ones_like, register_gradient, unbroadcast, zeros_like
from ._registry import OpDef, Spec, broadcast_shapes, check_same_dtype, register_op

__all__ = [
    "abs",
    "add",
    "cast",
    "divide",
    "equal",
    "exp",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "log",
    "logical_and",
    "logical_not",
    "logical_or",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "not_equal",
    "pow",
    "relu",
    "sigmoid",
    "sqrt",
    "square",
    "subtract",
    "tanh",
]

_BOOL: Final = np.dtype(np.bool_)
_FLOAT32: Final = np.dtype(np.float32)
_FLOAT64: Final = np.dtype(np.float64)
# Dtypes the arithmetic fast path accepts without further checks.
_NUMERIC: Final = frozenset(
    np.dtype(t)
    for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64, np.complex64, np.complex128)
)  # fmt: skip


def _kinds(dtype: np.dtype[Any], kinds: str, what: str) -> None:
    if dtype.kind not in kinds:
        msg = f"expected {what} inputs, got dtype {dtype.name}"
        raise TypeError(msg)


def _binary_rule(kinds: str, what: str, out: Callable[[np.dtype[Any]], np.dtype[Any]]) -> Any:
    def rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        (da, sa), (db, sb) = specs
        check_same_dtype(da, db)
        _kinds(da, kinds, what)
        return ((out(da), broadcast_shapes(sa, sb)),)

    return rule


def _unary_rule(kinds: str, what: str, out: Callable[[np.dtype[Any]], np.dtype[Any]]) -> Any:
    def rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
        ((dtype, shape),) = specs
        _kinds(dtype, kinds, what)
        return ((out(dtype), shape),)

    return rule


def _same(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return dtype


def _to_bool(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return _BOOL


def _true_div(dtype: np.dtype[Any]) -> np.dtype[Any]:
    # TensorFlow's true division: 8- and 16-bit integers divide to float32, wider ones to
    # float64; floats keep their dtype.
    if dtype.kind in "iu":
        return _FLOAT32 if dtype.itemsize <= 2 else _FLOAT64
    return dtype


_NUM = "iufc"
_REAL = "iuf"
_FLOAT = "fc"


def _binary(name: str, kernel: Callable[..., Any], kinds: str, what: str,
            out: Callable[[np.dtype[Any]], np.dtype[Any]] = _same,
            differentiable: bool = True) -> OpDef:  # fmt: skip
    return register_op(
        name, infer=_binary_rule(kinds, what, out), kernel=lambda attrs, a, b: kernel(a, b),
        differentiable=differentiable, bind=lambda attrs: kernel,
    )  # fmt: skip


def _unary(name: str, kernel: Callable[..., Any], kinds: str, what: str,
           out: Callable[[np.dtype[Any]], np.dtype[Any]] = _same,
           differentiable: bool = True) -> OpDef:  # fmt: skip
    return register_op(
        name, infer=_unary_rule(kinds, what, out), kernel=lambda attrs, a: kernel(a),
        differentiable=differentiable, bind=lambda attrs: kernel,
    )  # fmt: skip


def _sigmoid(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # Stable for large |a|: exp never overflows on the side that matters.
    e = np.exp(-np.abs(a))
    out: np.ndarray[Any, Any] = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype)
    return out


ADD = _binary("Add", np.add, _NUM, "numeric")
SUB = _binary("Sub", np.subtract, _NUM, "numeric")
MUL = _binary("Mul", np.multiply, _NUM, "numeric")
DIV = _binary(
    "RealDiv",
    lambda a, b: np.true_divide(a, b, dtype=_true_div(a.dtype)),
    _NUM,
    "numeric",
    _true_div,
)
POW = _binary("Pow", np.power, _NUM, "numeric")
MAXIMUM = _binary("Maximum", np.maximum, _REAL, "real")
MINIMUM = _binary("Minimum", np.minimum, _REAL, "real")
EQUAL = _binary("Equal", np.equal, "biufc", "numeric or bool", _to_bool, differentiable=False)
NOT_EQUAL = _binary(
    "NotEqual", np.not_equal, "biufc", "numeric or bool", _to_bool, differentiable=False
)
LESS = _binary("Less", np.less, _REAL, "real", _to_bool, differentiable=False)
LESS_EQUAL = _binary("LessEqual", np.less_equal, _REAL, "real", _to_bool, differentiable=False)
GREATER = _binary("Greater", np.greater, _REAL, "real", _to_bool, differentiable=False)
GREATER_EQUAL = _binary(
    "GreaterEqual", np.greater_equal, _REAL, "real", _to_bool, differentiable=False
)
LOGICAL_AND = _binary("LogicalAnd", np.logical_and, "b", "bool", differentiable=False)
LOGICAL_OR = _binary("LogicalOr", np.logical_or, "b", "bool", differentiable=False)

NEG = _unary("Neg", np.negative, _NUM, "numeric")
ABS = _unary("Abs", np.abs, _REAL, "real")
SQUARE = _unary("Square", np.square, _NUM, "numeric")
SQRT = _unary("Sqrt", np.sqrt, _FLOAT, "floating-point")
EXP = _unary("Exp", np.exp, _FLOAT, "floating-point")
LOG = _unary("Log", np.log, _FLOAT, "floating-point")
TANH = _unary("Tanh", np.tanh, _FLOAT, "floating-point")
SIGMOID = _unary("Sigmoid", _sigmoid, "f", "floating-point")
RELU = _unary("Relu", lambda a: np.maximum(a, np.zeros((), a.dtype)), _REAL, "real")
LOGICAL_NOT = _unary("LogicalNot", np.logical_not, "b", "bool", differentiable=False)


# True division of floats keeps their dtype; integers go the general path (_true_div).
_INEXACT: Final = frozenset(d for d in _NUMERIC if d.kind in "fc")

add = _fast_binary(ADD, np.add, _NUMERIC)
add.__name__ = "add"
add.__doc__ = """``x + y`` element-wise, with broadcasting.

    Example:
        >>> import scopeflow as sf
        >>> sf.add([1.0, 2.0], 1.0).numpy()
        array([2., 3.], dtype=float32)
    """
subtract = _fast_binary(SUB, np.subtract, _NUMERIC)
subtract.__name__ = "subtract"
subtract.__doc__ = "``x - y`` element-wise, with broadcasting."
multiply = _fast_binary(MUL, np.multiply, _NUMERIC)
multiply.__name__ = "multiply"
multiply.__doc__ = "``x * y`` element-wise, with broadcasting."
divide = _fast_binary(DIV, np.true_divide, _INEXACT)
divide.__name__ = "divide"
divide.__doc__ = """``x / y`` element-wise (true division: 8- and 16-bit integers give float32,
    wider integers float64, as in TensorFlow).

    Example:
        >>> import scopeflow as sf
        >>> sf.divide([1, 3], 2).numpy()
        array([0.5, 1.5])
    """
radd = _reflected(ADD, np.add, _NUMERIC)
rsubtract = _reflected(SUB, np.subtract, _NUMERIC)
rmultiply = _reflected(MUL, np.multiply, _NUMERIC)
rdivide = _reflected(DIV, np.true_divide, _INEXACT)


def pow(x: Any, y: Any, name: str | None = None) -> Any:  # noqa: A001 - TensorFlow's name
    """``x ** y`` element-wise."""
    return apply(POW, (x, y), NO_ATTRS, name)


def maximum(x: Any, y: Any, name: str | None = None) -> Any:
    """The element-wise maximum."""
    return apply(MAXIMUM, (x, y), NO_ATTRS, name)


def minimum(x: Any, y: Any, name: str | None = None) -> Any:
    """The element-wise minimum."""
    return apply(MINIMUM, (x, y), NO_ATTRS, name)


def equal(x: Any, y: Any, name: str | None = None) -> Any:
    """``x == y`` element-wise, as a bool tensor."""
    return apply(EQUAL, (x, y), NO_ATTRS, name)


def not_equal(x: Any, y: Any, name: str | None = None) -> Any:
    """``x != y`` element-wise, as a bool tensor (no gradient: the output is bool).

    Example:
        >>> import scopeflow as sf
        >>> sf.not_equal([1, 2], 2).numpy()
        array([ True, False])
    """
    return apply(NOT_EQUAL, (x, y), NO_ATTRS, name)


def less(x: Any, y: Any, name: str | None = None) -> Any:
    """``x < y`` element-wise, as a bool tensor."""
    return apply(LESS, (x, y), NO_ATTRS, name)


def less_equal(x: Any, y: Any, name: str | None = None) -> Any:
    """``x <= y`` element-wise, as a bool tensor (no gradient: the output is bool).

    Example:
        >>> import scopeflow as sf
        >>> sf.less_equal([1, 2, 3], 2).numpy()
        array([ True,  True, False])
    """
    return apply(LESS_EQUAL, (x, y), NO_ATTRS, name)


def greater(x: Any, y: Any, name: str | None = None) -> Any:
    """``x > y`` element-wise, as a bool tensor."""
    return apply(GREATER, (x, y), NO_ATTRS, name)


def greater_equal(x: Any, y: Any, name: str | None = None) -> Any:
    """``x >= y`` element-wise, as a bool tensor (no gradient: the output is bool).

    Example:
        >>> import scopeflow as sf
        >>> sf.greater_equal([1, 2, 3], 2).numpy()
        array([False,  True,  True])
    """
    return apply(GREATER_EQUAL, (x, y), NO_ATTRS, name)


def logical_and(x: Any, y: Any, name: str | None = None) -> Any:
    """Element-wise AND of bool tensors (also ``x & y`` on bool tensors).

    Example:
        >>> import scopeflow as sf
        >>> sf.logical_and([True, True], [True, False]).numpy()
        array([ True, False])
    """
    return apply(LOGICAL_AND, (x, y), NO_ATTRS, name)


def logical_or(x: Any, y: Any, name: str | None = None) -> Any:
    """Element-wise OR of bool tensors (also ``x | y`` on bool tensors).

    Example:
        >>> import scopeflow as sf
        >>> sf.logical_or([False, False], [True, False]).numpy()
        array([ True, False])
    """
    return apply(LOGICAL_OR, (x, y), NO_ATTRS, name)


def logical_not(x: Any, name: str | None = None) -> Any:
    """Element-wise NOT of a bool tensor."""
    return apply(LOGICAL_NOT, (x,), NO_ATTRS, name)


def negative(x: Any, name: str | None = None) -> Any:
    """``-x`` element-wise."""
    return apply(NEG, (x,), NO_ATTRS, name)


def abs(x: Any, name: str | None = None) -> Any:  # noqa: A001 - TensorFlow's name
    """``|x|`` element-wise (real inputs); the gradient is ``sign(x)``, 0 at 0.

    Example:
        >>> import scopeflow as sf
        >>> sf.abs([-1.5, 2.0]).numpy()
        array([1.5, 2. ], dtype=float32)
    """
    return apply(ABS, (x,), NO_ATTRS, name)


def square(x: Any, name: str | None = None) -> Any:
    """``x * x`` element-wise."""
    return apply(SQUARE, (x,), NO_ATTRS, name)


def sqrt(x: Any, name: str | None = None) -> Any:
    """The element-wise square root (floating-point inputs)."""
    return apply(SQRT, (x,), NO_ATTRS, name)


def exp(x: Any, name: str | None = None) -> Any:
    """``e ** x`` element-wise (floating-point inputs)."""
    return apply(EXP, (x,), NO_ATTRS, name)


def log(x: Any, name: str | None = None) -> Any:
    """The element-wise natural logarithm (floating-point inputs)."""
    return apply(LOG, (x,), NO_ATTRS, name)


def tanh(x: Any, name: str | None = None) -> Any:
    """The element-wise hyperbolic tangent (floating-point inputs)."""
    return apply(TANH, (x,), NO_ATTRS, name)


def sigmoid(x: Any, name: str | None = None) -> Any:
    """``1 / (1 + exp(-x))`` element-wise, computed stably (floating-point inputs)."""
    return apply(SIGMOID, (x,), NO_ATTRS, name)


def relu(features: Any, name: str | None = None) -> Any:
    """``max(features, 0)`` element-wise (``features`` is TensorFlow's argument name).

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.relu(features=[-1.0, 2.0]).numpy()
        array([0., 2.], dtype=float32)
    """
    return apply(RELU, (features,), NO_ATTRS, name)


def _cast_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    _kinds(dtype, "biufc", "numeric or bool")
    return ((attrs["dtype"], shape),)


def _cast_kernel(attrs: dict[str, Any], a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    target: np.dtype[Any] = attrs["dtype"]
    if a.dtype.kind == "c" and target.kind != "c":
        a = a.real
    return a.astype(target)


CAST = register_op("Cast", infer=_cast_rule, kernel=_cast_kernel, same_dtype=False)


def cast(x: Any, dtype: Any, name: str | None = None) -> Any:
    """``x`` converted to ``dtype`` (floats to ints truncate toward zero).

    Example:
        >>> import scopeflow as sf
        >>> sf.cast([1.7, -1.7], sf.int32).numpy()
        array([ 1, -1], dtype=int32)
    """
    return apply(CAST, (x,), {"dtype": as_dtype(dtype)}, name)


# -- gradients -----------------------------------------------------------------------
# Each returns one gradient per input, built from the ops above, so the same code runs
# eagerly (eager tapes) and builds graph ops (symbolic gradients).


def _mask(condition: Any, like: Any) -> Any:
    """``condition`` as 0/1 values of ``like``'s dtype."""
    return cast(condition, like.dtype)


@register_gradient("Add")
def _add_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    return unbroadcast(dy, x, y), unbroadcast(dy, y, x)


@register_gradient("Sub")
def _sub_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    return unbroadcast(dy, x, y), unbroadcast(negative(dy), y, x)


@register_gradient("Mul")
def _mul_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    return unbroadcast(multiply(dy, y), x), unbroadcast(multiply(dy, x), y)


@register_gradient("RealDiv")
def _div_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    if x.dtype.kind not in "fc":
        return None, None
    dx = divide(dy, y)
    dyy = negative(multiply(dy, divide(op.outputs[0], y)))
    return unbroadcast(dx, x), unbroadcast(dyy, y)


@register_gradient("Pow")
def _pow_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    (z,) = op.outputs
    dx = multiply(dy, multiply(y, pow(x, subtract(y, ones_like(y)))))
    if x.dtype.kind not in "fc":
        return unbroadcast(dx, x), None
    # d(x**y)/dy = x**y * log(x), taken as 0 where x <= 0 (where log is undefined).
    positive = _mask(greater(x, zeros_like(x)), x)
    safe_x = add(multiply(x, positive), subtract(ones_like(x), positive))
    dyy = multiply(dy, multiply(z, multiply(log(safe_x), positive)))
    return unbroadcast(dx, x), unbroadcast(dyy, y)


def _select_grad(op: GradRecord, dy: Any, x_wins: Any) -> Sequence[Any]:
    x, y = op.inputs
    mx = _mask(x_wins, dy)
    my = subtract(ones_like(mx), mx)
    return unbroadcast(multiply(dy, mx), x), unbroadcast(multiply(dy, my), y)


@register_gradient("Maximum")
def _maximum_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    return _select_grad(op, dy, greater_equal(x, y))


@register_gradient("Minimum")
def _minimum_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    x, y = op.inputs
    return _select_grad(op, dy, less_equal(x, y))


@register_gradient("Neg")
def _neg_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (negative(dy),)


@register_gradient("Abs")
def _abs_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    zero = zeros_like(x)
    sign = subtract(_mask(greater(x, zero), x), _mask(less(x, zero), x))
    return (multiply(dy, sign),)


@register_gradient("Square")
def _square_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    return (multiply(dy, add(x, x)),)


@register_gradient("Sqrt")
def _sqrt_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (out,) = op.outputs
    return (divide(dy, add(out, out)),)


@register_gradient("Exp")
def _exp_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (multiply(dy, op.outputs[0]),)


@register_gradient("Log")
def _log_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (divide(dy, op.inputs[0]),)


@register_gradient("Tanh")
def _tanh_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (out,) = op.outputs
    return (multiply(dy, subtract(ones_like(out), square(out))),)


@register_gradient("Sigmoid")
def _sigmoid_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (out,) = op.outputs
    return (multiply(dy, multiply(out, subtract(ones_like(out), out))),)


@register_gradient("Relu")
def _relu_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    return (multiply(dy, _mask(greater(x, zeros_like(x)), dy)),)


@register_gradient("Cast")
def _cast_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (x,) = op.inputs
    if x.dtype.kind not in "fc" or op.outputs[0].dtype.kind not in "fc":
        return (None,)  # casts to or from integers have no gradient
    return (cast(dy, x.dtype),)
