"""Gradients of traced calls use the values their reads returned: edge cases.

Each op's logged reads are served back in the order the call made them, so a gradient
must replay every read of an op that ran more than once (a nested function called twice)
in that order, even where it needs only some of their values. Expected values are worked
out by hand; they are those TensorFlow 2.21 gives (every read of a variable contributes
to its gradient with the value it read).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._read_log import READ_LOG


def _floats(*values: Any) -> list[float | None]:
    return [None if v is None else float(np.asarray(v)) for v in values]


def _nested_twice(a: sf.Variable, b: sf.Variable) -> Any:
    @sf.function
    def inner(x: Any) -> Any:
        y = x * a + b
        a.assign_add(1.0)
        return y

    @sf.function
    def outer(x: Any) -> Any:
        return inner(inner(x))

    return outer


@pytest.mark.parametrize(
    "sources",
    [("b",), ("a",), ("x",), ("a", "b"), ("b", "x"), ("x", "a", "b")],
)
def test_a_nested_call_made_twice_any_subset_of_sources(sources: tuple[str, ...]) -> None:
    # y1 = x*a + b with a = 2 (then a = 3); y = y1*a + b with a = 3 (then a = 4).
    # x = 3: y1 = 11, y = 38; dy/dx = 2*3 = 6, dy/da = y1 + 3*x = 20, dy/db = 3 + 1 = 4.
    a = sf.Variable(2.0)
    b = sf.Variable(5.0)
    outer = _nested_twice(a, b)
    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = outer(x)
    named = {"x": x, "a": a, "b": b}
    expected = {"x": 6.0, "a": 20.0, "b": 4.0}
    grads = tape.gradient(y, [named[s] for s in sources])
    assert _floats(y, *grads) == [38.0, *(expected[s] for s in sources)]
    assert float(a.numpy()) == 4.0


@pytest.mark.parametrize("inside", ["check", "cond", "loop"])
def test_a_nested_call_made_twice_of_a_function_whose_gradient_replays(inside: str) -> None:
    # As above, the read inside an op whose gradient in the backward function replays it
    # once more, last call first: a call of a function with checks (it stays a call), a
    # cond, a while_loop.
    a = sf.Variable(2.0)
    b = sf.Variable(5.0)

    @sf.function
    def checked(x: Any) -> Any:
        y = x * a + b
        sf.debugging.assert_less(y, 1000.0)
        return y

    @sf.function
    def inner(x: Any) -> Any:
        if inside == "check":
            y = checked(x)
        elif inside == "cond":
            y = sf.cond(x > 0, lambda: x * a + b, lambda: x)
        else:
            _, y = sf.while_loop(lambda i, y: i < 1, lambda i, y: (i + 1, y * a + b), [0, x])
        a.assign_add(1.0)
        return y

    @sf.function
    def outer(x: Any) -> Any:
        return inner(inner(x))

    x = sf.constant(3.0)
    for sources in ([x, a, b], [b], [a]):  # the backward functions built, then reused
        a.assign(2.0)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = outer(x)
        expected = {id(x): 6.0, id(a): 20.0, id(b): 4.0}
        grads = tape.gradient(y, sources)
        assert _floats(y, *grads) == [38.0, *(expected[id(s)] for s in sources)]
        assert float(a.numpy()) == 4.0


def test_a_nested_cond_made_twice_without_writes_keeps_its_backward_function() -> None:
    # Without writes every run reads the same values: the compiled backward function
    # serves (the eager replay is only needed where the runs' reads differ).
    a = sf.Variable(2.0)

    @sf.function
    def inner(x: Any) -> Any:
        return sf.cond(x > 0, lambda: x * a, lambda: x)

    @sf.function
    def outer(x: Any) -> Any:
        return inner(inner(x))

    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = outer(x)
    assert _floats(y, *tape.gradient(y, [x, a])) == [12.0, 4.0, 12.0]
    backward = outer.get_concrete_function(x)._backward
    assert backward
    assert all(not isinstance(b, str) for b in backward.values())


# -- graphs: conds and loops whose gradient runs after the op wrote ------------------------


def _session_values(build: Any, runs: int = 2) -> list[list[float | None]]:
    """Run ``build(w, x)``'s fetches ``runs`` times (w starts at 2, x = 3)."""
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(2.0)
        xp = sf.placeholder(sf.float32, ())
        fetches = build(w, xp)
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        return [_floats(*sess.run(fetches, {xp: 3.0})) for _ in range(runs)]


def _read_then_add(w: sf.Variable) -> Any:
    @sf.function
    def f(x: Any) -> Any:
        y = x * w
        w.assign_add(1.0)
        return y

    return f


def test_graph_gradients_of_a_cond_whose_branch_reads_then_writes() -> None:
    # The taken branch reads w (2, then 3 in the next run) and adds 1: y = x*w as read.
    def build(w: sf.Variable, x: Any) -> list[Any]:
        def branch() -> Any:
            y = x * w.read_value()
            with sf.control_dependencies([y]):
                write = w.assign_add(1.0)
            with sf.control_dependencies([write]):
                return sf.identity(y)

        y = sf.cond(x > 0, branch, lambda: x)
        return [y, *sf.gradients(y, [x, w])]

    assert _session_values(build) == [[6.0, 2.0, 3.0], [9.0, 3.0, 3.0]]


def test_graph_gradients_of_a_cond_around_a_call_that_writes() -> None:
    def build(w: sf.Variable, x: Any) -> list[Any]:
        f = _read_then_add(w)
        y = sf.cond(x > 0, lambda: f(x), lambda: x)
        return [y, *sf.gradients(y, [x, w])]

    assert _session_values(build) == [[6.0, 2.0, 3.0], [9.0, 3.0, 3.0]]


def test_graph_gradients_of_a_while_loop_calling_a_function_that_writes() -> None:
    # Two iterations read w = 2, then 3: y = x*2*3 = 18; dy/dx = 2*3 = 6; each read adds
    # y over the value it read to dy/dw: 18/2 + 18/3 = 15.
    def build(w: sf.Variable, x: Any) -> list[Any]:
        f = _read_then_add(w)
        _, y = sf.while_loop(lambda i, a: i < 2, lambda i, a: (i + 1, f(a)), [sf.constant(0), x])
        return [y, *sf.gradients(y, [x, w])]

    # The second run reads 4 then 5: y = 60, dy/dx = 20, dy/dw = 3*5 + 3*4 = 27.
    assert _session_values(build) == [[18.0, 6.0, 15.0], [60.0, 20.0, 27.0]]


def test_a_tape_inside_a_traced_function_over_a_cond_that_writes() -> None:
    v = sf.Variable(2.0)
    f = _read_then_add(v)

    @sf.function
    def grad(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = sf.cond(x > 0, lambda: f(x), lambda: x)
        return tape.gradient(y, [x, v])

    x = sf.constant(3.0)
    assert _floats(*grad(x)) == [2.0, 3.0]
    assert _floats(*grad(x)) == [3.0, 3.0]
    assert float(v.numpy()) == 4.0


# -- saved models ----------------------------------------------------------------------------


class Stepper(sf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.v = sf.Variable(2.0)

    @sf.function(input_signature=[sf.TensorSpec((), sf.float32)])
    def step(self, x: Any) -> Any:
        y = x * self.v
        self.v.assign_add(1.0)
        return y


def test_a_loaded_function_that_writes_under_a_tape(tmp_path: Path) -> None:
    sf.saved_model.save(Stepper(), str(tmp_path / "m"))
    loaded = sf.saved_model.load(str(tmp_path / "m"))
    x = sf.constant(3.0)
    for read in (2.0, 3.0, 4.0):
        with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = loaded.step(x)
        assert _floats(y, tape.gradient(y, x), tape.gradient(y, loaded.v)) == [
            3.0 * read,
            read,
            3.0,
        ]
    assert float(loaded.v.numpy()) == 5.0


@pytest.mark.parametrize("around", ["call", "cond"])
def test_a_run_time_gradient_inside_a_saved_function_is_refused_at_save(
    tmp_path: Path, around: str
) -> None:
    class WithGradient(Stepper):
        @sf.function(input_signature=[sf.TensorSpec((), sf.float32)])
        def grad(self, x: Any) -> Any:
            with sf.GradientTape() as tape:
                tape.watch(x)
                if around == "call":
                    y = self.step(x)
                else:
                    y = sf.cond(x > 0, lambda: self.step(x), lambda: x)
            return tape.gradient(y, x)

    model = WithGradient()
    assert _floats(model.grad(sf.constant(3.0))) == [2.0]
    with pytest.raises(
        ValueError,
        match=r"^Cannot save op '(call|cond)_grad' \(StatefulRunTimeVJP\) of function 'grad': "
        r"it computes a gradient when the function runs",
    ):
        sf.saved_model.save(model, str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


# -- concurrency and failures ----------------------------------------------------------------


@pytest.mark.parametrize("around", ["call", "cond"])
def test_session_runs_in_threads_each_get_their_own_gradient(around: str) -> None:
    # Threads run y = x*x*w (w read, then incremented) and its gradient at once: each
    # run's dy/dx is 2*x*w with the w that run read (y / x^2).
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(0.0)
        xp = sf.placeholder(sf.float32, ())

        @sf.function
        def f(x: Any) -> Any:
            y = x * x * w
            w.assign_add(1.0)
            return y

        y = f(xp) if around == "call" else sf.cond(xp > 0, lambda: f(xp), lambda: xp)
        (dx,) = sf.gradients(y, [xp])
        init = sf.global_variables_initializer()
    sess = sf.Session(g)
    sess.run(init)

    def work(i: int) -> list[bool]:
        x = float(i % 3 + 1)
        out = []
        for _ in range(20):
            got_y, got_dx = sess.run([y, dx], {xp: x})
            out.append(float(got_dx) == 2.0 * x * (float(got_y) / (x * x)))
        return out

    with ThreadPoolExecutor(4) as pool:
        assert all(all(ok) for ok in pool.map(work, range(4)))
    assert float(sess.run(w)) == 80.0


@pytest.mark.anyio
async def test_tasks_share_one_traced_function_and_variable() -> None:
    # Tasks call the same traced function, which reads v twice and adds 1, under their
    # own tapes; each gradient uses the values its own call read (returned as a, b).
    v = sf.Variable(0.0)

    @sf.function
    def f(x: Any) -> Any:
        a = v.read_value()
        b = v * 1.0
        v.assign_add(1.0)
        return x * a * b, a, b

    async def task(i: int) -> bool:
        x = sf.constant(float(i))
        with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            await anyio.sleep(0)
            y, a, b = f(x)
            await anyio.sleep(0)
        await anyio.sleep(0)
        gx = float(tape.gradient(y, x).numpy())
        await anyio.sleep(0)
        gv = float(tape.gradient(y, v).numpy())
        ra, rb = float(a.numpy()), float(b.numpy())
        return gx == ra * rb and gv == i * (ra + rb)

    results: list[bool] = []

    async def run(i: int) -> None:
        results.append(await task(i))

    async with anyio.create_task_group() as tg:
        for i in range(1, 31):
            tg.start_soon(run, i)
    assert results == [True] * 30
    assert READ_LOG.get() is None


def test_a_failing_check_under_a_tape_leaves_no_log_behind() -> None:
    v = sf.Variable(1.0)

    @sf.function
    def f(x: Any) -> Any:
        y = x * v
        v.assign_add(1.0)
        sf.debugging.assert_less(y, 10.0)
        return y

    x = sf.constant(20.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(sf.errors.InvalidArgumentError):
            f(x)
    assert READ_LOG.get() is None
    assert float(v.numpy()) == 2.0  # the write before the failing check ran
    x = sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = f(x)
    assert _floats(y, tape.gradient(y, x), tape.gradient(y, v)) == [4.0, 2.0, 2.0]


def test_a_write_added_after_a_first_gradient_is_seen_by_the_next() -> None:
    # The first gradient is built while nothing writes w; then a write after the call is
    # added, and a gradient built after it must replay the call's read (w = 2), not 10.
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(2.0)

        @sf.function
        def f(x: Any) -> Any:
            return x * w

        xp = sf.placeholder(sf.float32, ())
        y = f(xp)
        (dx_before,) = sf.gradients(y, [xp])
        with sf.control_dependencies([y, dx_before]):
            write = w.assign(10.0)
        with sf.control_dependencies([write]):
            (dx_after,) = sf.gradients(y, [xp])
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        assert _floats(*sess.run([y, dx_before, dx_after], {xp: 3.0})) == [6.0, 2.0, 2.0]
        assert _floats(sess.run(w)) == [10.0]


def test_a_tape_in_a_loop_body_over_a_cond_that_writes() -> None:
    # Each iteration's gradient uses the w its own cond read: 2x * (2 + 3 + 4).
    w = sf.Variable(2.0)
    f = _read_then_add(w)

    @sf.function
    def g(x: Any) -> Any:
        def body(i: Any, acc: Any) -> Any:
            xx = sf.identity(x)
            with sf.GradientTape() as tape:
                tape.watch(xx)
                y = sf.cond(xx > 0, lambda: f(xx) * xx, lambda: xx)
            return i + 1, acc + tape.gradient(y, xx)

        return sf.while_loop(lambda i, a: i < 3, body, [0, sf.constant(0.0)])[1]

    assert _floats(g(sf.constant(3.0)), w.numpy()) == [54.0, 5.0]


@pytest.mark.anyio
async def test_a_call_cancelled_while_tracing_under_a_tape_leaves_no_log() -> None:
    v = sf.Variable(2.0)

    @sf.function
    async def f(x: Any) -> Any:
        await anyio.sleep(0.05)  # the trace awaits: the first call is cancelled here
        y = x * v
        v.assign_add(1.0)
        return y

    x = sf.constant(3.0)
    with anyio.move_on_after(0.01), sf.GradientTape() as tape:
        tape.watch(x)
        await f(x)
    assert READ_LOG.get() is None
    assert float(v.numpy()) == 2.0

    async def one() -> None:
        with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = await f(x)
        read = float(y.numpy()) / 3.0
        results.append((read, *_floats(tape.gradient(y, x), tape.gradient(y, v))))

    results: list[tuple[float | None, ...]] = []
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert sorted(results) == [(2.0, 2.0, 3.0), (3.0, 3.0, 3.0), (4.0, 4.0, 3.0)]
