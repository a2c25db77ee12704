"""Eager tapes over calls of traced functions use one backward function per trace (issue 12,
item 6): built symbolically on the first gradient, cached, and run as one call."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf

RNG = np.random.default_rng(7)
W1 = RNG.standard_normal((6, 8)).astype(np.float32)
B1 = RNG.standard_normal(8).astype(np.float32)
W2 = RNG.standard_normal((8, 3)).astype(np.float32)
X = RNG.standard_normal((4, 6)).astype(np.float32)


def _numpy_input_grad(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    h = x @ W1 + B1
    a = np.maximum(h, 0)
    y = a @ W2
    i = np.unravel_index(np.argmax(y), y.shape)
    dy = np.zeros_like(y)
    dy[i] = 1
    return ((dy @ W2.T) * (h > 0)) @ W1.T  # type: ignore[no-any-return]


def _mlp() -> Any:
    w1, b1, w2 = sf.constant(W1), sf.constant(B1), sf.constant(W2)

    @sf.function
    def mlp(x: Any) -> Any:
        return sf.matmul(sf.nn.relu(sf.matmul(x, w1) + b1), w2)

    return mlp


def _explain(mlp: Any, x: Any) -> Any:
    with sf.GradientTape() as tape:
        tape.watch(x)
        top = sf.reduce_max(mlp(x))
    return tape.gradient(top, x)


def test_input_gradient_of_a_traced_mlp_matches_numpy_and_builds_backward_once() -> None:
    mlp = _mlp()
    x = sf.constant(X)
    np.testing.assert_allclose(_explain(mlp, x).numpy(), _numpy_input_grad(X), rtol=1e-5)
    concrete = mlp.get_concrete_function(x)
    backward = dict(concrete._backward)
    # Only the watched input is differentiated: the captured weights are not.
    ((needed, built),) = backward.items()
    assert needed == ((True, False, False, False), ())
    fn = built[0]
    fn._run([np.asarray(v) for v in (X, W1, B1, W2, np.ones((4, 3), np.float32))])
    run_types = [step[0].type for step in fn._plan.steps]
    assert run_types.count("MatMul") == 3  # forward x @ w1, then dy @ w2.T and dh @ w1.T
    x2 = sf.constant(X * 2)
    np.testing.assert_allclose(_explain(mlp, x2).numpy(), _numpy_input_grad(X * 2), rtol=1e-5)
    assert concrete._backward == backward  # built once per forward trace
    assert next(iter(concrete._backward.values())) is built
    assert mlp.trace_count == 1


def test_variable_gradients_through_the_backward_function_see_current_values() -> None:
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        return v * x * x

    x = sf.constant(3.0)
    for value in (2.0, 5.0):
        v.assign(value)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        gx, gv = tape.gradient(y, [x, v])
        assert float(gx) == pytest.approx(2 * value * 3.0)
        assert float(gv) == pytest.approx(9.0)


def test_second_and_third_order_gradients_of_a_traced_call() -> None:
    @sf.function
    def cube(x: Any) -> Any:
        return x * x * x

    x = sf.constant(2.0)
    with sf.GradientTape() as t3:
        t3.watch(x)
        with sf.GradientTape() as t2:
            t2.watch(x)
            with sf.GradientTape() as t1:
                t1.watch(x)
                y = cube(x)
            d1 = t1.gradient(y, x)
        d2 = t2.gradient(d1, x)
    d3 = t3.gradient(d2, x)
    assert float(d1) == pytest.approx(12.0)
    assert float(d2) == pytest.approx(12.0)
    assert float(d3) == pytest.approx(6.0)


def test_one_tensor_passed_twice_gets_both_gradients() -> None:
    @sf.function
    def f(a: Any, b: Any) -> Any:
        return a * b + a

    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x, x)
    assert float(tape.gradient(y, x)) == pytest.approx(7.0)


def test_integer_outputs_and_several_outputs() -> None:
    @sf.function
    def f(x: Any) -> Any:
        return x * 2.0, sf.cast(x, sf.int32), x * x

    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        a, _, c = f(x)
        y = sf.reduce_sum(a) + sf.reduce_sum(c)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [4.0, 6.0])


def test_random_draws_are_reused_by_the_gradient() -> None:
    @sf.function
    def f(x: Any) -> Any:
        return x * sf.random.uniform((3,), seed=1)

    x = sf.constant([1.0, 1.0, 1.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), y.numpy())


def test_a_path_through_integers_has_no_gradient() -> None:
    @sf.function
    def f(x: Any) -> Any:
        return sf.cast(sf.cast(x, sf.int32), sf.float32) * 2.0

    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    assert tape.gradient(y, x) is None


def test_threads_differentiating_one_trace_for_the_first_time() -> None:
    mlp = _mlp()
    x = sf.constant(X)
    mlp(x)  # traced; the backward function is not built yet
    n = 4
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def work(i: int) -> None:
        xi = sf.constant(X * (i + 1))
        barrier.wait()
        results[i] = _explain(mlp, xi).numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in enumerate(results):
        np.testing.assert_allclose(got, _numpy_input_grad(X * (i + 1)), rtol=1e-5)
    assert mlp.trace_count == 1


@pytest.mark.anyio
async def test_tasks_record_and_differentiate_their_own_calls() -> None:
    @sf.function
    def f(x: Any) -> Any:
        return x * x

    async def one(i: int) -> None:
        x = sf.constant(float(i))
        with sf.GradientTape() as tape:
            tape.watch(x)
            await anyio.sleep(0)
            y = f(x)
            await anyio.sleep(0)
        await anyio.sleep(0)
        assert float(tape.gradient(y, x)) == pytest.approx(2.0 * i)

    async with anyio.create_task_group() as tg:
        for i in range(1, 9):
            tg.start_soon(one, i)


def test_one_backward_function_serves_calls_of_every_batch_size() -> None:
    @sf.function(input_signature=[sf.TensorSpec((None, 3), sf.float32)])
    def f(x: Any) -> Any:
        return sf.reduce_sum(x * x, axis=1) + sf.reduce_mean(x)

    for batch in (1, 4, 2):
        value = np.arange(batch * 3, dtype=np.float32).reshape(batch, 3)
        x = sf.constant(value)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = sf.reduce_sum(f(x))
        expected = 2 * value + batch / value.size
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), expected, rtol=1e-6)
    assert f.trace_count == 1


def test_an_input_watched_after_the_call_still_gets_its_gradient() -> None:
    @sf.function
    def f(a: Any, b: Any) -> Any:
        return a * b * b

    x = sf.constant(3.0)
    w = sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x, w)
        tape.watch(w)  # after the call, as TensorFlow allows
    assert float(tape.gradient(y, x)) == pytest.approx(4.0)
    assert float(tape.gradient(y, w)) == pytest.approx(12.0)
    gx, gw = tape.gradient(y, [x, w])
    assert (float(gx), float(gw)) == pytest.approx((4.0, 12.0))


def test_reduce_max_gradient_splits_ties_and_differentiates_again() -> None:
    x = sf.constant([1.0, 3.0, 3.0, 2.0])
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            top = sf.reduce_max(x * x)
        g = inner.gradient(top, x)
        total = sf.reduce_sum(g * g)
    np.testing.assert_allclose(g.numpy(), [0.0, 3.0, 3.0, 0.0])
    # total = 2 * (2 * 3 * 0.5)^2 with each selected gradient x * (2 / 2 ties).
    np.testing.assert_allclose(outer.gradient(total, x).numpy(), [0.0, 6.0, 6.0, 0.0])
    m = sf.constant([[1.0, 5.0], [7.0, 7.0]])
    with sf.GradientTape() as tape:
        tape.watch(m)
        low = sf.reduce_min(m, axis=1)
    np.testing.assert_allclose(tape.gradient(low, m).numpy(), [[1.0, 0.0], [0.5, 0.5]])


def test_variable_gradients_only_for_the_variables_asked_for() -> None:
    w = sf.Variable(np.float32(2.0))
    b = sf.Variable(np.float32(1.0))

    @sf.function
    def f(x: Any) -> Any:
        return x * w + b

    x = sf.constant(3.0)
    concrete = f.get_concrete_function(x)
    for sources, expected in (([x], [2.0]), ([w], [3.0]), ([x, w, b], [2.0, 3.0, 1.0])):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        got = tape.gradient(y, sources)
        assert [float(g) for g in got] == pytest.approx(expected)
    # (inputs: all followed, variables asked for): one backward function each.
    assert set(concrete._backward) == {
        (None, (False, False)),
        (None, (True, False)),
        (None, (True, True)),
    }
    # sf.gradients in a graph still differentiates through calls (no tape sources there).
    g = sf.Graph()
    with g.as_default():
        xp = sf.placeholder(sf.float32, ())
        (gx,) = sf.gradients(f(xp), [xp])
    with sf.Session(g) as sess:
        assert float(sess.run(gx, {xp: 3.0})) == pytest.approx(2.0)
