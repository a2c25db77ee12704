"""sf.function under pressure: methods per instance, racing first calls, failed and
cancelled traces, many waiters, and what the caches keep alive (SPEC 7)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from threads_helpers import run_threads

ASYNCIO_ONLY = pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"debug": True}), id="asyncio")]
)


def _value(x: Any) -> Any:
    return np.asarray(x).tolist()


# -- methods: one set of traces per instance, by identity -------------------------------


class _Named:
    """Instances compare equal (and hash alike) by name, like many config objects."""

    def __init__(self, name: str, scale: float) -> None:
        self.name = name
        self.scale = sf.Variable(scale)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Named) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @sf.function
    def apply(self, x: Any) -> Any:
        return x * self.scale


def test_equal_instances_do_not_share_traces() -> None:
    a, b = _Named("same", 2.0), _Named("same", 3.0)
    assert a == b
    x = sf.constant(1.0)
    assert _value(a.apply(x)) == 2.0
    assert _value(b.apply(x)) == 3.0  # b's own trace, reading b.scale
    assert a.apply is a.apply
    assert a.apply is not b.apply
    assert (a.apply.trace_count, b.apply.trace_count) == (1, 1)


@dataclasses.dataclass(eq=True)  # eq without frozen: instances are unhashable
class _Unhashable:
    scale: float

    @sf.function
    def apply(self, x: Any) -> Any:
        return x * self.scale


def test_unhashable_instances_get_their_own_traces() -> None:
    a, b = _Unhashable(2.0), _Unhashable(3.0)
    with pytest.raises(TypeError):
        hash(a)
    x = sf.constant(1.0)
    assert [_value(a.apply(x)), _value(b.apply(x)), _value(a.apply(x))] == [2.0, 3.0, 2.0]
    assert a.apply.trace_count == 1


class _NoWeakref:
    __slots__ = ("scale",)

    def __init__(self) -> None:
        self.scale = 2.0

    @sf.function
    def apply(self, x: Any) -> Any:
        return x * self.scale


def test_instances_without_weak_references_are_refused_with_the_fix() -> None:
    obj = _NoWeakref()
    with pytest.raises(
        TypeError, match=r"^sf\.function method 'apply' needs weak-referenceable .*__weakref__"
    ):
        obj.apply(sf.constant(1.0))
    assert _NoWeakref.apply.trace_count == 0


def test_an_instance_and_its_traces_are_freed_with_it() -> None:
    a = _Named("a", 2.0)
    assert _value(a.apply(sf.constant(1.0))) == 2.0
    instance, bound = weakref.ref(a), weakref.ref(a.apply)
    trace = weakref.ref(a.apply.get_concrete_function(sf.constant(1.0)).graph)
    del a
    gc.collect()
    assert (instance(), bound(), trace()) == (None, None, None)
    b = _Named("a", 5.0)  # may reuse a's id: must not get a's traces
    assert _value(b.apply(sf.constant(1.0))) == 5.0


def test_threads_making_the_first_method_call_trace_once(fast_switching: None) -> None:
    created: list[sf.Variable] = []

    class Counter:
        def __init__(self) -> None:
            self.v: sf.Variable | None = None

        @sf.function
        def bump(self) -> Any:
            if self.v is None:
                self.v = sf.Variable(0.0)
                created.append(self.v)
            return self.v.assign_add(1.0)

    for _ in range(5):  # each round a fresh instance, so each round races the first call
        obj = Counter()
        barrier = threading.Barrier(8, timeout=5)

        def call(_: int, obj: Counter = obj, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            obj.bump()

        run_threads(8, call)
        assert obj.v is not None
        assert float(obj.v.numpy()) == 8.0  # every assign went to the variable it reads
        assert obj.bump.trace_count == 1
    assert len(created) == 5


# -- failed and cancelled first traces leave nothing behind ----------------------------


def test_a_failed_first_trace_does_not_forbid_variables() -> None:
    attempts: list[int] = []

    @sf.function
    def f(x: Any) -> Any:
        v = sf.Variable(1.0)
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the first trace fails after creating a variable")
        return x + v

    with pytest.raises(RuntimeError, match="^the first trace fails"):
        f(sf.constant(1.0))
    assert _value(f(sf.constant(1.0))) == 2.0  # this one is the first trace
    assert _value(f(sf.constant(2.0))) == 3.0  # cached
    with pytest.raises(ValueError, match=r"^A variable was created while tracing .* again"):
        f(sf.constant([1.0, 2.0]))  # a real later trace still may not create one


def test_a_variable_kept_by_a_failed_trace_stays_usable_in_a_graph() -> None:
    holder: list[sf.Variable] = []

    @sf.function
    def f(x: Any) -> Any:
        if not holder:
            with sf.init_scope():
                holder.append(sf.Variable(4.0))
            raise RuntimeError("fails after keeping the variable")
        return x + holder[0]

    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=())
        with pytest.raises(RuntimeError, match="^fails after keeping"):
            f(x)
        y = f(x)  # not a later trace: the failed one does not count as the first
        init = sf.global_variables_initializer()
    assert g.get_collection("variables") == holder
    with sf.Session(g) as sess:
        sess.run(init)
        assert float(sess.run(y, {x: 1.0})) == 5.0


@pytest.mark.anyio
async def test_a_timed_out_first_trace_does_not_forbid_variables() -> None:
    hang = [True]

    @sf.function
    async def f(x: Any) -> Any:
        v = sf.Variable(1.0)
        if hang[0]:
            await anyio.sleep_forever()
        return x + v

    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.05):
            await f(sf.constant(1.0))
    hang[0] = False
    assert _value(await f(sf.constant(1.0))) == 2.0
    assert (sf.executing_eagerly(), sf.inside_function()) == (True, False)


@ASYNCIO_ONLY
@pytest.mark.anyio
async def test_asyncio_wait_for_timeout_during_the_first_trace() -> None:
    hang = [True]

    @sf.function
    async def f(x: Any) -> Any:
        v = sf.Variable(1.0)
        if hang[0]:
            await asyncio.sleep(10)
        return x + v

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(f(sf.constant(1.0)), 0.05)
    hang[0] = False
    assert _value(await asyncio.wait_for(f(sf.constant(1.0)), 5)) == 2.0


# -- concurrent first calls with different signatures ----------------------------------


def test_concurrent_first_calls_with_different_shapes_create_variables_once() -> None:
    created: list[sf.Variable] = []
    barrier = threading.Barrier(2, timeout=5)
    first_attempts = [0]
    lock = threading.Lock()

    @sf.function
    def f(x: Any) -> Any:
        with lock:
            first_attempts[0] += 1
            meet = first_attempts[0] <= 2
        if meet:
            barrier.wait()  # both traces are in flight before either creates a variable
        if not created:
            created.append(sf.Variable(10.0))
        return x + created[0]

    out: dict[int, Any] = {}

    def call(i: int) -> None:
        out[i] = _value(f(sf.constant([1.0] * (i + 1))))

    run_threads(2, call)
    assert out == {0: [11.0], 1: [11.0, 11.0]}
    assert len(created) == 1
    assert f.trace_count == 2
    created.clear()
    with pytest.raises(ValueError, match="first trace"):
        f(sf.constant([1.0] * 5))  # a later trace that creates a variable still fails


@pytest.mark.anyio
async def test_concurrent_async_first_calls_with_different_shapes() -> None:
    created: list[sf.Variable] = []
    all_in_flight = anyio.Event()
    in_flight = [0]

    @sf.function
    async def f(x: Any) -> Any:
        in_flight[0] += 1
        if in_flight[0] == 3:
            all_in_flight.set()
        await all_in_flight.wait()
        need = not created  # every trace decides before any creates
        await anyio.sleep(0)
        if need:
            created.append(sf.Variable(10.0))
        await anyio.sleep(0)
        return x + created[0]

    out: dict[int, Any] = {}

    async def call(n: int) -> None:
        out[n] = _value(await f(sf.constant([1.0] * n)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in (1, 2, 3):
                tg.start_soon(call, n)
    assert out == {1: [11.0], 2: [11.0] * 2, 3: [11.0] * 3}
    assert len(created) == 1
    assert f.trace_count == 3


@pytest.mark.anyio
async def test_a_variable_created_in_a_task_the_trace_spawned() -> None:
    created: list[sf.Variable] = []
    all_in_flight = anyio.Event()
    in_flight = [0]

    @sf.function
    async def f(x: Any) -> Any:
        in_flight[0] += 1
        if in_flight[0] == 2:
            all_in_flight.set()
        await all_in_flight.wait()
        need = not created

        async def make() -> None:
            await anyio.sleep(0)
            if need:
                created.append(sf.Variable(10.0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(make)
        return x + created[0]

    out: dict[int, Any] = {}

    async def call(n: int) -> None:
        out[n] = _value(await f(sf.constant([1.0] * n)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in (1, 2):
                tg.start_soon(call, n)
    assert out == {1: [11.0], 2: [11.0] * 2}
    assert len(created) == 1


def test_racing_outer_traces_redo_the_loser_through_a_nested_function() -> None:
    holder: list[sf.Variable] = []
    barrier = threading.Barrier(2, timeout=5)
    meetings = [0]
    lock = threading.Lock()

    @sf.function
    def inner(x: Any) -> Any:
        with lock:
            meetings[0] += 1
            meet = meetings[0] <= 2
        if meet:
            barrier.wait()  # both outer traces are inside inner's trace at once
        need = not holder
        if meet:
            barrier.wait()  # and both decided to create the variable
        if need:
            holder.append(sf.Variable(5.0))
        return x * holder[0]

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x) + 1.0

    out: dict[int, Any] = {}

    def call(i: int) -> None:
        out[i] = _value(outer(sf.constant([1.0] * (i + 1))))

    run_threads(2, call)
    assert out == {0: [6.0], 1: [6.0, 6.0]}
    assert len(holder) == 1
    assert outer.trace_count == 2  # the abandoned outer trace is not counted


@pytest.mark.anyio
async def test_async_methods_of_equal_instances_do_not_share_traces() -> None:
    class Named:
        def __init__(self, scale: float) -> None:
            self.scale = scale

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named)

        def __hash__(self) -> int:
            return 0

        @sf.function
        async def apply(self, x: Any) -> Any:
            await anyio.sleep(0)
            return x * self.scale

    a, b = Named(2.0), Named(3.0)
    x = sf.constant(1.0)
    assert [_value(await a.apply(x)), _value(await b.apply(x))] == [2.0, 3.0]


# -- many waiters, waiting on the event loop -------------------------------------------


@pytest.mark.anyio
async def test_fifty_concurrent_first_calls_whose_trace_uses_a_worker_thread() -> None:
    release = anyio.Event()

    @sf.function
    async def f(x: Any) -> Any:
        await anyio.to_thread.run_sync(time.sleep, 0)
        await release.wait()
        await anyio.to_thread.run_sync(time.sleep, 0)
        return x * 2.0

    results: list[Any] = []

    async def caller() -> None:
        results.append(_value(await f(sf.constant(1.0))))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(60):
                tg.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            # The waiters hold no worker thread: more than the 40 default tokens of
            # unrelated thread work runs to completion while the trace is pending.
            done: list[int] = []

            async def unrelated(i: int) -> None:
                done.append(await anyio.to_thread.run_sync(lambda: i))

            async with anyio.create_task_group() as others:
                for i in range(45):
                    others.start_soon(unrelated, i)
            assert sorted(done) == list(range(45))
            assert results == []
            release.set()
    assert results == [2.0] * 60
    assert f.trace_count == 1


@pytest.mark.anyio
async def test_a_cancelled_waiter_does_not_disturb_the_trace() -> None:
    release = anyio.Event()

    @sf.function
    async def f(x: Any) -> Any:
        await release.wait()
        return x + 1.0

    results: list[Any] = []

    async def caller() -> None:
        results.append(_value(await f(sf.constant(1.0))))

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await f(sf.constant(1.0))  # waits for the trace, and is cancelled there
        release.set()
    assert results == [2.0]
    assert _value(await f(sf.constant(1.0))) == 2.0
    assert f.trace_count == 1


@pytest.mark.anyio
async def test_a_cancelled_tracer_wakes_the_waiters_and_one_retraces() -> None:
    attempts: list[int] = []

    @sf.function
    async def f(x: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            await anyio.sleep_forever()
        await anyio.sleep(0)
        return x + 1.0

    results: list[Any] = []

    async def waiter() -> None:
        results.append(_value(await f(sf.constant(1.0))))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tracer = anyio.CancelScope()

            async def first() -> None:
                with tracer:
                    await f(sf.constant(1.0))

            tg.start_soon(first)
            await anyio.wait_all_tasks_blocked()  # the first caller is inside its trace
            for _ in range(5):
                tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            tracer.cancel()
    assert results == [2.0] * 5
    assert len(attempts) == 2


def test_a_waiter_in_another_event_loop_is_woken() -> None:
    started, gate = threading.Event(), threading.Event()

    @sf.function
    async def f(x: Any) -> Any:
        started.set()
        await anyio.to_thread.run_sync(gate.wait)
        return x * 4.0

    async def call() -> Any:
        with anyio.fail_after(10):
            return _value(await f(sf.constant(1.0)))

    out: dict[str, Any] = {}

    def run(backend: str) -> None:
        out[backend] = anyio.run(call, backend=backend)

    tracer = threading.Thread(target=run, args=("asyncio",))
    tracer.start()
    assert started.wait(5)
    waiter = threading.Thread(target=run, args=("trio",))
    waiter.start()
    (pending,) = f._eager_cache.pending.values()
    deadline = time.monotonic() + 5
    while not pending._wakers and time.monotonic() < deadline:
        time.sleep(0.001)  # until the trio caller waits for the asyncio trace
    assert pending._wakers
    gate.set()
    tracer.join(10)
    waiter.join(10)
    assert out == {"asyncio": 4.0, "trio": 4.0}
    assert f.trace_count == 1


# -- caches do not keep graphs or objects alive ----------------------------------------


@sf.function
def _module_level(x: Any) -> Any:
    return x * 2.0


class _Model:
    def __init__(self) -> None:
        self.w = sf.Variable(3.0)

    @sf.function
    def __call__(self, x: Any) -> Any:
        return x * self.w


def _graph_that_calls(fn: Callable[[Any], Any]) -> weakref.ref[sf.Graph]:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=())
        y = fn(x)
        init = sf.global_variables_initializer()
    with sf.Session(g) as sess:
        sess.run(init)
        assert float(sess.run(y, {x: 2.0})) in (4.0, 6.0)
    return weakref.ref(g)


def test_a_graph_that_called_a_function_is_freed() -> None:
    graph = _graph_that_calls(_module_level)
    gc.collect()
    assert graph() is None
    assert _value(_module_level(sf.constant(1.0))) == 2.0  # eager cache unaffected


def test_a_graph_that_called_a_method_is_freed_and_so_is_the_instance() -> None:
    model = _Model()
    graph = _graph_that_calls(model)
    instance = weakref.ref(model)
    gc.collect()
    assert graph() is None
    del model
    gc.collect()
    assert instance() is None


def test_a_graph_that_created_a_variable_in_a_trace_is_freed() -> None:
    def make() -> Any:
        with sf.init_scope():
            v = sf.Variable(2.0)
        return v.read_value()

    f = sf.function(make)
    graph = _graph_that_calls(lambda x: x * f())
    gc.collect()
    assert graph() is None


def test_class_level_trace_count_is_the_total_over_live_instances() -> None:
    class Model:
        @sf.function
        def predict(self, x: Any) -> Any:
            return x + 1.0

    models = [Model() for _ in range(3)]
    assert Model.predict.trace_count == 0
    for m in models:
        m.predict(sf.constant(1.0))
    models[0].predict(sf.constant([1.0, 2.0]))  # a second signature on one instance
    assert [m.predict.trace_count for m in models] == [2, 1, 1]
    assert Model.predict.trace_count == 4
    del models[0]
    gc.collect()
    assert Model.predict.trace_count == 2  # the dead instance's traces went with it


def test_class_level_trace_count_while_threads_bind_instances() -> None:
    class Model:
        @sf.function
        def predict(self, x: Any) -> Any:
            return x * 2.0

    n = 8
    barrier = threading.Barrier(n + 1)
    keep: list[Model] = []
    lock = threading.Lock()

    def bind_and_call() -> None:
        m = Model()
        with lock:
            keep.append(m)
        barrier.wait()
        m.predict(sf.constant(1.0))

    threads = [threading.Thread(target=bind_and_call) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    counts = [Model.predict.trace_count for _ in range(200)]  # reads during the binds
    for t in threads:
        t.join()
    assert counts == sorted(counts)
    assert Model.predict.trace_count == n
