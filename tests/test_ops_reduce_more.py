"""reduce_min/prod/any/all and argmax/argmin against NumPy, in every mode, with shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner, assert_same, data

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I32, I64, U8 = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint8)
C64, BOOL = np.dtype(np.complex64), np.dtype(bool)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _min(a: Any, axis: Any, keepdims: bool) -> Any:
    return np.min(a, axis=axis, keepdims=keepdims)


def _prod(a: Any, axis: Any, keepdims: bool) -> Any:
    # Computed wide and cast back: int32 products wrap like int32 arithmetic.
    wide = a.astype(
        {"i": np.int64, "u": np.uint64, "f": np.float64, "c": np.complex128}[a.dtype.kind]
    )
    return np.prod(wide, axis=axis, keepdims=keepdims).astype(a.dtype)


def _any(a: Any, axis: Any, keepdims: bool) -> Any:
    return np.any(a, axis=axis, keepdims=keepdims)


def _all(a: Any, axis: Any, keepdims: bool) -> Any:
    return np.all(a, axis=axis, keepdims=keepdims)


REDUCTIONS = [
    ("reduce_min", sf.reduce_min, _min, (F16, F32, F64, I32, I64, U8)),
    ("reduce_prod", sf.reduce_prod, _prod, (F32, F64, I32, I64, C64)),
    ("reduce_any", sf.reduce_any, _any, (BOOL,)),
    ("reduce_all", sf.reduce_all, _all, (BOOL,)),
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
    a = data((2, 3, 4), dtype, -2, 2)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    assert_same(run(lambda x: fn(x, axis=axis, keepdims=keepdims), a), oracle(a, np_axis, keepdims))


def test_reductions_of_nothing_give_the_identity(run: Runner) -> None:
    empty_b = np.zeros((0, 3), bool)
    assert_same(run(lambda x: sf.reduce_any(x, 0), empty_b), np.zeros(3, bool))
    assert_same(run(lambda x: sf.reduce_all(x, 0), empty_b), np.ones(3, bool))
    assert_same(run(sf.reduce_prod, np.zeros((0,), np.float32)), np.float32(1.0))


def test_reduce_max_and_min_of_nothing_are_the_reductions_identities(run: Runner) -> None:
    # As in TensorFlow: the lowest value of the dtype for a max, the highest for a min.
    empty = np.zeros((0, 3), np.float32)
    assert_same(run(lambda x: sf.reduce_min(x, 0), empty), np.full(3, np.inf, np.float32))
    assert_same(run(lambda x: sf.reduce_max(x, 0), empty), np.full(3, -np.inf, np.float32))
    ints = np.zeros((2, 0), np.int32)
    assert_same(run(lambda x: sf.reduce_max(x, 1), ints), np.full(2, -(2**31), np.int32))
    assert_same(run(lambda x: sf.reduce_min(x), ints), np.int32(2**31 - 1))


def test_integer_prod_keeps_the_input_dtype(run: Runner) -> None:
    a = np.array([16, 16], np.int8)
    assert_same(run(sf.reduce_prod, a), np.int8(0))  # 256 wraps around in int8


@pytest.mark.parametrize(
    ("shape", "axis", "keepdims", "expected"),
    [
        ((None, 3, 4), 1, False, (None, 4)),
        ((None, 3, 4), [0, -1], True, (1, 3, 1)),
        ((None, 3, 4), None, False, ()),
        (None, None, True, None),
        (None, 0, False, None),
    ],
)
@pytest.mark.parametrize(
    ("fn", "dtype"),
    [(sf.reduce_min, F32), (sf.reduce_prod, F32), (sf.reduce_any, BOOL), (sf.reduce_all, BOOL)],
    ids=["min", "prod", "any", "all"],
)
def test_static_shapes(
    shape: Any, axis: Any, keepdims: bool, expected: Any, fn: Any, dtype: Any
) -> None:
    with sf.Graph().as_default():
        out = fn(sf.placeholder(dtype, shape), axis, keepdims=keepdims)
    assert out.shape == expected
    assert out.dtype == dtype


@pytest.mark.parametrize(
    ("fn", "op_type", "dtype", "what"),
    [
        (sf.reduce_min, "Min", BOOL, "real"),
        (sf.reduce_min, "Min", C64, "real"),
        (sf.reduce_prod, "Prod", BOOL, "numeric"),
        (sf.reduce_any, "Any", F32, "bool"),
        (sf.reduce_all, "All", I32, "bool"),
    ],
)
def test_reductions_reject_dtypes(
    run: Runner, fn: Any, op_type: str, dtype: Any, what: str
) -> None:
    with pytest.raises(TypeError, match=rf"^{op_type}: expected {what} inputs, got dtype {dtype}"):
        run(fn, np.zeros((2,), dtype))


@pytest.mark.parametrize(("fn", "op_type"), [(sf.reduce_min, "Min"), (sf.reduce_all, "All")])
def test_bad_axis_is_value_error(run: Runner, fn: Any, op_type: str) -> None:
    a = np.zeros((2, 3), np.float32 if op_type == "Min" else bool)
    if run.mode == "graph-unknown-rank":
        with pytest.raises(sf.InvalidArgumentError, match="failed"):
            run(lambda x: fn(x, 2), a)
        return
    with pytest.raises(ValueError, match=rf"^{op_type}: axis 2 is out of range for rank 2"):
        run(lambda x: fn(x, 2), a)


# -- argmax / argmin ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "oracle"), [(sf.argmax, np.argmax), (sf.argmin, np.argmin)], ids=["argmax", "argmin"]
)
@pytest.mark.parametrize("dtype", [F16, F32, F64, I32, I64, U8, BOOL], ids=str)
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3])
def test_arg_reductions_match_numpy(
    run: Runner, fn: Any, oracle: Any, dtype: Any, axis: Any
) -> None:
    a = data((3, 4, 5), dtype, -2, 2, seed=5)  # small range: many ties (first index wins)
    expected = oracle(a, axis=0 if axis is None else axis).astype(np.int64)
    assert_same(run(lambda x: fn(x, axis), a), expected)


@pytest.mark.parametrize("fn", [sf.argmax, sf.argmin], ids=lambda f: f.__name__)
def test_arg_reductions_output_type(run: Runner, fn: Any) -> None:
    a = np.array([[1.0, 3.0], [4.0, 2.0]], np.float32)
    assert run(lambda x: fn(x, 1, output_type=sf.int32), a).dtype == I32
    assert run(lambda x: fn(x, 1), a).dtype == I64
    assert run(lambda x: fn(x, axis=0, output_type=np.int64), a).dtype == I64


def test_argmax_of_a_vector_is_a_scalar(run: Runner) -> None:
    assert_same(run(sf.argmax, np.array([0.5, 3.0, -1.0], np.float32)), np.int64(1))


def test_arg_static_shapes() -> None:
    with sf.Graph().as_default():
        x = sf.placeholder(sf.float32, (None, 4, None))
        assert sf.argmax(x).shape == (4, None)
        assert sf.argmin(x, -1).shape == (None, 4)
        assert sf.argmax(sf.placeholder(sf.float32, None), 1).shape is None


def test_arg_reductions_bad_input() -> None:
    x = sf.constant([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"^ArgMax: axis 2 is out of range for rank 2"):
        sf.argmax(x, 2)
    with pytest.raises(ValueError, match=r"^ArgMin: axis 0 is out of range: the input is a scalar"):
        sf.argmin(sf.constant(1.0))
    with pytest.raises(TypeError, match=r"^argmax\(\): output_type must be sf.int32 or sf.int64"):
        sf.argmax(x, 1, output_type=sf.float32)
    with pytest.raises(TypeError, match=r"^argmin\(\): axis must be an int"):
        sf.argmin(x, [0, 1])
    with pytest.raises(
        TypeError, match=r"^ArgMax: expected real or bool inputs, got dtype complex64"
    ):
        sf.argmax(sf.constant([1j], sf.complex64))


@pytest.mark.parametrize("fn", [sf.argmax, sf.argmin], ids=lambda f: f.__name__)
def test_arg_reduction_of_an_empty_axis_fails_at_run_time(run: Runner, fn: Any) -> None:
    with pytest.raises(
        sf.InvalidArgumentError, match=r"Reduction axis 1 is empty in shape \[2,0\]"
    ):
        run(lambda x: fn(x, 1), np.zeros((2, 0), np.float32))
    # Other empty dimensions are fine: the result is empty.
    assert_same(run(lambda x: fn(x, -1), np.zeros((1, 0, 2))), np.zeros((1, 0), np.int64))


def test_argmax_of_an_empty_python_list_is_invalid_argument() -> None:
    with pytest.raises(
        sf.InvalidArgumentError, match=r"^ArgMin: Reduction axis 0 is empty in shape \[0\]"
    ):
        sf.argmin([], 0)


def test_argmax_accuracy_pattern(run: Runner) -> None:
    # The usual classifier metric: the fraction of rows whose argmax is the label.
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [0.0, 0.2, 0.1]], np.float32)
    labels = np.array([1, 2, 1], np.int64)

    def accuracy(lg: Any, lb: Any) -> Any:
        hits = sf.equal(sf.argmax(lg, axis=1), lb)
        return sf.reduce_mean(sf.cast(hits, sf.float32))

    assert_same(run(accuracy, logits, labels), np.float32(2 / 3))
