"""Random interleavings of scope entries and exits across tasks (SPEC sections 3, 4, 5).

Hypothesis drives three real tasks (on asyncio and on trio) through a random script:
each step tells one task to enter a scope (``as_default`` of a few graphs, ``name_scope``,
``device``, ``control_dependencies``, the same three on a graph that need not be the
default, ``init_scope``, ``eager_mode``, ``graph_mode``, ``stop_recording``, a
``GradientTape``, or another task's open scope object), to leave its innermost scope
(with ``__exit__`` or ``__aexit__``), to leave scopes out of order or from the wrong task
(both must raise ``ScopeNestingError``), or to await. A pure-Python model keeps each
task's own stack of frames. After every step every task checks what it observes (mode,
default graph, name scopes, the context-switch log and its live devices, paused tapes, and
where a fresh op lands) against its model, so no task may see another task's scopes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from hypothesis import HealthCheck, given, settings, strategies as st, target

import scopeflow as sf
from scopeflow import _context

# On a failure Hypothesis imports libcst to print the example as a patch, and libcst's
# import warns; with ``filterwarnings = error`` that would hide the failure itself.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

N_TASKS = 3
MAX_STEPS = 50
ELSEWHERE = r"(was entered in a different context|it was entered elsewhere)"

# -- the model -------------------------------------------------------------------------

Device = tuple[str | None, str | None, str | None]  # (job, device type, device index)
NO_DEVICE: Device = (None, None, None)
DEVICE_SPECS: dict[str, Device] = {
    "/cpu:0": (None, "CPU", "0"),
    "/gpu:1": (None, "GPU", "1"),
    "/device:GPU:0": (None, "GPU", "0"),
    "/job:ps": ("ps", None, None),
}


def merge_device(outer: Device, spec: str | None) -> Device:
    """``device(spec)`` nested in ``outer``: named fields override, None clears."""
    if spec is None:
        return NO_DEVICE
    job, kind, index = DEVICE_SPECS[spec]
    if kind is None:
        kind, index = outer[1], outer[2]
    return (job or outer[0], kind, index)


def device_string(device: Device) -> str:
    job, kind, index = device
    return (f"/job:{job}" if job else "") + (f"/device:{kind}:{index}" if kind else "")


@dataclasses.dataclass(frozen=True)
class Record:
    """What one op-creation context (eager mode, or one graph) has open."""

    name: str = ""
    controls: tuple[sf.Operation, ...] = ()
    device: Device = NO_DEVICE


EAGER = "eager"  # the record key of the eager context; graphs are keyed by themselves


@dataclasses.dataclass(frozen=True)
class LogEntry:
    eager: bool
    graph: sf.Graph | None  # for eager entries: the graph that was default on entry
    building: bool


@dataclasses.dataclass(frozen=True)
class Frame:
    """The model of one task's state after some entries."""

    eager: bool
    graph: sf.Graph | None  # None: no graph entered, the global default graph applies
    records: dict[object, Record]  # never mutated: updates copy it
    log: tuple[LogEntry, ...]
    paused: bool
    tapes: tuple[sf.GradientTape, ...] = ()

    def record(self, key: object) -> Record:
        return self.records.get(key, Record())

    def with_record(self, key: object, record: Record, **changes: Any) -> Frame:
        return dataclasses.replace(self, records={**self.records, key: record}, **changes)


ROOT = Frame(True, None, {}, (LogEntry(True, None, False),), False)


@dataclasses.dataclass(frozen=True)
class Enter:
    """An entry action: ``kind`` with ``arg``, through ``__aenter__`` if ``use_async``."""

    kind: str
    arg: str | None
    use_async: bool


@dataclasses.dataclass
class Task:
    index: int
    frames: list[Frame] = dataclasses.field(default_factory=lambda: [ROOT])
    open: list[tuple[Any, Enter]] = dataclasses.field(default_factory=list)
    last_scope: str = ""
    callbacks: int = 0


class World:
    """The graphs every task shares, and the model of the names each graph has used."""

    def __init__(self) -> None:
        sf.reset_default_graph()
        self.global_graph = sf.get_default_graph()
        g0 = sf.Graph(name="g0")
        self.graphs: dict[str, sf.Graph] = {
            "g0": g0,
            "g1": sf.Graph(name="g1"),
            "fg": sf.FuncGraph("fg", outer_graph=g0),
            "global": self.global_graph,
        }
        self.anchors: dict[sf.Graph, dict[str, sf.Operation]] = {}
        self.used: dict[sf.Graph, dict[str, int]] = {}
        for g in self.graphs.values():
            with g.as_default():
                ops = {name: sf.no_op(name=name) for name in ("anchor0", "anchor1")}
            self.anchors[g] = {name: op for name, op in ops.items() if op is not None}
            self.used[g] = dict.fromkeys(ops, 1)
        self.ops_made = 0

    def context_graph(self, frame: Frame) -> sf.Graph:
        return frame.graph if frame.graph is not None else self.global_graph

    def key(self, frame: Frame) -> object:
        return EAGER if frame.eager else self.context_graph(frame)

    def entry_key(self, entry: LogEntry) -> object:
        if entry.eager:
            return EAGER
        return entry.graph if entry.graph is not None else self.global_graph

    def unique(self, graph: sf.Graph, name: str) -> str:
        """SPEC section 5: ``a``, ``a_1``, ... compared case-insensitively."""
        used = self.used[graph]
        key = name.lower()
        i = used.get(key, 0)
        used[key] = i + 1
        if i == 0:
            return name
        while f"{key}_{i}" in used:
            i += 1
        used[f"{key}_{i}"] = 1
        return f"{name}_{i}"

    # -- what an entry does to a task's frame -------------------------------------------

    def apply(self, frame: Frame, action: Enter, scope: Any) -> tuple[Frame, Any]:
        """(frame after entering ``scope`` for ``action`` in ``frame``, what
        ``__enter__`` returns)."""
        kind, arg = action.kind, action.arg
        key = self.key(frame)
        record = frame.record(key)
        if kind.startswith("on_graph_"):
            return self._apply_on_graph(frame, kind, self.graphs[arg or ""])
        if kind == "gradient_tape":
            return dataclasses.replace(frame, tapes=(*frame.tapes, scope)), scope
        if kind == "as_default":
            g = self.graphs[arg or ""]
            entry = LogEntry(False, g, g.building_function)
            new = dataclasses.replace(frame, eager=False, graph=g, log=(*frame.log, entry))
            return new, g
        if kind == "name_scope":
            name = self._name_scope(frame, record.name, arg)
            new = frame.with_record(key, dataclasses.replace(record, name=name))
            return new, f"{name}/" if name else ""
        if kind == "device":
            device = merge_device(record.device, arg)
            return frame.with_record(key, dataclasses.replace(record, device=device)), None
        if kind == "control_dependencies":
            if arg is None:
                controls: tuple[sf.Operation, ...] = ()
            elif frame.eager:
                controls = record.controls  # eager inputs already ran: nothing to record
            else:
                controls = (*record.controls, self.anchors[self.context_graph(frame)][arg])
            return frame.with_record(key, dataclasses.replace(record, controls=controls)), None
        if kind == "eager_mode":
            g = frame.graph
            while g is not None and g.building_function:
                g = g.outer_graph  # type: ignore[attr-defined]
            entry = LogEntry(True, g, False)
            return dataclasses.replace(frame, eager=True, graph=g, log=(*frame.log, entry)), None
        if kind == "graph_mode":
            return dataclasses.replace(frame, eager=False), None
        if kind == "stop_recording":
            return dataclasses.replace(frame, paused=True), None
        assert kind == "init_scope"
        return self._init_scope(frame, record), None

    def _apply_on_graph(self, frame: Frame, kind: str, g: sf.Graph) -> tuple[Frame, Any]:
        """``g.name_scope("u")``, ``g.device("/gpu:1")``, ``g.control_dependencies``:
        they change ``g``'s record whether or not ``g`` is the current context."""
        record = frame.record(g)
        if kind == "on_graph_name_scope":
            name = self.unique(g, f"{record.name}/u" if record.name else "u")
            return frame.with_record(g, dataclasses.replace(record, name=name)), f"{name}/"
        if kind == "on_graph_device":
            device = merge_device(record.device, "/gpu:1")
            return frame.with_record(g, dataclasses.replace(record, device=device)), None
        assert kind == "on_graph_control_dependencies"
        controls = (*record.controls, self.anchors[g]["anchor0"])
        return frame.with_record(g, dataclasses.replace(record, controls=controls)), None

    def _name_scope(self, frame: Frame, old: str, arg: str | None) -> str:
        if not arg:
            return ""
        if arg.endswith("/"):
            return arg[:-1]
        full = f"{old}/{arg}" if old else arg
        return full if frame.eager else self.unique(self.context_graph(frame), full)

    def _init_scope(self, frame: Frame, record: Record) -> Frame:
        """SPEC section 4, written from the spec's wording."""
        if frame.eager:
            return dataclasses.replace(frame, paused=True)
        device = record.device
        target: LogEntry | None = None
        if frame.graph is None:
            target = LogEntry(False, self.global_graph, False)
        else:
            for entry in reversed(frame.log):
                if device == NO_DEVICE:
                    device = frame.record(self.entry_key(entry)).device
                if not entry.building:
                    target = entry
                    break
        if target is None:
            target = LogEntry(False, self.global_graph, False)
        lifted = Record(record.name, (), device)
        return frame.with_record(
            self.entry_key(target),
            lifted,
            eager=target.eager,
            graph=target.graph,
            log=(*frame.log, target),
            paused=True,
        )

    # -- what the task must observe -----------------------------------------------------

    def check(self, frame: Frame) -> None:
        """Assert that the calling task observes exactly ``frame``."""
        graph = self.context_graph(frame)
        record = frame.record(self.key(frame))
        assert sf.executing_eagerly() is frame.eager
        assert sf.get_default_graph() is graph
        # A graph entered and not left counts even when eager mode (or an init_scope that
        # escaped to eager) hides it from get_default_graph().
        entered = frame.graph is not None or any(not e.eager for e in frame.log)
        assert sf.has_default_graph() is entered
        assert sf.inside_function() is graph.building_function
        assert sf.executing_eagerly_outside_functions() is self._eager_outside(frame)
        assert sf.get_name_scope() == record.name
        assert _context.recording_paused() is frame.paused
        # A frame holds one entry per open tape block; each names its tape.
        assert tuple(e._tape for e in _context.current()[_context.TAPES]) == frame.tapes
        for g in self.graphs.values():
            assert g.get_name_scope() == frame.record(g).name
        switches = sf.context_switches()
        assert [s.is_building_function for s in switches] == [e.building for e in frame.log]
        assert [s.device_stack for s in switches] == [
            device_string(frame.record(self.entry_key(e)).device) for e in frame.log
        ]
        if not frame.eager:
            self.ops_made += 1
            op_name = f"op{self.ops_made}"
            op = sf.no_op(name=op_name)
            assert op is not None
            full = f"{record.name}/{op_name}" if record.name else op_name
            self.unique(graph, full)
            assert op.graph is graph
            assert op.name == full
            assert op.device == device_string(record.device)
            assert set(op.control_inputs) == set(record.controls)
            assert len(op.control_inputs) == len(set(record.controls))

    def _eager_outside(self, frame: Frame) -> bool:
        if frame.eager:
            return True
        if frame.graph is None:
            return False
        for entry in reversed(frame.log):
            if not entry.building:
                return entry.eager
        return False


# -- the steps a task runs ---------------------------------------------------------------

Step = Callable[[], Awaitable[None]]


def make_scope(world: World, task: Task, action: Enter) -> Any:
    kind, arg = action.kind, action.arg
    if kind == "as_default":
        return world.graphs[arg or ""].as_default()
    if kind.startswith("on_graph_"):
        g = world.graphs[arg or ""]
        if kind == "on_graph_name_scope":
            return g.name_scope("u")
        if kind == "on_graph_device":
            return g.device("/gpu:1")
        return g.control_dependencies([world.anchors[g]["anchor0"]])
    if kind == "name_scope":
        return sf.name_scope(arg)
    if kind == "device":
        return sf.device(arg)
    if kind == "control_dependencies":
        if arg is None:
            return sf.control_dependencies(None)
        if sf.executing_eagerly():

            def callback() -> None:
                task.callbacks += 1

            return sf.control_dependencies([callback])
        return sf.control_dependencies([world.anchors[sf.get_default_graph()][arg]])
    factories: dict[str, Callable[[], Any]] = {
        "init_scope": sf.init_scope,
        "eager_mode": sf.eager_mode,
        "graph_mode": sf.graph_mode,
        "stop_recording": sf.stop_recording,
        "gradient_tape": sf.GradientTape,
    }
    return factories[kind]()


async def enter(world: World, task: Task, action: Enter, scope: Any) -> None:
    calls_before = task.callbacks
    returned = await scope.__aenter__() if action.use_async else scope.__enter__()
    frame, expected = world.apply(task.frames[-1], action, scope)
    if action.kind in ("as_default", "gradient_tape"):
        assert returned is expected
    else:
        assert returned == expected
    if action.kind.endswith("name_scope"):
        task.last_scope = returned or task.last_scope
    eager_callback = action.kind == "control_dependencies" and action.arg and frame.eager
    assert task.callbacks == calls_before + (1 if eager_callback else 0)
    task.frames.append(frame)
    task.open.append((scope, action))
    world.check(frame)


async def leave(world: World, task: Task, use_async: bool) -> None:
    scope, _ = task.open.pop()
    if use_async:
        await scope.__aexit__(None, None, None)
    else:
        scope.__exit__(None, None, None)
    task.frames.pop()
    world.check(task.frames[-1])


async def leave_out_of_order(world: World, task: Task, tasks: list[Task]) -> None:
    """Leave the second-innermost scope: both close, the state is as before it."""
    outer, inner = task.open[-2][0], task.open[-1][0]
    message = rf"^{re.escape(repr(outer))} was left while {re.escape(repr(inner))}, entered"
    with pytest.raises(sf.ScopeNestingError, match=message):
        outer.__exit__(None, None, None)
    del task.open[-2:]
    del task.frames[-2:]
    world.check(task.frames[-1])
    if all(scope is not inner for scope, _ in task.open):
        # Closed here; still open only if another task entered the same object.
        open_elsewhere = any(scope is inner for t in tasks for scope, _ in t.open)
        message = ELSEWHERE if open_elsewhere else r"is not open in this context"
        with pytest.raises(sf.ScopeNestingError, match=message):
            inner.__exit__(None, None, None)
        world.check(task.frames[-1])


async def leave_foreign(world: World, task: Task, scope: Any) -> None:
    """Try to leave another task's scope: an error, and nothing changes."""
    with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
        scope.__exit__(None, None, None)
    world.check(task.frames[-1])
    with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
        await scope.__aexit__(None, None, None)
    world.check(task.frames[-1])


async def checkpoint(world: World, task: Task) -> None:
    for _ in range(3):
        await anyio.sleep(0)
        world.check(task.frames[-1])


# -- drawing a script --------------------------------------------------------------------

NAME_ARGS: tuple[str | None, ...] = ("s", "S", "t", None)
DEVICE_ARGS: tuple[str | None, ...] = (*DEVICE_SPECS, None)
CONTROL_ARGS: tuple[str | None, ...] = ("anchor0", "anchor1", None)
# The kinds come first in an order that keeps Hypothesis' bias towards early choices
# from starving the interesting ones (init_scope, eager_mode inside function graphs).
KINDS = (
    "init_scope",
    "as_default",
    "eager_mode",
    "name_scope",
    "device",
    "control_dependencies",
    "graph_mode",
    "stop_recording",
    "on_graph_name_scope",
    "on_graph_device",
    "on_graph_control_dependencies",
    "gradient_tape",
)
# Kinds whose open objects another task (or the same one) may enter again: a control
# dependency names ops of one graph, and a tape records in one context at a time.
NOT_SHAREABLE = ("control_dependencies", "on_graph_control_dependencies", "gradient_tape")


def entry_args(task: Task, kind: str) -> tuple[str | None, ...]:
    if kind == "as_default" or kind.startswith("on_graph_"):
        return ("fg", "g0", "g1", "global")
    if kind == "name_scope":
        return (*NAME_ARGS, task.last_scope) if task.last_scope else NAME_ARGS
    if kind == "device":
        return DEVICE_ARGS
    if kind == "control_dependencies":
        return CONTROL_ARGS
    return (None,)


def draw_step(data: st.DataObject, world: World, tasks: list[Task]) -> tuple[int, Step] | None:
    """Pick a task and what it does next; None means every task awaits at once."""
    index = data.draw(st.integers(0, N_TASKS - 1), label="task")
    task = tasks[index]
    moves = ["enter", "enter", "enter", "enter", "enter", "checkpoint", "all_checkpoint"]
    if task.open:
        moves += ["leave", "leave"]
    if len(task.open) >= 2 and task.open[-1][0] is not task.open[-2][0]:
        moves.append("out_of_order")
    mine = {id(scope) for scope, _ in task.open}
    foreign = [
        other.open[-1][0]
        for other in tasks
        if other is not task and other.open and id(other.open[-1][0]) not in mine
    ]
    if foreign:
        moves.append("foreign")
    shareable = [t.open[-1] for t in tasks if t.open and t.open[-1][1].kind not in NOT_SHAREABLE]
    if shareable:
        moves.append("enter_existing")
    move = data.draw(st.sampled_from(moves), label="move")
    use_async = data.draw(st.booleans(), label="async")
    if move == "all_checkpoint":
        return None
    if move == "enter":
        kind = data.draw(st.sampled_from(KINDS), label="kind")
        arg = data.draw(st.sampled_from(entry_args(task, kind)), label="arg")
        action = Enter(kind, arg, use_async)

        async def step_enter() -> None:
            await enter(world, task, action, make_scope(world, task, action))

        return index, step_enter
    if move == "enter_existing":
        scope, previous = data.draw(st.sampled_from(shareable), label="existing")
        action = dataclasses.replace(previous, use_async=use_async)

        async def step_enter_existing() -> None:
            await enter(world, task, action, scope)

        return index, step_enter_existing
    steps: dict[str, Step] = {
        "checkpoint": lambda: checkpoint(world, task),
        "leave": lambda: leave(world, task, use_async),
        "out_of_order": lambda: leave_out_of_order(world, task, tasks),
    }
    if move == "foreign":
        scope = data.draw(st.sampled_from(foreign), label="foreign")
        return index, lambda: leave_foreign(world, task, scope)
    return index, steps[move]


# -- running the script on real tasks ----------------------------------------------------

Reply = BaseException | None


async def worker(
    commands: MemoryObjectReceiveStream[Step], replies: MemoryObjectSendStream[Reply]
) -> None:
    """Run each step in this task's own context and report how it went."""
    async with commands:
        async for step in commands:
            try:
                await step()
            except Exception as err:  # reported to the driver, which re-raises it
                await replies.send(err)
            else:
                await replies.send(None)


async def drive(data: st.DataObject, world: World, tasks: list[Task], run: Any) -> None:
    n_steps = data.draw(st.integers(1, MAX_STEPS), label="steps")
    variety = 0
    for _ in range(n_steps):
        drawn = draw_step(data, world, tasks)
        if drawn is None:
            await run([(t.index, _checkpoint_step(world, t)) for t in tasks])
        else:
            await run([drawn])
        # Every task, not only the one that moved, still sees exactly its own state.
        await run([(t.index, _check_step(world, t)) for t in tasks])
        variety = max(variety, *(len({a.kind for _, a in t.open}) for t in tasks))
    # Steer generation towards tasks holding many kinds of scopes at once, where the
    # kinds interact (control dependencies under init_scope, eager inside a function).
    target(float(variety), label="kinds of scope open at once in one task")
    for task in tasks:
        while task.open:
            await run([(task.index, _leave_step(world, task))])
        await run([(t.index, _check_step(world, t)) for t in tasks])
        assert task.frames == [ROOT]


def _checkpoint_step(world: World, task: Task) -> Step:
    return lambda: checkpoint(world, task)


def _check_step(world: World, task: Task) -> Step:
    async def step() -> None:
        world.check(task.frames[-1])

    return step


def _leave_step(world: World, task: Task) -> Step:
    return lambda: leave(world, task, False)


async def run_script(data: st.DataObject) -> None:
    world = World()
    tasks = [Task(i) for i in range(N_TASKS)]
    streams = [anyio.create_memory_object_stream[Step](1) for _ in tasks]
    reply_send, reply_receive = anyio.create_memory_object_stream[Reply](N_TASKS)
    failures: list[BaseException] = []

    async def run(steps: list[tuple[int, Step]]) -> None:
        for index, step in steps:
            await streams[index][0].send(step)
        errors = [await reply_receive.receive() for _ in steps]
        for err in errors:
            if err is not None:
                raise err

    async with reply_send, reply_receive, anyio.create_task_group() as tg:
        for _, receive in streams:
            tg.start_soon(worker, receive, reply_send)
        try:
            await drive(data, world, tasks, run)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as err:  # re-raised below, outside the task group
            # Hypothesis' own control-flow exceptions (raised by data.draw) included:
            # inside the task group they would come out wrapped in an exception group.
            failures.append(err)
        finally:
            for send, _ in streams:
                await send.aclose()
    if failures:
        raise failures[0]


# Each example runs in its own event loop (``anyio.run``), so Hypothesis' control-flow
# exceptions leave the loop like any error. asyncio runs without debug mode here: its
# per-callback stack capture makes this test five times slower, and the other
# concurrency tests already run asyncio in debug mode.
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_interleavings_keep_every_task_view_consistent(
    backend: str, data: st.DataObject
) -> None:
    anyio.run(run_script, data, backend=backend)
