"""init_scope: SPEC section 4, scenario by scenario."""

from __future__ import annotations

import re

import anyio
import pytest

import scopeflow as sf
from scopeflow import _context


def _state() -> tuple[object, ...]:
    """Everything a task can observe of its scopes."""
    return (
        sf.executing_eagerly(),
        sf.get_default_graph(),
        sf.get_name_scope(),
        sf.context_switches(),
        _context.recording_paused(),
        sf.has_default_graph(),
    )


# -- effect 1: control dependencies ---------------------------------------------------


def test_clears_nested_control_dependencies_and_restores_them() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        b = sf.constant(2.0, name="b")
        with sf.control_dependencies([a]), sf.control_dependencies([b]):
            inside_before = sf.constant(0.0, name="before")
            with sf.init_scope():
                lifted = sf.constant(3.0, name="lifted")
            inside_after = sf.constant(4.0, name="after")
    assert lifted.op.control_inputs == ()
    assert inside_before.op.control_inputs == (a.op, b.op)
    assert inside_after.op.control_inputs == (a.op, b.op)


def test_control_dependencies_inside_init_scope_start_fresh() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        b = sf.constant(2.0, name="b")
        with sf.control_dependencies([a]), sf.init_scope(), sf.control_dependencies([b]):
            c = sf.constant(3.0, name="c")
    assert c.op.control_inputs == (b.op,)


# -- effect 2: where ops go ------------------------------------------------------------


def test_lifts_out_of_one_function_graph() -> None:
    outer = sf.Graph(name="outer")
    with outer.as_default():
        fg = sf.FuncGraph("f", outer_graph=outer)
        with fg.as_default():
            assert sf.inside_function()
            with sf.init_scope():
                assert sf.get_default_graph() is outer
                assert not sf.inside_function()
                assert not sf.executing_eagerly()
                c = sf.constant(1.0, name="c")
            d = sf.constant(2.0, name="d")
    assert c.graph is outer
    assert d.graph is fg
    assert [op.name for op in outer.get_operations()] == ["c"]


@pytest.mark.parametrize("depth", [2, 3])
def test_lifts_out_of_nested_function_graphs(depth: int) -> None:
    outer = sf.Graph(name="outer")
    with outer.as_default():
        scopes = []
        parent = outer
        for i in range(depth):
            fg = sf.FuncGraph(f"f{i}", outer_graph=parent)
            scope = fg.as_default()
            scope.__enter__()
            scopes.append(scope)
            parent = fg
        try:
            assert sf.get_default_graph() is parent
            with sf.init_scope():
                c = sf.constant(1.0)
                assert sf.get_default_graph() is outer
        finally:
            for scope in reversed(scopes):
                scope.__exit__(None, None, None)
    assert c.graph is outer


def test_plain_graph_inside_function_graph_is_the_target() -> None:
    outer = sf.Graph(name="outer")
    inner_plain = sf.Graph(name="plain")
    with outer.as_default(), sf.FuncGraph("f", outer).as_default():
        with inner_plain.as_default(), sf.FuncGraph("g", inner_plain).as_default():
            with sf.init_scope():
                c = sf.constant(1.0)
    assert c.graph is inner_plain


def test_escapes_to_eager_from_a_function_traced_in_eager_mode() -> None:
    fg = sf.FuncGraph("f")
    with fg.as_default():
        assert not sf.executing_eagerly()
        assert sf.executing_eagerly_outside_functions()
        with sf.init_scope():
            assert sf.executing_eagerly()
            c = sf.constant([1.0, 2.0])
            # The default graph of the eager context is never the function graph.
            assert sf.get_default_graph() is not fg
            assert not sf.inside_function()
        assert sf.get_default_graph() is fg
    assert isinstance(c, sf.EagerTensor)
    assert c.numpy().tolist() == [1.0, 2.0]


def test_eager_default_graph_is_the_graph_default_when_eager_was_entered() -> None:
    g = sf.Graph(name="g")
    with g.as_default(), sf.eager_mode(), sf.FuncGraph("f", g).as_default(), sf.init_scope():
        assert sf.executing_eagerly()
        assert sf.get_default_graph() is g


def test_staying_eager_changes_nothing_but_the_tapes() -> None:
    with sf.name_scope("outer"), sf.device("/cpu:0"):
        before = _state()
        with sf.init_scope():
            during = _state()
        after = _state()
    assert before == after
    assert during[:4] == before[:4]
    assert before[4] is False
    assert during[4] is True


def test_graph_mode_with_empty_stack_enters_the_global_graph() -> None:
    with sf.graph_mode():
        assert not sf.has_default_graph()
        with sf.init_scope():
            assert sf.has_default_graph()
            assert sf.get_default_graph() is _context.GLOBAL_GRAPH[0]
            c = sf.constant(1.0)
    assert c.graph is sf.get_default_graph()


def test_all_function_graphs_fall_back_to_the_global_graph() -> None:
    sf.disable_eager_execution()
    assert sf.context_switches() == ()
    f1 = sf.FuncGraph("f1")
    f2 = sf.FuncGraph("f2", f1)
    with f1.as_default(), f2.as_default():
        assert not sf.executing_eagerly_outside_functions()
        with sf.init_scope():
            assert not sf.executing_eagerly()
            c = sf.constant(1.0)
    assert c.graph is sf.get_default_graph()
    assert not c.graph.building_function


def test_global_graph_building_a_function_is_an_error() -> None:
    saved = _context.GLOBAL_GRAPH[0]
    _context.GLOBAL_GRAPH[0] = sf.FuncGraph("weird")
    try:
        with sf.graph_mode():
            before = _state()
            with pytest.raises(RuntimeError, match=r"global default graph .* building a func"):
                sf.init_scope().__enter__()
            assert _state() == before
    finally:
        _context.GLOBAL_GRAPH[0] = saved


def test_logs_the_context_it_enters() -> None:
    outer = sf.Graph()
    with outer.as_default(), sf.FuncGraph("f", outer).as_default():
        n = len(sf.context_switches())
        with sf.init_scope():
            switches = sf.context_switches()
            assert len(switches) == n + 1
            assert switches[-1].is_building_function is False
            with switches[-1].enter_context() as g:
                assert g is outer
        assert len(sf.context_switches()) == n


# -- name scope and device -------------------------------------------------------------


def test_name_scope_is_carried_over_as_absolute() -> None:
    outer = sf.Graph()
    with outer.as_default(), sf.name_scope("model"):
        with sf.FuncGraph("f", outer).as_default(), sf.name_scope("layer"):
            assert sf.get_name_scope() == "layer"
            with sf.init_scope():
                assert sf.get_name_scope() == "layer"
                v = sf.constant(1.0, name="v")
    assert v.op.name == "layer/v"
    assert v.graph is outer


def test_name_scope_is_carried_over_to_eager() -> None:
    with sf.FuncGraph("f").as_default(), sf.name_scope("a"), sf.init_scope():
        assert sf.executing_eagerly()
        assert sf.get_name_scope() == "a"


def test_device_of_the_outer_graph_as_it_stands_now() -> None:
    g0 = sf.Graph()
    with g0.as_default(), sf.device("/cpu:0"), sf.FuncGraph("f", g0).as_default():
        with sf.init_scope():
            c = sf.constant(1)
    assert c.graph is g0
    assert c.op.device == "/device:CPU:0"


def test_innermost_device_wins() -> None:
    g0 = sf.Graph()
    with g0.as_default(), sf.device("/cpu:0"):
        fg = sf.FuncGraph("f", g0)
        with fg.as_default(), sf.device("/gpu:1"), sf.init_scope():
            c = sf.constant(1)
    assert c.op.device == "/device:GPU:1"


def test_device_entered_after_the_function_on_the_outer_graph_is_seen() -> None:
    g0 = sf.Graph()
    fg = sf.FuncGraph("f", g0)
    with g0.as_default(), fg.as_default(), g0.device("/gpu:0"), sf.init_scope():
        c = sf.constant(1)
    assert c.op.device == "/device:GPU:0"


def _device_here() -> str:
    from scopeflow._context import DEVICE, SCOPES, current

    return current()[SCOPES][DEVICE]  # type: ignore[no-any-return]


def test_device_with_the_function_graph_entered_several_times() -> None:
    # The log holds the current graph's entry more than once, and the outer graph's
    # between them: the walk skips the current graph's entries (its device is known).
    g0 = sf.Graph()
    fg = sf.FuncGraph("f", g0)
    with g0.as_default(), sf.device("/cpu:0"), fg.as_default(), fg.as_default():
        with sf.init_scope():
            c = sf.constant(1)
    assert (c.graph, c.op.device) == (g0, "/device:CPU:0")
    with g0.as_default(), sf.device("/cpu:0"), fg.as_default(), g0.as_default():
        with fg.as_default(), sf.init_scope():
            c = sf.constant(1)
    assert (c.graph, c.op.device) == (g0, "/device:CPU:0")
    with g0.as_default(), fg.as_default(), sf.device("/gpu:2"), fg.as_default():
        with sf.init_scope():
            c = sf.constant(1)
    assert (c.graph, c.op.device) == (g0, "/device:GPU:2")


def test_device_of_an_eager_entry_between_function_graph_entries() -> None:
    fg = sf.FuncGraph("f")
    with fg.as_default(), sf.eager_mode(), sf.device("/gpu:1"), fg.as_default():
        with sf.init_scope():
            assert sf.executing_eagerly()
            assert _device_here() == "/device:GPU:1"
    with fg.as_default(), sf.eager_mode(), fg.as_default(), sf.device("/cpu:0"):
        with sf.init_scope():
            assert _device_here() == "/device:CPU:0"


# -- nesting, errors, async ------------------------------------------------------------


def test_nesting_is_equivalent_to_one() -> None:
    outer = sf.Graph()
    with outer.as_default(), sf.FuncGraph("f", outer).as_default(), sf.name_scope("s"):
        with sf.init_scope():
            once = (sf.get_default_graph(), sf.get_name_scope(), sf.executing_eagerly())
            with sf.init_scope():
                twice = (sf.get_default_graph(), sf.get_name_scope(), sf.executing_eagerly())
    assert once == twice == (outer, "s", False)


def test_exception_in_body_restores_everything() -> None:
    outer = sf.Graph()
    with outer.as_default(), sf.FuncGraph("f", outer).as_default(), sf.name_scope("s"):
        before = _state()
        with pytest.raises(KeyError, match="boom"), sf.init_scope():
            raise KeyError("boom")
        assert _state() == before


def test_same_object_can_be_reentered() -> None:
    scope = sf.init_scope()
    fg = sf.FuncGraph("f")
    with fg.as_default():
        for _ in range(2):
            with scope:
                assert sf.executing_eagerly()
            assert not sf.executing_eagerly()


def test_misnested_exit_is_reported_and_state_restored() -> None:
    g = sf.Graph()
    with g.as_default():
        before = _state()
        init = sf.init_scope()
        ns = sf.name_scope("x")
        init.__enter__()
        ns.__enter__()
        with pytest.raises(sf.ScopeNestingError, match=r"^init_scope\(\) was left while"):
            init.__exit__(None, None, None)
        assert _state() == before
        with pytest.raises(sf.ScopeNestingError, match=r"^name_scope\('x'\) is not open"):
            ns.__exit__(None, None, None)
        assert _state() == before


@pytest.mark.anyio
async def test_async_with_works_and_restores() -> None:
    outer = sf.Graph()
    with outer.as_default(), sf.FuncGraph("f", outer).as_default():
        before = _state()
        async with sf.init_scope():
            await anyio.sleep(0)
            assert sf.get_default_graph() is outer
            c = sf.constant(1.0)
            await anyio.sleep(0)
        assert _state() == before
    assert c.graph is outer


@pytest.mark.anyio
async def test_cancellation_inside_async_init_scope_restores() -> None:
    outer = sf.Graph()
    with outer.as_default(), sf.FuncGraph("f", outer).as_default():
        before = _state()
        with anyio.CancelScope() as cancel:
            async with sf.init_scope():
                cancel.cancel()
                await anyio.sleep(1)
        assert cancel.cancelled_caught
        assert _state() == before


@pytest.mark.anyio
async def test_tasks_lift_into_their_own_outer_graphs() -> None:
    results: dict[str, sf.Graph] = {}
    graphs = {name: sf.Graph(name=name) for name in ("a", "b", "c")}

    async def build(name: str) -> None:
        g = graphs[name]
        async with g.as_default(), sf.FuncGraph(f"f_{name}", g).as_default():
            await anyio.sleep(0)
            async with sf.init_scope():
                await anyio.sleep(0)
                results[name] = sf.constant(1.0, name=name).graph
                await anyio.sleep(0)
            assert sf.get_default_graph().building_function

    async with anyio.create_task_group() as tg:
        for name in graphs:
            tg.start_soon(build, name)
    assert results == graphs


def test_executing_eagerly_outside_functions_in_a_plain_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        assert not sf.executing_eagerly_outside_functions()
        with sf.FuncGraph("f", g).as_default():
            assert not sf.executing_eagerly_outside_functions()
    assert sf.executing_eagerly_outside_functions()


def test_stop_recording_nests() -> None:
    assert not _context.recording_paused()
    with sf.stop_recording():
        with sf.stop_recording():
            assert _context.recording_paused()
        assert _context.recording_paused()
    assert not _context.recording_paused()


def test_error_message_of_cross_context_exit_names_the_scope() -> None:
    import contextvars

    scope = sf.init_scope()
    ctx = contextvars.copy_context()
    ctx.run(scope.__enter__)
    with pytest.raises(sf.ScopeNestingError, match=re.escape("init_scope() was entered in")):
        scope.__exit__(None, None, None)
    assert sf.executing_eagerly()
    assert not _context.recording_paused()


def test_function_graph_stays_entered_when_escaping_to_eager() -> None:
    fg = sf.FuncGraph("f")
    with fg.as_default(), sf.init_scope():
        assert sf.executing_eagerly()
        assert sf.get_default_graph() is not fg
        assert sf.has_default_graph()  # fg was entered and is not left yet
        with pytest.raises(sf.ScopeNestingError, match=r"inside <sf.FuncGraph 'f'>"):
            sf.reset_default_graph()
