"""Python-scalar operands (``x * 2.0 - 1.0``): the fast conversion path (issue 12, item 1).

A Python ``int``/``float``/``bool`` meeting a tensor converts to the tensor's dtype after
an arithmetic range/exactness check; values the check does not accept take the general
route, which converts or raises exactly as before. The operators are the op functions.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _tensor

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8]
DTYPES += [np.complex64]


def _run_graph(fn: Any, value: Any, dtype: Any) -> Any:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(dtype, shape=np.shape(value))
        y = fn(x)
    with sf.Session(g) as sess:
        return sess.run(y, feed_dict={x: value})


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x + 1,
        lambda x: 2 + x,
        lambda x: x * 3,
        lambda x: 3 * x,
        lambda x: x - 1,
        lambda x: 5 - x,
        lambda x: x * 2.0 - 1.0,
        lambda x: x + True,
    ],
)
def test_scalar_operands_keep_the_tensor_dtype_eager_and_in_graphs(fn: Any, dtype: Any) -> None:
    value = np.array([1, 2, 4], dtype)
    wide = np.complex128 if value.dtype.kind == "c" else np.float64
    expected = fn(value.astype(wide)).astype(dtype)
    eager = fn(sf.constant(value))
    assert eager.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(eager.numpy(), expected)
    graph = _run_graph(fn, value, dtype)
    assert graph.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(graph, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64])
def test_true_division_by_a_scalar_on_both_sides(dtype: Any) -> None:
    x = sf.constant(np.array([1.0, 2.0, 4.0], dtype))
    np.testing.assert_allclose((x / 2.0).numpy(), np.array([0.5, 1.0, 2.0], dtype))
    np.testing.assert_allclose((1.0 / x).numpy(), np.array([1.0, 0.5, 0.25], dtype))
    assert (x / 2).dtype == np.dtype(dtype)
    assert (1 / x).dtype == np.dtype(dtype)


def test_integer_true_division_by_a_scalar_still_gives_float64() -> None:
    out = sf.constant([1, 3]) / 2
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), [0.5, 1.5])


@pytest.mark.parametrize(
    ("dtype", "scalar"),
    [
        (np.int32, 1.5),
        (np.int8, 300),
        (np.int8, 200.0),
        (np.uint8, -1),
        (np.int32, float("nan")),
        (np.int32, float("inf")),
        (np.float32, 2**24 + 1),  # an int not exact in float32
        (np.int64, 2**70),
    ],
)
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_scalars_that_would_change_value_are_refused(dtype: Any, scalar: Any, graph: bool) -> None:
    g = sf.Graph()
    with g.as_default() if graph else _nothing():
        x = sf.zeros((2,), dtype)
        n_ops = len(g.get_operations())
        with pytest.raises(TypeError, match=r"^Add: .*(Cannot convert|does not fit)"):
            _ = x + scalar
        with pytest.raises(TypeError, match=r"^Add: .*(Cannot convert|does not fit)"):
            _ = scalar + x
        assert len(g.get_operations()) == n_ops  # nothing half-built


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_exact_boundary_values_convert() -> None:
    assert (sf.zeros((1,), sf.int8) + 127).numpy()[0] == 127
    assert (sf.zeros((1,), sf.int8) + -128.0).numpy()[0] == -128
    assert (sf.zeros((1,), sf.uint8) + 255).numpy()[0] == 255
    assert (sf.zeros((1,), sf.float32) + 2**24).numpy()[0] == 2**24
    assert (sf.zeros((1,), sf.float64) + 2**53).numpy()[0] == 2**53
    big = sf.zeros((1,), sf.int64) + (2**63 - 1)
    assert int(big.numpy()[0]) == 2**63 - 1


def test_floats_round_and_overflow_silently_as_before() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = sf.constant([3e38], sf.float32)
        assert np.isinf((x * 10.0).numpy()[0])
        assert np.isinf((x + 1e300).numpy()[0])  # overflowing scalar: general route
        assert np.isinf((x / sf.constant([1e-30], sf.float32)).numpy()[0])
        assert np.isinf((sf.constant([1.0]) / 0.0).numpy()[0])
        assert np.isinf((sf.constant([1.0]) / sf.constant([0.0])).numpy()[0])
        assert np.isnan((sf.constant([1.0]) * float("nan")).numpy()[0])
        assert (sf.constant([1.0], sf.float16) + 0.1).numpy()[0] == np.float16(1.1)


def test_negative_zero_keeps_its_sign() -> None:
    x = sf.constant([1.0])
    assert not np.signbit((x * 0.0).numpy()[0])
    assert np.signbit((x * -0.0).numpy()[0])
    assert not np.signbit((x * 0.0).numpy()[0])
    g = sf.Graph()
    with g.as_default():
        y = sf.placeholder(sf.float32, (1,)) * -0.0
    assert np.signbit(y.op.inputs[1].op.get_attr("value"))


def test_int_bool_and_float_scalars_of_equal_value_stay_distinct() -> None:
    x = sf.constant([2.0], sf.float64)
    for scalar in (1, 1.0, True):
        np.testing.assert_array_equal((x + scalar).numpy(), [3.0])
    i = sf.constant([2], sf.int32)
    np.testing.assert_array_equal((i + True).numpy(), [3])
    with pytest.raises(TypeError, match=r"^Add: .*Cannot convert"):
        _ = i + 1.5


def test_repeated_scalars_share_read_only_arrays_that_results_never_alias() -> None:
    x = sf.constant([1.0, 2.0])
    a = x + 7.0
    b = x + 7.0
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    shared = _tensor.shared_scalar(7.0, np.dtype(np.float32))
    assert shared is not None
    assert not shared.flags.writeable
    assert shared == 7.0
    assert shared is _tensor.shared_scalar(7.0, np.dtype(np.float32))


def test_graph_constants_of_scalars_are_ordinary_const_ops() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (2,), name="x")
        y = 2.0 * x - 1.0
    ops = g.get_operations()
    assert [op.type for op in ops] == ["Placeholder", "Const", "Mul", "Const", "Sub"]
    assert [op.name for op in ops] == ["x", "Const", "Mul", "Const_1", "Sub"]
    const = ops[1]
    assert const.get_attr("dtype") == np.float32
    assert const.get_attr("value") == 2.0
    assert ops[2].inputs[0] is const.outputs[0]
    with sf.Session(g) as sess:
        np.testing.assert_array_equal(sess.run(y, {x: [1.0, 3.0]}), [1.0, 5.0])


def test_operators_are_the_op_functions() -> None:
    x = sf.constant([1.0])
    assert type(x).__add__ is sf.add
    assert type(x).__mul__ is sf.multiply
    assert type(x).__sub__ is sf.subtract
    assert type(x).__truediv__ is sf.divide


def test_gradients_flow_through_scalar_operands() -> None:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = 3.0 * x - 1.0
        z = 2.0 / x
        w = x / 4.0 + (1.0 - x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [3.0, 3.0])
    np.testing.assert_allclose(tape.gradient(z, x).numpy(), [-2.0, -0.5])
    np.testing.assert_allclose(tape.gradient(w, x).numpy(), [-0.75, -0.75])


def test_second_order_gradient_through_scalar_operands() -> None:
    x = sf.constant(3.0)
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = 2.0 * x * x + 1.0
        dy = inner.gradient(y, x)
    assert float(dy) == pytest.approx(12.0)
    assert float(outer.gradient(dy, x)) == pytest.approx(4.0)


def test_variables_with_scalar_operands() -> None:
    v = sf.Variable([1.0, 2.0])
    np.testing.assert_array_equal((v * 2.0).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal((1.0 - v).numpy(), [0.0, -1.0])


def test_constant_with_a_dtype_checks_python_scalars_exactly() -> None:
    assert sf.constant(3, dtype=sf.float32).numpy() == 3.0
    assert sf.constant(3.0, dtype=sf.int32).numpy() == 3
    with pytest.raises(TypeError, match=r"^Cannot convert 3\.5 to a int32 tensor"):
        sf.constant(3.5, dtype=sf.int32)
    with pytest.raises(TypeError, match=r"^Cannot convert 256 to a uint8 tensor"):
        sf.constant(256, dtype=sf.uint8)


def test_threads_converting_many_distinct_scalars_at_once() -> None:
    n_threads = 4
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            x = sf.constant(np.zeros(3, np.float64))
            barrier.wait()
            # More distinct scalars than the cache holds: it is cleared while others read.
            for i in range(1500):
                value = float(i * n_threads + k) + 0.5
                out = (x + value).numpy()
                assert (out == value).all(), (out, value)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda a, b: a * b, np.inf),
        (lambda a, b: a + a, np.inf),
        (lambda a, b: a - (-a), np.inf),
        (lambda a, b: sf.multiply(a, b), np.inf),
        (lambda a, b: a * 10.0, np.inf),
        (lambda a, b: a / sf.zeros_like(a), np.inf),
    ],
)
def test_overflow_gives_inf_without_a_warning_on_every_path(fn: Any, expected: float) -> None:
    """The suite turns warnings into errors: an overflow must not raise on a fast path."""
    a = sf.constant([3e38], sf.float32)
    b = sf.constant([10.0], sf.float32)
    assert fn(a, b).numpy().tolist() == [expected]
