"""Control inputs and captures (SPEC sections 5, 7 and 8): pruning of control inputs that
are data inputs, control dependencies on outer ops captured by function, branch and loop
graphs, variables built without the control dependencies open where they are created, and
threads capturing into one function graph."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._func_graph import FuncGraph

# -- control inputs that are data inputs ------------------------------------------------


def test_a_control_input_that_is_a_direct_data_input_is_dropped() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        other = sf.no_op(name="other")
        with sf.control_dependencies([a, other]):
            same = sf.identity(a)
            both = sf.add(a, a)
            fresh = sf.constant(2.0, name="fresh")
        with sf.control_dependencies([a]), sf.control_dependencies([other]):
            nested = sf.negative(a)
    assert same.op.control_inputs == (other,)
    assert both.op.control_inputs == (other,)
    assert fresh.op.control_inputs == (a.op, other)
    assert nested.op.control_inputs == (other,)
    with sf.Session(g) as sess:
        assert float(sess.run(nested)) == -1.0


def test_function_stateful_ordering_skips_an_edge_that_is_a_data_input() -> None:
    v = sf.Variable(1.0)

    @sf.function
    def f() -> Any:
        return v.assign(v.read_value())

    graph = f.get_concrete_function().graph
    (read,) = [op for op in graph.get_operations() if op.type == "ReadVariableOp"]
    (write,) = [op for op in graph.get_operations() if op.type == "AssignVariableOp"]
    assert write.inputs[0].op is read
    assert write.control_inputs == ()
    assert float(f()) == 1.0


# -- control dependencies on outer ops -------------------------------------------------


def _counter_graph() -> tuple[sf.Graph, Any, Any]:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(0.0, name="v")
        bump = v.assign_add(1.0, name="bump")
    return g, v, bump


def _run_counting(g: sf.Graph, v: Any, fetch: Any, feed: dict[Any, Any] | None = None) -> Any:
    with g.as_default():
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        value = sess.run(fetch, feed)
        return value, float(sess.run(v))


def test_outer_control_dependency_inside_a_traced_body_orders_the_call() -> None:
    g, v, bump = _counter_graph()
    with g.as_default():

        @sf.function
        def f(x: Any) -> Any:
            with sf.control_dependencies([bump]):
                return x * 2.0

        y = f(sf.constant(3.0))
        assert y.op.control_inputs == (bump.op,)
        assert f.get_concrete_function(sf.constant(3.0)).graph._control_captures == [bump.op]
    assert _run_counting(g, v, y) == (6.0, 1.0)


def test_outer_control_dependency_around_a_call() -> None:
    g, v, bump = _counter_graph()
    with g.as_default():
        f = sf.function(lambda x: x + 1.0)
        x = sf.constant(1.0)
        with sf.control_dependencies([bump]):
            y = f(x)
    assert y.op.control_inputs == (bump.op,)
    assert _run_counting(g, v, y) == (2.0, 1.0)


def test_nested_functions_pass_the_control_capture_out() -> None:
    g, v, bump = _counter_graph()
    with g.as_default():

        @sf.function
        def inner(x: Any) -> Any:
            with sf.control_dependencies([bump.op]):
                return x + 1.0

        @sf.function
        def outer(x: Any) -> Any:
            return inner(x) * 2.0

        z = outer(sf.constant(1.0))
        assert z.op.control_inputs == (bump.op,)
    assert _run_counting(g, v, z) == (4.0, 1.0)


@pytest.mark.parametrize("taken", [True, False])
def test_outer_control_dependency_inside_a_cond_branch(taken: bool) -> None:
    g, v, bump = _counter_graph()

    def branch() -> Any:
        with sf.control_dependencies([bump]):
            return sf.constant(1.0)

    with g.as_default():
        p = sf.placeholder(sf.bool_, shape=(), name="p")
        r = sf.cond(p, branch, lambda: sf.constant(2.0))
        assert r.op.control_inputs == (bump.op,)
    # The cond runs after the op, whichever branch is taken.
    assert _run_counting(g, v, r, {p: taken}) == (1.0 if taken else 2.0, 1.0)


def test_outer_control_dependency_inside_a_while_body_and_cond_in_a_function() -> None:
    g, v, bump = _counter_graph()

    def body(i: Any) -> Any:
        with sf.control_dependencies([bump]):
            return i + 1

    with g.as_default():

        @sf.function
        def f(n: Any) -> Any:
            return sf.while_loop(lambda i: i < n, body, [0])[0]

        y = f(sf.constant(3))
        assert y.op.control_inputs == (bump.op,)
        (n,) = sf.while_loop(lambda i: i < 3, body, [0])
        assert n.op.control_inputs == (bump.op,)
    assert _run_counting(g, v, y) == (3, 1.0)
    assert _run_counting(g, v, n) == (3, 1.0)


def test_function_control_dependency_on_its_own_ops_and_arguments() -> None:
    # An argument is a fed placeholder: depending on it needs no extra feed.
    @sf.function
    def f(x: Any) -> Any:
        with sf.control_dependencies([x]):
            return x + 1.0

    assert float(f(sf.constant(1.0))) == 2.0
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(), name="p")
        with sf.control_dependencies([p]):
            q = p * 3.0
    with sf.Session(g) as sess:
        assert float(sess.run(q, {p: 2.0})) == 6.0


def test_eager_values_as_control_inputs_of_an_eagerly_called_trace_are_no_ops() -> None:
    e = sf.constant(5.0)

    @sf.function
    def f(x: Any) -> Any:
        with sf.control_dependencies([e]):
            return x + 1.0

    assert float(f(sf.constant(1.0))) == 2.0
    assert f.get_concrete_function(sf.constant(1.0)).graph._control_captures == []


def test_control_input_of_an_unrelated_graph_still_fails() -> None:
    _, _, bump = _counter_graph()
    other = sf.Graph()
    with other.as_default():
        with pytest.raises(ValueError, match=r"^Control input 'bump' belongs to <sf.Graph"):
            sf.control_dependencies([bump]).__enter__()
        fg = sf.FuncGraph("f", outer_graph=other)
        with fg.as_default():
            before = (sf.get_default_graph(), sf.get_name_scope(), len(sf.context_switches()))
            with pytest.raises(
                sf.errors.GraphMismatchError,
                match=r"^Control input 'bump' belongs to <sf.Graph .*which does not enclose "
                r"<sf.FuncGraph 'f'>",
            ):
                with sf.control_dependencies([bump]):
                    pass
            after = (sf.get_default_graph(), sf.get_name_scope(), len(sf.context_switches()))
            assert after == before
    assert fg._control_captures == []


def test_a_control_capturing_function_called_eagerly_fails_clearly() -> None:
    g, _, bump = _counter_graph()
    with g.as_default():

        @sf.function
        def f(x: Any) -> Any:
            with sf.control_dependencies([bump]):
                return x + 1.0

        concrete = f.get_concrete_function(sf.constant(1.0))
    with pytest.raises(
        sf.errors.GraphMismatchError, match=r"^ConcreteFunction .* must run after 'bump'"
    ):
        concrete(sf.constant(1.0))
    with sf.Graph().as_default():
        with pytest.raises(
            sf.errors.GraphMismatchError, match=r"must run after 'bump' of <sf.Graph"
        ):
            concrete(sf.constant(1.0))


# -- variables ignore the control scopes open where they are created ---------------------


def test_variable_under_control_dependencies_initializes_without_feeds() -> None:
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(), name="p")
        gate = sf.identity(p * 2.0, name="gate")
        with sf.control_dependencies([gate]), sf.name_scope("s"):
            v = sf.Variable(3.0, name="v")
            after = sf.constant(1.0, name="after")
        init = sf.global_variables_initializer()
    assert v.name == "s/v:0"
    assert v.initializer.control_inputs == ()
    assert after.op.control_inputs == (gate.op,)  # the scope still holds for other ops
    with sf.Session(g) as sess:
        sess.run(init)  # no feed for p needed
        assert float(sess.run(v)) == 3.0


@pytest.mark.parametrize("where", ["cond", "while_loop"])
def test_variable_created_in_a_branch_or_loop_body_lives_outside_it(where: str) -> None:
    g = sf.Graph()
    made: list[Any] = []

    def make() -> Any:
        if not made:
            made.append(sf.Variable(5.0, name="w"))
        return made[0].read_value()

    with g.as_default():
        p = sf.placeholder(sf.bool_, shape=(), name="p")
        if where == "cond":
            out = sf.cond(p, make, lambda: sf.constant(0.0))
        else:
            out = sf.while_loop(lambda i, x: i < 2, lambda i, x: (i + 1, make()), [0, 0.0])[1]
        init = sf.global_variables_initializer()
    (w,) = made
    assert w.graph is g
    assert w.initializer.graph is g
    assert w.initializer.control_inputs == ()
    with sf.Session(g) as sess:
        sess.run(init)  # runs once, unconditionally, with no feed
        assert float(sess.run(out, {p: True})) == 5.0


# -- threads capturing into one function graph ------------------------------------------


@pytest.fixture
def slow_captures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between "is it captured?" and "capture it" so threads really race
    there: without a lock every thread would make its own placeholder."""
    original = FuncGraph._new_capture

    def slow(self: FuncGraph, *args: Any) -> Any:
        time.sleep(0.002)
        return original(self, *args)

    monkeypatch.setattr(FuncGraph, "_new_capture", slow)


def _in_threads(n: int, work: Callable[[threading.Barrier], None]) -> None:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work(barrier)
        except BaseException as err:  # reported by the test thread
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.usefixtures("slow_captures")
def test_threads_building_one_function_graph_capture_each_outer_tensor_once() -> None:
    g = sf.Graph()
    with g.as_default():
        outer = [sf.constant(float(i), name=f"c{i}") for i in range(10)]
    fg = sf.FuncGraph("f", outer_graph=g)
    eager = sf.constant(7.0)
    results: list[Any] = []

    def work(barrier: threading.Barrier) -> None:
        with fg.as_default():
            barrier.wait()
            for t in outer:
                results.append(sf.identity(t))
            results.append(sf.identity(eager))

    _in_threads(6, work)
    captured = [outer_value for outer_value, _ in fg.captures]
    assert len(captured) == 11
    assert len({id(x) for x in captured}) == 11
    assert len(fg.inputs) == 11
    placeholders = {id(ph) for _, ph in fg.captures}
    assert all(id(r.op.inputs[0]) in placeholders for r in results)


@pytest.mark.usefixtures("slow_captures")
def test_a_trace_built_from_threads_keeps_working_on_later_calls() -> None:
    weights = [sf.constant(float(i)) for i in range(10)]

    @sf.function
    def f(x: Any) -> Any:
        parts: list[Any] = [None] * 4

        def work(barrier: threading.Barrier, k: int, snapshot: Any) -> None:
            def build() -> None:
                barrier.wait()
                total = x
                for w in weights:
                    total = total + w
                parts[k] = total

            sf.run_in_scopes(snapshot, build)

        snapshot = sf.copy_scopes()
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=work, args=(barrier, k, snapshot)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return parts[0] + parts[1] + parts[2] + parts[3]

    expected = 4 * (1.0 + sum(range(10)))
    for _ in range(3):
        np.testing.assert_allclose(f(sf.constant(1.0)).numpy(), expected)
    assert len(f.get_concrete_function(sf.constant(1.0)).captured_inputs) == 10


def test_control_input_from_a_nested_loop_body_is_out_of_scope() -> None:
    leaked: list[Any] = []

    def body(i: Any) -> Any:
        j = i + 1
        leaked.append(j)
        return j

    @sf.function
    def f() -> Any:
        sf.while_loop(lambda i: i < 3, body, [0])
        with pytest.raises(
            sf.errors.GraphMismatchError,
            match=r"^Control input '.*' belongs to <sf.ControlFlowGraph while_loop body "
            r"'while'>, which is nested inside <sf.FuncGraph .*out of scope here",
        ):
            with sf.control_dependencies([leaked[0]]):
                pass
        return sf.constant(1.0)

    assert float(f()) == 1.0
