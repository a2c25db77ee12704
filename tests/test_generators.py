"""``sf.scoped_generator``: generators keep their scopes to themselves, also when abandoned."""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator, Generator
from typing import Any

import anyio
import pytest

import scopeflow as sf


def _view() -> tuple[bool, Any, str]:
    return sf.executing_eagerly(), sf.get_default_graph(), sf.get_name_scope()


# -- sync generators ----------------------------------------------------------------------


def test_sync_generator_holds_its_scopes_without_leaking_them() -> None:
    g = sf.Graph()
    seen: list[tuple[bool, Any, str]] = []

    @sf.scoped_generator
    def layers() -> Generator[str, None, str]:
        with g.as_default(), sf.name_scope("block"):
            for i in range(3):
                seen.append(_view())
                yield sf.constant(float(i), name="c").name
        return "done"

    outside = _view()
    gen = layers()
    names = []
    for name in gen:
        names.append(name)
        assert _view() == outside  # suspended inside its scopes, invisible here
        with sf.name_scope("caller"):  # the caller's own scopes don't reach the generator
            pass
    assert names == ["block/c:0", "block/c_1:0", "block/c_2:0"]
    assert seen == [(False, g, "block")] * 3


def test_sync_generator_forwards_send_throw_and_return_value() -> None:
    @sf.scoped_generator
    def echo() -> Generator[Any, Any, str]:
        with sf.name_scope("echo"):
            received = yield "ready"
            try:
                yield (received, sf.get_name_scope())
            except KeyError as err:
                yield f"caught {err.args[0]} in {sf.get_name_scope()}"
            return "finished"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(41) == (41, "echo")
    assert gen.throw(KeyError("k")) == "caught k in echo"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "finished"
    assert sf.get_name_scope() == ""


def test_abandoned_sync_generator_leaves_its_scopes_in_its_own_context() -> None:
    g = sf.Graph()
    closed: list[tuple[bool, Any, str]] = []

    @sf.scoped_generator
    def stream() -> Generator[int, None, None]:
        with g.as_default(), sf.name_scope("stream"):
            try:
                yield from range(10)
            finally:
                closed.append(_view())

    with sf.name_scope("consumer"):
        for i in stream():
            if i == 1:
                break
        gc.collect()
        assert sf.get_name_scope() == "consumer"
    assert closed == [(False, g, "stream")]
    assert sf.executing_eagerly()


def test_sync_generator_starts_from_the_callers_scopes_at_creation() -> None:
    @sf.scoped_generator
    def where() -> Generator[str, None, None]:
        while True:
            yield sf.get_name_scope()

    with sf.name_scope("made_here"):
        gen = where()
    with sf.name_scope("iterated_here"):
        assert next(gen) == "made_here"
    gen.close()


def test_undecorated_sync_generator_still_leaks() -> None:
    """Without the decorator the documented limitation stands (SPEC section 3)."""

    def leaky() -> Generator[None, None, None]:
        with sf.name_scope("leak"):
            yield

    gen = leaky()
    next(gen)
    assert sf.get_name_scope() == "leak"
    next(gen, None)
    assert sf.get_name_scope() == ""


@pytest.mark.parametrize("target", [lambda: 1, 3, sf.name_scope], ids=["lambda", "int", "class"])
def test_scoped_generator_rejects_non_generators(target: Any) -> None:
    with pytest.raises(TypeError, match="^sf.scoped_generator decorates generator functions"):
        sf.scoped_generator(target)


# -- async generators ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_generator_holds_its_scopes_across_awaits() -> None:
    g = sf.Graph()

    @sf.scoped_generator
    async def batches() -> AsyncGenerator[tuple[str, tuple[bool, Any, str]], None]:
        async with g.as_default():
            with sf.name_scope("batches"):
                for i in range(3):
                    await anyio.sleep(0)
                    t = sf.constant(float(i), name="b")
                    await anyio.sleep(0)
                    yield t.name, _view()

    outside = _view()
    got = []
    async for name, inside in batches():
        assert _view() == outside
        await anyio.sleep(0)
        got.append((name, inside))
    assert got == [(f"batches/b{s}:0", (False, g, "batches")) for s in ("", "_1", "_2")]


@pytest.mark.anyio
async def test_abandoned_async_generator_does_not_leave_the_consumer_in_its_scopes() -> None:
    g = sf.Graph()
    closed: list[tuple[bool, Any, str]] = []

    @sf.scoped_generator
    async def stream() -> AsyncGenerator[int, None]:
        async with g.as_default():
            with sf.name_scope("stream"):
                try:
                    for i in range(10):
                        await anyio.sleep(0)
                        yield i
                finally:
                    closed.append(_view())

    gen = stream()
    async for i in gen:
        if i == 2:
            break  # abandoned: nobody closes it in this task
    assert sf.executing_eagerly()
    assert sf.get_name_scope() == ""
    assert not sf.has_default_graph()
    await gen.aclose()  # a late close from this task still leaves in the generator's context
    assert closed == [(False, g, "stream")]
    assert sf.executing_eagerly()


@pytest.mark.anyio
# trio warns about every async generator left to the garbage collector, by design.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:Async generator.*garbage collected:ResourceWarning")
async def test_async_generator_closed_by_the_event_loop_after_break() -> None:
    g = sf.Graph()
    closed: list[tuple[bool, Any, str]] = []

    @sf.scoped_generator
    async def stream() -> AsyncGenerator[int, None]:
        async with g.as_default():
            try:
                for i in range(10):
                    yield i
                    await anyio.sleep(0)
            finally:
                closed.append(_view())

    async for i in stream():
        if i == 1:
            break
    gc.collect()  # the loop's finalizer hook schedules the close
    for _ in range(20):
        await anyio.sleep(0)
        if closed:
            break
    assert closed == [(False, g, "")]
    assert sf.executing_eagerly()
    assert not sf.has_default_graph()


@pytest.mark.anyio
async def test_async_generator_forwards_asend_and_athrow() -> None:
    @sf.scoped_generator
    async def echo() -> AsyncGenerator[Any, Any]:
        with sf.name_scope("echo"):
            received = yield "ready"
            await anyio.sleep(0)
            try:
                yield (received, sf.get_name_scope())
            except KeyError as err:
                await anyio.sleep(0)
                yield f"caught {err.args[0]} in {sf.get_name_scope()}"

    gen = echo()
    assert await gen.asend(None) == "ready"
    assert await gen.asend(7) == (7, "echo")
    assert await gen.athrow(KeyError("k")) == "caught k in echo"
    with pytest.raises(StopAsyncIteration):
        await gen.asend(None)
    assert sf.get_name_scope() == ""


@pytest.mark.anyio
async def test_cancelling_the_consumer_closes_the_generator_in_its_context() -> None:
    g = sf.Graph()
    closed: list[tuple[bool, Any, str]] = []

    @sf.scoped_generator
    async def slow() -> AsyncGenerator[int, None]:
        async with g.as_default():
            try:
                yield 0
                await anyio.sleep(10)  # cancelled here, inside the generator's step
                yield 1
            finally:
                closed.append(_view())

    gen = slow()
    with anyio.move_on_after(0.05):
        async for _ in gen:
            pass
    await gen.aclose()
    assert closed == [(False, g, "")]
    assert sf.executing_eagerly()
    assert not sf.has_default_graph()


@pytest.mark.anyio
async def test_generators_in_concurrent_tasks_stay_apart() -> None:
    graphs = [sf.Graph() for _ in range(4)]
    results: dict[int, list[Any]] = {}

    @sf.scoped_generator
    async def build(k: int) -> AsyncGenerator[Any, None]:
        async with graphs[k].as_default():
            with sf.name_scope(f"task{k}"):
                for _ in range(3):
                    await anyio.sleep(0)
                    yield sf.get_default_graph(), sf.get_name_scope()

    async def consume(k: int) -> None:
        with sf.name_scope(f"consumer{k}"):
            results[k] = [item async for item in build(k)]
            assert sf.get_name_scope() == f"consumer{k}"

    async with anyio.create_task_group() as tg:
        for k in range(4):
            tg.start_soon(consume, k)
    for k in range(4):
        assert results[k] == [(graphs[k], f"task{k}")] * 3


@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"debug": True}), id="asyncio")]
)
@pytest.mark.anyio
async def test_undecorated_abandoned_async_generator_is_reported_with_advice() -> None:
    import asyncio

    loop_errors: list[BaseException] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: loop_errors.append(context.get("exception"))
    )
    inner_graph, outer_graph = sf.Graph(), sf.Graph()

    async def stream() -> AsyncGenerator[int, None]:
        async with inner_graph.as_default():
            for i in range(10):
                yield i

    outer = outer_graph.as_default()
    outer.__enter__()
    async for i in stream():
        if i == 1:
            break
    gc.collect()
    for _ in range(10):
        await asyncio.sleep(0)
    # The event loop closed the generator in another task: that exit failed, and this
    # task is still inside the generator's graph.
    assert any(isinstance(e, sf.ScopeNestingError) for e in loop_errors), loop_errors
    assert sf.get_default_graph() is inner_graph
    with pytest.raises(sf.ScopeNestingError, match=r"abandoned with `break`.*scoped_generator"):
        outer.__exit__(None, None, None)
    assert sf.executing_eagerly()
    assert not sf.has_default_graph()
