"""Session: fetch structures, feeds, control dependencies, plans, threads, arun."""

from __future__ import annotations

import itertools
import threading
from collections import namedtuple
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._ops import apply, register_op

calls: list[str] = []
_probe_ids = itertools.count()


def _count_kernel(attrs: dict[str, Any], *xs: np.ndarray) -> np.ndarray:
    calls.append(attrs["label"])
    return np.asarray(len(calls), dtype=np.int32)


COUNTER = register_op(
    "TestCounter",
    infer=lambda specs, attrs: ((np.dtype(np.int32), ()),),
    kernel=_count_kernel,
    same_dtype=False,
    stateful=True,
)


def counter(label: str, *inputs: Any) -> Any:
    return apply(COUNTER, inputs, {"label": label})


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def test_nested_fetch_structures() -> None:
    g = sf.Graph()
    Pair = namedtuple("Pair", "a b")
    with g.as_default():
        a = sf.constant([1.0, 2.0], name="a")
        b = a * 2.0
        op = sf.no_op()
    with sf.Session(g) as sess:
        out = sess.run({"x": [a, (b, op)], "p": Pair(a, b), "name": "a:0"})
    assert set(out) == {"x", "p", "name"}
    np.testing.assert_array_equal(out["x"][0], [1.0, 2.0])
    assert isinstance(out["x"][1], tuple)
    np.testing.assert_array_equal(out["x"][1][0], [2.0, 4.0])
    assert out["x"][1][1] is None
    assert isinstance(out["p"], Pair)
    np.testing.assert_array_equal(out["p"].b, [2.0, 4.0])
    np.testing.assert_array_equal(out["name"], [1.0, 2.0])


def test_scalar_fetch_is_a_numpy_scalar_and_results_are_writable() -> None:
    g = sf.Graph()
    with g.as_default():
        c = sf.constant(3.0)
        v = sf.constant([1.0, 2.0])
    sess = sf.Session(g)
    s, arr = sess.run([c, v])
    assert s == np.float32(3.0)
    assert isinstance(s, np.float32)
    arr[0] = 100.0  # the caller owns it; the constant must not change
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])


def test_feeds_by_tensor_and_by_name() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(None,), name="x")
        y = x + 1.0
    sess = sf.Session(g)
    np.testing.assert_array_equal(sess.run(y, {x: [1.0, 2.0]}), [2.0, 3.0])
    np.testing.assert_array_equal(sess.run(y, {"x:0": [5.0]}), [6.0])
    np.testing.assert_array_equal(sess.run(y, {"x": [7.0]}), [8.0])


def test_missing_feed_names_the_placeholder() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(2,), name="inputs")
        y = x * 3.0
    with pytest.raises(sf.InvalidArgumentError, match="must feed a value for placeholder 'inputs'"):
        sf.Session(g).run(y)


def test_wrong_feed_shape_and_dtype() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.int32, shape=(None, 2), name="x")
    sess = sf.Session(g)
    with pytest.raises(sf.InvalidArgumentError, match=r"shape \(3,\) for 'x:0'.*\(None, 2\)"):
        sess.run(x, {x: [1, 2, 3]})
    with pytest.raises(sf.InvalidArgumentError, match="Cannot feed 'x:0' .*int32"):
        sess.run(x, {x: [[1.5, 2.0]]})
    with pytest.raises(TypeError, match="feed_dict keys"):
        sess.run(x, {3: [1, 2]})


def test_feeding_an_intermediate_tensor_prunes_its_producer() -> None:
    g = sf.Graph()
    with g.as_default():
        c = counter("producer")
        y = sf.add(c, 1)
    np.testing.assert_array_equal(sf.Session(g).run(y, {c: 10}), 11)
    assert calls == []


def test_control_dependencies_run_first_and_each_op_once() -> None:
    g = sf.Graph()
    with g.as_default():
        first = counter("first")
        with sf.control_dependencies([first]):
            second = counter("second")
        both = sf.add(second, first)
        grouped = sf.group(first, second)
    sess = sf.Session(g)
    out = sess.run([both, first, second, grouped])
    assert calls == ["first", "second"]
    assert out[1] == 1
    assert out[2] == 2
    assert out[0] == 3
    assert out[3] is None


def test_plans_are_cached_per_fetches_and_feeds() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=())
        y = x * 2.0
    sess = sf.Session(g)
    for i in range(5):
        assert sess.run(y, {x: float(i)}) == 2.0 * i
    assert len(sess._plans) == 1
    sess.run([y, y], {x: 1.0})
    assert len(sess._plans) == 2


def test_fetching_from_another_graph_or_eager() -> None:
    g, other = sf.Graph(name="g"), sf.Graph(name="other")
    with other.as_default():
        t = sf.constant(1.0, name="t")
    sess = sf.Session(g)
    with pytest.raises(ValueError, match=r"'t:0': it belongs to <sf.Graph 'other'>"):
        sess.run(t)
    with pytest.raises(TypeError, match="eager tensor"):
        sess.run(sf.constant(1.0))
    with pytest.raises(TypeError, match="Cannot fetch 3"):
        sess.run(3)


def test_closed_session() -> None:
    g = sf.Graph()
    with g.as_default():
        c = sf.constant(1.0)
    sess = sf.Session(g)
    sess.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(c)
    with pytest.raises(TypeError, match="takes a sf.Graph"):
        sf.Session("g")  # type: ignore[arg-type]


def test_session_default_graph_and_with_block() -> None:
    g = sf.Graph()
    with g.as_default():
        sess = sf.Session()
    assert sess.graph is g
    with sf.Session(g) as s2:
        assert sf.get_default_graph() is g
        c = sf.constant(2.0)
        assert s2.run(c) == 2.0
    assert sf.get_default_graph() is not g


def test_runtime_kernel_failure_names_the_op() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=None, name="x")
        y = sf.add(x, sf.constant([1.0, 2.0]), name="bad_add")
    with pytest.raises(sf.InvalidArgumentError, match="'bad_add'"):
        sf.Session(g).run(y, {x: [1.0, 2.0, 3.0]})


def test_run_from_many_threads() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=())
        y = x * x + 1.0
    sess = sf.Session(g)
    results: dict[int, float] = {}
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(50):
            v = float(i * 100 + j)
            results[i * 100 + j] = float(sess.run(y, {x: v}))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    assert all(r == np.float32(k) * np.float32(k) + 1 for k, r in results.items())


@pytest.mark.anyio
async def test_arun_uses_a_worker_thread_and_the_callers_context() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(2,))
        y = x * 2.0
    sess = sf.Session(g)
    seen: list[object] = []

    def probe(attrs: dict[str, Any]) -> np.ndarray:
        seen.append((threading.current_thread() is threading.main_thread(), sf.get_name_scope()))
        return np.asarray(0, dtype=np.int32)

    probe_op = register_op(
        f"TestProbe{next(_probe_ids)}",
        infer=lambda specs, attrs: ((np.dtype(np.int32), ()),),
        kernel=probe,
        same_dtype=False,
    )
    with g.as_default():
        p = apply(probe_op, (), {})
    with sf.name_scope("caller"):
        out, _ = await sess.arun([y, p], {x: [1.0, 2.0]})
    np.testing.assert_array_equal(out, [2.0, 4.0])
    assert seen == [(False, "caller")]


@pytest.mark.anyio
async def test_async_with_session() -> None:
    g = sf.Graph()
    async with sf.Session(g) as sess:
        c = sf.constant(5.0)
        await anyio.sleep(0)
        assert sf.get_default_graph() is g
        assert await sess.arun(c) == 5.0


@pytest.mark.anyio
async def test_one_session_entered_by_two_tasks_at_once() -> None:
    g = sf.Graph()
    with g.as_default():
        y = sf.constant(2.0) * 3.0
    sess = sf.Session(g)
    both_inside = anyio.Event()
    inside = 0
    seen: list[tuple[bool, Any, Any]] = []

    async def use(delay: float) -> None:
        nonlocal inside
        async with sess:
            inside += 1
            if inside == 2:
                both_inside.set()
            await both_inside.wait()
            await anyio.sleep(delay)  # leave in the order the tasks did not enter
            seen.append((sf.executing_eagerly(), sf.get_default_graph(), sess.run(y)))
        seen.append((sf.executing_eagerly(), None, None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(use, 0.02)
        tg.start_soon(use, 0.0)
    assert seen[0][:2] == (False, g)
    assert seen[1] == (True, None, None)
    assert seen[2][:2] == (False, g)
    assert seen[3] == (True, None, None)
    assert float(seen[0][2]) == float(seen[2][2]) == 6.0
    assert sf.executing_eagerly()
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(y)  # the last entry to leave closed it


def test_session_stays_open_until_its_last_entry_leaves() -> None:
    g = sf.Graph()
    with g.as_default():
        y = sf.constant(1.0) + 1.0
    sess = sf.Session(g)
    with sess:
        with sess:
            assert sess.run(y) == 2.0
        assert sess.run(y) == 2.0  # the inner exit did not close it
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(y)
    with pytest.raises(RuntimeError, match="^Attempted to enter a closed Session"):
        sess.__enter__()
    assert sf.executing_eagerly()


def test_leaving_a_session_that_was_not_entered_keeps_it_open() -> None:
    g = sf.Graph()
    with g.as_default():
        y = sf.constant(1.0) + 1.0
    sess = sf.Session(g)
    with pytest.raises(sf.ScopeNestingError, match="not open in this context"):
        sess.__exit__(None, None, None)
    assert sess.run(y) == 2.0


@pytest.mark.anyio
async def test_arun_does_not_queue_behind_other_worker_threads() -> None:
    """Every default to_thread token is busy; graph runs still go through."""
    g = sf.Graph()
    with g.as_default():
        y = sf.constant(2.0) * 5.0
    sess = sf.Session(g)
    release = threading.Event()
    result = None
    default = anyio.to_thread.current_default_thread_limiter()
    async with anyio.create_task_group() as tg:
        try:
            for _ in range(int(default.total_tokens)):
                tg.start_soon(anyio.to_thread.run_sync, release.wait)
            while default.borrowed_tokens < default.total_tokens:
                await anyio.sleep(0.001)
            with anyio.move_on_after(5):
                result = await sess.arun(y)
        finally:
            release.set()
    assert result == 10.0


@pytest.mark.anyio
async def test_arun_uses_the_given_capacity_limiter() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=())
        y = x + 1.0
    one = anyio.CapacityLimiter(1)
    sess = sf.Session(g, limiter=one)
    peak = 0

    async def run(v: float) -> float:
        nonlocal peak
        result = await sess.arun(y, {x: v})
        return float(result)

    async def watch() -> None:
        nonlocal peak
        for _ in range(200):
            peak = max(peak, int(one.borrowed_tokens))
            await anyio.sleep(0)

    results: list[float] = []

    async def collect(v: float) -> None:
        results.append(await run(v))

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        for v in range(5):
            tg.start_soon(collect, float(v))
    assert sorted(results) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert peak <= 1
    other = anyio.CapacityLimiter(2)
    assert await sess.arun(y, {x: 1.0}, limiter=other) == 2.0
    with pytest.raises(TypeError, match=r"^arun\(limiter=\.\.\.\) takes an anyio.CapacityLimiter"):
        await sess.arun(y, {x: 1.0}, limiter=3)  # type: ignore[arg-type]


def test_session_limiter_must_be_a_capacity_limiter() -> None:
    with pytest.raises(TypeError, match=r"^Session\(limiter=\.\.\.\) takes an anyio"):
        sf.Session(sf.Graph(), limiter=4)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_default_arun_limiter_is_per_event_loop_and_shared() -> None:
    from scopeflow._execution import ARUN_THREADS, default_arun_limiter

    first = default_arun_limiter()
    assert first is default_arun_limiter()
    assert first.total_tokens == ARUN_THREADS
    assert first is not anyio.to_thread.current_default_thread_limiter()
