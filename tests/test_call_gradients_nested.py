"""The backward function of a trace that calls another traced function (a served model's
``predict`` calling its ``serving_default``) computes the inner forward once: a call whose
only side effect is reading variables is replayed inline, not emitted as a call op next
to the inline replay its gradient makes. Calls with real side effects still run as often
as before, and reads nothing uses are not run."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf

RNG = np.random.default_rng(11)
W1 = RNG.standard_normal((6, 8)).astype(np.float32)
B1 = RNG.standard_normal(8).astype(np.float32)
W2 = RNG.standard_normal((8, 3)).astype(np.float32)
B2 = RNG.standard_normal(3).astype(np.float32)
X = RNG.standard_normal((4, 6)).astype(np.float32)
CALL_TYPES = {"PartitionedCall", "StatefulPartitionedCall"}


class _Model:
    """An MLP on variables, traced flat and as an outer function calling the inner one."""

    def __init__(self) -> None:
        self.w1, self.b1, self.w2, self.b2 = (sf.Variable(a) for a in (W1, B1, W2, B2))
        self.inner = sf.function(self.forward)
        inner = self.inner

        @sf.function
        def outer(x: Any) -> Any:
            return inner(x)

        @sf.function
        def outer2(x: Any) -> Any:
            return outer(x)  # two levels of nesting

        self.outer = outer
        self.outer2 = outer2

    def forward(self, x: Any) -> Any:
        return sf.matmul(sf.nn.relu(sf.matmul(x, self.w1) + self.b1), self.w2) + self.b2


def _explain(fn: Any, x: Any) -> Any:
    with sf.GradientTape() as tape:
        tape.watch(x)
        top = sf.reduce_max(fn(x))
    return tape.gradient(top, x)


def _numpy_explain(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    h = x @ W1 + B1
    y = np.maximum(h, 0) @ W2 + B2
    dy = np.zeros_like(y)
    dy[np.unravel_index(np.argmax(y), y.shape)] = 1
    return ((dy @ W2.T) * (h > 0)) @ W1.T  # type: ignore[no-any-return]


def _backward_steps(fn: Any, x: Any) -> list[Any]:
    """The ops the plan of ``fn``'s (only) backward function runs."""
    concrete = fn.get_concrete_function(x)
    ((_, built),) = concrete._backward.items()
    backward = built[0]
    backward._run([np.asarray(x.numpy()), np.ones((4, 3), np.float32)][: len(backward.inputs)])
    return [step[0] for step in backward._plan.steps]


@pytest.mark.parametrize("name", ["outer", "outer2"])
def test_nested_backward_runs_the_inner_forward_once(name: str) -> None:
    m = _Model()
    x = sf.constant(X)
    fn = getattr(m, name)
    flat = _explain(m.inner, x)
    nested = _explain(fn, x)
    np.testing.assert_array_equal(nested.numpy(), flat.numpy())
    np.testing.assert_allclose(nested.numpy(), _numpy_explain(X), rtol=1e-5, atol=1e-6)
    steps = _backward_steps(fn, x)
    types = [op.type for op in steps]
    assert not CALL_TYPES & set(types)  # the inner call is replayed inline, not run
    # The inner forward runs once: x @ w1 (for the relu mask), then dy @ w2.T, dh @ w1.T.
    assert types.count("MatMul") == 3
    assert types == [op.type for op in _backward_steps(m.inner, x)]  # as flat
    # b2's value is not needed by the gradient: its read is not run.
    read = {id(op._attrs["var"]) for op in steps if op.type == "ReadVariableOp"}
    assert read == {id(m.w1), id(m.b1), id(m.w2)}


def test_nested_variable_gradients_see_current_values_and_match_flat() -> None:
    m = _Model()
    x = sf.constant(X)
    variables = [m.w1, m.b1, m.w2, m.b2]
    for scale in (1.0, 0.5):
        m.w2.assign(W2 * scale)
        got = []
        for fn in (m.inner, m.outer, m.outer2):
            with sf.GradientTape() as tape:
                tape.watch(x)
                y = sf.reduce_sum(fn(x) ** 2)
            got.append([g.numpy() for g in tape.gradient(y, [x, *variables])])
        for flat, nested, nested2 in zip(*got, strict=True):
            np.testing.assert_array_equal(nested, flat)
            np.testing.assert_array_equal(nested2, flat)


def test_higher_order_gradients_through_a_nested_call() -> None:
    v = sf.Variable(1.5)

    @sf.function
    def inner(x: Any) -> Any:
        return x * x * x * v

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x) + x

    x = sf.constant(2.0)
    with sf.GradientTape() as t3:
        t3.watch(x)
        with sf.GradientTape() as t2:
            t2.watch(x)
            with sf.GradientTape() as t1:
                t1.watch(x)
                y = outer(x)
            d1 = t1.gradient(y, x)
        d2 = t2.gradient(d1, x)
    d3 = t3.gradient(d2, x)
    assert float(d1) == pytest.approx(3 * 4 * 1.5 + 1)
    assert float(d2) == pytest.approx(6 * 2 * 1.5)
    assert float(d3) == pytest.approx(6 * 1.5)


def test_inner_side_effects_run_once_per_forward_not_again_for_the_gradient() -> None:
    # A gradient replays the calls inline with writes turned into reads and prints
    # skipped: the side effects run with the forward only (they ran again, as the
    # backward function's call and its replay, before).
    v = sf.Variable(2.0)
    count = sf.Variable(0.0)

    @sf.function
    def inner_assign(x: Any) -> Any:
        count.assign_add(1.0)
        return x * v

    @sf.function
    def outer_assign(x: Any) -> Any:
        return inner_assign(x) * 3.0

    @sf.function
    def inner_print(x: Any) -> Any:
        sf.print("side effect")
        return x * v

    @sf.function
    def outer_print(x: Any) -> Any:
        return inner_print(x) * 3.0

    x = sf.constant(1.5)
    for round_ in (1, 2):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = outer_assign(x)
        gx, gv = tape.gradient(y, [x, v])
        assert (float(gx), float(gv), float(y)) == (6.0, 4.5, 9.0)
        assert float(count.numpy()) == 1.0 * round_  # the forward only
        out = io.StringIO()
        with redirect_stdout(out):
            with sf.GradientTape() as tape:
                tape.watch(x)
                y = outer_print(x)
            gx, gv = tape.gradient(y, [x, v])
        assert (float(gx), float(gv)) == (6.0, 4.5)
        assert out.getvalue().count("side effect") == 1
    types = {op.type for op in _backward_steps(outer_assign, x)}
    assert not types & {"StatefulPartitionedCall", "PartitionedCall", "AssignAddVariableOp"}


def test_flat_side_effects_do_not_run_again_for_the_gradient() -> None:
    v = sf.Variable(2.0)

    @sf.function
    def f(x: Any) -> Any:
        sf.print("side effect")
        return x * v

    x = sf.constant(1.5)
    out = io.StringIO()
    with redirect_stdout(out):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        assert float(tape.gradient(y, x)) == 2.0
        g = sf.Graph()
        with g.as_default():
            p = sf.placeholder(sf.float32, ())
            sf.gradients(f(p), [p])
            assert [op.type for op in g.get_operations()].count("PrintV2") == 0
    assert out.getvalue().count("side effect") == 1


def test_random_draws_in_a_nested_call_are_reused_by_the_gradient() -> None:
    @sf.function
    def inner(x: Any) -> Any:
        return x * sf.random.uniform((3,))

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x) * 2.0

    x = sf.constant([1.0, 1.0, 1.0])
    for _ in range(3):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = outer(x)
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), y.numpy())


def test_symbolic_gradients_through_a_nested_call_in_a_graph() -> None:
    m = _Model()
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (4, 6))
        (dx,) = sf.gradients(sf.reduce_max(m.outer2(x)), [x])
    with sf.Session(g) as sess:
        got = sess.run(dx, {x: X})
    np.testing.assert_allclose(got, _numpy_explain(X), rtol=1e-5, atol=1e-6)


def test_unused_reads_are_kept_where_the_backward_has_other_side_effects() -> None:
    # An assertion is a side effect a replay does not handle: the call stays a call in
    # the backward function, which then keeps its reads in order.
    v = sf.Variable(2.0)
    unused = sf.Variable(5.0)

    @sf.function
    def inner(x: Any) -> Any:
        sf.debugging.assert_non_negative(x)
        return x * v + unused

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x)

    x = sf.constant(1.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = outer(x)
    assert float(tape.gradient(y, x)) == 2.0
    concrete = outer.get_concrete_function(x)
    ((_, built),) = concrete._backward.items()
    graph = built[0].graph
    assert any(op.type == "StatefulPartitionedCall" for op in graph.control_outputs)
    read = {id(op._attrs["var"]) for op in graph.control_outputs if op.type == "ReadVariableOp"}
    assert id(unused) in read


def test_a_loaded_signature_called_from_a_traced_function(tmp_path: Path) -> None:
    m = _Model()

    class Exported(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1, self.b1, self.w2, self.b2 = m.w1, m.b1, m.w2, m.b2

        @sf.function(input_signature=[sf.TensorSpec((None, 6), sf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"scores": m.forward(x)}

    exported = Exported()
    sf.saved_model.save(exported, str(tmp_path), signatures={"serving_default": exported.serve})
    signature = sf.saved_model.load(str(tmp_path)).signatures["serving_default"]

    @sf.function(input_signature=[sf.TensorSpec((None, 6), sf.float32)])
    def predict(x: Any) -> Any:
        return signature(x=x)["scores"]

    @sf.function(input_signature=[sf.TensorSpec((None, 6), sf.float32)])
    def flat(x: Any) -> Any:
        return m.forward(x)

    x = sf.constant(X)
    np.testing.assert_allclose(_explain(predict, x).numpy(), _numpy_explain(X), rtol=1e-5)
    np.testing.assert_array_equal(_explain(predict, x).numpy(), _explain(flat, x).numpy())
    plans = []
    for fn in (predict, flat):
        ((_, built),) = fn.get_concrete_function()._backward.items()
        built[0]._run([X, np.ones((4, 3), np.float32)])
        plans.append([step[0].type for step in built[0]._plan.steps])
    assert not CALL_TYPES & set(plans[0])
    assert plans[0] == plans[1]  # the loaded forward runs once, as a flat trace's does
    assert plans[0].count("ReadVariableOp") == 3  # not b2's


@pytest.mark.anyio
async def test_tasks_differentiate_their_own_nested_calls() -> None:
    m = _Model()

    async def one(i: int) -> None:
        x = sf.constant(X * i)
        with sf.GradientTape() as tape:
            tape.watch(x)
            await anyio.sleep(0)
            top = sf.reduce_max(m.outer2(x))
            await anyio.sleep(0)
        await anyio.sleep(0)
        np.testing.assert_allclose(
            tape.gradient(top, x).numpy(), _numpy_explain(X * i), rtol=1e-5, atol=1e-6
        )

    async with anyio.create_task_group() as tg:
        for i in range(1, 7):
            tg.start_soon(one, i)


def test_served_backward_runs_no_forward_op_only_for_a_shape() -> None:
    # (None, 4) + (4,) has its first operand's shape, and a 2-D matmul has no batch
    # dimensions: no SumToShape keeps ``h @ w2`` or ``relu(h)`` alive for its shape.
    m = _Model()

    @sf.function(input_signature=[sf.TensorSpec((None, 6), sf.float32)])
    def flat(x: Any) -> Any:
        return m.forward(x)

    x = sf.constant(X)
    np.testing.assert_allclose(_explain(flat, x).numpy(), _numpy_explain(X), rtol=1e-5, atol=1e-6)
    ((_, built),) = flat.get_concrete_function()._backward.items()
    built[0]._run([X, np.ones((4, 3), np.float32)])
    types = [step[0].type for step in built[0]._plan.steps]
    assert "SumToShape" not in types
    assert "Relu" not in types
    assert types.count("MatMul") == 3


@pytest.mark.parametrize("op", ["add", "sub"])
def test_unknown_dimensions_that_may_broadcast_are_still_summed(op: str) -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.placeholder(sf.float32, (None, 4))
        b = sf.placeholder(sf.float32, (None, 4))
        c = sf.placeholder(sf.float32, (4,))
        y = (a + b + c) if op == "add" else (a - b - c)
        da, db, dc = sf.gradients(sf.reduce_sum(y), [a, b, c])
    sign = 1.0 if op == "add" else -1.0
    with sf.Session(g) as sess:
        ga, gb, gc = sess.run([da, db, dc], {a: np.ones((1, 4)), b: np.ones((3, 4)), c: np.ones(4)})
    np.testing.assert_array_equal(ga, np.full((1, 4), 3.0))
    np.testing.assert_array_equal(gb, np.full((3, 4), sign))
    np.testing.assert_array_equal(gc, np.full(4, 3.0 * sign))


def test_batched_matmul_gradients_are_still_summed_over_broadcast_batches() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.placeholder(sf.float32, (None, 2, 3))
        b = sf.placeholder(sf.float32, (3, 4))
        da, db = sf.gradients(sf.reduce_sum(sf.matmul(a, b)), [a, b])
    av = RNG.standard_normal((5, 2, 3)).astype(np.float32)
    bv = RNG.standard_normal((3, 4)).astype(np.float32)
    with sf.Session(g) as sess:
        ga, gb = sess.run([da, db], {a: av, b: bv})
    np.testing.assert_allclose(ga, np.broadcast_to(bv.sum(axis=1), (5, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(gb, np.broadcast_to(av.sum(axis=(0, 1))[:, None], (3, 4)), rtol=1e-5)


@pytest.mark.anyio
async def test_concurrent_tasks_take_gradients_without_repeating_side_effects() -> None:
    # Tasks interleave between their forwards and their gradients (first calls included):
    # each gradient is right and the write ran once per forward, never for a gradient.
    v = sf.Variable(2.0)
    count = sf.Variable(0.0)

    @sf.function
    def inner(x: Any) -> Any:
        count.assign_add(1.0)
        return x * x * v

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x)

    results: dict[int, float] = {}

    async def task(i: int) -> None:
        x = sf.constant(float(i + 1))
        with sf.GradientTape() as tape:
            tape.watch(x)
            await anyio.sleep(0)
            y = outer(x)
            await anyio.sleep(0)
        await anyio.sleep(0)
        results[i] = float(tape.gradient(y, x))

    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(task, i)
    assert results == {i: 2.0 * (i + 1) * 2.0 for i in range(100)}
    assert float(count.numpy()) == 100.0
