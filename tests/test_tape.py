"""GradientTape and sf.gradients: recording, pausing, tasks, functions (SPEC section 9)."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf


def _f(x: Any) -> float:
    return float(np.asarray(x))


# -- basics ----------------------------------------------------------------------------


def test_watch_and_gradient() -> None:
    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x + x
    assert _f(tape.gradient(y, x)) == 7.0


def test_unwatched_and_unconnected_sources_give_none() -> None:
    x, z = sf.constant(1.0), sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * 2.0
    assert tape.gradient(y, z) is None
    assert tape.gradient(y, [x, z])[1] is None
    i = sf.constant(3)
    with sf.GradientTape() as tape:
        tape.watch(i)
        j = i * 2
    assert tape.gradient(j, i) is None  # integers are not differentiable


def test_non_persistent_tape_is_single_use() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    assert _f(tape.gradient(y, x)) == 4.0
    with pytest.raises(RuntimeError, match="non-persistent GradientTape can only compute"):
        tape.gradient(y, x)


def test_persistent_tape_and_structured_sources() -> None:
    a, b = sf.constant(2.0), sf.constant(5.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch([a, {"b": b}])
        y = a * b
        z = a + b
    grads = tape.gradient(y, {"a": a, "pair": (a, b)})
    assert _f(grads["a"]) == 5.0
    assert isinstance(grads["pair"], tuple)
    assert [_f(g) for g in grads["pair"]] == [5.0, 2.0]
    assert [_f(g) for g in tape.gradient([y, z], [a, b])] == [6.0, 3.0]


def test_output_gradients() -> None:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * 3.0
    g = tape.gradient(y, x, output_gradients=sf.constant([10.0, 100.0]))
    np.testing.assert_allclose(g.numpy(), [30.0, 300.0])


def test_broadcasting_is_reduced() -> None:
    x = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = sf.constant([10.0, 20.0])
    s = sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch([x, b, s])
        y = x * s + b
    gx, gb, gs = tape.gradient(y, [x, b, s])
    np.testing.assert_allclose(gx.numpy(), [[2.0, 2.0], [2.0, 2.0]])
    np.testing.assert_allclose(gb.numpy(), [2.0, 2.0])
    assert _f(gs) == 10.0


def test_variables_are_watched_automatically_when_trainable() -> None:
    v = sf.Variable(3.0)
    frozen = sf.Variable(4.0, trainable=False)
    with sf.GradientTape() as tape:
        y = v * frozen
    assert tape.watched_variables() == (v,)
    gv, gf = tape.gradient(y, [v, frozen])
    assert _f(gv) == 4.0
    assert gf is None


def test_watch_accessed_variables_false() -> None:
    v, w = sf.Variable(3.0), sf.Variable(2.0)
    with sf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(w)
        y = v * w
    assert tape.watched_variables() == (w,)
    gv, gw = tape.gradient(y, [v, w])
    assert gv is None
    assert _f(gw) == 3.0


def test_second_order_with_nested_tapes() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = x * x * x
        dy = inner.gradient(y, x)
    assert _f(dy) == 12.0
    assert _f(outer.gradient(dy, x)) == 12.0


def test_watch_rejects_non_tensors() -> None:
    with sf.GradientTape() as tape, pytest.raises(TypeError, match="takes tensors or variables"):
        tape.watch("x")


def test_tape_cannot_be_entered_twice_at_once() -> None:
    tape = sf.GradientTape()
    with tape, pytest.raises(RuntimeError, match="already recording"):
        tape.__enter__()


# -- pausing ---------------------------------------------------------------------------


def test_value_computed_while_paused_has_no_gradient() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        before = x * x
        with tape.stop_recording():
            paused = x * 3.0
        with sf.stop_recording():
            globally_paused = x * 4.0
        with sf.init_scope():
            lifted = x * 5.0
        after = before + x
    assert tape.gradient(paused, x) is None
    assert tape.gradient(globally_paused, x) is None
    assert tape.gradient(lifted, x) is None
    assert _f(tape.gradient(before, x)) == 4.0  # recorded before the pause
    assert _f(tape.gradient(after, x)) == 5.0


def test_stop_recording_pauses_only_that_tape() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as a, sf.GradientTape() as b:
        a.watch(x)
        b.watch(x)
        with a.stop_recording():
            y = x * x
    assert a.gradient(y, x) is None
    assert _f(b.gradient(y, x)) == 4.0


def test_nested_pauses_resume_at_the_outermost_exit() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        with sf.stop_recording():
            with sf.stop_recording():
                pass
            still_paused = x * 2.0
        resumed = x * 2.0
    assert tape.gradient(still_paused, x) is None
    assert _f(tape.gradient(resumed, x)) == 2.0


def test_tape_stop_recording_when_not_recording_is_an_error() -> None:
    tape = sf.GradientTape()
    with pytest.raises(RuntimeError, match="not recording"):
        tape.stop_recording().__enter__()
    with tape, sf.stop_recording(), pytest.raises(RuntimeError, match="not recording"):
        tape.stop_recording().__enter__()


# -- tasks and threads -----------------------------------------------------------------


@pytest.mark.anyio
async def test_each_task_sees_only_its_own_tape() -> None:
    results: dict[str, Any] = {}

    async def work(name: str, factor: float) -> None:
        x = sf.constant(2.0)
        async with sf.GradientTape() as tape:
            tape.watch(x)
            y = x * factor
            await anyio.sleep(0)
            y = y * x
            await anyio.sleep(0)
        recorded = len(tape._records)
        results[name] = (_f(tape.gradient(y, x)), recorded)

    async with anyio.create_task_group() as tg:
        tg.start_soon(work, "a", 3.0)
        tg.start_soon(work, "b", 5.0)
    assert results == {"a": (12.0, 2), "b": (20.0, 2)}


@pytest.mark.anyio
async def test_child_task_records_onto_the_parents_tape() -> None:
    x = sf.constant(3.0)
    out: list[Any] = []

    async def child() -> None:
        await anyio.sleep(0)
        out.append(x * x)

    async with sf.GradientTape() as tape:
        tape.watch(x)
        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
    assert _f(tape.gradient(out[0], x)) == 6.0


@pytest.mark.anyio
async def test_unrelated_task_is_never_recorded() -> None:
    x = sf.constant(3.0)
    entered = anyio.Event()
    done = anyio.Event()
    outside: list[Any] = []

    async def unrelated() -> None:
        await entered.wait()
        outside.append(x * x)
        done.set()

    async def taped() -> None:
        async with sf.GradientTape() as tape:
            tape.watch(x)
            entered.set()
            await done.wait()
        outside.append(tape)

    async with anyio.create_task_group() as tg:
        tg.start_soon(unrelated)
        tg.start_soon(taped)
    product, tape = outside
    assert tape.gradient(product, x) is None


def test_thread_spawned_with_the_context_records_thread_safely() -> None:
    x = sf.constant(1.0)
    results: list[Any] = []
    with sf.GradientTape() as tape:
        tape.watch(x)
        snap = sf.copy_scopes()
        threads = [
            threading.Thread(target=lambda: results.append(sf.run_in_scopes(snap, lambda: x * 2.0)))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    grads = tape.gradient(results, x)
    assert _f(grads) == 8.0


# -- symbolic gradients ----------------------------------------------------------------


def test_tape_inside_a_traced_function_builds_gradient_ops() -> None:
    @sf.function
    def grad_of_exp(a: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(a)
            b = sf.exp(a) * 2.0
        g = tape.gradient(b, a)
        assert isinstance(g, sf.Tensor)
        return g

    np.testing.assert_allclose(_f(grad_of_exp(sf.constant(1.0))), 2 * np.e, rtol=1e-6)


def test_gradients_in_a_plain_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(2,))
        w = sf.Variable([3.0, 4.0])
        y = x * w + x
        dx, dw, unrelated = sf.gradients(y, [x, w, sf.constant(1.0)])
        init = sf.global_variables_initializer()
    assert unrelated is None
    with sf.Session(g) as sess:
        sess.run(init)
        gx, gw = sess.run([dx, dw], {x: [1.0, 2.0]})
    np.testing.assert_allclose(gx, [4.0, 5.0])
    np.testing.assert_allclose(gw, [1.0, 2.0])
    with pytest.raises(RuntimeError, match="needs graph mode"):
        sf.gradients(sf.constant(1.0), [sf.constant(1.0)])


def test_gradients_flow_through_function_calls_captures_and_variable_reads() -> None:
    v = sf.Variable([1.0, 2.0])
    c = sf.constant(10.0)

    @sf.function
    def inner(a: Any) -> Any:
        return a * v + c

    @sf.function
    def outer(a: Any) -> Any:
        return inner(a) * a

    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch([x, c])
        y = outer(x)
    gx, gv, gc = tape.gradient(y, [x, v, c])
    # y = (x*v + c) * x  ->  dy/dx = 2*x*v + c, dy/dv = x*x, dy/dc = x (per element)
    np.testing.assert_allclose(gx.numpy(), np.sum(2 * 3.0 * np.array([1.0, 2.0]) + 10.0))
    np.testing.assert_allclose(gv.numpy(), [9.0, 9.0])
    np.testing.assert_allclose(gc.numpy(), 6.0)
    # Differentiating the call does not repeat its side effects.
    assert v.numpy().tolist() == [1.0, 2.0]


def test_gradient_of_a_call_in_a_graph() -> None:
    @sf.function
    def square(a: Any) -> Any:
        return a * a

    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=())
        (dx,) = sf.gradients(square(x), [x])
    assert sf.Session(g).run(dx, {x: 4.0}) == 8.0


def test_no_gradient_registered_is_reported() -> None:
    from scopeflow._ops import apply, register_op

    opdef = register_op(
        "TestNoGrad", infer=lambda specs, attrs: (specs[0],), kernel=lambda attrs, x: x
    )
    x = sf.constant(1.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = apply(opdef, (x,), {})
    with pytest.raises(LookupError, match="No gradient is defined for op type 'TestNoGrad'"):
        tape.gradient(y, x)


def test_plain_value_seeds_become_tensors_of_the_target_dtype() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float64, shape=(2,))
        (dx,) = sf.gradients(sf.identity(x), [x], grad_ys=np.array([1.0, 2.0], np.float32))
    assert isinstance(dx, sf.Tensor)
    assert dx.dtype == np.float64
    np.testing.assert_allclose(sf.Session(g).run(dx, {x: [0.0, 0.0]}), [1.0, 2.0])
    e = sf.constant([1.0, 1.0], sf.float64)
    with sf.GradientTape() as tape:
        tape.watch(e)
        y = sf.identity(e)
    got = tape.gradient(y, e, output_gradients=[3.0, 4.0])
    assert isinstance(got, sf.EagerTensor)
    assert got.dtype == np.float64


def test_gradient_of_a_variable_with_respect_to_itself_is_ones() -> None:
    v = sf.Variable([1.0, 2.0])
    with sf.GradientTape() as tape:
        pass
    np.testing.assert_array_equal(tape.gradient(v, v).numpy(), [1.0, 1.0])
