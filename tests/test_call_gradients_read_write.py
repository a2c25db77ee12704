"""Gradients of traced calls use the values the call's variable reads returned.

The gradient of a call of a traced function replays the function after the call; a read
that ran before a write (in the call, or in code after it) must still see the value it
read then, as in TensorFlow, whose forward functions output what their gradients need.
The expected values below are worked out by hand and are those TensorFlow 2.21 gives:
every read of a variable contributes to the variable's gradient with the value it read.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._read_log import READ_LOG, ReadLog


def _floats(*values: Any) -> list[float | None]:
    return [None if v is None else float(np.asarray(v)) for v in values]


def _read_then_add_one(v: sf.Variable) -> Any:
    @sf.function
    def f(x: Any) -> Any:
        y = x * v
        v.assign_add(1.0)
        return y

    return f


def test_the_read_before_the_write_is_differentiated() -> None:
    # y = x * v with v = 2 when read; v becomes 3. dy/dx = 2 (not 3), dy/dv = x = 3.
    v = sf.Variable(2.0)
    f = _read_then_add_one(v)
    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    assert _floats(y, tape.gradient(y, x), tape.gradient(y, v)) == [6.0, 2.0, 3.0]
    # Written once, by the forward: no gradient wrote it again.
    assert float(v.numpy()) == 3.0
    assert _floats(*tape.gradient(y, [x, v])) == [2.0, 3.0]
    assert float(v.numpy()) == 3.0


@pytest.mark.parametrize(
    ("write", "after"),
    [
        (lambda v: v.assign(5.0), 5.0),
        (lambda v: v.assign_add(1.0), 3.0),
        (lambda v: v.assign_sub(0.5), 1.5),
    ],
)
def test_assign_assign_add_and_assign_sub_after_a_read(write: Any, after: float) -> None:
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        y = x * v
        write(v)
        return y

    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    assert _floats(tape.gradient(y, x), tape.gradient(y, v), v.numpy()) == [2.0, 3.0, after]


def test_two_reads_around_a_write() -> None:
    # y = x*2, then v = 5, z = x*5: d(y+z)/dx = 2 + 5; both reads count for v: x + x.
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        y = x * v
        v.assign(5.0)
        z = x * v
        return y + z

    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = f(x)
    assert _floats(out, tape.gradient(out, x), tape.gradient(out, v)) == [21.0, 7.0, 6.0]
    assert float(v.numpy()) == 5.0


def test_the_value_a_write_returns_is_the_value_written() -> None:
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        return x * v.assign_sub(0.5)

    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
        v.assign(100.0)  # written again after the call: the call's value still counts
    assert _floats(y, tape.gradient(y, x)) == [4.5, 1.5]


def test_float64_vector_variable() -> None:
    init = np.array([1.0, -2.0, 0.5])
    v = sf.Variable(init)
    xv = np.array([3.0, 4.0, 5.0])

    @sf.function
    def f(x: Any) -> Any:
        y = sf.reduce_sum(x * v * v)
        v.assign(v * 10.0)
        return y

    x = sf.constant(xv)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), init * init)
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), 2.0 * xv * init)
    np.testing.assert_array_equal(v.numpy(), init * 10.0)


def test_a_write_after_the_call_inside_the_tape() -> None:
    # The call only reads; the caller writes before asking for the gradient.
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        return x * v

    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
        v.assign(10.0)
    assert _floats(tape.gradient(y, x)) == [2.0]


def test_a_read_and_write_inside_cond() -> None:
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        def branch() -> Any:
            y = x * v
            v.assign_add(1.0)
            return y

        return sf.cond(x > 0.0, branch, lambda: x)

    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    assert _floats(y, tape.gradient(y, x), tape.gradient(y, v), v.numpy()) == [6, 2, 3, 3]


def test_reads_and_writes_inside_while_loop() -> None:
    # Three iterations read v = 2, 3, 4: a = x*(2+3+4) = 27; da/dx = 9; da/dv = 3x = 9.
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        def body(i: Any, a: Any) -> Any:
            a = a + x * v.read_value()
            v.assign_add(1.0)
            return i + 1, a

        return sf.while_loop(lambda i, a: i < 3, body, (sf.constant(0), sf.constant(0.0)))[1]

    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    assert _floats(y, tape.gradient(y, x), tape.gradient(y, v), v.numpy()) == [27, 9, 9, 5]


def test_a_nested_traced_call() -> None:
    v = sf.Variable(2.0)
    inner = _read_then_add_one(v)

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x) * 2.0

    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = outer(x)
    # y = 2*x*v with v = 2 when read: dy/dx = 4, dy/dv = 2x = 6; v written once.
    assert _floats(y, tape.gradient(y, x), tape.gradient(y, v), v.numpy()) == [12, 4, 6, 3]


def test_a_persistent_tape_over_two_calls() -> None:
    # The first call reads 2 (then v = 3), the second reads 3 (then v = 4).
    v = sf.Variable(2.0)
    f = _read_then_add_one(v)
    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y1 = f(x)
        y2 = f(x)
    assert _floats(tape.gradient(y1, x), tape.gradient(y2, x)) == [2.0, 3.0]
    assert _floats(tape.gradient(y1, x), tape.gradient([y1, y2], x)) == [2.0, 5.0]
    assert _floats(tape.gradient(y1, v), tape.gradient(y2, v)) == [3.0, 3.0]
    assert float(v.numpy()) == 4.0


def test_second_order_tape_in_tape() -> None:
    # y = x*x*v with v = 2 when read: dy/dx = 2xv = 12, d2y/dx2 = 2v = 4.
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        y = x * x * v
        v.assign_add(1.0)
        return y

    x = sf.constant(3.0)
    for _ in range(2):
        v.assign(2.0)
        with sf.GradientTape() as outer:
            outer.watch(x)
            with sf.GradientTape() as inner:
                inner.watch(x)
                y = f(x)
            dy = inner.gradient(y, x)
            v.assign(100.0)  # a write between the two gradients changes neither
        assert _floats(dy, outer.gradient(dy, x)) == [12.0, 4.0]


def test_second_order_with_respect_to_the_variable() -> None:
    # y = x*x*v: dy/dx = 2xv; d(dy/dx)/dv = 2x = 6, whatever v holds by then.
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        y = x * x * v
        v.assign(7.0)
        return y

    x = sf.constant(3.0)
    with sf.GradientTape() as outer:
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = f(x)
        dy = inner.gradient(y, x)
    assert _floats(dy, outer.gradient(dy, v)) == [12.0, 6.0]


def test_graph_mode_gradients_of_a_call_op_in_a_session() -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(2.0)

        @sf.function
        def f(x: Any) -> Any:
            y = x * x * w
            w.assign_add(1.0)
            return y

        xp = sf.placeholder(sf.float32, shape=())
        y = f(xp)
        dx, dw = sf.gradients(y, [xp, w])
        (d2x,) = sf.gradients(dx, [xp])
        seeded = sf.gradients(y, [xp], grad_ys=sf.constant(1.0))[0]
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        # Each run's call reads w once, then adds 1: the gradients use that read.
        for read in (2.0, 3.0, 4.0):
            got = sess.run([y, dx, dw, d2x], {xp: 3.0})
            assert _floats(*got) == [9.0 * read, 6.0 * read, 9.0, 2.0 * read]
            assert float(sess.run(w)) == read + 1.0
        # A gradient that does not need the call's output still runs the call first.
        assert _floats(sess.run(seeded, {xp: 3.0})) == [6.0 * 5.0]
        assert float(sess.run(w)) == 6.0


def test_a_tape_inside_a_traced_function() -> None:
    v = sf.Variable(2.0)
    f = _read_then_add_one(v)

    @sf.function
    def grad(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        return tape.gradient(y, x)

    x = sf.constant(3.0)
    assert _floats(grad(x), grad(x)) == [2.0, 3.0]
    assert float(v.numpy()) == 4.0


def test_nothing_is_kept_without_a_tape() -> None:
    v = sf.Variable(2.0)
    seen: list[Any] = []

    @sf.function
    def f(x: Any) -> Any:
        return x * v

    f(sf.constant(1.0))  # traced
    assert READ_LOG.get() is None
    with sf.GradientTape() as tape:
        x = sf.constant(3.0)
        tape.watch(x)
        y = f(x)
    seen.extend(rec[3].get("reads") for rec in tape._records)
    assert any(isinstance(log, ReadLog) and log for log in seen)
    assert READ_LOG.get() is None
    assert _floats(tape.gradient(y, x)) == [2.0]


def test_reads_nothing_recorded_fall_back_to_the_variable() -> None:
    # A replayer serves only ops the call ran; any other read loads the variable.
    v = sf.Variable(4.0)
    log = ReadLog()
    assert not log
    replay = log.replayer()
    assert float(replay.read({"var": v}, v._load)) == 4.0


async def _task_gradients(i: int) -> tuple[float, float, float, float]:
    v = sf.Variable(float(i))
    f = _read_then_add_one(v)  # each task its own variable (and trace)
    x = sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        await anyio.sleep(0)
        y1 = f(x)  # reads i, writes i + 1
        await anyio.sleep(0)
        y2 = f(x)  # reads i + 1, writes i + 2
        await anyio.sleep(0)
    await anyio.sleep(0)
    g1 = float(tape.gradient(y1, x).numpy())
    await anyio.sleep(0)
    g2 = float(tape.gradient(y2, x).numpy())
    gv = float(tape.gradient([y1, y2], v).numpy())
    return g1, g2, gv, float(v.numpy())


@pytest.mark.anyio
async def test_interleaved_tasks_each_get_their_own_gradient() -> None:
    # 50 tasks interleave their forwards and gradients (asyncio and trio): each gets the
    # values its own calls read: dy1/dx = i, dy2/dx = i + 1, d(y1 + y2)/dv = 2x.
    results: dict[int, tuple[float, float, float, float]] = {}

    async def task(i: int) -> None:
        results[i] = await _task_gradients(i)

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(task, i)
    assert results == {i: (float(i), float(i + 1), 4.0, float(i + 2)) for i in range(50)}


def test_a_nested_call_that_asserts_writes_once_per_forward() -> None:
    v = sf.Variable(2.0)
    count = sf.Variable(0.0)

    @sf.function
    def inner(x: Any) -> Any:
        count.assign_add(1.0)
        sf.debugging.assert_non_negative(x)
        return x * v

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x) * 3.0

    x = sf.constant(1.5)
    for round_ in (1, 2):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = outer(x)
        assert _floats(*tape.gradient(y, [x, v])) == [6.0, 4.5]
        assert float(count.numpy()) == round_  # the forward's write only


def test_a_nested_call_that_draws_writes_once_per_forward() -> None:
    v = sf.Variable(2.0)
    count = sf.Variable(0.0)

    @sf.function
    def inner(x: Any) -> Any:
        count.assign_add(1.0)
        return x * sf.random.uniform((3,)) * v

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x) * 2.0

    x = sf.constant([1.0, 1.0, 1.0])
    for round_ in (1, 2):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = outer(x)
        # y = 2 * x * u * v: dy/dx = 2 u v = y at x = 1, with the u the forward drew.
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), y.numpy())
        assert float(count.numpy()) == round_


def test_a_failing_nested_check_still_fails_the_forward() -> None:
    @sf.function
    def inner(x: Any) -> Any:
        sf.debugging.assert_non_negative(x)
        return x * 2.0

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x)

    x = sf.constant(-1.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(sf.errors.InvalidArgumentError):
            outer(x)


def test_graph_mode_gradients_through_a_nested_call_that_asserts() -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(2.0)
        count = sf.Variable(0.0)

        @sf.function
        def inner(x: Any) -> Any:
            sf.debugging.assert_non_negative(x)
            y = x * w
            w.assign_add(1.0)
            count.assign_add(1.0)
            return y

        @sf.function
        def outer(x: Any) -> Any:
            return inner(x) * 3.0

        xp = sf.placeholder(sf.float32, shape=())
        y = outer(xp)
        (dx,) = sf.gradients(y, [xp])
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        for run, read in enumerate((2.0, 3.0), start=1):
            assert _floats(*sess.run([y, dx], {xp: 1.5})) == [4.5 * read, 3.0 * read]
            assert _floats(sess.run(count)) == [float(run)]  # written once per run
        with pytest.raises(sf.errors.InvalidArgumentError):
            sess.run(dx, {xp: -1.0})


def test_a_write_after_the_call_in_a_traced_function() -> None:
    # The tape's gradient is built into the function after the write: it still uses
    # the value the call read (TensorFlow: 2.0).
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        return x * v

    @sf.function
    def grad(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
            v.assign(10.0)
        return tape.gradient(y, x)

    x = sf.constant(3.0)
    assert _floats(grad(x)) == [2.0]
    v.assign(4.0)
    assert _floats(grad(x)) == [4.0]


def test_a_write_after_the_call_in_a_session_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(2.0)

        @sf.function
        def f(x: Any) -> Any:
            return x * w

        xp = sf.placeholder(sf.float32, ())
        y = f(xp)
        with sf.control_dependencies([y]):
            write = w.assign(10.0)
        with sf.control_dependencies([write]):
            (dx,) = sf.gradients(y, [xp])
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        assert _floats(*sess.run([y, dx], {xp: 3.0})) == [6.0, 2.0]
        assert _floats(sess.run(w)) == [10.0]
        sess.run(w.assign(2.0))
        assert _floats(sess.run(dx, {xp: 3.0})) == [2.0]


def test_threads_each_get_their_own_gradient() -> None:
    v = sf.Variable(0.0)
    lock = threading.Lock()

    @sf.function
    def f(x: Any) -> Any:
        y = x * v
        v.assign_add(1.0)
        return y

    def work(i: int) -> tuple[float, float]:
        x = sf.constant(float(i))
        with lock:  # the read and the write of one call happen together
            with sf.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
        # The gradient, computed while other threads call f: the value this call read.
        return float(y.numpy()) / max(i, 1), float(tape.gradient(y, x).numpy())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(1, 41)))
    for read, grad in results:
        assert read == grad
    assert sorted(grad for _, grad in results) == [float(k) for k in range(40)]


def test_second_order_inside_a_traced_function_and_an_eager_tape_around_it() -> None:
    # y = x*x*v, v read then incremented: dy/dx = 2xv, d2y/dx2 = 2v, with v as read.
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        y = x * x * v
        v.assign_add(1.0)
        return y

    @sf.function
    def grads(x: Any) -> Any:
        with sf.GradientTape() as outer:
            outer.watch(x)
            with sf.GradientTape() as inner:
                inner.watch(x)
                y = f(x)
            dy = inner.gradient(y, x)
        return dy, outer.gradient(dy, x)

    x = sf.constant(3.0)
    assert _floats(*grads(x), v.numpy()) == [12.0, 4.0, 3.0]
    assert _floats(*grads(x), v.numpy()) == [18.0, 6.0, 4.0]
    with sf.GradientTape() as tape:
        tape.watch(x)
        dy, d2 = grads(x)  # reads v = 4
    assert _floats(dy, d2, tape.gradient(dy, x), v.numpy()) == [24.0, 8.0, 8.0, 5.0]
