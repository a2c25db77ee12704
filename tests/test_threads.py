"""Scopes across threads and executors (SPEC sections 3 and 12.2-12.3).

``anyio.to_thread.run_sync``, ``asyncio.to_thread``, :func:`sf.run_in_scopes` and
:class:`sf.ScopedExecutor` carry the caller's scopes into the worker thread; a plain
``threading.Thread`` and ``loop.run_in_executor`` start from an empty context: the process
default mode and the process-wide global default graph.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio
import pytest

import scopeflow as sf
from scopeflow import _context

T = TypeVar("T")

ASYNCIO_ONLY = pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"debug": True}), id="asyncio")]
)
ELSEWHERE = r"(was entered in a different context|it was entered elsewhere)"

Observed = tuple[bool, sf.Graph, bool, str, tuple[bool, ...], bool, Any]


def _observe() -> Observed:
    """What the calling thread sees: mode, default graph, whether a graph was entered,
    name scope, the log's function flags, tapes paused, and where a fresh op lands."""
    probe = None
    if not sf.executing_eagerly():
        op = sf.no_op(name="probe")
        assert op is not None
        probe = (op.graph, op.name, op.device, op.control_inputs)
    return (
        sf.executing_eagerly(),
        sf.get_default_graph(),
        sf.has_default_graph(),
        sf.get_name_scope(),
        tuple(s.is_building_function for s in sf.context_switches()),
        _context.recording_paused(),
        probe,
    )


def _in_plain_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new ``threading.Thread``; return its result or raise its error."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(fn())
        except BaseException as err:  # re-raised in the calling thread below
            errors.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def _empty_context_view(global_graph: sf.Graph) -> Observed:
    """What a context without scopes sees in the default eager mode."""
    return (True, global_graph, False, "", (False,), False, None)


# -- contexts copied into the thread -------------------------------------------------


@pytest.mark.anyio
async def test_to_thread_run_sync_sees_the_callers_scopes() -> None:
    g = sf.Graph(name="g")
    async with g.as_default():
        anchor = sf.no_op(name="anchor")
        async with (
            sf.name_scope("caller"),
            sf.device("/cpu:1"),
            sf.control_dependencies([anchor]),
            sf.stop_recording(),
        ):
            before = _observe()

            def in_thread() -> Observed:
                assert threading.current_thread() is not threading.main_thread()
                seen = _observe()
                # Left open on purpose: it dies with the thread's copy of the context.
                sf.name_scope("left_open_in_thread").__enter__()
                return seen

            seen = await anyio.to_thread.run_sync(in_thread)
            assert _observe()[:6] == before[:6]
    assert seen[:6] == (False, g, True, "caller", (False, False), True)
    assert seen[6] == (g, "caller/probe_1", "/device:CPU:1", (anchor,))


@pytest.mark.anyio
async def test_concurrent_to_thread_calls_each_see_their_own_task() -> None:
    n_tasks = 4
    together = threading.Barrier(n_tasks)
    graphs = [sf.Graph(name=f"g{i}") for i in range(n_tasks)]
    seen: dict[int, Observed] = {}

    def in_thread() -> Observed:
        together.wait(timeout=30)  # every worker thread is alive at once
        return _observe()

    async def task(index: int) -> None:
        async with graphs[index].as_default(), sf.name_scope(f"t{index}"):
            async with sf.device(f"/gpu:{index}"):
                seen[index] = await anyio.to_thread.run_sync(in_thread)
                assert sf.get_name_scope() == f"t{index}"

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(task, i)
    for index, g in enumerate(graphs):
        assert seen[index][1] is g
        assert seen[index][3] == f"t{index}"
        assert seen[index][6] == (g, f"t{index}/probe", f"/device:GPU:{index}", ())


@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_asyncio_to_thread_sees_the_callers_scopes() -> None:
    g = sf.Graph(name="g")
    async with g.as_default(), sf.name_scope("caller"), sf.device("/gpu:3"):
        seen = await asyncio.to_thread(_observe)
        assert sf.get_name_scope() == "caller"
    assert seen[:4] == (False, g, True, "caller")
    assert seen[6] == (g, "caller/probe", "/device:GPU:3", ())


# -- plain threads and run_in_executor start from an empty context ---------------------


def test_plain_thread_starts_from_an_empty_context() -> None:
    global_graph = sf.get_default_graph()
    g = sf.Graph(name="g")
    with g.as_default(), sf.name_scope("main"), sf.device("/gpu:0"), sf.stop_recording():
        seen = _in_plain_thread(_observe)

        def build_in_graph_mode() -> Observed:
            with sf.graph_mode():
                return _observe()

        built = _in_plain_thread(build_in_graph_mode)
        assert sf.get_name_scope() == "main"
    assert seen == _empty_context_view(global_graph)
    # The global default graph is process-wide: the thread builds into the main one.
    assert built[1] is global_graph
    assert built[6] == (global_graph, "probe", "", ())
    assert [op.name for op in global_graph.get_operations()] == ["probe"]
    assert g.get_operations() == []


def test_plain_thread_starts_in_the_process_default_mode() -> None:
    sf.disable_eager_execution()
    with sf.eager_mode():
        seen = _in_plain_thread(_observe)
        assert sf.executing_eagerly()
    global_graph = sf.get_default_graph()
    assert seen[:6] == (False, global_graph, False, "", (), False)
    assert seen[6] == (global_graph, "probe", "", ())


@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_run_in_executor_starts_from_an_empty_context() -> None:
    global_graph = sf.get_default_graph()
    g = sf.Graph(name="g")
    loop = asyncio.get_running_loop()
    async with g.as_default(), sf.name_scope("caller"):
        seen = await loop.run_in_executor(None, _observe)
        snapshot = sf.copy_scopes()
        carried = await loop.run_in_executor(None, sf.run_in_scopes, snapshot, _observe)
    assert seen == _empty_context_view(global_graph)
    assert carried[:4] == (False, g, True, "caller")
    assert carried[6] == (g, "caller/probe", "", ())


# -- carrying scopes explicitly ------------------------------------------------------


def test_copy_scopes_captures_the_state_at_copy_time() -> None:
    g = sf.Graph(name="g")
    with g.as_default(), sf.name_scope("copied"), sf.device("/cpu:4"):
        snapshot = sf.copy_scopes()
    with sf.name_scope("entered_after_copy"):
        seen = _in_plain_thread(lambda: sf.run_in_scopes(snapshot, _observe))
        here = sf.run_in_scopes(snapshot, _observe)
        assert sf.get_name_scope() == "entered_after_copy"
    assert seen[:4] == (False, g, True, "copied")
    assert seen[6] == (g, "copied/probe", "/device:CPU:4", ())
    assert here[:4] == seen[:4]
    assert here[6] == (g, "copied/probe_1", "/device:CPU:4", ())


def test_run_in_scopes_keeps_the_worker_threads_own_context_clean() -> None:
    global_graph = sf.get_default_graph()
    g = sf.Graph(name="g")
    with g.as_default():
        snapshot = sf.copy_scopes()

    def leave_open() -> None:
        sf.name_scope("never_left").__enter__()
        sf.device("/gpu:1").__enter__()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(sf.run_in_scopes, snapshot, leave_open).result()
        after = pool.submit(_observe).result()
    assert after == _empty_context_view(global_graph)


def test_run_in_scopes_rejects_anything_but_a_snapshot() -> None:
    with pytest.raises(TypeError, match=r"^run_in_scopes\(\) needs a ScopesSnapshot"):
        sf.run_in_scopes(object(), _observe)  # type: ignore[arg-type]


def test_scoped_executor_captures_the_context_at_submit_time() -> None:
    global_graph = sf.get_default_graph()
    g = sf.Graph(name="g")
    release = threading.Event()

    def enter_and_leave_open() -> None:
        sf.Graph(name="leaked").as_default().__enter__()

    with ThreadPoolExecutor(1) as pool:
        executor = sf.ScopedExecutor(pool)
        try:
            pool.submit(release.wait)  # holds the only worker until the scopes are left
            with g.as_default(), sf.name_scope("submitter"), sf.device("/cpu:2"):
                inside = executor.submit(_observe)
                leaked = executor.submit(enter_and_leave_open)
            outside = executor.submit(_observe)
            plain = pool.submit(_observe)
            with sf.name_scope("entered_after_submit"):
                release.set()
                results = inside.result(), outside.result(), plain.result()
                leaked.result()
        finally:
            release.set()
    assert results[0][:4] == (False, g, True, "submitter")
    assert results[0][6] == (g, "submitter/probe", "/device:CPU:2", ())
    assert results[1] == _empty_context_view(global_graph)
    assert results[2] == _empty_context_view(global_graph)


@pytest.mark.anyio
async def test_scoped_executor_jobs_from_concurrent_tasks_see_their_submitters() -> None:
    n_tasks = 6
    graphs = [sf.Graph(name=f"g{i}") for i in range(n_tasks)]
    seen: dict[int, Observed] = {}

    async def task(index: int, executor: sf.ScopedExecutor) -> None:
        async with graphs[index].as_default(), sf.name_scope(f"t{index}"):
            await anyio.sleep(0)
            future = executor.submit(_observe)
        seen[index] = await anyio.to_thread.run_sync(future.result)

    with ThreadPoolExecutor(3) as pool:
        executor = sf.ScopedExecutor(pool)
        async with anyio.create_task_group() as tg:
            for i in range(n_tasks):
                tg.start_soon(task, i, executor)
    for index, g in enumerate(graphs):
        assert seen[index][:4] == (False, g, True, f"t{index}")
        assert seen[index][6] == (g, f"t{index}/probe", "", ())


def test_threads_build_one_graph_concurrently_with_their_own_scopes() -> None:
    n_threads, n_ops = 8, 200
    shared = sf.Graph(name="shared")
    together = threading.Barrier(n_threads)
    snapshots = []
    for index in range(n_threads):
        with shared.as_default(), sf.name_scope(f"thread{index}"), sf.device(f"/cpu:{index}"):
            snapshots.append(sf.copy_scopes())

    def build(index: int) -> list[sf.Operation]:
        together.wait(timeout=30)
        ops = []
        for _ in range(n_ops):
            with sf.name_scope("step"):
                op = sf.no_op()
            assert op is not None
            ops.append(op)
        return ops

    with ThreadPoolExecutor(n_threads) as pool:
        futures = [pool.submit(sf.run_in_scopes, snapshots[i], build, i) for i in range(n_threads)]
        built = [f.result() for f in futures]
    names = [op.name for op in shared.get_operations()]
    assert len(names) == len(set(names)) == n_threads * n_ops
    for index, ops in enumerate(built):
        assert [op.name for op in ops] == [f"thread{index}/step/NoOp"] + [
            f"thread{index}/step_{k}/NoOp" for k in range(1, n_ops)
        ]
        assert {op.device for op in ops} == {f"/device:CPU:{index}"}


# -- leaving a scope from a thread -----------------------------------------------------


@pytest.mark.anyio
async def test_leaving_the_callers_scope_from_a_worker_thread_raises() -> None:
    g = sf.Graph(name="g")
    scope = sf.name_scope("caller")
    async with g.as_default():
        scope.__enter__()
        before = _observe()[:6]
        snapshot = sf.copy_scopes()
        with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
            await anyio.to_thread.run_sync(scope.__exit__, None, None, None)
        with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
            _in_plain_thread(lambda: scope.__exit__(None, None, None))
        with pytest.raises(sf.ScopeNestingError, match=ELSEWHERE):
            _in_plain_thread(lambda: sf.run_in_scopes(snapshot, scope.__exit__, None, None, None))
        assert _observe()[:6] == before
        scope.__exit__(None, None, None)
        assert sf.get_name_scope() == ""


def test_one_scope_object_entered_by_many_threads_at_once_keeps_every_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The second and later simultaneous entries of one scope object share a dict that the
    # first of them creates; threads racing to create it must not lose an entry (whose
    # exit would then raise ScopeNestingError). A slow getattr in _context widens the
    # window between looking for the dict and creating it, so the race is certain.
    import time

    from scopeflow import _context

    def slow_getattr(obj: object, name: str, *default: object) -> object:
        value = getattr(obj, name, *default)
        if name == "_more":
            time.sleep(0.005)  # after the look-up, before the caller acts on it
        return value

    monkeypatch.setattr(_context, "getattr", slow_getattr, raising=False)
    errors: list[BaseException] = []
    n_threads = 4
    for _ in range(5):
        scope = sf.name_scope("shared")
        entered = threading.Barrier(n_threads)
        start = threading.Barrier(n_threads)

        def use(scope: Any = scope, entered: Any = entered, start: Any = start) -> None:
            try:
                start.wait()
                with scope:
                    entered.wait()  # every thread is inside at once
                    assert sf.get_name_scope() == "shared"
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=use) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


_COLLECTION_ENTERS = """
import gc, sys, scopeflow as sf
from scopeflow._context import _MORE_LOCK as lock
scope = sf.name_scope("s")  # one object, entered three times at once (_push_more)
others = [sf.name_scope("o"), sf.device("/cpu:0")]
def held():
    owned = getattr(lock, "_is_owned", None)  # an RLock's; a Lock has locked()
    return owned() if owned is not None else lock.locked()
def callback(phase, info):
    # Code run by a collection (a gc callback here; a finalizer alike) that enters scope
    # objects twice at once, while a second entry of another object is being recorded.
    if phase == "start" and held():
        for other in others:
            with other, other:
                pass
gc.callbacks.append(callback)
gc.set_threshold(1)
try:
    for _ in range(200):
        with scope, scope, scope:
            pass
finally:
    gc.callbacks.remove(callback)
    gc.set_threshold(700)
print(sf.get_name_scope() == "", getattr(scope, "_more", {}) == {})
"""


def test_code_run_by_a_collection_may_enter_scopes_while_an_entry_is_recorded() -> None:
    """Recording a second simultaneous entry holds a process-wide lock: a collection
    that runs code entering some scope object twice must not hang on it."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parent.parent / "src")
    out = subprocess.run(
        [sys.executable, "-c", _COLLECTION_ENTERS],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": src, "PATH": ""},
        check=True,
    )
    assert out.stdout.split() == ["True", "True"]
