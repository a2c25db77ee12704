"""The root frame: the state of every context without scopes (the process default mode).

It is the ContextVar's default and is also set in the importing context, so reading the
state needs no argument; ``disable_eager_execution`` / ``enable_eager_execution`` switch
it in place for every context that has entered no scope.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading

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


def test_an_empty_context_and_the_importing_one_read_the_same_root() -> None:
    assert _context.current() is _context.root_frame()
    in_empty = contextvars.Context().run(_context.current)
    assert in_empty is _context.root_frame()
    assert contextvars.Context().run(_view) == _view()


def test_the_mode_switch_reaches_contexts_copied_before_it() -> None:
    copied = contextvars.copy_context()  # holds the root, set in this context
    empty = contextvars.Context()  # holds nothing: reads the default
    try:
        sf.disable_eager_execution()
        for ctx in (copied, empty):
            assert ctx.run(sf.executing_eagerly) is False
            assert ctx.run(sf.context_switches) == ()
        assert not sf.executing_eagerly()
    finally:
        sf.enable_eager_execution()
    for ctx in (copied, empty):
        assert ctx.run(sf.executing_eagerly) is True
        assert len(ctx.run(sf.context_switches)) == 1


def test_a_task_created_before_the_switch_follows_it() -> None:
    async def main() -> list[bool]:
        seen: list[bool] = []
        started = asyncio.Event()
        switched = asyncio.Event()

        async def child() -> None:
            seen.append(sf.executing_eagerly())
            started.set()
            await switched.wait()
            seen.append(sf.executing_eagerly())

        task = asyncio.ensure_future(child())
        await started.wait()
        sf.disable_eager_execution()
        switched.set()
        await task
        return seen

    try:
        assert asyncio.run(main()) == [True, False]
    finally:
        sf.enable_eager_execution()


def test_contexts_inside_scopes_keep_their_mode_across_the_switch() -> None:
    with sf.name_scope("a"):
        try:
            sf.disable_eager_execution()
            assert sf.executing_eagerly()
            assert sf.get_name_scope() == "a"
        finally:
            sf.enable_eager_execution()
    sf.disable_eager_execution()
    try:
        with sf.name_scope("b"):
            sf.enable_eager_execution()
            assert not sf.executing_eagerly()
    finally:
        sf.enable_eager_execution()
    assert sf.executing_eagerly()


def test_the_root_is_never_changed_by_scopes() -> None:
    before = list(_context.root_frame())
    g = sf.Graph()
    with g.as_default(), sf.name_scope("a"), sf.device("/cpu:0"), sf.init_scope():
        pass
    with sf.name_scope("e"), sf.stop_recording(), sf.GradientTape():
        pass
    assert list(_context.root_frame()) == before


def test_a_snapshot_taken_at_the_root_keeps_its_mode() -> None:
    eager_snap = sf.copy_scopes()
    sf.disable_eager_execution()
    try:
        graph_snap = sf.copy_scopes()
        assert sf.run_in_scopes(eager_snap, sf.executing_eagerly) is True
        assert sf.run_in_scopes(graph_snap, sf.executing_eagerly) is False
    finally:
        sf.enable_eager_execution()
    assert sf.run_in_scopes(eager_snap, sf.executing_eagerly) is True
    assert sf.run_in_scopes(graph_snap, sf.executing_eagerly) is False
    assert sf.run_in_scopes(graph_snap, sf.context_switches) == ()


def test_a_plain_thread_reads_the_root_and_the_switch() -> None:
    seen: list[object] = []

    def probe() -> None:
        seen.append(_context.current() is _context.root_frame())
        seen.append(sf.executing_eagerly())

    sf.disable_eager_execution()
    try:
        t = threading.Thread(target=probe)
        t.start()
        t.join()
    finally:
        sf.enable_eager_execution()
    assert seen == [True, False]


def test_leaving_a_scope_from_an_empty_context_is_refused() -> None:
    scope = sf.name_scope("a")
    scope.__enter__()
    try:
        err = contextvars.Context().run(_capture_exit, scope)
        assert isinstance(err, sf.errors.ScopeNestingError)
        assert "different context" in str(err)
    finally:
        scope.__exit__(None, None, None)


def _capture_exit(scope: sf.name_scope) -> BaseException | None:
    try:
        scope.__exit__(None, None, None)
    except BaseException as e:  # returned to the test
        return e
    return None


# -- the global default graph as get_default_graph reads it -----------------------------


def test_get_default_graph_follows_reset_default_graph() -> None:
    first = sf.get_default_graph()
    assert first is _context.GLOBAL_GRAPH[0]
    with sf.name_scope("eager"):  # a frame whose GRAPH is None: "the global graph"
        sf.reset_default_graph()
        second = sf.get_default_graph()
    assert second is not first
    assert second is _context.GLOBAL_GRAPH[0] is sf.get_default_graph()
    assert contextvars.Context().run(sf.get_default_graph) is second
    with sf.graph_mode():
        assert sf.get_default_graph() is second
        assert sf.constant(1.0).graph is second


def test_graphs_are_always_true() -> None:
    # get_default_graph and the scopes test `frame[GRAPH] or ...`.
    for cls in (sf.Graph, sf.FuncGraph, *_subclasses(sf.Graph)):
        assert "__bool__" not in vars(cls)
        assert "__len__" not in vars(cls)
    assert sf.Graph()
    assert sf.FuncGraph("f")


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_scopes_at_the_root_while_another_thread_switches_the_mode(
    fast_switching: None,
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def switcher() -> None:
        while not stop.is_set():
            sf.disable_eager_execution()
            sf.enable_eager_execution()

    def user() -> None:
        try:
            for _ in range(300):
                before = _context.current()
                assert before is _context.root_frame()
                with sf.name_scope("a"), sf.init_scope(), sf.device("/cpu:0"):
                    assert isinstance(sf.executing_eagerly(), bool)
                    assert sf.get_name_scope().startswith("a")
                with sf.eager_mode():
                    assert sf.executing_eagerly()
                assert _context.current() is before
        except BaseException as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=switcher)
    users = [threading.Thread(target=user) for _ in range(2)]
    t.start()
    for u in users:
        u.start()
    for u in users:
        u.join()
    stop.set()
    t.join()
    sf.enable_eager_execution()
    assert errors == []
