"""Reductions and matmul against NumPy, eagerly and in graphs, with static shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import KNOWN_SHAPE_MODES, MODES, Runner, assert_same, data

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I32, I64, C64, BOOL = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.complex64), np.dtype(bool)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _static(fn: Any, *shapes: Any, dtype: Any = F32) -> Any:
    with sf.Graph().as_default():
        return fn(*[sf.placeholder(dtype, s) for s in shapes]).shape


# Oracles compute in float64 / int64 and cast back: independent of the kernels'
# accumulation dtype.


def _wide(a: Any) -> Any:
    return a.astype(
        {"i": np.int64, "u": np.uint64, "f": np.float64, "c": np.complex128}[a.dtype.kind]
    )


def _sum(a: Any, axis: Any, keepdims: bool) -> Any:
    return np.sum(_wide(a), axis=axis, keepdims=keepdims).astype(a.dtype)


def _mean(a: Any, axis: Any, keepdims: bool) -> Any:
    mean = np.mean(
        _wide(a).astype(np.complex128 if a.dtype.kind == "c" else np.float64),
        axis=axis,
        keepdims=keepdims,
    )
    # TensorFlow's integer mean rounds toward zero.
    return (np.trunc(mean) if a.dtype.kind in "iu" else mean).astype(a.dtype)


def _max(a: Any, axis: Any, keepdims: bool) -> Any:
    return np.max(a, axis=axis, keepdims=keepdims)


REDUCTIONS = [
    ("reduce_sum", sf.reduce_sum, _sum, (F32, F64, I32, I64, C64)),
    ("reduce_mean", sf.reduce_mean, _mean, (F16, F32, F64, I32, I64, C64)),
    ("reduce_max", sf.reduce_max, _max, (F16, F32, F64, I32, I64)),
]
AXES = [None, 0, 1, -1, [0, 2], (-1, -3), [], [2, 0, 1]]


def _cases() -> list[Any]:
    return [
        pytest.param(fn, oracle, dtype, id=f"{name}-{dtype}")
        for name, fn, oracle, dtypes in REDUCTIONS
        for dtype in dtypes
    ]


@pytest.mark.parametrize(("fn", "oracle", "dtype"), _cases())
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
def test_reductions(
    run: Runner, fn: Any, oracle: Any, dtype: Any, axis: Any, keepdims: bool
) -> None:
    a = data((2, 3, 4), dtype, -5, 5)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    assert_same(run(lambda x: fn(x, axis=axis, keepdims=keepdims), a), oracle(a, np_axis, keepdims))


@pytest.mark.parametrize(("fn", "oracle", "dtype"), _cases())
def test_reductions_of_scalars_and_vectors(run: Runner, fn: Any, oracle: Any, dtype: Any) -> None:
    scalar = data((), dtype, seed=3)
    assert_same(run(fn, scalar), oracle(scalar, None, False))
    vector = data((5,), dtype, seed=4)
    assert_same(run(lambda x: fn(x, 0), vector), oracle(vector, 0, False))


def test_integer_mean_rounds_toward_zero(run: Runner) -> None:
    a = np.array([[-3, 2], [-7, 0], [7, 0], [5, 5]], np.int32)
    assert_same(run(lambda x: sf.reduce_mean(x, axis=1), a), np.array([0, -3, 3, 5], np.int32))


def test_integer_sum_keeps_the_input_dtype(run: Runner) -> None:
    a = np.array([100, 100, 100], np.int8)
    # Wraps around like int8 arithmetic in TensorFlow, instead of widening like NumPy.
    assert_same(run(sf.reduce_sum, a), np.int8(44))


def test_float16_mean_does_not_overflow_in_the_sum(run: Runner) -> None:
    a = np.full(40000, 2.0, np.float16)  # the sum, 80000, is beyond float16's 65504
    assert_same(run(sf.reduce_mean, a), np.float16(2.0))


def test_empty_sum_is_zero_and_empty_float_mean_is_nan(run: Runner) -> None:
    a = np.zeros((0, 3), np.float32)
    assert_same(run(lambda x: sf.reduce_sum(x, 0), a), np.zeros(3, np.float32))
    assert_same(run(lambda x: sf.reduce_mean(x, 0), a), np.full(3, np.nan, np.float32))
    assert_same(run(lambda x: sf.reduce_max(x, 1), a), np.zeros(0, np.float32))


@pytest.mark.parametrize("fn", [sf.reduce_mean], ids=lambda f: f.__name__)
def test_reducing_nothing_without_identity_fails_at_run_time(run: Runner, fn: Any) -> None:
    with pytest.raises(sf.InvalidArgumentError, match=r"\(input shape \(0, 3\), axis \(0,\)\)"):
        run(lambda x: fn(x, 0), np.zeros((0, 3), np.int32))


@pytest.mark.parametrize(
    ("shape", "axis", "keepdims", "expected"),
    [
        ((None, 3, 4), 1, False, (None, 4)),
        ((None, 3, 4), 1, True, (None, 1, 4)),
        ((None, 3, 4), [0, -1], False, (3,)),
        ((None, 3, 4), None, False, ()),
        ((None, 3, 4), None, True, (1, 1, 1)),
        (None, None, False, ()),
        (None, None, True, None),
        (None, 0, False, None),
        ((), [], False, ()),
    ],
)
@pytest.mark.parametrize(
    "fn", [sf.reduce_sum, sf.reduce_mean, sf.reduce_max], ids=lambda f: f.__name__
)
def test_reduction_static_shape(
    shape: Any, axis: Any, keepdims: bool, expected: Any, fn: Any
) -> None:
    assert _static(lambda x: fn(x, axis, keepdims=keepdims), shape) == expected


@pytest.mark.parametrize(
    ("axis", "pattern"),
    [
        (3, r"axis 3 is out of range for rank 3 \(expected -3 <= axis < 3\)"),
        (-4, "axis -4 is out of range for rank 3"),
        ([0, -3], r"axis \(0, -3\) names a dimension more than once"),
        ([1, 1], r"axis \(1, 1\) names a dimension more than once"),
    ],
)
@pytest.mark.parametrize(
    ("fn", "op_type"), [(sf.reduce_sum, "Sum"), (sf.reduce_mean, "Mean"), (sf.reduce_max, "Max")]
)
def test_bad_axis_is_value_error(
    run: Runner, axis: Any, pattern: str, fn: Any, op_type: str
) -> None:
    a = np.zeros((2, 3, 4), np.float32)
    if run.mode == "graph-unknown-rank":
        # The rank is unknown while building: the kernel rejects the axis.
        with pytest.raises(sf.InvalidArgumentError, match="failed"):
            run(lambda x: fn(x, axis), a)
        return
    with pytest.raises(ValueError, match=rf"^{op_type}: {pattern}"):
        run(lambda x: fn(x, axis), a)


def test_reduction_on_a_scalar_with_an_axis_is_value_error() -> None:
    with pytest.raises(ValueError, match="axis 0 is out of range: the input is a scalar"):
        sf.reduce_sum(sf.constant(1.0), 0)


@pytest.mark.parametrize(
    ("fn", "op_type", "dtype", "what"),
    [
        (sf.reduce_sum, "Sum", BOOL, "numeric"),
        (sf.reduce_mean, "Mean", BOOL, "numeric"),
        (sf.reduce_max, "Max", BOOL, "real"),
        (sf.reduce_max, "Max", C64, "real"),
    ],
)
def test_reductions_reject_dtypes(
    run: Runner, fn: Any, op_type: str, dtype: Any, what: str
) -> None:
    with pytest.raises(TypeError, match=rf"^{op_type}: expected {what} inputs, got dtype {dtype}"):
        run(fn, np.zeros((2,), dtype))


def test_axis_must_be_ints() -> None:
    with pytest.raises(TypeError, match=r"^reduce_sum\(\): axis must be an int"):
        sf.reduce_sum(sf.zeros([2]), 0.5)
    with sf.Graph().as_default():
        x = sf.zeros([2])
        # A constant axis folds: the static op, with its static shape.
        folded = sf.reduce_max(x, sf.constant(0))
        assert (folded.op.type, folded.shape) == ("Max", ())
        with pytest.raises(TypeError, match=r"axis must be an integer tensor, got dtype float32"):
            sf.reduce_max(x, sf.placeholder(sf.float32, ()))


def test_axis_may_be_an_eager_int_tensor() -> None:
    x = sf.constant([[1, 2], [3, 4]])
    assert sf.reduce_sum(x, sf.constant([1])).numpy().tolist() == [3, 7]


# -- matmul --------------------------------------------------------------------------------

MATMULS = [
    ((2, 3), (3, 4), False, False),
    ((2, 3), (4, 3), False, True),
    ((3, 2), (3, 4), True, False),
    ((3, 2), (4, 3), True, True),
    ((5, 2, 3), (3, 4), False, False),
    ((2, 3), (5, 3, 4), False, False),
    ((5, 1, 2, 3), (4, 3, 2), False, False),
    ((2, 2, 3, 2), (2, 1, 3, 4), True, False),
    ((1, 0), (0, 3), False, False),
    ((0, 2), (2, 3), False, False),
]


def _matmul_oracle(a: Any, b: Any, ta: bool, tb: bool) -> Any:
    a2 = np.swapaxes(a, -1, -2) if ta else a
    b2 = np.swapaxes(b, -1, -2) if tb else b
    return np.einsum("...ij,...jk->...ik", _wide(a2), _wide(b2)).astype(a.dtype)


@pytest.mark.parametrize(("sa", "sb", "ta", "tb"), MATMULS, ids=str)
@pytest.mark.parametrize("dtype", [F32, F64, I32, I64, C64], ids=str)
def test_matmul(run: Runner, sa: Any, sb: Any, ta: bool, tb: bool, dtype: Any) -> None:
    a, b = data(sa, dtype, seed=1), data(sb, dtype, seed=2)
    out = run(lambda x, y: sf.matmul(x, y, transpose_a=ta, transpose_b=tb), a, b)
    assert_same(out, _matmul_oracle(a, b, ta, tb))


@pytest.mark.parametrize(
    ("sa", "sb", "ta", "tb"), [m for m in MATMULS if not (m[2] or m[3])], ids=str
)
def test_matmul_operator(run: Runner, sa: Any, sb: Any, ta: bool, tb: bool) -> None:
    a, b = data(sa, F32, seed=3), data(sb, F32, seed=4)
    assert_same(run(lambda x, y: x @ y, a, b), _matmul_oracle(a, b, False, False))


def test_matmul_operator_with_a_python_list_on_the_left(run: Runner) -> None:
    b = data((2, 3), F32, seed=5)
    left = [[1.0, 2.0]]
    assert_same(
        run(lambda y: left @ y, b), _matmul_oracle(np.array(left, np.float32), b, False, False)
    )


@pytest.mark.parametrize(
    ("sa", "sb", "ta", "tb", "expected"),
    [
        ((None, 3), (3, None), False, False, (None, None)),
        ((None, 2, 3), (3, 4), False, False, (None, 2, 4)),
        ((3, None), (5, 3), True, True, (None, 5)),
        ((None, None, 2, 3), (7, 1, 3, 4), False, False, (7, None, 2, 4)),
        (None, (3, 4), False, False, None),
        ((None, None), None, False, False, None),
    ],
)
def test_matmul_static_shape(sa: Any, sb: Any, ta: bool, tb: bool, expected: Any) -> None:
    assert _static(lambda a, b: sf.matmul(a, b, ta, tb), sa, sb) == expected


@pytest.mark.parametrize(
    ("sa", "sb", "ta", "tb", "pattern"),
    [
        (
            (2, 3),
            (4, 5),
            False,
            False,
            r"inner dimensions differ: a \(2, 3\) has 3 columns but b \(4, 5\) has 4 rows",
        ),
        (
            (2, 3),
            (2, 4),
            True,
            True,
            r"inner dimensions differ: a \(transposed\) \(2, 3\) has 2 columns "
            r"but b \(transposed\) \(2, 4\) has 4 rows",
        ),
        ((3,), (3, 4), False, False, r"a must have rank >= 2 .*got shape \(3,\)"),
        ((2, 3), (3,), False, False, r"b must have rank >= 2"),
        (
            (2, 2, 3),
            (3, 3, 4),
            False,
            False,
            r"batch dimensions \(2,\) and \(3,\) cannot be broadcast",
        ),
    ],
)
def test_matmul_incompatible_shapes_are_value_errors(
    sa: Any, sb: Any, ta: bool, tb: bool, pattern: str
) -> None:
    for mode in KNOWN_SHAPE_MODES:
        a, b = np.ones(sa, np.float32), np.ones(sb, np.float32)
        with pytest.raises(ValueError, match=rf"^MatMul: {pattern}"):
            Runner(mode)(lambda x, y: sf.matmul(x, y, ta, tb), a, b)


def test_matmul_checks_at_run_time_what_was_unknown() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.placeholder(sf.float32, None, name="a")
        b = sf.placeholder(sf.float32, (None, None), name="b")
        out = sf.matmul(a, b)
    assert out.shape is None
    sess = sf.Session(g)
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert_same(sess.run(out, {a: matrix.T, b: matrix}), matrix.T @ matrix)
    # NumPy would take a vector; matmul refuses it as when the rank is known.
    with pytest.raises(sf.InvalidArgumentError, match=r"rank >= 2, got shapes \(3,\) and \(2, 3\)"):
        sess.run(out, {a: np.ones(3, np.float32), b: matrix})
    with pytest.raises(sf.InvalidArgumentError, match=r"'MatMul' \(MatMul\) failed"):
        sess.run(out, {a: matrix, b: matrix})


@pytest.mark.parametrize(("da", "db"), [(F32, I32), (F64, F32), (I32, I64)], ids=str)
def test_matmul_dtype_mismatch_is_type_error(run: Runner, da: Any, db: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"^MatMul: both inputs must have the same dtype, got {da} and {db}"
    ):
        run(sf.matmul, np.ones((2, 2), da), np.ones((2, 2), db))


def test_matmul_rejects_bool(run: Runner) -> None:
    with pytest.raises(TypeError, match=r"^MatMul: expected numeric inputs, got dtype bool"):
        run(sf.matmul, np.ones((2, 2), bool), np.ones((2, 2), bool))
