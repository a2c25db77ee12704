"""Element-wise ops and Python operators against NumPy, eagerly and in graphs."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner, assert_same, data

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I32, I64, U8 = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint8)
C64, BOOL = np.dtype(np.complex64), np.dtype(np.bool_)
FLOATS = (F32, F64)
REAL = (F32, F64, I32, I64)
NUMERIC = (*REAL, C64)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _name(fn: Any) -> str:
    return str(fn.__name__)


def _true_divide(a: Any, b: Any) -> Any:
    # TensorFlow: 8- and 16-bit integers divide to float32, wider ones to float64
    out = np.true_divide(a.astype(np.float64), b.astype(np.float64))
    if a.dtype.kind in "iu":
        return out.astype(np.float32) if a.dtype.itemsize <= 2 else out
    return out.astype(a.dtype)


# (name, scopeflow function, NumPy oracle, dtypes, value range of the inputs)
BINARY: list[tuple[str, Any, Any, tuple[np.dtype[Any], ...], tuple[float, float]]] = [
    ("add", sf.add, np.add, NUMERIC, (-3, 3)),
    ("subtract", sf.subtract, np.subtract, NUMERIC, (-3, 3)),
    ("multiply", sf.multiply, np.multiply, NUMERIC, (-3, 3)),
    ("divide", sf.divide, _true_divide, (*REAL, U8), (1, 4)),
    ("pow", sf.pow, np.power, REAL, (0, 3)),
    ("maximum", sf.maximum, np.maximum, REAL, (-3, 3)),
    ("minimum", sf.minimum, np.minimum, REAL, (-3, 3)),
    ("equal", sf.equal, np.equal, (*NUMERIC, BOOL), (-1, 1)),
    ("not_equal", sf.not_equal, np.not_equal, (*REAL, BOOL), (-1, 1)),
    ("less", sf.less, np.less, REAL, (-1, 1)),
    ("less_equal", sf.less_equal, np.less_equal, REAL, (-1, 1)),
    ("greater", sf.greater, np.greater, REAL, (-1, 1)),
    ("greater_equal", sf.greater_equal, np.greater_equal, REAL, (-1, 1)),
]
SHAPE_PAIRS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (4,)), ((0, 3), (1, 3))]


def _binary_cases() -> list[Any]:
    return [
        pytest.param(fn, oracle, dtype, lohi, id=f"{name}-{dtype}")
        for name, fn, oracle, dtypes, lohi in BINARY
        for dtype in dtypes
    ]


@pytest.mark.parametrize(("fn", "oracle", "dtype", "lohi"), _binary_cases())
@pytest.mark.parametrize(("sa", "sb"), SHAPE_PAIRS, ids=str)
def test_binary_ops_broadcast_like_numpy(
    run: Runner, fn: Any, oracle: Any, dtype: Any, lohi: Any, sa: Any, sb: Any
) -> None:
    a = data(sa, dtype, *lohi, seed=1)
    b = data(sb, dtype, *lohi, seed=2)
    assert_same(run(fn, a, b), oracle(a, b))


OPERATORS = [
    ("+", operator.add, np.add),
    ("-", operator.sub, np.subtract),
    ("*", operator.mul, np.multiply),
    ("/", operator.truediv, _true_divide),
    ("**", operator.pow, np.power),
    ("<", operator.lt, np.less),
    ("<=", operator.le, np.less_equal),
    (">", operator.gt, np.greater),
    (">=", operator.ge, np.greater_equal),
]


@pytest.mark.parametrize(
    ("op", "oracle"), [o[1:] for o in OPERATORS], ids=[o[0] for o in OPERATORS]
)
@pytest.mark.parametrize("dtype", [F32, I32], ids=str)
def test_python_operators_between_tensors(run: Runner, op: Any, oracle: Any, dtype: Any) -> None:
    a = data((2, 3), dtype, 1, 3, seed=3)
    b = data((3,), dtype, 1, 3, seed=4)
    assert_same(run(op, a, b), oracle(a, b))


@pytest.mark.parametrize(
    ("op", "oracle"), [o[1:] for o in OPERATORS], ids=[o[0] for o in OPERATORS]
)
def test_python_operators_with_python_numbers_on_either_side(
    run: Runner, op: Any, oracle: Any
) -> None:
    a = data((4,), F32, 1, 3, seed=5)
    # The Python number takes the tensor's dtype, on the left (reflected operator) too.
    assert_same(run(lambda x: op(x, 2), a), oracle(a, np.float32(2)))
    assert_same(run(lambda x: op(2, x), a), oracle(np.float32(2), a))
    assert_same(run(lambda x: op(1.5, x), a), oracle(np.float32(1.5), a))


def test_numpy_array_on_the_left_defers_to_the_tensor(run: Runner) -> None:
    a = data((3,), F32, seed=6)
    left = np.array([1.0, 2.0, 3.0], np.float32)
    assert_same(run(lambda x: left + x, a), left + a)
    assert_same(run(lambda x: left - x, a), left - a)


@pytest.mark.parametrize("dtype", NUMERIC, ids=str)
def test_unary_minus_operator(run: Runner, dtype: Any) -> None:
    a = data((2, 3), dtype, seed=7)
    assert_same(run(operator.neg, a), -a)


def _sigmoid(a: Any) -> Any:
    return (1 / (1 + np.exp(-a.astype(np.float64)))).astype(a.dtype)


# (name, scopeflow function, NumPy oracle, dtypes, value range)
UNARY: list[tuple[str, Any, Any, tuple[np.dtype[Any], ...], tuple[float, float]]] = [
    ("negative", sf.negative, np.negative, NUMERIC, (-3, 3)),
    ("square", sf.square, np.square, NUMERIC, (-3, 3)),
    ("sqrt", sf.sqrt, np.sqrt, (F16, F32, F64, C64), (0, 9)),
    ("exp", sf.exp, np.exp, (*FLOATS, C64), (-3, 3)),
    ("log", sf.log, np.log, FLOATS, (0.5, 9)),
    ("tanh", sf.tanh, np.tanh, FLOATS, (-3, 3)),
    ("sigmoid", sf.sigmoid, _sigmoid, (F16, F32, F64), (-3, 3)),
    ("relu", sf.relu, lambda a: np.maximum(a, 0).astype(a.dtype), REAL, (-3, 3)),
    ("abs", sf.abs, np.abs, REAL, (-3, 3)),
    ("identity", sf.identity, lambda a: a, (*NUMERIC, BOOL), (-3, 3)),
    ("logical_not", sf.logical_not, np.logical_not, (BOOL,), (0, 1)),
]


def _unary_cases() -> list[Any]:
    return [
        pytest.param(fn, oracle, dtype, lohi, id=f"{name}-{dtype}")
        for name, fn, oracle, dtypes, lohi in UNARY
        for dtype in dtypes
    ]


@pytest.mark.parametrize(("fn", "oracle", "dtype", "lohi"), _unary_cases())
@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 0)], ids=str)
def test_unary_ops_match_numpy(
    run: Runner, fn: Any, oracle: Any, dtype: Any, lohi: Any, shape: Any
) -> None:
    a = data(shape, dtype, *lohi, seed=8)
    assert_same(run(fn, a), oracle(a))


def test_sigmoid_is_stable_for_large_magnitudes(run: Runner) -> None:
    a = np.array([-200.0, -50.0, 0.0, 50.0, 200.0], np.float32)
    out = run(sf.sigmoid, a)
    assert not np.isnan(out).any()
    assert_same(out, np.array([0.0, 0.0, 0.5, 1.0, 1.0], np.float32))


def test_divide_of_integers_is_float64(run: Runner) -> None:
    a = np.array([1, -3, 7], np.int32)
    b = np.array([2, 2, -2], np.int32)
    assert_same(run(sf.divide, a, b), np.array([0.5, -1.5, -3.5]))


CASTS = [
    (np.array([1.7, -1.7, 0.2], np.float32), I32, np.array([1, -1, 0], np.int32)),
    (np.array([3, -2], np.int32), F32, np.array([3.0, -2.0], np.float32)),
    (np.array([True, False]), F64, np.array([1.0, 0.0])),
    (np.array([0.0, 2.5, -1.0], np.float64), BOOL, np.array([False, True, True])),
    (np.array([2, 0], np.int64), BOOL, np.array([True, False])),
    (np.array([300, -1], np.int32), U8, np.array([300, -1], np.int32).astype(np.uint8)),
    (np.array([1 + 2j], np.complex64), F32, np.array([1.0], np.float32)),
    (np.array([1.5], np.float32), F16, np.array([1.5], np.float16)),
]


@pytest.mark.parametrize(
    ("value", "dtype", "expected"), CASTS, ids=[f"{v.dtype}-to-{d}" for v, d, _ in CASTS]
)
def test_cast_converts_like_tensorflow(run: Runner, value: Any, dtype: Any, expected: Any) -> None:
    assert_same(run(lambda x: sf.cast(x, dtype), value), expected)


# -- static shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sa", "sb", "expected"),
    [
        ((None, 3), (2, 1), (2, 3)),
        ((None, 3), (3,), (None, 3)),
        ((None, None), (1, 4), (None, 4)),
        ((None,), (), (None,)),
        (None, (2,), None),
        ((5, 1, None), (4, 1), (5, 4, None)),
    ],
)
@pytest.mark.parametrize("fn", [sf.add, sf.maximum, sf.less, operator.mul], ids=_name)
def test_binary_static_shape_with_unknown_sizes(sa: Any, sb: Any, expected: Any, fn: Any) -> None:
    with sf.Graph().as_default():
        a = sf.placeholder(sf.float32, sa)
        b = sf.placeholder(sf.float32, sb)
        out = fn(a, b)
    assert out.shape == expected
    assert out.dtype == (BOOL if fn is sf.less else F32)


@pytest.mark.parametrize("fn", [u[1] for u in UNARY if F32 in u[3]], ids=_name)
def test_unary_static_shape_is_the_input_shape(fn: Any) -> None:
    with sf.Graph().as_default():
        for shape in [(None, 3), None, (), (0,)]:
            assert fn(sf.placeholder(sf.float32, shape)).shape == shape


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "op_type"),
    [
        (sf.sqrt, "Sqrt"),
        (sf.exp, "Exp"),
        (sf.log, "Log"),
        (sf.tanh, "Tanh"),
        (sf.sigmoid, "Sigmoid"),
    ],
)
def test_float_only_ops_reject_integers(run: Runner, fn: Any, op_type: str) -> None:
    with pytest.raises(
        TypeError, match=rf"^{op_type}: expected floating-point inputs, got dtype int32"
    ):
        run(fn, np.array([4, 9], np.int32))


def test_logical_not_rejects_numbers_and_arithmetic_rejects_bools(run: Runner) -> None:
    with pytest.raises(TypeError, match=r"^LogicalNot: expected bool inputs, got dtype float32"):
        run(sf.logical_not, np.array([1.0], np.float32))
    with pytest.raises(TypeError, match=r"^Add: expected numeric inputs, got dtype bool"):
        run(sf.add, np.array([True]), np.array([False]))
    with pytest.raises(TypeError, match=r"^Less: expected real inputs, got dtype complex64"):
        run(sf.less, np.array([1j], np.complex64), np.array([1j], np.complex64))


@pytest.mark.parametrize("fn", [sf.add, sf.pow, sf.equal, sf.maximum, operator.truediv], ids=_name)
def test_incompatible_shapes_are_value_errors_when_the_op_is_built(run: Runner, fn: Any) -> None:
    a = np.ones((2, 3), np.float32)
    b = np.ones((4,), np.float32)
    if run.shapes_known:
        with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4,\) cannot be broadcast"):
            run(fn, a, b)
    else:
        # Sizes unknown while building: the mismatch surfaces when the graph runs.
        with pytest.raises(sf.InvalidArgumentError, match="failed"):
            run(fn, a, b)


def test_known_sizes_clash_with_unknown_ones_present() -> None:
    with sf.Graph().as_default():
        a = sf.placeholder(sf.float32, (None, 3))
        b = sf.placeholder(sf.float32, (None, 4))
        with pytest.raises(ValueError, match=r"^Add: shapes \(None, 3\) and \(None, 4\)"):
            sf.add(a, b)


def test_cast_rejects_a_non_dtype() -> None:
    with pytest.raises(TypeError, match="is not a dtype"):
        sf.cast(sf.constant([1.0]), "not-a-dtype")
