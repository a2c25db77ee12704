"""A tape inside a traced function follows values the function captures from outside.

As in TensorFlow, capturing an outside tensor (an eager tensor, or a tensor of an enclosing
graph) shows tapes recording in the function graph an identity from that tensor to its
placeholder, so ``tape.watch(x)`` of the outside ``x`` gives gradients with respect to it.
Expected values are worked out by hand.
"""

from __future__ import annotations

import anyio
import pytest

import scopeflow as sf

X = sf.constant(2.0)


def test_watching_a_captured_eager_tensor_inside_a_function() -> None:
    @sf.function
    def f() -> tuple[sf.Tensor, ...]:
        with sf.GradientTape(persistent=True) as t:
            t.watch(X)
            y = X * X  # two captures of X: the gradient counts the capture once
            (z,) = sf.while_loop(lambda v: v < 50.0, lambda v: v * X, [sf.constant(1.0)])
            c = sf.cond(X > 1.0, lambda: X * 3.0, lambda: X)
        return t.gradient(y, X), t.gradient(z, X), t.gradient(c, X)

    dy, dz, dc = f()
    assert float(dy) == 4.0  # 2x
    assert float(dz) == 192.0  # z = x^6 = 64 (six iterations), 6 x^5
    assert float(dc) == 3.0


def test_a_value_captured_before_the_tape_started_is_followed_from_then_on() -> None:
    @sf.function
    def f() -> sf.Tensor:
        a = X + 1.0  # captured here, before the tape: a is a constant for it
        with sf.GradientTape() as t:
            t.watch(X)
            y = X * a
        return t.gradient(y, X)

    assert float(f()) == 3.0


def test_second_order_through_a_capture() -> None:
    @sf.function
    def f() -> sf.Tensor:
        with sf.GradientTape() as outer:
            outer.watch(X)
            with sf.GradientTape() as inner:
                inner.watch(X)
                y = X * X * X
            dy = inner.gradient(y, X)  # 3x^2
        return outer.gradient(dy, X)  # 6x

    assert float(f()) == 12.0


def test_a_tape_outside_the_function_records_the_call_only() -> None:
    g = sf.function(lambda: X * X * X)
    with sf.GradientTape() as t:
        t.watch(X)
        y = g()
    assert float(t.gradient(y, X)) == 12.0
    # and a tape that does not watch X gets nothing through the capture
    with sf.GradientTape() as t2:
        y2 = g()
    assert t2.gradient(y2, X) is None


def test_a_captured_graph_tensor_in_a_session() -> None:
    graph = sf.Graph()
    with graph.as_default():
        x = sf.placeholder(sf.float32, ())

        @sf.function
        def f() -> sf.Tensor:
            with sf.GradientTape() as t:
                t.watch(x)
                y = x * x * x
            return t.gradient(y, x)

        out = f()
    with sf.Session(graph) as session:
        assert float(session.run(out, {x: 2.0})) == 12.0


def test_an_unwatched_capture_gets_no_gradient() -> None:
    w = sf.constant(5.0)

    @sf.function
    def f(v: sf.Tensor) -> list[sf.Tensor | None]:
        with sf.GradientTape() as t:
            t.watch(v)
            y = v * w
        return t.gradient(y, [v, w])

    dv, dw = f(sf.constant(3.0))
    assert float(dv) == 5.0
    assert dw is None


@pytest.mark.anyio
async def test_tasks_with_their_own_tapes_around_one_traced_function() -> None:
    shared = sf.function(lambda: X * X)
    results: dict[int, float] = {}

    async def task(i: int) -> None:
        x = sf.constant(float(i))
        with sf.GradientTape(persistent=True) as t:
            t.watch(x)
            t.watch(X)
            await anyio.sleep(0)
            y = shared() * x  # x^... : d/dx = X^2 = 4
            await anyio.sleep(0)
        assert float(t.gradient(y, X)) == 4.0 * i  # 2 X * x
        results[i] = float(t.gradient(y, x))

    async with anyio.create_task_group() as tg:
        for i in range(1, 21):
            tg.start_soon(task, i)
    assert results == dict.fromkeys(range(1, 21), 4.0)
