"""Autodiff robustness (SPEC section 9): repeated inputs, higher orders, finished tapes.

- One tensor given for several inputs of an op (``x * x``, a call ``f(x, x)``, a capture
  that is also an argument, a loop variable that the body also captures) gets the sum of
  the per-input gradients, once, in every mode.
- Gradients can be differentiated again: ``gradient()`` inside a persistent tape's block
  is recorded by that tape, and ``while_loop`` gradients in graphs and functions have
  gradients of their own (checked against finite differences). A connected op without a
  gradient raises ``LookupError`` naming it, at any order.
- After a tape's block has exited, the tape records nothing more, also from tasks and
  threads spawned inside the block that are still running.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._ops import apply, register_op
from scopeflow._ops._grad_util import register_gradient
from test_gradients import MODES, Case, check_gradients, output_weights, rand
from test_gradients_training import first_order


def _f(x: Any) -> float:
    return float(np.asarray(x))


def _product(a: Any, b: Any) -> Any:
    """``a * b`` through a freshly traced function (a call op in graphs and functions)."""
    return sf.function(lambda p, q: p * q)(a, b)


def _matmul_t(a: Any, b: Any) -> Any:
    return sf.function(lambda p, q: sf.matmul(p, q, transpose_a=True))(a, b)


def _capture_and_argument(a: Any) -> Any:
    """A function that captures ``a`` and is also called with ``a``."""
    return sf.function(lambda p: p * sf.tanh(a))(a)


def _cond_of_call(a: Any) -> Any:
    return sf.cond(sf.reduce_sum(a) > -100.0, lambda: _product(a, a) + a, lambda: sf.tanh(a) * a)


def _loop_var_and_capture(a: Any) -> Any:
    """``a`` is the initial loop value and a capture of the body: the result is a ** 4."""
    return sf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * a), [0, a])[1]


def _loop_cubed_times_tanh(a: Any) -> Any:
    """A loop whose second derivative has no shortcut: y <- tanh(y) * a, three times."""
    return sf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, sf.tanh(y) * a + y), [0, a])[1]


DUPLICATES = [
    ("mul-same-tensor", lambda a: a * a, rand(3)),
    ("add-same-tensor", lambda a: sf.add(a, a) * a, rand(3)),
    ("call-f(x,x)", lambda a: _product(a, a), rand(3)),
    ("call-matmul-t-t", lambda a: _matmul_t(a, a), rand(3, 3)),
    ("capture-is-argument", _capture_and_argument, rand(2, 3)),
    ("cond-of-call", _cond_of_call, rand(3)),
    ("loop-var-is-capture", _loop_var_and_capture, rand(3)),
    ("call-of-call", lambda a: _product(_product(a, a), a), rand(2)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fn", "x"), [pytest.param(f, x, id=n) for n, f, x in DUPLICATES])
def test_a_tensor_given_for_several_inputs_gets_each_gradient_once(
    mode: str, fn: Callable[[Any], Any], x: np.ndarray[Any, Any]
) -> None:
    check_gradients(mode, Case(fn, (x,)))


def test_the_issue_example_gives_6_not_12() -> None:
    f = sf.function(lambda a, b: a * b)
    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x, x)
    assert _f(tape.gradient(y, x)) == 6.0
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=())
        (dp,) = sf.gradients(f(p, p), [p])
    assert _f(sf.Session(g).run(dp, {p: 3.0})) == 6.0


def test_a_variable_passed_to_a_function_that_also_reads_it() -> None:
    v = sf.Variable(3.0)
    f = sf.function(lambda a: a * v)
    with sf.GradientTape() as tape:
        y = f(v)
    assert _f(tape.gradient(y, v)) == 6.0


def test_repeated_sources_each_get_the_whole_gradient() -> None:
    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = 2.0 * x
    assert [_f(g) for g in tape.gradient(y, [x, x])] == [2.0, 2.0]


# -- higher orders ---------------------------------------------------------------------


def test_gradient_inside_a_persistent_tape_is_recorded_by_it() -> None:
    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * x
        dy = tape.gradient(y, x)
        d2y = tape.gradient(dy, x)
    d3y = tape.gradient(d2y, x)
    assert (_f(dy), _f(d2y), _f(d3y)) == (27.0, 18.0, 6.0)


def test_gradient_inside_a_persistent_tape_in_a_function() -> None:
    @sf.function
    def derivatives(x: Any) -> Any:
        with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x * x
            dy = tape.gradient(y, x)
            d2y = tape.gradient(dy, x)
        return dy, d2y, tape.gradient(d2y, x)

    assert [_f(v) for v in derivatives(sf.constant(2.0))] == [12.0, 12.0, 6.0]


def test_inner_non_persistent_gradient_in_its_block_is_recorded_by_the_outer_tape() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = x * x * x
            dy = inner.gradient(y, x)
            # Used up: the inner tape records nothing more, even in its own block.
            assert inner._records == []
            z = dy * x
    assert _f(outer.gradient(z, x)) == 36.0  # z = 3 x^3
    assert inner._records == []


SECOND_ORDER_LOOPS = [
    ("loop-var-is-capture", _loop_var_and_capture, rand(3)),
    ("loop-tanh", _loop_cubed_times_tanh, rand(2, 2)),
    ("call-f(x,x)", lambda a: _product(sf.tanh(a), a), rand(3)),
    ("cond-of-call", lambda a: _cond_of_call(sf.tanh(a)), rand(3)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fn", "x"), [pytest.param(f, x, id=n) for n, f, x in SECOND_ORDER_LOOPS])
def test_second_derivatives_of_loops_and_calls_match_finite_differences(
    mode: str, fn: Callable[[Any], Any], x: np.ndarray[Any, Any]
) -> None:
    w = output_weights(Case(fn, (x,)), seed=5)
    check_gradients(mode, Case(first_order(fn, w), (x,), rtol=1e-5, atol=1e-6))


def _numeric_second(fn: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    return (fn(x + h) - 2.0 * fn(x) + fn(x - h)) / (h * h)


def _scalar_loop(x: Any) -> Any:
    return _loop_cubed_times_tanh(x)


@pytest.mark.parametrize("mode", ["graph", "function", "function-persistent", "eager-call"])
def test_while_loop_third_derivative_is_not_none(mode: str) -> None:
    x0 = 0.7
    d1_value = lambda x: _f(first_order(_scalar_loop, np.ones(()))(sf.constant(x, sf.float64)))  # noqa: E731
    expected = [_numeric_second(lambda x: _f(_scalar_loop(sf.constant(x, sf.float64))), x0)]
    expected.append(_numeric_second(d1_value, x0))
    if mode == "graph":
        g = sf.Graph()
        with g.as_default():
            xp = sf.placeholder(sf.float64, shape=())
            (d1,) = sf.gradients(_scalar_loop(xp), [xp])
            (d2,) = sf.gradients(d1, [xp])
            (d3,) = sf.gradients(d2, [xp])
        got = sf.Session(g).run([d2, d3], {xp: x0})
    elif mode == "function-persistent":

        @sf.function
        def derivs(x: Any) -> Any:
            with sf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                d1 = tape.gradient(_scalar_loop(x), x)
                d2 = tape.gradient(d1, x)
            return d2, tape.gradient(d2, x)

        got = derivs(sf.constant(x0, sf.float64))
    else:
        # "function": nested tapes in a trace; "eager-call": nested eager tapes over a
        # call of a traced loop (the While op runs, and is differentiated, eagerly).
        body = _scalar_loop if mode == "function" else sf.function(_scalar_loop)

        def derivs_nested(x: Any) -> Any:
            with sf.GradientTape() as t3:
                t3.watch(x)
                with sf.GradientTape() as t2:
                    t2.watch(x)
                    with sf.GradientTape() as t1:
                        t1.watch(x)
                        y = body(x)
                    d1 = t1.gradient(y, x)
                d2 = t2.gradient(d1, x)
            return d2, t3.gradient(d2, x)

        run = sf.function(derivs_nested) if mode == "function" else derivs_nested
        got = run(sf.constant(x0, sf.float64))
    np.testing.assert_allclose([_f(v) for v in got], expected, rtol=1e-4)


def test_second_derivative_with_respect_to_a_variable_read_in_a_loop() -> None:
    w = sf.Variable(1.5, dtype=sf.float64)

    @sf.function
    def loss() -> Any:
        one = sf.constant(1.0, sf.float64)
        return sf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * w), [0, one])[1]

    with sf.GradientTape() as outer:
        with sf.GradientTape() as inner:
            y = loss()
        dw = inner.gradient(y, w)
    d2w = outer.gradient(dw, w)
    # y = w^3: y' = 3 w^2, y'' = 6 w
    assert (_f(dw), _f(d2w)) == pytest.approx((3 * 1.5**2, 6 * 1.5))


def test_a_loop_gradient_reads_variables_after_earlier_writes_in_the_function() -> None:
    w = sf.Variable(1.0, dtype=sf.float64)

    @sf.function
    def grad(x: Any) -> Any:
        w.assign(2.0)
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = sf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * w), [0, x])[1]
        return tape.gradient(y, x)

    assert _f(grad(sf.constant(1.0, sf.float64))) == 8.0  # y = x w^3, w = 2


def test_gradients_of_a_call_are_right_under_stop_recording_and_init_scope() -> None:
    x = sf.constant(2.0)
    f = sf.function(lambda a: a * a * a)
    for pause in (sf.stop_recording, sf.init_scope):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        with pause():
            assert _f(tape.gradient(y, x)) == 12.0


# -- no gradient on a connected path: LookupError, at any order ------------------------

_NO_GRAD = register_op(
    "TestRobustNoGrad", infer=lambda specs, attrs: (specs[0],), kernel=lambda attrs, x: x * 1.0
)
_FIRST_ONLY = register_op(
    "TestRobustFirstOnly", infer=lambda specs, attrs: (specs[0],), kernel=lambda attrs, x: x * x
)


@register_gradient("TestRobustFirstOnly")
def _first_only_grad(op: Any, dy: Any) -> Any:
    # d(x*x) = 2 x dy, written with an op that has no gradient of its own.
    return (dy * apply(_NO_GRAD, (op.inputs[0],), {}) * 2.0,)


def _no_grad_in_call(a: Any) -> Any:
    return sf.function(lambda p: apply(_NO_GRAD, (p,), {}) * p)(a)


def _no_grad_in_loop(a: Any) -> Any:
    return sf.while_loop(
        lambda i, y: i < 2, lambda i, y: (i + 1, apply(_NO_GRAD, (y,), {}) * a), [0, a]
    )[1]


def _first_only_in_loop(a: Any) -> Any:
    return sf.while_loop(
        lambda i, y: i < 2, lambda i, y: (i + 1, apply(_FIRST_ONLY, (y,), {}) + a), [0, a]
    )[1]


@pytest.mark.parametrize("mode", ["eager", "graph", "function"])
@pytest.mark.parametrize(
    ("fn", "order"),
    [
        pytest.param(lambda a: apply(_NO_GRAD, (a,), {}) * a, 1, id="direct"),
        pytest.param(_no_grad_in_call, 1, id="in-a-call"),
        pytest.param(_no_grad_in_loop, 1, id="in-a-loop"),
        pytest.param(lambda a: apply(_FIRST_ONLY, (a,), {}), 2, id="second-order"),
        pytest.param(_first_only_in_loop, 2, id="second-order-in-a-loop"),
    ],
)
def test_a_connected_op_without_gradient_raises_lookup_error(
    mode: str, fn: Callable[[Any], Any], order: int
) -> None:
    def run() -> None:
        x0 = sf.constant(0.5, sf.float64)
        if mode == "eager":
            _nested_eager(fn, order, x0)
        elif mode == "function":
            sf.function(lambda x: _nested_eager(fn, order, x))(x0)
        else:
            g = sf.Graph()
            with g.as_default():
                xp = sf.placeholder(sf.float64, shape=())
                target = fn(xp)
                for _ in range(order):
                    (target,) = sf.gradients(target, [xp])
            sf.Session(g).run(target, {xp: 0.5})

    with pytest.raises(
        LookupError, match=r"^No gradient is defined for op type 'TestRobustNoGrad'"
    ):
        run()


def _nested_eager(fn: Callable[[Any], Any], order: int, x: Any) -> Any:
    """The ``order``-th derivative of ``fn`` at ``x`` with nested tapes."""
    tapes = [sf.GradientTape() for _ in range(order)]
    for t in tapes:
        t.__enter__()
        t.watch(x)
    try:
        target = fn(x)
        for t in reversed(tapes):
            t.__exit__(None, None, None)
            target = t.gradient(target, x)
    finally:
        for t in reversed(tapes):  # innermost first, if an error left some open
            if t._frame is not None:
                t.__exit__(None, None, None)
    return target


def test_gradient_free_paths_still_give_none() -> None:
    x = sf.constant([0.5, -1.0])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        through_bool = sf.cast(x > 0.0, sf.float32) * 3.0
        unrelated = sf.constant(2.0) * 3.0
    assert tape.gradient(through_bool, x) is None
    assert tape.gradient(unrelated, x) is None


# -- a finished tape records nothing -----------------------------------------------------


@pytest.mark.anyio
async def test_a_task_spawned_in_the_block_stops_recording_when_the_block_exits() -> None:
    x = sf.constant(3.0)
    before: list[Any] = []
    after: list[Any] = []
    exited = anyio.Event()
    recorded_before = anyio.Event()

    async def child() -> None:
        before.append(x * x)
        recorded_before.set()
        await exited.wait()
        await anyio.sleep(0)
        for _ in range(50):
            after.append(x * x)
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        async with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            tg.start_soon(child)
            await recorded_before.wait()
        records = len(tape._records)
        exited.set()
    assert records == 1
    assert len(tape._records) == 1, "ops after the block exited were recorded"
    assert _f(tape.gradient(before[0], x)) == 6.0
    assert tape.gradient(after[-1], x) is None


@pytest.mark.anyio
async def test_a_consumed_tape_records_nothing_from_its_tasks() -> None:
    v = sf.Variable(2.0)
    go = anyio.Event()
    done = anyio.Event()

    async def child() -> None:
        await go.wait()
        for _ in range(20):
            _ = v * 3.0  # a trainable variable read: watched automatically
            await anyio.sleep(0)
        done.set()

    async with anyio.create_task_group() as tg:
        async with sf.GradientTape() as tape:
            y = v * v
            tg.start_soon(child)
            await anyio.sleep(0)
        assert _f(tape.gradient(y, v)) == 4.0
        go.set()
        await done.wait()
    assert tape._records == []


@pytest.mark.anyio
async def test_re_entering_a_tape_does_not_revive_a_task_of_its_earlier_block() -> None:
    x = sf.constant(3.0)
    step = anyio.Event()
    stepped = anyio.Event()
    out: list[Any] = []

    async def child() -> None:
        await step.wait()
        out.append(x * 5.0)
        stepped.set()

    tape = sf.GradientTape(persistent=True)
    async with anyio.create_task_group() as tg:
        async with tape:
            tape.watch(x)
            tg.start_soon(child)
            await anyio.sleep(0)
        async with tape:
            mine = x * 2.0
            step.set()
            await stepped.wait()
    assert _f(tape.gradient(mine, x)) == 2.0
    assert tape.gradient(out[0], x) is None


def test_a_thread_started_in_the_block_stops_recording_when_the_block_exits() -> None:
    x = sf.constant(3.0)
    inside = threading.Barrier(2)
    exited = threading.Event()
    results: dict[str, Any] = {}

    def work() -> None:
        results["before"] = x * x
        inside.wait()
        exited.wait()
        results["after"] = [x * x for _ in range(50)]

    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(work,))
        thread.start()
        inside.wait()
    exited.set()
    thread.join()
    assert len(tape._records) == 1
    assert _f(tape.gradient(results["before"], x)) == 6.0
    assert tape.gradient(results["after"][-1], x) is None


def test_a_misnested_exit_also_closes_the_tape() -> None:
    x = sf.constant(3.0)
    tape = sf.GradientTape(persistent=True)
    tape.__enter__()
    tape.watch(x)
    inner = sf.name_scope("inner")
    inner.__enter__()
    ctx = contextvars.copy_context()  # a context spawned inside the block
    with pytest.raises(sf.ScopeNestingError):
        tape.__exit__(None, None, None)
    late = ctx.run(lambda: x * x)
    assert tape._records == []
    assert tape.gradient(late, x) is None


# -- bad input and retries ---------------------------------------------------------------


def test_watch_of_a_bad_value_watches_nothing() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        with pytest.raises(TypeError, match=r"^GradientTape\.watch\(\) takes tensors or variables"):
            tape.watch([x, "not a tensor"])
        y = x * x
    assert tape.gradient(y, x) is None


def test_a_failed_gradient_call_does_not_use_up_a_non_persistent_tape() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(
        ValueError, match=r"^output gradients must have the structure of the targets"
    ):
        tape.gradient([y], x, output_gradients=[1.0, 2.0])
    assert _f(tape.gradient(y, x)) == 4.0
    with pytest.raises(RuntimeError, match=r"^A non-persistent GradientTape can only"):
        tape.gradient(y, x)


def test_bad_targets_and_sources_are_refused_before_the_tape_is_used() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(TypeError, match=r"^gradient\(\) sources must be tensors or variables"):
        tape.gradient(y, [x, "x"])
    with pytest.raises(TypeError, match=r"^gradient\(\) target must be tensors or variables"):
        tape.gradient([y, 3.0], x)
    assert _f(tape.gradient(y, x)) == 4.0  # still usable once
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=())
        q = p * p
        before = len(g.get_operations())
        with pytest.raises(TypeError, match=r"^sf\.gradients\(\): xs must be graph tensors"):
            sf.gradients(q, [p, "p"])
        assert len(g.get_operations()) == before


def test_two_threads_using_one_non_persistent_tape_one_wins() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x * x
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def use() -> None:
        start.wait()
        try:
            outcomes.append(_f(tape.gradient(y, x)))
        except RuntimeError as err:
            outcomes.append(type(err))

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == sorted([12.0, RuntimeError], key=str)
