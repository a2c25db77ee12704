"""The math ops of issue 9 and the operators ``% // & | ^ ~`` against NumPy, in every mode.

Values are compared with NumPy oracles eagerly, in graphs (known shapes, unknown sizes,
unknown rank) and in traced functions; the Runner also checks dtypes and static shapes.
Error paths pin the message with anchored regexes.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner, assert_same, data

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I8, I32, I64, U8 = np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint8)
C64, BOOL = np.dtype(np.complex64), np.dtype(np.bool_)
FLOATS = (F32, F64)
REAL = (F32, F64, I32, I64)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _f64(fn: Any) -> Any:
    """``fn`` computed in float64 (or complex128) and cast back: independent of kernels."""

    def oracle(a: Any) -> Any:
        wide = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
        return np.asarray(fn(wide)).astype(a.dtype)

    return oracle


UNARY: list[tuple[str, Any, Any, tuple[np.dtype[Any], ...], tuple[float, float]]] = [
    ("abs", sf.abs, np.abs, (*REAL, I8), (-3, 3)),
    ("sign", sf.sign, np.sign, (*REAL, F16), (-3, 3)),
    ("floor", sf.floor, np.floor, (F16, F32, F64), (-3, 3)),
    ("round", sf.round, np.round, (F16, F32, F64, I32, I64), (-3, 3)),
    ("sin", sf.sin, _f64(np.sin), (*FLOATS, C64), (-3, 3)),
    ("cos", sf.cos, _f64(np.cos), (*FLOATS, C64), (-3, 3)),
    ("log1p", sf.log1p, _f64(np.log1p), FLOATS, (-0.5, 3)),
    ("rsqrt", sf.rsqrt, _f64(lambda a: 1 / np.sqrt(a)), (F16, F32, F64), (0.5, 9)),
    ("reciprocal", sf.reciprocal, _f64(np.reciprocal), (*FLOATS, C64), (0.5, 3)),
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


def test_round_is_bankers_rounding(run: Runner) -> None:
    a = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4999, -2.6], np.float32)
    assert_same(run(sf.round, a), np.array([-2, -2, -0, 0, 2, 2, 4, 2, -3], np.float32))


def test_log1p_is_accurate_for_tiny_values(run: Runner) -> None:
    a = np.array([1e-12, -1e-12, 1e-300])
    out = run(sf.log1p, a)
    np.testing.assert_allclose(out, [1e-12, -1e-12, 1e-300], rtol=1e-10)


def test_sign_of_zero_and_nan(run: Runner) -> None:
    a = np.array([0.0, -0.0, np.nan, -np.inf], np.float64)
    assert_same(run(sf.sign, a), np.array([0.0, 0.0, np.nan, -1.0]))


def _floor_div(a: Any, b: Any) -> Any:
    return np.floor(a / b).astype(a.dtype) if a.dtype.kind == "f" else np.floor_divide(a, b)


BINARY: list[tuple[str, Any, Any, tuple[np.dtype[Any], ...], tuple[float, float]]] = [
    ("floordiv", sf.floordiv, _floor_div, (*REAL, U8), (1, 4)),
    ("mod", sf.mod, np.remainder, (*REAL, U8), (1, 4)),
    ("floordiv-operator", operator.floordiv, _floor_div, REAL, (1, 4)),
    ("mod-operator", operator.mod, np.remainder, REAL, (1, 4)),
    ("not_equal", sf.not_equal, np.not_equal, (*REAL, C64, BOOL), (-1, 1)),
    ("greater_equal", sf.greater_equal, np.greater_equal, REAL, (-1, 1)),
    ("less_equal", sf.less_equal, np.less_equal, REAL, (-1, 1)),
    ("logical_and", sf.logical_and, np.logical_and, (BOOL,), (0, 1)),
    ("logical_or", sf.logical_or, np.logical_or, (BOOL,), (0, 1)),
    ("and-operator", operator.and_, np.bitwise_and, (BOOL, I32, I64, U8), (-9, 9)),
    ("or-operator", operator.or_, np.bitwise_or, (BOOL, I32, I64, U8), (-9, 9)),
    ("xor-operator", operator.xor, np.bitwise_xor, (BOOL, I32, I64, U8), (-9, 9)),
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
    if dtype.kind != "u" and lohi[0] > 0:
        signs = np.where(np.arange(b.size) % 2, -1, 1).reshape(b.shape).astype(dtype)
        b = b * signs  # divisors of both signs
    assert_same(run(fn, a, b), oracle(a, b))


# -- floor division and modulo: TensorFlow's floor semantics --------------------------


@pytest.mark.parametrize("dtype", [I32, I64, F32, F64], ids=str)
def test_mod_takes_the_sign_of_the_divisor(run: Runner, dtype: Any) -> None:
    x = np.array([7, -7, 7, -7, 6, 0], dtype)
    y = np.array([3, 3, -3, -3, 3, -5], dtype)
    assert_same(run(sf.mod, x, y), np.array([1, 2, -2, -1, 0, 0], dtype))
    assert_same(run(sf.floordiv, x, y), np.array([2, -3, -3, 2, 2, 0], dtype))
    # x == floordiv(x, y) * y + mod(x, y) holds exactly.
    q, r = run(sf.floordiv, x, y), run(sf.mod, x, y)
    assert_same(q * y + r, x)


def test_float_modulo_keeps_fractions(run: Runner) -> None:
    x = np.array([5.5, -5.5, 5.5], np.float64)
    y = np.array([2.0, 2.0, -2.0], np.float64)
    assert_same(run(sf.mod, x, y), np.array([1.5, 0.5, -0.5]))
    assert_same(run(sf.floordiv, x, y), np.array([2.0, -3.0, -3.0]))


def test_float_floordiv_is_the_floor_of_the_quotient(run: Runner) -> None:
    # As in TensorFlow: floor(1.0 / 0.1) is 10 (Python's 1.0 // 0.1 is 9.0).
    x = np.array([1.0, -1.0, 7.0], np.float64)
    y = np.array([0.1, 0.1, 2.0], np.float64)
    assert_same(run(sf.floordiv, x, y), np.array([10.0, -10.0, 3.0]))


def test_float_division_by_zero_follows_ieee(run: Runner) -> None:
    x = np.array([1.0, -1.0, 0.0], np.float32)
    out = run(sf.floordiv, x, np.zeros(3, np.float32))
    assert out[0] == np.inf
    assert out[1] == -np.inf
    assert np.isnan(out[2])


@pytest.mark.parametrize(("fn", "word"), [(sf.floordiv, "division"), (sf.mod, "modulo")])
def test_integer_division_by_zero_is_invalid_argument(run: Runner, fn: Any, word: str) -> None:
    x = np.array([4, 5], np.int32)
    y = np.array([2, 0], np.int32)
    pattern = rf"integer {word} by zero \(1 of the 2 divisors of shape \(2,\) are 0\)"
    with pytest.raises(sf.InvalidArgumentError, match=pattern):
        run(fn, x, y)


def test_operators_with_python_numbers_on_either_side(run: Runner) -> None:
    a = np.array([-7, -1, 0, 5, 8], np.int32)
    assert_same(run(lambda x: x % 3, a), np.remainder(a, np.int32(3)))
    assert_same(run(lambda x: 17 % x, a[3:]), np.remainder(np.int32(17), a[3:]))
    assert_same(run(lambda x: x // -2, a), np.floor_divide(a, np.int32(-2)))
    assert_same(run(lambda x: 17 // x, a[3:]), np.floor_divide(np.int32(17), a[3:]))
    assert_same(run(lambda x: x & 6, a), np.bitwise_and(a, 6))
    assert_same(run(lambda x: 6 & x, a), np.bitwise_and(6, a))
    assert_same(run(lambda x: x | 1, a), np.bitwise_or(a, 1))
    assert_same(run(lambda x: 1 | x, a), np.bitwise_or(1, a))
    assert_same(run(lambda x: x ^ 3, a), np.bitwise_xor(a, 3))
    assert_same(run(lambda x: 3 ^ x, a), np.bitwise_xor(3, a))
    f = np.array([2.5, -2.5], np.float32)
    assert_same(run(lambda x: x % 2.0, f), np.array([0.5, 1.5], np.float32))
    assert_same(run(lambda x: 7.0 // x, f), np.array([2.0, -3.0], np.float32))


def test_bool_operators_are_logical(run: Runner) -> None:
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    assert_same(run(lambda x, y: x & y, a, b), a & b)
    assert_same(run(lambda x, y: x | y, a, b), a | b)
    assert_same(run(lambda x, y: x ^ y, a, b), a ^ b)
    assert_same(run(lambda x: ~x, a), ~a)
    assert_same(run(lambda x: True & x, a), a)
    assert_same(run(lambda x: x ^ True, a), ~a)
    assert_same(run(lambda x: False | x, a), a)


@pytest.mark.parametrize("dtype", [I8, I32, I64, U8], ids=str)
def test_invert_of_integers_is_bitwise(run: Runner, dtype: Any) -> None:
    a = data((2, 3), dtype, 0, 9, seed=3)
    assert_same(run(operator.invert, a), np.invert(a))


def test_bit_operators_build_the_expected_ops() -> None:
    g = sf.Graph()
    with g.as_default():
        b = sf.placeholder(sf.bool_, (2,))
        i = sf.placeholder(sf.int32, (2,))
        ops = [(b & b).op.type, (b | b).op.type, (b ^ b).op.type, (~b).op.type]
        ops += [(i & i).op.type, (i | i).op.type, (i ^ i).op.type, (~i).op.type]
        ops += [(i % i).op.type, (i // i).op.type]
    assert ops == [
        "LogicalAnd", "LogicalOr", "LogicalXor", "LogicalNot",
        "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Invert",
        "FloorMod", "FloorDiv",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("symbol", "build"),
    [
        ("&", lambda x: x & x),
        ("|", lambda x: x | 1.0),
        ("^", lambda x: 1.0 ^ x),
        ("~", lambda x: ~x),
    ],
)
def test_bit_operators_on_floats_are_type_errors(run: Runner, symbol: str, build: Any) -> None:
    pattern = (
        rf"^operator \{symbol} is the logical \w+ of bool tensors and the bitwise \w+ of "
        r"integer tensors; it is not defined for a float32 tensor"
    )
    with pytest.raises(TypeError, match=pattern):
        run(build, np.ones((2,), np.float32))


def test_bit_operators_on_mixed_dtypes_name_the_op() -> None:
    with pytest.raises(TypeError, match=r"^LogicalAnd: both inputs must have the same dtype"):
        sf.constant([True]) & sf.constant([1])
    with pytest.raises(TypeError, match=r"^BitwiseOr: both inputs must have the same dtype"):
        sf.constant([1]) | sf.constant([True])


def test_operators_work_on_variables() -> None:
    v = sf.Variable([5, -3], dtype=sf.int32)
    assert (v % 4).numpy().tolist() == [1, 1]
    assert (v // 2).numpy().tolist() == [2, -2]
    assert (v & 1).numpy().tolist() == [1, 1]
    assert (~v).numpy().tolist() == [-6, 2]


# -- clip_by_value --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", REAL, ids=str)
def test_clip_by_value_matches_numpy(run: Runner, dtype: Any) -> None:
    t = data((3, 4), dtype, -5, 5, seed=4)
    assert_same(run(lambda x: sf.clip_by_value(x, -2, 3), t), np.clip(t, -2, 3).astype(dtype))
    lo = data((4,), dtype, -5, 0, seed=5)
    hi = data((3, 1), dtype, 1, 5, seed=6)
    assert_same(run(sf.clip_by_value, t, lo, hi), np.minimum(np.maximum(t, lo), hi))


def test_clip_by_value_bounds_may_not_enlarge_t(run: Runner) -> None:
    t = np.ones((3,), np.float32)
    big = np.zeros((2, 3), np.float32)
    if run.mode == "graph-unknown-rank":
        with pytest.raises(sf.InvalidArgumentError, match=r"must broadcast to t's shape"):
            run(sf.clip_by_value, t, big, 2.0)
        return
    if run.mode == "graph-unknown-sizes":
        pattern = r"^ClipByValue: clip_value_min of shape \(None, None\) has a higher rank"
    else:
        pattern = r"^ClipByValue: clip_value_min of shape \(2, 3\) has a higher rank than t"
    with pytest.raises(ValueError, match=pattern):
        run(sf.clip_by_value, t, big, 2.0)


def test_clip_by_value_static_shapes() -> None:
    with sf.Graph().as_default():
        t = sf.placeholder(sf.float32, (None, 3))
        assert sf.clip_by_value(t, 0.0, 1.0).shape == (None, 3)
        assert sf.clip_by_value(t, sf.placeholder(sf.float32, (5, 1)), 1.0).shape == (5, 3)
        assert sf.clip_by_value(sf.placeholder(sf.float32, None), 0.0, 1.0).shape is None
        pattern = r"^ClipByValue: clip_value_max of shape \(4,\) does not broadcast to t of shape"
        with pytest.raises(ValueError, match=pattern):
            sf.clip_by_value(t, 0.0, sf.placeholder(sf.float32, (4,)))
        one = sf.placeholder(sf.float32, (1, 3))
        # A bound of unknown size may still be 1: t's known sizes stay.
        assert sf.clip_by_value(one, sf.placeholder(sf.float32, (None, 3)), 1.0).shape == (1, 3)
        with pytest.raises(ValueError, match=r"would broadcast t of shape \(1, 3\) to \(2, 3\)"):
            sf.clip_by_value(one, sf.placeholder(sf.float32, (2, 3)), 1.0)


def test_clip_by_value_dtype_errors() -> None:
    with pytest.raises(TypeError, match=r"^ClipByValue: both inputs must have the same dtype"):
        sf.clip_by_value(sf.constant([1.0]), sf.constant(0), 1.0)
    with pytest.raises(TypeError, match=r"^ClipByValue: expected real inputs, got dtype bool"):
        sf.clip_by_value(sf.constant([True]), False, True)


# -- static shapes and dtype errors ---------------------------------------------------


@pytest.mark.parametrize("fn", [u[1] for u in UNARY if F32 in u[3]], ids=lambda f: f.__name__)
def test_unary_static_shape_is_the_input_shape(fn: Any) -> None:
    with sf.Graph().as_default():
        for shape in [(None, 3), None, (), (0,)]:
            out = fn(sf.placeholder(sf.float32, shape))
            assert out.shape == shape
            assert out.dtype == F32


@pytest.mark.parametrize(
    "fn", [sf.floordiv, sf.mod, operator.and_, sf.not_equal], ids=lambda f: f.__name__
)
def test_binary_static_shape_with_unknown_sizes(fn: Any) -> None:
    dtype = sf.int32
    with sf.Graph().as_default():
        a = sf.placeholder(dtype, (None, 3))
        b = sf.placeholder(dtype, (2, 1))
        assert fn(a, b).shape == (2, 3)
        assert fn(a, sf.placeholder(dtype, None)).shape is None


@pytest.mark.parametrize(
    ("fn", "op_type", "what", "dtype"),
    [
        (sf.floor, "Floor", "floating-point", I32),
        (sf.sin, "Sin", "floating-point", I32),
        (sf.cos, "Cos", "floating-point", BOOL),
        (sf.log1p, "Log1p", "floating-point", I64),
        (sf.rsqrt, "Rsqrt", "floating-point", I32),
        (sf.reciprocal, "Reciprocal", "floating-point", I32),
        (sf.sign, "Sign", "real", BOOL),
        (sf.round, "Round", "real", C64),
        (sf.abs, "Abs", "real", BOOL),
    ],
)
def test_unary_ops_reject_dtypes(run: Runner, fn: Any, op_type: str, what: str, dtype: Any) -> None:
    with pytest.raises(TypeError, match=rf"^{op_type}: expected {what} inputs, got dtype {dtype}"):
        run(fn, np.zeros((2,), dtype))


@pytest.mark.parametrize(
    ("fn", "op_type"),
    [
        (sf.floordiv, "FloorDiv"),
        (sf.mod, "FloorMod"),
        (sf.not_equal, "NotEqual"),
        (sf.greater_equal, "GreaterEqual"),
        (sf.less_equal, "LessEqual"),
    ],
)
def test_dtype_mismatch_names_op_and_both_inputs(fn: Any, op_type: str) -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.placeholder(sf.float32, (2,), name="a")
        b = sf.placeholder(sf.int32, (2,), name="b")
        pattern = (
            rf"^{op_type} 'bad': both inputs must have the same dtype, got float32 and int32; "
            r"use sf.cast\(\) to convert one \(inputs: 'a:0' \(float32, shape \(2,\)\), "
            r"'b:0' \(int32, shape \(2,\)\)\)$"
        )
        with pytest.raises(TypeError, match=pattern):
            fn(a, b, name="bad")
    assert [op.type for op in g.get_operations()] == ["Placeholder", "Placeholder"]


def test_logical_ops_reject_numbers(run: Runner) -> None:
    with pytest.raises(TypeError, match=r"^LogicalAnd: expected bool inputs, got dtype int32"):
        run(sf.logical_and, np.array([1], np.int32), np.array([0], np.int32))
    with pytest.raises(TypeError, match=r"^LogicalOr: expected bool inputs, got dtype float32"):
        run(sf.logical_or, np.array([1.0], np.float32), np.array([0.0], np.float32))


def test_incompatible_shapes_name_the_op() -> None:
    with pytest.raises(ValueError, match=r"^FloorMod: shapes \(2, 3\) and \(4,\) cannot be"):
        sf.mod(sf.ones([2, 3]), sf.ones([4]))


# -- every new op in the wrong context (the checks of test_ops, for these ops) ---------

_F = np.arange(1, 5, dtype=np.float32).reshape(2, 2)
_I = np.arange(1, 5, dtype=np.int32).reshape(2, 2)
_B = np.array([[True, False], [False, True]])

NEW_OPS: list[tuple[str, Any, Any]] = [
    ("sign", sf.sign, _F),
    ("floor", sf.floor, _F),
    ("round", sf.round, _F),
    ("sin", sf.sin, _F),
    ("cos", sf.cos, _F),
    ("log1p", sf.log1p, _F),
    ("rsqrt", sf.rsqrt, _F),
    ("reciprocal", sf.reciprocal, _F),
    ("floordiv", lambda x: sf.floordiv(x, x), _I),
    ("mod", lambda x: sf.mod(x, x), _I),
    ("clip_by_value", lambda x: sf.clip_by_value(x, x, x), _F),
    ("not_equal", lambda x: sf.not_equal(x, x), _F),
    ("greater_equal", lambda x: sf.greater_equal(x, x), _F),
    ("less_equal", lambda x: sf.less_equal(x, x), _F),
    ("logical_and", lambda x: sf.logical_and(x, x), _B),
    ("logical_or", lambda x: sf.logical_or(x, x), _B),
    ("operator-mod", lambda x: x % 3, _I),
    ("operator-floordiv", lambda x: 7 // x, _I),
    ("operator-and", lambda x: x & x, _I),
    ("operator-xor", lambda x: x ^ True, _B),
    ("operator-invert", lambda x: ~x, _I),
]
_IDS = [c[0] for c in NEW_OPS]


@pytest.mark.parametrize(("label", "build", "value"), NEW_OPS, ids=_IDS)
def test_graph_tensor_in_eager_op_is_type_error(label: str, build: Any, value: Any) -> None:
    with sf.Graph().as_default():
        t = sf.constant(value, name="leaked")
    with pytest.raises(TypeError, match=r"'leaked:0'.*cannot be used outside its graph"):
        build(t)


@pytest.mark.parametrize(("label", "build", "value"), NEW_OPS, ids=_IDS)
def test_eager_tensor_in_plain_graph_is_runtime_error(label: str, build: Any, value: Any) -> None:
    eager = sf.constant(value)
    g = sf.Graph()
    with g.as_default(), pytest.raises(RuntimeError, match="eager tensor was used to build an op"):
        build(eager)
    assert {op.type for op in g.get_operations()} <= {"Const"}


@pytest.mark.parametrize(("label", "build", "value"), NEW_OPS, ids=_IDS)
def test_tensor_of_another_graph_is_value_error(label: str, build: Any, value: Any) -> None:
    with sf.Graph().as_default():
        foreign = sf.constant(value, name="foreign")
    with sf.Graph().as_default(), pytest.raises(ValueError, match=r"'foreign:0' belongs to"):
        build(foreign)


@pytest.mark.parametrize(("label", "build", "value"), NEW_OPS, ids=_IDS)
def test_captured_eager_tensor_in_traced_function(label: str, build: Any, value: Any) -> None:
    eager = sf.constant(value)
    f = sf.function(lambda: build(eager))
    assert_same(np.asarray(f().numpy()), np.asarray(build(eager).numpy()))
    assert [t is eager for t in f.get_concrete_function().captured_inputs] == [True]
