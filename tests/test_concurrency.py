"""Per-task scope state (SPEC sections 3, 4, 5 and 12) on asyncio and trio.

Every async test runs on both backends through the ``anyio_backend`` fixture; tests of
asyncio-only APIs (``create_task``, ``gather``, ``to_thread``, ``run_in_executor``) pin
the backend with ``ASYNCIO_ONLY``. Tasks really interleave: they await inside open scopes
and assert after each await that they still see only their own state. Thread-based tests
live in ``test_threads.py``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import re
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

import scopeflow as sf
from scopeflow import _context

pytestmark = pytest.mark.anyio

ASYNCIO_ONLY = pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"debug": True}), id="asyncio")]
)

State = tuple[bool, sf.Graph, str, tuple[sf.ContextSwitch, ...], bool, bool, str, tuple[Any, ...]]
ELSEWHERE = r"(was entered in a different context|it was entered elsewhere)"


def _state() -> State:
    """Everything the calling task can observe of its scopes, without side effects."""
    switches = sf.context_switches()
    return (
        sf.executing_eagerly(),
        sf.get_default_graph(),
        sf.get_name_scope(),
        switches,
        sf.has_default_graph(),
        _context.recording_paused(),
        switches[-1].device_stack if switches else "",
        _context.current()[_context.TAPES],
    )


def _probe() -> tuple[sf.Graph, str, str, tuple[sf.Operation, ...]] | None:
    """Where a fresh op lands: (graph, name scope prefix, device, control inputs).

    None when executing eagerly (eager ops are not recorded anywhere).
    """
    if sf.executing_eagerly():
        return None
    op = sf.no_op(name="probe")
    assert op is not None
    return op.graph, op.name.rpartition("/")[0], op.device, op.control_inputs


def _full_state() -> tuple[State, Any]:
    return _state(), _probe()


class _Barrier:
    """Wait until ``parties`` tasks have arrived (anyio has no barrier of its own)."""

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._arrived = 0
        self._event = anyio.Event()

    async def wait(self) -> None:
        self._arrived += 1
        if self._arrived == self._parties:
            self._event.set()
        await self._event.wait()


async def _enter(stack: AsyncExitStack, scope: Any, enter_async: bool) -> Any:
    """Enter ``scope`` with ``async with`` or with ``with`` semantics on ``stack``."""
    if enter_async:
        return await stack.enter_async_context(scope)
    return stack.enter_context(scope)


def _anchor(graph: sf.Graph, name: str = "anchor") -> sf.Operation:
    with graph.as_default():
        op = sf.no_op(name=name)
    assert op is not None
    return op


# Fresh scopes of every kind, for a task whose default graph is ``graph``.
SCOPE_KINDS: dict[str, Callable[[sf.Graph], Any]] = {
    "as_default": lambda g: sf.Graph(name="other").as_default(),
    "name_scope": lambda g: sf.name_scope("kind"),
    "graph_name_scope": lambda g: g.name_scope("kind"),
    "graph_device": lambda g: g.device("/gpu:1"),
    "graph_control_dependencies": lambda g: g.control_dependencies([_anchor(g)]),
    "control_dependencies": lambda g: sf.control_dependencies([_anchor(g)]),
    "control_dependencies_none": lambda g: sf.control_dependencies(None),
    "device": lambda g: sf.device("/gpu:0"),
    "init_scope": lambda g: sf.init_scope(),
    "eager_mode": lambda g: sf.eager_mode(),
    "graph_mode": lambda g: sf.graph_mode(),
    "stop_recording": lambda g: sf.stop_recording(),
    "gradient_tape": lambda g: sf.GradientTape(),
}


@asynccontextmanager
async def _busy_scopes(g: sf.Graph, tag: str) -> AsyncIterator[sf.Operation]:
    """Open ``g``, a name scope, a device and a control dependency, so that the default
    graph, name scope, device and control inputs are all non-default inside. Yields the
    control input."""
    async with g.as_default():
        anchor = sf.no_op(name=f"{tag}_anchor")
        assert anchor is not None
        async with (
            sf.name_scope(tag),
            sf.device("/cpu:3"),
            sf.control_dependencies([anchor]),
        ):
            yield anchor


# -- tasks, each inside its own scopes ------------------------------------------------


async def _build_in_own_scopes(
    index: int, enter_async: bool, barrier: _Barrier, root: State
) -> sf.Graph:
    """Build ``g{index}`` under every kind of scope, awaiting between every two steps."""
    g = sf.Graph(name=f"g{index}")
    device = f"/device:CPU:{index}"
    async with AsyncExitStack() as stack:
        assert await _enter(stack, g.as_default(), enter_async) is g
        await anyio.sleep(0)
        assert sf.get_default_graph() is g
        assert not sf.executing_eagerly()
        head = sf.constant(float(index), name="head")
        await anyio.sleep(0)
        scope = await _enter(stack, sf.name_scope(f"task{index}"), enter_async)
        assert scope == f"task{index}/"
        await anyio.sleep(0)
        await _enter(stack, sf.device(f"/cpu:{index}"), enter_async)
        await anyio.sleep(0)
        await _enter(stack, sf.control_dependencies([head]), enter_async)
        await barrier.wait()  # every task has all its scopes open now
        assert sf.get_default_graph() is g
        assert sf.get_name_scope() == f"task{index}"
        x = sf.constant(1.0, name="x")
        await anyio.sleep(0)
        assert sf.get_name_scope() == f"task{index}"
        y = sf.add(x, x, name="y")
        await anyio.sleep(0)
        switches_before_init = sf.context_switches()
        await _enter(stack, sf.init_scope(), enter_async)
        await anyio.sleep(0)
        assert sf.get_default_graph() is g
        assert sf.get_name_scope() == f"task{index}"
        assert _context.recording_paused()
        assert len(sf.context_switches()) == len(switches_before_init) + 1
        lifted = sf.constant(2.0, name="lifted")
        await anyio.sleep(0)
        assert sf.get_default_graph() is g
    assert _state() == root
    assert [op.name for op in g.get_operations()] == [
        "head",
        f"task{index}/x",
        f"task{index}/y",
        f"task{index}/lifted",
    ]
    assert head.op.device == ""
    assert [t.op.device for t in (x, y, lifted)] == [device] * 3
    assert x.op.control_inputs == (head.op,)
    assert y.op.control_inputs == ()  # its input already waits for head
    assert lifted.op.control_inputs == ()  # init_scope clears control dependencies
    return g


@pytest.mark.parametrize("n_tasks", [2, 50])
@pytest.mark.parametrize("enter_async", [False, True], ids=["with", "async_with"])
async def test_tasks_build_their_own_graphs_under_every_scope(
    n_tasks: int, enter_async: bool
) -> None:
    root = _state()
    barrier = _Barrier(n_tasks)
    graphs: dict[int, sf.Graph] = {}

    async def run(index: int) -> None:
        graphs[index] = await _build_in_own_scopes(index, enter_async, barrier, root)

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(run, i)
    assert len({id(g) for g in graphs.values()}) == n_tasks
    assert _state() == root
    assert sf.get_default_graph().get_operations() == []


@pytest.mark.parametrize("n_tasks", [2, 50])
async def test_tasks_lift_out_of_their_own_function_graphs(n_tasks: int) -> None:
    barrier = _Barrier(n_tasks)
    global_graph = sf.get_default_graph()

    async def graph_outer(index: int) -> None:
        outer = sf.Graph(name=f"outer{index}")
        fg = sf.FuncGraph(f"f{index}", outer_graph=outer)
        async with outer.as_default(), sf.device(f"/cpu:{index}"):
            await anyio.sleep(0)
            async with fg.as_default(), sf.name_scope("fn"):
                inner = sf.no_op(name="inner")
                async with sf.control_dependencies([inner]):
                    await barrier.wait()
                    assert sf.inside_function()
                    async with sf.init_scope():
                        await anyio.sleep(0)
                        assert sf.get_default_graph() is outer
                        assert not sf.inside_function()
                        assert not sf.executing_eagerly()
                        lifted = sf.constant(1.0, name="lifted")
                        await anyio.sleep(0)
                    assert sf.get_default_graph() is fg
                    stays = sf.constant(2.0, name="stays")
        assert [op.name for op in outer.get_operations()] == ["fn/lifted"]
        assert lifted.op.device == f"/device:CPU:{index}"
        assert lifted.op.control_inputs == ()
        assert stays.graph is fg
        assert stays.op.control_inputs == (inner,)

    async def eager_outer(index: int) -> None:
        fg = sf.FuncGraph(f"f{index}")
        async with sf.name_scope(f"eager{index}"), fg.as_default():
            await barrier.wait()
            async with sf.init_scope():
                await anyio.sleep(0)
                assert sf.executing_eagerly()
                assert sf.get_default_graph() is global_graph
                assert not sf.inside_function()
                value = sf.constant(float(index))
                await anyio.sleep(0)
                assert sf.executing_eagerly()
            assert sf.get_default_graph() is fg
            assert not sf.executing_eagerly()
        assert isinstance(value, sf.EagerTensor)
        assert value.numpy() == float(index)
        assert fg.get_operations() == []

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(graph_outer if i % 2 == 0 else eager_outer, i)
    assert global_graph.get_operations() == []


async def test_modes_and_eager_scopes_are_per_task() -> None:
    n_tasks = 12
    barrier = _Barrier(n_tasks)
    root = _state()

    async def in_eager(index: int) -> None:
        async with sf.graph_mode(), sf.eager_mode(), sf.name_scope(f"e{index}") as scope:
            assert scope == f"e{index}/"
            async with sf.name_scope("inner") as inner, sf.device(f"/gpu:{index}"):
                await barrier.wait()
                assert inner == f"e{index}/inner/"
                assert sf.executing_eagerly()
                assert sf.get_name_scope() == f"e{index}/inner"
                assert sf.context_switches()[-1].device_stack == f"/device:GPU:{index}"
                assert not _context.recording_paused()
                await anyio.sleep(0)
                assert sf.get_name_scope() == f"e{index}/inner"
        assert _state() == root

    async def in_graph_mode(index: int) -> None:
        async with sf.graph_mode(), sf.stop_recording(), sf.name_scope(f"m{index}"):
            await barrier.wait()
            assert not sf.executing_eagerly()
            assert not sf.has_default_graph()
            assert _context.recording_paused()
            await anyio.sleep(0)
            op = sf.no_op(name="op")
            assert op is not None
            assert op.graph is root[1]
            assert op.name == f"m{index}/op"
        assert _state() == root

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(in_eager if i % 2 == 0 else in_graph_mode, i)
    assert sorted(op.name for op in root[1].get_operations()) == sorted(
        f"m{i}/op" for i in range(1, n_tasks, 2)
    )


async def test_many_tasks_build_one_shared_graph_with_their_own_scopes() -> None:
    n_tasks, n_ops = 50, 5
    shared = sf.Graph(name="shared")
    barrier = _Barrier(n_tasks)
    built: dict[int, tuple[str, sf.Operation, list[sf.Tensor]]] = {}

    async def build(index: int) -> None:
        async with shared.as_default():
            await anyio.sleep(0)
            anchor = sf.no_op(name=f"anchor{index}")
            assert anchor is not None
            async with sf.name_scope("worker") as scope:
                await anyio.sleep(0)
                async with (
                    sf.device(f"/job:w{index}"),
                    sf.device(f"/gpu:{index % 4}"),  # a partial spec merges per task
                    sf.control_dependencies([anchor]),
                ):
                    await barrier.wait()
                    tensors = []
                    for k in range(n_ops):
                        assert sf.get_default_graph() is shared
                        assert sf.get_name_scope() == scope[:-1]
                        tensors.append(sf.constant(float(k), name="c"))
                        await anyio.sleep(0)
        built[index] = (scope, anchor, tensors)

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(build, i)

    names = [op.name for op in shared.get_operations()]
    assert len(names) == n_tasks * (n_ops + 1)
    assert len(set(names)) == len(names)
    scopes = {scope for scope, _, _ in built.values()}
    assert scopes == {"worker/"} | {f"worker_{k}/" for k in range(1, n_tasks)}
    for index, (scope, anchor, tensors) in built.items():
        assert anchor.name == f"anchor{index}"
        assert anchor.control_inputs == ()
        assert [t.op.name for t in tensors] == [scope + "c"] + [
            f"{scope}c_{k}" for k in range(1, n_ops)
        ]
        for t in tensors:
            assert t.op.device == f"/job:w{index}/device:GPU:{index % 4}"
            assert t.op.control_inputs == (anchor,)
            assert t.graph is shared


# -- children ----------------------------------------------------------------------------


async def test_children_start_from_the_snapshot_taken_at_spawn_time() -> None:
    g = sf.Graph(name="g")
    global_graph = sf.get_default_graph()
    all_running = _Barrier(3)
    seen: dict[str, tuple[sf.Graph, str]] = {}

    async def child(tag: str) -> None:
        seen[tag] = (sf.get_default_graph(), sf.get_name_scope())
        await all_running.wait()
        assert (sf.get_default_graph(), sf.get_name_scope()) == seen[tag]

    async with anyio.create_task_group() as tg:
        with g.as_default(), sf.name_scope("at_spawn"):
            tg.start_soon(child, "spawned_inside")
        # Those scopes are left before the child first runs; it still starts inside them.
        tg.start_soon(child, "spawned_outside")
        with sf.name_scope("entered_after_spawn"):
            await all_running.wait()  # both children run while the parent is in here
    assert seen == {
        "spawned_inside": (g, "at_spawn"),
        "spawned_outside": (global_graph, ""),
    }


async def test_child_scopes_never_reach_parent_or_siblings() -> None:
    g, h = sf.Graph(name="g"), sf.Graph(name="h")
    a_entered, b_entered = anyio.Event(), anyio.Event()
    parent_changed, a_done = anyio.Event(), anyio.Event()

    async def grandchild() -> None:
        assert sf.get_name_scope() == "parent/a"
        op = sf.no_op(name="grand")
        assert op is not None
        assert op.device == "/device:GPU:0"
        async with sf.name_scope("deeper"):
            await anyio.sleep(0)

    async def child_a() -> None:
        assert sf.get_default_graph() is g
        assert sf.get_name_scope() == "parent"
        async with sf.name_scope("a") as scope, sf.device("/gpu:0"):
            assert scope == "parent/a/"
            async with anyio.create_task_group() as inner:
                inner.start_soon(grandchild)
            assert sf.get_name_scope() == "parent/a"
            a_entered.set()
            await parent_changed.wait()
            # The parent is inside h and "later" by now; this child still sees g.
            assert sf.get_default_graph() is g
            assert sf.get_name_scope() == "parent/a"
            op = sf.no_op(name="in_a")
            assert op is not None
            assert (op.graph, op.name, op.device) == (g, "parent/a/in_a", "/device:GPU:0")
        assert sf.get_default_graph() is g
        assert sf.get_name_scope() == "parent"
        a_done.set()

    async def child_b() -> None:
        await a_entered.wait()
        assert sf.get_name_scope() == "parent"
        op = sf.no_op(name="in_b")
        assert op is not None
        assert (op.name, op.device) == ("parent/in_b", "")
        async with sf.name_scope("b") as scope:
            assert scope == "parent/b/"
            b_entered.set()
            await parent_changed.wait()
            assert sf.get_default_graph() is g
            assert sf.get_name_scope() == "parent/b"

    async with g.as_default(), sf.name_scope("parent"):
        parent_state = _state()
        async with anyio.create_task_group() as tg:
            tg.start_soon(child_a)
            tg.start_soon(child_b)
            await a_entered.wait()
            await b_entered.wait()
            assert _state() == parent_state
            assert _probe() == (g, "parent", "", ())
            async with h.as_default(), sf.name_scope("later"):
                parent_changed.set()
                await a_done.wait()
                assert sf.get_default_graph() is h
                assert sf.get_name_scope() == "later"
        assert _state() == parent_state
    assert {op.name for op in g.get_operations()} == {
        "parent/a/grand",
        "parent/a/in_a",
        "parent/in_b",
        "parent/probe",
    }
    assert h.get_operations() == []


@ASYNCIO_ONLY
async def test_asyncio_create_task_and_gather_children_are_isolated() -> None:
    g = sf.Graph(name="g")

    async def child(tag: str) -> tuple[tuple[sf.Graph, str], str]:
        at_start = (sf.get_default_graph(), sf.get_name_scope())
        async with sf.name_scope(tag) as scope:
            for _ in range(3):
                await asyncio.sleep(0)
                assert sf.get_name_scope() == scope[:-1]
        assert (sf.get_default_graph(), sf.get_name_scope()) == at_start
        return at_start, scope

    async with g.as_default(), sf.name_scope("parent"):
        parent_state = _state()
        task = asyncio.create_task(child("created"))
        async with sf.name_scope("entered_after_create_task"):
            at_start, scope = await task
        assert at_start == (g, "parent")
        assert scope == "parent/created/"
        results = await asyncio.gather(child("x"), child("y"), child("x"))
        assert _state() == parent_state
    assert [r[0] for r in results] == [(g, "parent")] * 3
    assert [r[1] for r in results] == ["parent/x/", "parent/y/", "parent/x_1/"]


# -- misuse: exits from the wrong task, out of order, shared scope objects -------------


@pytest.mark.parametrize("kind", list(SCOPE_KINDS))
async def test_exit_from_another_task_raises_and_changes_nothing(kind: str) -> None:
    g, other = sf.Graph(name="g"), sf.Graph(name="other_task")
    holder: list[Any] = []
    entered, tried = anyio.Event(), anyio.Event()

    async def owner() -> None:
        async with _busy_scopes(g, "owner"):
            scope = SCOPE_KINDS[kind](g)
            scope.__enter__()
            holder.append(scope)
            inside = _full_state()
            entered.set()
            await tried.wait()
            assert _full_state()[0] == inside[0]
            scope.__exit__(None, None, None)

    async def intruder() -> None:
        await entered.wait()
        async with _busy_scopes(other, "intruder"):
            before = _full_state()
            with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE) as info:
                holder[0].__exit__(None, None, None)
            assert repr(holder[0]) in str(info.value)
            await anyio.sleep(0)
            with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
                await holder[0].__aexit__(None, None, None)
            assert _full_state()[0] == before[0]
            assert _probe() == before[1]
        tried.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(owner)
        tg.start_soon(intruder)


async def test_child_cannot_leave_a_scope_its_parent_entered() -> None:
    g = sf.Graph(name="g")
    scope = sf.name_scope("parents")
    with g.as_default():
        scope.__enter__()
        parent_state = _state()
        errors: list[str] = []

        async def child() -> None:
            child_state = _state()
            assert child_state == parent_state  # the child sees the parent's frame
            with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE) as info:
                scope.__exit__(None, None, None)
            errors.append(str(info.value))
            assert _state() == child_state
            async with sf.device("/cpu:0"):
                with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
                    scope.__exit__(None, None, None)
                assert sf.get_name_scope() == "parents"

        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
        assert _state() == parent_state
        scope.__exit__(None, None, None)
        assert sf.get_name_scope() == ""
    assert errors[0].startswith("name_scope('parents')")


MISNEST_PAIRS: dict[str, Callable[[sf.Graph], tuple[Any, Any]]] = {
    "as_default/name_scope": lambda g: (sf.Graph(name="a").as_default(), sf.name_scope("b")),
    "name_scope/device": lambda g: (sf.name_scope("a"), sf.device("/gpu:1")),
    "init_scope/control_dependencies": lambda g: (
        sf.init_scope(),
        sf.control_dependencies([_anchor(g)]),
    ),
    "device/eager_mode": lambda g: (sf.device("/cpu:1"), sf.eager_mode()),
    "stop_recording/as_default": lambda g: (sf.stop_recording(), sf.Graph().as_default()),
    "graph_mode/init_scope": lambda g: (sf.graph_mode(), sf.init_scope()),
    "gradient_tape/stop_recording": lambda g: (sf.GradientTape(), sf.stop_recording()),
}


@pytest.mark.parametrize("pair", list(MISNEST_PAIRS))
async def test_out_of_order_exit_restores_the_state_before_the_outer_scope(pair: str) -> None:
    g, bystander_graph = sf.Graph(name="g"), sf.Graph(name="bystander")
    first_left, done = anyio.Event(), anyio.Event()

    async def bystander() -> None:
        async with _busy_scopes(bystander_graph, "bystander"):
            before = _full_state()
            await first_left.wait()
            assert _full_state()[0] == before[0]
            assert _probe() == before[1]
            await done.wait()
            assert _state() == before[0]

    async def misnester() -> None:
        fg = sf.FuncGraph("f", outer_graph=g)
        async with _busy_scopes(g, "misnester"), fg.as_default():
            outer, inner = MISNEST_PAIRS[pair](g)
            before = _full_state()
            outer.__enter__()
            await anyio.sleep(0)
            inner.__enter__()
            await anyio.sleep(0)
            message = (
                rf"^{re.escape(repr(outer))} was left while {re.escape(repr(inner))}, "
                r"entered inside it, was still open"
            )
            with pytest.raises(sf.ScopeNestingError, match=message):
                outer.__exit__(None, None, None)
            first_left.set()
            assert _full_state()[0] == before[0]
            assert _probe() == before[1]
            await anyio.sleep(0)
            with pytest.raises(sf.ScopeNestingError, match=r"is not open in this context"):
                inner.__exit__(None, None, None)
            assert _state() == before[0]
            with pytest.raises(sf.ScopeNestingError, match=r"is not open in this context"):
                await outer.__aexit__(None, None, None)
            assert _state() == before[0]
            # Both objects may be used again.
            with outer, inner:
                await anyio.sleep(0)
            assert _state() == before[0]
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(bystander)
        tg.start_soon(misnester)


async def test_scope_object_entered_twice_nested_and_again_after_leaving() -> None:
    g = sf.Graph(name="g")
    switch_count = len(sf.context_switches())
    twice = g.as_default()
    name = sf.name_scope("x")
    async with twice as first:
        async with twice as second, name as outer_scope:
            assert first is second is g
            assert len(sf.context_switches()) == switch_count + 2
            async with name as inner_scope:
                await anyio.sleep(0)
                assert sf.get_name_scope() == "x/x"
            assert (outer_scope, inner_scope) == ("x/", "x/x/")
            assert sf.get_name_scope() == "x"
        assert len(sf.context_switches()) == switch_count + 1
        assert sf.get_name_scope() == ""
        with name as again:
            assert again == "x_1/"
    assert len(sf.context_switches()) == switch_count
    assert not sf.has_default_graph()


SHARED_KINDS: dict[str, Callable[[], Any]] = {
    "as_default": lambda: sf.Graph(name="shared").as_default(),
    "name_scope": lambda: sf.name_scope("shared"),
    "device": lambda: sf.device("/gpu:2"),
    "init_scope": lambda: sf.init_scope(),
    "eager_mode": lambda: sf.eager_mode(),
    "stop_recording": lambda: sf.stop_recording(),
}


def _check_shared_entry(kind: str, graph: sf.Graph, tag: str, seen: tuple[State, Any]) -> None:
    """``seen`` is what the task ``tag`` (inside ``graph`` -> ``f_<tag>`` -> name scope
    ``tag``) observed inside its entry of the shared scope object."""
    state, probe = seen
    if kind == "as_default":
        assert state[1].name == "shared"
    elif kind == "init_scope":
        assert (state[1], state[2], probe[0]) == (graph, tag, graph)
    elif kind == "eager_mode":
        assert (state[0], state[1], probe) == (True, graph, None)
    else:
        assert state[1].name == f"f_{tag}"  # still the task's own function graph
        if kind == "name_scope":
            assert state[2] == f"{tag}/shared"
        elif kind == "device":
            assert probe[2] == "/device:GPU:2"
        else:
            assert state[5] is True  # tapes paused


@pytest.mark.parametrize("kind", list(SHARED_KINDS))
@pytest.mark.parametrize("leaves_first", ["one", "two"])
async def test_scope_object_entered_by_two_tasks_at_once(kind: str, leaves_first: str) -> None:
    graphs = {"one": sf.Graph(name="one"), "two": sf.Graph(name="two")}
    shared = SHARED_KINDS[kind]()
    one_entered = anyio.Event()
    both_in = _Barrier(2)
    left = {tag: anyio.Event() for tag in graphs}
    seen: dict[str, tuple[State, Any]] = {}

    async def user(tag: str) -> None:
        g = graphs[tag]
        async with g.as_default(), sf.FuncGraph(f"f_{tag}", g).as_default(), sf.name_scope(tag):
            before = _state()
            if tag == "two":
                await one_entered.wait()
            async with shared:
                seen[tag] = _full_state()
                one_entered.set()
                await both_in.wait()  # the object is open in both tasks now
                await anyio.sleep(0)
                assert _state() == seen[tag][0]
                if tag != leaves_first:
                    await left[leaves_first].wait()
                    assert _state() == seen[tag][0]
            assert _state() == before
            left[tag].set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(user, "one")
        tg.start_soon(user, "two")
    for tag, g in graphs.items():
        _check_shared_entry(kind, g, tag, seen[tag])
    with shared:  # and it can be entered again afterwards
        pass


# -- cancellation and exceptions ---------------------------------------------------------


@asynccontextmanager
async def _setup(kind: str) -> AsyncIterator[None]:
    """The context an ``init_scope`` test runs in."""
    g = sf.Graph(name="outer")
    async with AsyncExitStack() as stack:
        if kind == "function_in_graph":
            anchor = _anchor(g)
            await stack.enter_async_context(g.as_default())
            await stack.enter_async_context(sf.device("/cpu:0"))
            await stack.enter_async_context(sf.control_dependencies([anchor]))
            await stack.enter_async_context(sf.FuncGraph("f", g).as_default())
            await stack.enter_async_context(sf.name_scope("n"))
        elif kind == "function_in_eager":
            await stack.enter_async_context(sf.name_scope("n"))
            await stack.enter_async_context(sf.FuncGraph("f").as_default())
        elif kind == "graph":
            await stack.enter_async_context(g.as_default())
            await stack.enter_async_context(sf.control_dependencies([_anchor(g)]))
        else:
            await stack.enter_async_context(sf.name_scope("eager"))
        yield


SETUPS = ["function_in_graph", "function_in_eager", "graph", "eager"]


@pytest.mark.parametrize("setup", SETUPS)
async def test_cancellation_inside_async_init_scope_restores_every_piece_of_state(
    setup: str,
) -> None:
    root = _state()
    entered = anyio.Event()
    observed: dict[str, Any] = {}

    async def victim() -> None:
        try:
            async with _setup(setup):
                observed["before"] = _full_state()
                try:
                    async with sf.init_scope():
                        observed["inside"] = _state()
                        entered.set()
                        await anyio.sleep_forever()
                finally:
                    observed["after"] = _full_state()
        finally:
            observed["left"] = _state()

    async with anyio.create_task_group() as tg:
        tg.start_soon(victim)
        await entered.wait()
        tg.cancel_scope.cancel()
    assert observed["after"] == observed["before"]
    assert observed["inside"][5] is True  # tapes were paused in the body
    assert observed["before"][0][5] is False
    assert observed["left"] == root
    assert _state() == root


async def test_cancellation_inside_async_as_default_restores_every_piece_of_state() -> None:
    g, h = sf.Graph(name="g"), sf.Graph(name="h")
    observed: dict[str, Any] = {}
    with anyio.CancelScope() as cancel:
        async with _busy_scopes(g, "busy"):
            observed["before"] = _full_state()
            try:
                async with h.as_default(), sf.name_scope("in_h"):
                    observed["inside"] = _state()
                    cancel.cancel()
                    await anyio.sleep(0)
            except anyio.get_cancelled_exc_class():
                observed["after"] = _full_state()
                raise
    assert cancel.cancelled_caught
    assert observed["inside"][1] is h
    assert observed["after"] == observed["before"]
    assert not sf.has_default_graph()


class _BodyError(Exception):
    pass


async def _raise_inside(scope: Any, enter_async: bool) -> None:
    async with AsyncExitStack() as stack:
        await _enter(stack, scope, enter_async)
        await anyio.sleep(0)
        raise _BodyError


@pytest.mark.parametrize("kind", list(SCOPE_KINDS))
@pytest.mark.parametrize("enter_async", [False, True], ids=["with", "async_with"])
async def test_exception_inside_the_body_restores_state(kind: str, enter_async: bool) -> None:
    g = sf.Graph(name="g")
    fg = sf.FuncGraph("f", g)
    async with _busy_scopes(g, "busy"), fg.as_default():
        before = _full_state()
        with pytest.raises(_BodyError):
            await _raise_inside(SCOPE_KINDS[kind](fg), enter_async)
        assert _full_state()[0] == before[0]
        assert _probe() == before[1]


# -- sync generators leak their scopes into the caller (documented limitation) ---------


def test_sync_generator_scope_leaks_into_the_caller_until_resumed() -> None:
    g = sf.Graph(name="g")
    root = _state()

    def scoped() -> Iterator[str]:
        with g.as_default(), sf.name_scope("gen"):
            yield sf.get_name_scope()
            yield sf.get_name_scope()

    gen = scoped()
    assert next(gen) == "gen"
    # Suspended at the yield: the generator's scopes are the caller's now.
    assert sf.get_default_graph() is g
    assert sf.get_name_scope() == "gen"
    leaked = sf.constant(1.0, name="leaked")
    assert leaked.op.name == "gen/leaked"
    assert next(gen) == "gen"
    assert sf.get_name_scope() == "gen"
    assert next(gen, None) is None
    assert _state() == root


def test_sync_generator_resumed_after_the_caller_entered_a_scope_is_misnested() -> None:
    g = sf.Graph(name="g")
    root = _state()

    def scoped() -> Iterator[None]:
        with g.as_default():
            yield

    gen = scoped()
    next(gen)
    caller_scope = sf.name_scope("caller")
    caller_scope.__enter__()
    with pytest.raises(sf.ScopeNestingError, match=r"^<sf.Graph 'g'>.as_default\(\) was left"):
        next(gen)
    assert _state() == root
    with pytest.raises(sf.ScopeNestingError, match=r"^name_scope\('caller'\) is not open"):
        caller_scope.__exit__(None, None, None)
    assert _state() == root


# -- reset_default_graph ---------------------------------------------------------------


async def test_reset_default_graph_inside_as_default_raises_and_spares_other_tasks() -> None:
    old_global = sf.get_default_graph()
    g, h = sf.Graph(name="g"), sf.Graph(name="h")
    holding, failed, reset_done = anyio.Event(), anyio.Event(), anyio.Event()
    after_leaving: list[sf.Graph] = []

    async def holder() -> None:
        async with g.as_default(), sf.name_scope("kept"):
            holding.set()
            await failed.wait()
            assert (sf.get_default_graph(), sf.get_name_scope()) == (g, "kept")
            await reset_done.wait()
            assert (sf.get_default_graph(), sf.get_name_scope()) == (g, "kept")
        after_leaving.append(sf.get_default_graph())

    async def resetter() -> None:
        await holding.wait()
        async with h.as_default(), sf.name_scope("mine"):
            before = _state()
            with pytest.raises(
                sf.ScopeNestingError,
                match=r"^reset_default_graph\(\) was called inside <sf.Graph 'h'>.as_default\(\); "
                r"exit the nested graphs first",
            ):
                sf.reset_default_graph()
            assert _state() == before
        assert sf.get_default_graph() is old_global
        failed.set()
        sf.reset_default_graph()
        assert sf.get_default_graph() is not old_global
        reset_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        tg.start_soon(resetter)
    new_global = sf.get_default_graph()
    assert new_global is not old_global
    assert after_leaving == [new_global]


@pytest.mark.parametrize("has_outer_graph", [True, False], ids=["outer_graph", "no_outer_graph"])
async def test_reset_default_graph_inside_eager_mode_within_a_function_graph_raises(
    has_outer_graph: bool,
) -> None:
    # SPEC section 5: the function graph is still on this task's default-graph stack
    # while eager_mode() makes the body execute eagerly, whether or not it has an outer
    # graph.
    old_global = sf.get_default_graph()
    fg = sf.FuncGraph("f", outer_graph=sf.Graph(name="outer") if has_outer_graph else None)
    async with fg.as_default():
        async with sf.eager_mode():
            await anyio.sleep(0)
            assert sf.executing_eagerly()
            with pytest.raises(sf.ScopeNestingError, match=r"exit the nested graphs first"):
                sf.reset_default_graph()
        assert sf.get_default_graph() is fg
    assert sf.get_default_graph() is old_global


# -- SPEC section 11's concurrency scenario, at correctness scale ----------------------


async def test_500_tasks_build_20_op_graphs_exactly_and_release_them() -> None:
    n_tasks, n_ops = 500, 20
    root = _state()
    refs: list[weakref.ref[sf.Graph]] = []
    checked: list[int] = []

    async def build(index: int) -> None:
        g = sf.Graph(name=f"task{index}")
        refs.append(weakref.ref(g))
        async with g.as_default():
            x = sf.constant(float(index), name="x")
            await anyio.sleep(0)
            for _ in range(n_ops - 1):
                assert sf.get_default_graph() is g
                x = sf.add(x, x)
                await anyio.sleep(0)
        assert _state() == root
        ops = g.get_operations()
        assert [op.name for op in ops] == ["x", "Add"] + [f"Add_{k}" for k in range(1, n_ops - 1)]
        for previous, op in itertools.pairwise(ops):
            assert op.inputs == (previous.outputs[0], previous.outputs[0])
            assert op.graph is g
        assert sf.Session(g).run(x) == index * 2 ** (n_ops - 1)
        checked.append(index)

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(build, i)
    assert sorted(checked) == list(range(n_tasks))
    assert _state() == root
    gc.collect()
    assert [r for r in refs if r() is not None] == []
