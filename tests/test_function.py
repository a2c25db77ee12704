"""sf.function: tracing, caching, captures, calling, variables and concurrency (SPEC 7)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf


def _value(x: Any) -> Any:
    return np.asarray(x).tolist()


# -- tracing and the cache -------------------------------------------------------------


def test_decorator_forms_and_trace_once_per_signature() -> None:
    @sf.function
    def f(x: Any, factor: float = 2.0) -> Any:
        assert not sf.executing_eagerly()
        assert sf.inside_function()
        return x * factor

    assert _value(f(sf.constant([1.0, 2.0]))) == [2.0, 4.0]
    assert _value(f(sf.constant([3.0, 4.0]))) == [6.0, 8.0]
    assert f.trace_count == 1
    f(sf.constant([1.0, 2.0, 3.0]))  # new shape
    assert f.trace_count == 2
    f(sf.constant([1.0, 2.0]), factor=3.0)  # Python values are part of the key
    f(sf.constant([1.0, 2.0]), factor=3.0)
    assert f.trace_count == 3
    f(np.array([1.0, 2.0], dtype=np.float32))  # arrays count as tensors
    assert f.trace_count == 3
    g = sf.function(lambda x: x + 1, name="plus_one")
    assert _value(g(sf.constant(1))) == 2
    h = sf.function(input_signature=[sf.TensorSpec((), sf.int32)])(lambda x: x - 1)
    assert _value(h(5)) == 4


def test_nested_structures_in_and_out() -> None:
    @sf.function
    def f(pair: Any, d: dict[str, Any]) -> Any:
        a, b = pair
        return {"sum": a + b, "items": [d["x"] * 2.0, None], "n": 3}

    out = f((sf.constant(1.0), sf.constant(2.0)), {"x": sf.constant(5.0)})
    assert set(out) == {"sum", "items", "n"}
    assert _value(out["sum"]) == 3.0
    assert _value(out["items"][0]) == 10.0
    assert out["items"][1] is None
    assert _value(out["n"]) == 3


def test_input_signature_one_trace_for_compatible_shapes_and_errors() -> None:
    @sf.function(input_signature=[sf.TensorSpec((None,), sf.float32)])
    def f(x: Any) -> Any:
        return sf.reduce_sum(x)

    assert _value(f(sf.constant([1.0, 2.0]))) == 3.0
    assert _value(f([1.0, 2.0, 3.0])) == 6.0
    assert f.trace_count == 1
    with pytest.raises(TypeError, match=r"argument 0 \(dtype int32.*input_signature"):
        f(sf.constant([1, 2]))
    with pytest.raises(ValueError, match=r"argument 0 .*shape \(2, 2\).*TensorSpec"):
        f(sf.constant([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(TypeError, match="takes 1 tensor arguments"):
        f(sf.constant([1.0]), sf.constant([1.0]))
    with pytest.raises(TypeError, match="input_signature must be a sequence of sf.TensorSpec"):
        sf.function(lambda x: x, input_signature=[(None,)])
    with pytest.raises(TypeError, match="needs a callable"):
        sf.function(3)  # type: ignore[arg-type]


def test_methods_get_their_own_traces() -> None:
    class Scaler:
        def __init__(self, k: float) -> None:
            self.k = k

        @sf.function
        def apply(self, x: Any) -> Any:
            return x * self.k

    a, b = Scaler(2.0), Scaler(10.0)
    assert _value(a.apply(sf.constant(1.0))) == 2.0
    assert _value(b.apply(sf.constant(1.0))) == 10.0
    assert a.apply.trace_count == 1
    assert b.apply.trace_count == 1
    assert a.apply is a.apply
    # The class-level Function reports the traces of every live instance.
    assert Scaler.apply.trace_count == 2


def test_concrete_function_attributes() -> None:
    outer = sf.Graph()
    captured = sf.constant(10.0)

    @sf.function
    def f(x: Any) -> Any:
        return x + captured

    cf = f.get_concrete_function(sf.TensorSpec((None,), sf.float32, name="inp"))
    assert isinstance(cf.graph, sf.FuncGraph)
    assert cf.graph.outer_graph is sf.get_default_graph()
    assert [t.name for t in cf.inputs] == ["inp:0", "capture:0"]
    assert len(cf.outputs) == 1
    assert cf.captured_inputs == [captured]
    assert _value(cf(sf.constant([1.0, 2.0]))) == [11.0, 12.0]
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cf(sf.constant([1.0]), sf.constant([1.0]))
    with pytest.raises(ValueError, match="does not match input 'inp:0'"):
        cf(sf.constant([[1.0]]))
    with outer.as_default():
        cf_graph = f.get_concrete_function(sf.TensorSpec((), sf.float32))
    assert cf_graph.graph.outer_graph is outer


# -- captures and escapes --------------------------------------------------------------


def test_outer_graph_tensor_is_captured_and_bound_per_run() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(), name="p")

        @sf.function
        def f(x: Any) -> Any:
            return x * p

        y = f(sf.constant(3.0))
    call_ops = [op for op in g.get_operations() if op.type.endswith("PartitionedCall")]
    assert len(call_ops) == 1
    assert p in call_ops[0].inputs
    sess = sf.Session(g)
    assert sess.run(y, {p: 2.0}) == 6.0
    assert sess.run(y, {p: 5.0}) == 15.0


def test_tensor_of_a_graph_nested_inside_the_function_is_out_of_scope() -> None:
    @sf.function
    def f(x: Any) -> Any:
        body = sf.FuncGraph("loop_body", outer_graph=sf.get_default_graph())
        with body.as_default():
            inner = sf.constant(1.0, name="inner")
        return x + inner

    with pytest.raises(ValueError, match=r"'inner:0' belongs to .*'loop_body'.*out of scope"):
        f(sf.constant(1.0))


def test_escaped_symbolic_tensor_names_its_function() -> None:
    leaked: list[Any] = []

    @sf.function
    def leaky(x: Any) -> Any:
        y = x * 2.0
        leaked.append(y)
        return y

    leaky(sf.constant(1.0))
    with pytest.raises(TypeError, match=r"created while tracing function 'leaky'"):
        sf.add(leaked[0], 1.0)
    with sf.Graph().as_default(), pytest.raises(sf.errors.TracingError, match="'leaky'"):
        sf.add(leaked[0], 1.0)


# -- calling ---------------------------------------------------------------------------


def test_call_while_building_a_plain_graph_adds_one_call_op() -> None:
    @sf.function
    def f(x: Any) -> Any:
        return sf.square(x) + 1.0

    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(2,), name="x")
        y = f(x)
    types = [op.type for op in g.get_operations()]
    assert types == ["Placeholder", "PartitionedCall"]
    assert isinstance(y, sf.Tensor)
    assert y.shape == (2,)
    assert _value(sf.Session(g).run(y, {x: [1.0, 2.0]})) == [2.0, 5.0]


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_nested_functions_three_deep(mode: str) -> None:
    @sf.function
    def inner(x: Any) -> Any:
        return x + 1.0

    @sf.function
    def middle(x: Any) -> Any:
        return inner(x) * 2.0

    @sf.function
    def outer(x: Any) -> Any:
        return middle(x) - inner(x)

    if mode == "eager":
        assert _value(outer(sf.constant(3.0))) == 4.0
    else:
        g = sf.Graph()
        with g.as_default():
            x = sf.placeholder(sf.float32, shape=())
            y = outer(x)
        assert sf.Session(g).run(y, {x: 3.0}) == 4.0
    fg = outer.get_concrete_function(sf.TensorSpec((), sf.float32)).graph
    assert [op.type for op in fg.get_operations()].count("PartitionedCall") == 2


def test_side_effects_run_in_program_order_without_being_returned() -> None:
    v = sf.Variable(0.0)
    log = sf.Variable(0.0)

    @sf.function
    def f() -> Any:
        v.assign(2.0)
        log.assign(v.read_value() * 10.0)  # sees the assignment above
        v.assign_add(1.0)
        return None

    assert f() is None
    assert float(v.numpy()) == 3.0
    assert float(log.numpy()) == 20.0
    f()
    assert float(v.numpy()) == 3.0


# -- variables and init_scope ----------------------------------------------------------


def _make_counter() -> Any:
    with sf.init_scope():
        v = sf.Variable(1.0)
    return v.assign_add(1.0)


def test_init_scope_variable_plain_vs_traced() -> None:
    assert _value(_make_counter()) == 2.0
    assert _value(_make_counter()) == 2.0  # a new variable each plain call
    traced = sf.function(_make_counter)
    assert _value(traced()) == 2.0
    assert _value(traced()) == 3.0  # created once, during the trace
    assert _value(traced()) == 4.0


def test_init_scope_variable_through_two_nested_functions() -> None:
    inner = sf.function(_make_counter)

    @sf.function
    def outer() -> Any:
        return inner()

    assert [_value(outer()) for _ in range(3)] == [2.0, 3.0, 4.0]
    assert inner.trace_count == 1


def test_init_scope_variable_in_a_plain_graph_lands_once() -> None:
    traced = sf.function(_make_counter)
    g = sf.Graph()
    with g.as_default():
        results = [traced() for _ in range(3)]
        init = sf.global_variables_initializer()
    assert len(g.get_collection("variables")) == 1
    assert traced.trace_count == 1
    with sf.Session(g) as sess:
        sess.run(init)
        assert [float(sess.run(r)) for r in results] == [2.0, 3.0, 4.0]


def test_variable_created_in_a_trace_is_lifted_and_named() -> None:
    holder: list[sf.Variable] = []

    @sf.function
    def f() -> Any:
        if not holder:
            with sf.name_scope("foo"):
                holder.append(sf.Variable(1.0, name="bar"))
        return holder[0].assign_add(1.0)

    assert _value(f()) == 2.0
    assert _value(f()) == 3.0
    (v,) = holder
    assert v.name == "foo/bar:0"
    assert v.graph is None  # lifted into eager mode


def test_variable_on_a_later_trace_is_an_error() -> None:
    @sf.function
    def f(x: Any) -> Any:
        v = sf.Variable(1.0)
        return x + v

    assert _value(f(sf.constant(1.0))) == 2.0
    with pytest.raises(ValueError, match="only be created on a function's first trace"):
        f(sf.constant([1.0, 2.0]))


def test_variable_in_init_scope_on_a_later_trace_is_an_error_too() -> None:
    f = sf.function(_make_counter)
    assert _value(f()) == 2.0
    g = sf.Graph()
    with g.as_default(), pytest.raises(ValueError, match="first trace"):
        f()  # a graph caller retraces; init_scope would create a second variable
    assert _value(f()) == 3.0  # the eager trace still uses the first variable


def test_initial_value_computed_inside_the_function_is_an_error() -> None:
    @sf.function
    def bad(x: Any) -> Any:
        return sf.Variable(x * 2.0).read_value()

    with pytest.raises(ValueError, match="computed inside the function .*callable"):
        bad(sf.constant(1.0))

    @sf.function
    def good(x: Any) -> Any:
        v = sf.Variable(lambda: sf.constant(3.0))
        return x + v

    assert _value(good(sf.constant(1.0))) == 4.0


def test_executing_eagerly_outside_functions_from_eager_and_graph_callers() -> None:
    @sf.function
    def probe() -> Any:
        return sf.constant(sf.executing_eagerly_outside_functions())

    assert _value(probe()) is True
    g = sf.Graph()
    with g.as_default():
        r = probe()
    assert bool(sf.Session(g).run(r)) is False


# -- concurrency -----------------------------------------------------------------------


def test_threads_with_one_signature_trace_once() -> None:
    started = threading.Event()
    release = threading.Event()

    def body(x: Any) -> Any:
        started.set()
        release.wait(5)
        return x + 1.0

    f = sf.function(body)
    results: list[Any] = []

    def call() -> None:
        results.append(_value(f(sf.constant(1.0))))

    threads = [threading.Thread(target=call) for _ in range(6)]
    threads[0].start()
    assert started.wait(5)
    for t in threads[1:]:
        t.start()
    release.set()
    for t in threads:
        t.join()
    assert results == [2.0] * 6
    assert f.trace_count == 1


def test_different_signatures_trace_in_parallel() -> None:
    barrier = threading.Barrier(2, timeout=5)

    @sf.function
    def f(x: Any) -> Any:
        barrier.wait()  # both traces must be in progress at once
        return x * 2.0

    out: dict[int, Any] = {}

    def call(n: int) -> None:
        out[n] = _value(f(sf.constant([1.0] * n)))

    threads = [threading.Thread(target=call, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {1: [2.0], 2: [2.0, 2.0]}
    assert f.trace_count == 2


@pytest.mark.anyio
async def test_async_function_traces_once_and_never_blocks_other_tasks() -> None:
    gate = anyio.Event()
    seen_by_others: list[object] = []

    @sf.function
    async def f(x: Any) -> Any:
        await gate.wait()  # other tasks must run for the trace to finish
        return x * 3.0

    async def other_task() -> None:
        await anyio.sleep(0)
        seen_by_others.append((sf.executing_eagerly(), sf.inside_function()))
        gate.set()

    results: list[Any] = []

    async def caller() -> None:
        results.append(_value(await f(sf.constant(2.0))))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(caller)
        tg.start_soon(other_task)
    assert results == [6.0] * 4
    assert f.trace_count == 1
    assert seen_by_others == [(True, False)]


@pytest.mark.anyio
async def test_sync_function_from_many_tasks_traces_once() -> None:
    f = sf.function(lambda x: x + 1.0)
    results: list[Any] = []

    async def caller() -> None:
        await anyio.sleep(0)
        results.append(_value(f(sf.constant(1.0))))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(caller)
    assert results == [2.0] * 10
    assert f.trace_count == 1


def test_async_function_must_be_awaited_for_concrete() -> None:
    @sf.function
    async def f(x: Any) -> Any:
        return x

    with pytest.raises(TypeError, match="aget_concrete_function"):
        f.get_concrete_function(sf.constant(1.0))


def test_recursion_with_the_same_signature_is_reported() -> None:
    holder: list[Callable[..., Any]] = []

    @sf.function
    def f(x: Any) -> Any:
        return holder[0](x)

    holder.append(f)
    with pytest.raises(RuntimeError, match="called itself while being traced"):
        f(sf.constant(1.0))


def test_an_exception_while_tracing_leaves_no_trace_and_no_scope() -> None:
    calls: list[int] = []

    @sf.function
    def flaky(x: Any) -> Any:
        calls.append(1)
        with sf.name_scope("inside"):
            if len(calls) == 1:
                raise KeyError("first trace fails")
            return x + 1.0

    g = sf.Graph()
    with g.as_default():
        before = (sf.context_switches(), sf.get_default_graph(), sf.get_name_scope())
        x = sf.placeholder(sf.float32, shape=())
        with pytest.raises(KeyError, match="first trace fails"):
            flaky(x)
        assert (sf.context_switches(), sf.get_default_graph(), sf.get_name_scope()) == before
        y = flaky(x)  # the failed trace was not cached, and nobody waits for it
    assert flaky.trace_count == 2
    assert sf.Session(g).run(y, {x: 1.0}) == 2.0
