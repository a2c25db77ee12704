"""Modes, the context-switch log, scope nesting checks and scope carriers (SPEC section 3)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

import scopeflow as sf
from scopeflow import _context


def _view() -> tuple[object, ...]:
    return (
        sf.executing_eagerly(),
        sf.get_default_graph(),
        sf.get_name_scope(),
        sf.context_switches(),
        _context.recording_paused(),
    )


# -- modes -----------------------------------------------------------------------------


def test_default_mode_is_eager_and_logged() -> None:
    assert sf.executing_eagerly()
    (switch,) = sf.context_switches()
    assert switch.is_building_function is False
    assert not sf.inside_function()


def test_disable_eager_execution_changes_the_process_default() -> None:
    sf.disable_eager_execution()
    assert not sf.executing_eagerly()
    assert sf.context_switches() == ()
    seen: list[bool] = []
    t = threading.Thread(target=lambda: seen.append(sf.executing_eagerly()))
    t.start()
    t.join()
    assert seen == [False]
    sf.enable_eager_execution()
    assert sf.executing_eagerly()


def test_eager_mode_and_graph_mode_scopes() -> None:
    g = sf.Graph()
    with g.as_default():
        n = len(sf.context_switches())
        with sf.eager_mode():
            assert sf.executing_eagerly()
            assert sf.get_default_graph() is g
            assert len(sf.context_switches()) == n + 1
            assert isinstance(sf.constant(1.0), sf.EagerTensor)
        assert not sf.executing_eagerly()
    with sf.graph_mode():
        assert not sf.executing_eagerly()
        assert isinstance(sf.constant(1.0), sf.Tensor)
    assert sf.executing_eagerly()


def test_context_switch_log_records_function_graphs() -> None:
    outer = sf.Graph()
    fg = sf.FuncGraph("f", outer)
    with outer.as_default(), fg.as_default():
        flags = [s.is_building_function for s in sf.context_switches()]
    assert flags == [False, False, True]


def test_context_switch_device_stack_is_live() -> None:
    g = sf.Graph()
    with g.as_default():
        switch = sf.context_switches()[-1]
        assert switch.device_stack == ""
        with sf.device("/cpu:0"):
            assert switch.device_stack == "/device:CPU:0"


# -- nesting checks --------------------------------------------------------------------


def test_out_of_order_exit_closes_both_and_restores() -> None:
    g = sf.Graph(name="g")
    a = g.as_default()
    b = sf.name_scope("b")
    before = _view()
    a.__enter__()
    b.__enter__()
    with pytest.raises(
        sf.ScopeNestingError,
        match=r"^<sf.Graph 'g'>\.as_default\(\) was left while name_scope\('b'\), entered "
        r"inside it, was still open\..*`with`",
    ):
        a.__exit__(None, None, None)
    assert _view() == before
    with pytest.raises(sf.ScopeNestingError, match=r"^name_scope\('b'\) is not open"):
        b.__exit__(None, None, None)
    assert _view() == before


def test_double_exit_is_an_error() -> None:
    scope = sf.name_scope("x")
    scope.__enter__()
    scope.__exit__(None, None, None)
    before = _view()
    with pytest.raises(sf.ScopeNestingError, match="not open in this context"):
        scope.__exit__(None, None, None)
    assert _view() == before


def test_exit_in_a_copied_context_is_an_error() -> None:
    g = sf.Graph()
    scope = g.as_default()
    scope.__enter__()
    try:
        inside = _view()
        ctx = contextvars.copy_context()
        with pytest.raises(sf.ScopeNestingError, match="entered elsewhere"):
            ctx.run(scope.__exit__, None, None, None)
        assert ctx.run(_view) == inside
        assert _view() == inside
    finally:
        scope.__exit__(None, None, None)


def test_exit_from_another_thread_is_an_error() -> None:
    scope = sf.name_scope("t")
    scope.__enter__()
    errors: list[BaseException] = []

    def leave() -> None:
        try:
            scope.__exit__(None, None, None)
        except BaseException as e:  # checked below
            errors.append(e)

    t = threading.Thread(target=leave)
    t.start()
    t.join()
    assert sf.get_name_scope() == "t"
    scope.__exit__(None, None, None)
    assert len(errors) == 1
    assert isinstance(errors[0], sf.ScopeNestingError)
    assert "different context" in str(errors[0])


def test_same_scope_object_nested_in_itself() -> None:
    g = sf.Graph()
    scope = g.as_default()
    with scope, scope:
        assert len(sf.context_switches()) == 3
    assert len(sf.context_switches()) == 1


def test_scope_object_reentered_after_exit() -> None:
    scope = sf.device("/cpu:0")
    g = sf.Graph()
    with g.as_default():
        for _ in range(3):
            with scope:
                assert sf.constant(1.0).op.device == "/device:CPU:0"
            assert sf.constant(1.0).op.device == ""


def test_misnest_three_deep_reports_innermost() -> None:
    a, b, c = sf.name_scope("a"), sf.name_scope("b"), sf.name_scope("c")
    a.__enter__()
    b.__enter__()
    c.__enter__()
    with pytest.raises(sf.ScopeNestingError, match=r"name_scope\('b'\) was left while .*'c'"):
        b.__exit__(None, None, None)
    assert sf.get_name_scope() == "a"
    with pytest.raises(sf.ScopeNestingError):
        c.__exit__(None, None, None)
    a.__exit__(None, None, None)
    assert sf.get_name_scope() == ""


def test_sync_generator_leaks_its_scope_until_resumed() -> None:
    # Documented Python limitation (PEP 568 was deferred): a generator shares its
    # caller's context, so a scope open at a yield is visible to the caller.
    def gen() -> object:
        with sf.name_scope("inside_gen"):
            yield sf.get_name_scope()
        yield sf.get_name_scope()

    it = iter(gen())  # type: ignore[call-overload]
    assert next(it) == "inside_gen"
    assert sf.get_name_scope() == "inside_gen"
    assert next(it) == ""
    assert sf.get_name_scope() == ""


# -- carriers --------------------------------------------------------------------------


def test_plain_thread_starts_from_an_empty_context() -> None:
    g = sf.Graph()
    seen: list[object] = []
    with g.as_default(), sf.name_scope("s"):
        t = threading.Thread(target=lambda: seen.extend(_view()[:3]))
        t.start()
        t.join()
    assert seen == [True, sf.get_default_graph(), ""]


def test_copy_scopes_and_run_in_scopes() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("s"):
        snap = sf.copy_scopes()
    assert sf.get_default_graph() is not g
    seen: list[object] = []

    def work() -> str:
        seen.append(sf.get_default_graph())
        with sf.name_scope("deeper"):
            return sf.get_name_scope()

    t = threading.Thread(target=lambda: seen.append(sf.run_in_scopes(snap, work)))
    t.start()
    t.join()
    assert seen == [g, "s/deeper"]
    assert sf.run_in_scopes(snap, sf.get_name_scope) == "s"
    assert sf.get_name_scope() == ""
    assert "ScopesSnapshot" in repr(snap)
    with pytest.raises(TypeError, match="needs a ScopesSnapshot"):
        sf.run_in_scopes("nope", work)  # type: ignore[arg-type]


def test_scoped_executor_captures_at_submit_time() -> None:
    g1, g2 = sf.Graph(), sf.Graph()
    with ThreadPoolExecutor(2) as pool:
        ex = sf.ScopedExecutor(pool)
        gate = threading.Event()

        def later() -> sf.Graph:
            gate.wait(5)
            return sf.get_default_graph()

        with g1.as_default():
            f1 = ex.submit(later)
        with g2.as_default():
            f2 = ex.submit(sf.get_default_graph)
        gate.set()
        plain: Callable[[], sf.Graph] = sf.get_default_graph
        f3 = pool.submit(plain)
        assert (f1.result(), f2.result()) == (g1, g2)
        assert f3.result() is sf.get_default_graph()
    with pytest.raises(TypeError, match="wraps a concurrent.futures.Executor"):
        sf.ScopedExecutor("pool")  # type: ignore[arg-type]


def test_threads_entering_one_scope_object_at_once() -> None:
    shared = sf.device("/cpu:0")
    g = sf.Graph()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        try:
            barrier.wait()
            with g.as_default():
                for _ in range(2000):
                    with shared:
                        assert sf.constant(1.0).op.device == "/device:CPU:0"
                    assert sf.constant(1.0).op.device == ""
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert shared._frame is None
    assert not getattr(shared, "_more", None)
