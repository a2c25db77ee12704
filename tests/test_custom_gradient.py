"""sf.stop_gradient and @sf.custom_gradient with tapes (eager, traced) and sf.gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf


def _grad(mode: str, fn: Callable[[Any], Any], x0: float) -> float:
    """d fn(x) / dx at ``x0``, computed in ``mode``."""
    if mode == "eager":
        x = sf.constant(x0)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return float(tape.gradient(y, x))
    if mode == "traced-tape":

        @sf.function
        def inside(x: Any) -> Any:
            with sf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return tape.gradient(y, x)

        return float(inside(sf.constant(x0)))
    if mode == "tape-over-function":
        traced = sf.function(fn)
        x = sf.constant(x0)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = traced(x)
        return float(tape.gradient(y, x))
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=())
        y = sf.function(fn)(p) if mode == "graph-call" else fn(p)
        (dx,) = sf.gradients(y, [p])
    return float(sf.Session(g).run(dx, {p: x0}))


MODES = ["eager", "traced-tape", "tape-over-function", "graph", "graph-call"]


# -- stop_gradient -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_stop_gradient_blocks_only_its_path(mode: str) -> None:
    # y = x * stop(x): only the unstopped factor contributes, so dy/dx = x.
    assert _grad(mode, lambda x: x * sf.stop_gradient(x), 3.0) == 3.0


def test_stop_gradient_on_the_only_path_gives_none() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = sf.stop_gradient(x * x) + 1.0
    assert tape.gradient(y, x) is None
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=())
        s = sf.stop_gradient(p, name="stopped")
        assert sf.gradients(s * 2.0, [p]) == [None]
    assert s.op.type == "StopGradient"
    assert s.op.name == "stopped"
    assert float(sf.Session(g).run(s, {p: 5.0})) == 5.0


# -- custom_gradient -------------------------------------------------------------------------


@sf.custom_gradient
def log1pexp(x: Any) -> Any:
    e = sf.exp(x)

    def grad(dy: Any) -> Any:
        return dy * (1.0 - 1.0 / (1.0 + e))

    return sf.log(1.0 + e), grad


@sf.custom_gradient
def clip_grad(x: Any) -> Any:
    def grad(dy: Any) -> Any:
        return sf.minimum(sf.maximum(dy, -1.0), 1.0)

    return sf.identity(x), grad


@pytest.mark.parametrize("mode", MODES)
def test_custom_gradient_replaces_the_gradient_in_every_mode(mode: str) -> None:
    # The naive gradient of log(1 + exp(x)) at 100 is inf/inf = NaN; the custom one is 1.
    assert _grad(mode, log1pexp, 100.0) == 1.0
    # The chain rule still applies around it: upstream 10 is clipped to 1, times 3.
    assert _grad(mode, lambda x: clip_grad(x * 3.0) * 10.0, 1.0) == 3.0


def test_custom_gradient_values_are_the_function_values() -> None:
    x = sf.constant([0.0, 1.0])
    np.testing.assert_allclose(log1pexp(x).numpy(), np.log1p(np.exp([0.0, 1.0])), rtol=1e-6)
    g = sf.Graph()
    with g.as_default():
        y = log1pexp(sf.constant([0.0, 1.0]))
    assert y.shape == (2,)
    np.testing.assert_allclose(sf.Session(g).run(y), np.log1p(np.exp([0.0, 1.0])), rtol=1e-6)


@sf.custom_gradient
def cube(x: Any) -> Any:
    def grad(dy: Any) -> Any:
        return dy * 3.0 * x * x

    return x * x * x, grad


def test_second_order_through_a_differentiable_grad_fn_eagerly() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = cube(x)
        dy = inner.gradient(y, x)
    assert float(dy) == 12.0
    assert float(outer.gradient(dy, x)) == 12.0  # d(3x^2)/dx = 6x


def test_second_order_in_a_graph_and_in_a_function() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=())
        (d1,) = sf.gradients(cube(p), [p])
        (d2,) = sf.gradients(d1, [p])
    assert sf.Session(g).run([d1, d2], {p: 2.0}) == [12.0, 12.0]

    @sf.function
    def second(x: Any) -> Any:
        with sf.GradientTape() as outer:
            outer.watch(x)
            with sf.GradientTape() as inner:
                inner.watch(x)
                y = cube(x)
            d = inner.gradient(y, x)
        return outer.gradient(d, x)

    assert float(second(sf.constant(2.0))) == 12.0


def test_several_inputs_and_outputs_and_a_none_gradient() -> None:
    @sf.custom_gradient
    def pair(a: Any, b: Any) -> Any:
        def grad(da: Any, db: Any) -> Any:
            return da * 2.0 + db, None

        return [a * 1.0, a + b], grad

    a, b = sf.constant(1.0), sf.constant(5.0)
    with sf.GradientTape() as tape:
        tape.watch([a, b])
        first, second = pair(a, b)
        loss = first * 10.0 + second
    assert [first.numpy(), second.numpy()] == [1.0, 6.0]
    ga, gb = tape.gradient(loss, [a, b])
    assert float(ga) == 21.0
    assert gb is None


@pytest.mark.parametrize("traced", [False, True])
def test_grad_fn_gets_the_variables_the_function_reads(traced: bool) -> None:
    w = sf.Variable(3.0)

    @sf.custom_gradient
    def scaled(x: Any) -> Any:
        def grad(dy: Any, variables: Any) -> Any:
            assert variables == [w] or [v.ref() for v in variables] == [w.ref()]
            return dy * w, [dy * x * 100.0]

        return x * w, grad

    fn = sf.function(scaled) if traced else scaled
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    gx, gw = tape.gradient(y, [x, w])
    assert float(y) == 6.0
    assert (float(gx), float(gw)) == (3.0, 200.0)


def test_reading_variables_needs_a_variables_argument() -> None:
    w = sf.Variable(3.0)

    @sf.custom_gradient
    def scaled(x: Any) -> Any:
        return x * w, lambda dy: dy * w

    x = sf.constant(1.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(
            TypeError,
            match=r"^custom_gradient 'scaled' reads the variables \[.*\] that are not "
            r"arguments, so its grad_fn must accept a keyword argument 'variables'",
        ):
            scaled(x)


def test_grad_fn_returning_the_wrong_number_of_gradients() -> None:
    @sf.custom_gradient
    def bad(x: Any, y: Any) -> Any:
        return x + y, lambda dy: dy

    x = sf.constant(1.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        z = bad(x, x)
    with pytest.raises(ValueError, match=r"^custom_gradient 'bad': grad_fn returned 1 gradients"):
        tape.gradient(z, x)


def test_function_not_returning_a_pair_is_a_type_error() -> None:
    @sf.custom_gradient
    def no_pair(x: Any) -> Any:
        return x

    with pytest.raises(TypeError, match=r"^custom_gradient 'no_pair' must return a pair"):
        no_pair(sf.constant(1.0))
    with pytest.raises(TypeError, match=r"^custom_gradient\(\) decorates a function"):
        sf.custom_gradient(3)  # type: ignore[arg-type]


def test_body_ops_are_not_differentiated() -> None:
    # The body shuffles (an op without a gradient); the custom gradient never reaches it.
    @sf.custom_gradient
    def opaque(x: Any) -> Any:
        return sf.reduce_sum(sf.random.shuffle(x)), lambda dy: dy * sf.ones((3,))

    x = sf.constant([1.0, 2.0, 3.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = opaque(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1.0, 1.0, 1.0])


def test_a_tape_inside_the_body_still_records() -> None:
    @sf.custom_gradient
    def recompute(x: Any) -> Any:
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = x * x
        slope = inner.gradient(y, x)
        return y, lambda dy: dy * slope

    x = sf.constant(4.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = recompute(x)
    assert float(tape.gradient(y, x)) == 8.0


def test_custom_gradient_inside_a_cond_branch() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=())
        flag = sf.placeholder(sf.bool_, shape=())
        y = sf.cond(flag, lambda: clip_grad(p) * 10.0, lambda: p * 10.0)
        (dx,) = sf.gradients(y, [p])
    sess = sf.Session(g)
    assert float(sess.run(dx, {p: 1.0, flag: True})) == 1.0
    assert float(sess.run(dx, {p: 1.0, flag: False})) == 10.0


def test_without_a_tape_the_result_is_returned_as_is() -> None:
    calls = []

    @sf.custom_gradient
    def f(x: Any) -> Any:
        calls.append(1)
        return x * 2.0, lambda dy: dy

    assert float(f(sf.constant(1.5))) == 3.0
    assert calls == [1]


def test_a_broken_grad_fn_fails_only_when_differentiating() -> None:
    @sf.custom_gradient
    def broken(x: Any) -> Any:
        return x * 2.0, lambda dy: dy * sf.constant([1.0, 2.0, 3.0])  # wrong shape

    @sf.function
    def forward(x: Any) -> Any:
        return broken(x)

    @sf.function
    def backward(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = broken(x)
        return tape.gradient(y, x)

    x = sf.constant([1.0, 2.0])
    np.testing.assert_array_equal(forward(x).numpy(), [2.0, 4.0])
    with pytest.raises(ValueError, match=r"cannot be broadcast"):
        backward(x)


def test_variable_gradients_with_sf_gradients_in_a_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(3.0)

        @sf.custom_gradient
        def scaled(x: Any) -> Any:
            def grad(dy: Any, variables: Any) -> Any:
                return dy * w, [dy * x * 100.0]

            return x * w, grad

        p = sf.placeholder(sf.float32, shape=())
        y = scaled(p)
        gx, gw = sf.gradients(y, [p, w])
        init = sf.global_variables_initializer()
    sess = sf.Session(g)
    sess.run(init)
    assert sess.run([y, gx, gw], {p: 2.0}) == [6.0, 3.0, 200.0]


def test_custom_gradient_on_a_method_reads_its_variables() -> None:
    class Scale(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = sf.Variable(3.0)

        @sf.custom_gradient
        def __call__(self, x: Any) -> Any:
            def grad(dy: Any, variables: Any) -> Any:
                return dy * self.w, [dy * x * 100.0]

            return x * self.w, grad

    layer = Scale()
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    gx, gw = tape.gradient(y, [x, layer.w])
    assert (float(y), float(gx), float(gw)) == (6.0, 3.0, 200.0)
    assert Scale.__call__.__name__ == "__call__"


@pytest.mark.anyio
async def test_tasks_differentiating_custom_gradients_concurrently() -> None:
    results: dict[int, float] = {}

    async def worker(i: int) -> None:
        x = sf.constant(float(i))
        with sf.GradientTape() as tape:
            tape.watch(x)
            await anyio.sleep(0)  # the other tasks open their tapes meanwhile
            y = cube(x)
            await anyio.sleep(0)
        results[i] = float(tape.gradient(y, x))

    async with anyio.create_task_group() as tg:
        for i in range(1, 5):
            tg.start_soon(worker, i)
    assert results == {i: 3.0 * i * i for i in range(1, 5)}
