"""Cancellation and load on the serving example, in process, on asyncio and trio.

Requests go through ``httpx.ASGITransport``, which runs the app inside the calling task:
a cancelled request is cancelled in the middle of its handler (inside its tape, between
the ops of its graph, inside a trace). No other request's answer may change, the next
request must succeed and nothing may be left behind (graphs, tapes, threads, scopes).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._execution import ARUN_THREADS

SERVING = Path(__file__).resolve().parent.parent / "examples" / "serving"
sys.path.insert(0, str(SERVING))

import app as serving_app  # noqa: E402
import harness  # noqa: E402
import model  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("faults") / "mlp"
    return path, model.export(path, seed=5)


@pytest.fixture
def served(exported: tuple[Path, Any]) -> tuple[Any, serving_app.ServedModel, Any]:
    """A fresh app with its model loaded (ASGITransport runs no lifespan): (app, model, w)."""
    path, weights = exported
    application = serving_app.create_app()
    application.state.model = serving_app.load_model(str(path))
    return application, application.state.model, weights


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


def _new_graphs(before: set[int]) -> list[Any]:
    """Graphs alive now that were not in ``before``, the global default graph excepted."""
    gc.collect()
    global_graph = sf.get_default_graph()
    return [
        obj
        for obj in gc.get_objects()
        if type(obj) is sf.Graph and id(obj) not in before and obj is not global_graph
    ]


async def _round(client: httpx.AsyncClient, requests: list[harness.Request]) -> list[str]:
    """Send ``requests`` concurrently, cancelling half the slow ones mid-handler; errors."""
    errors: list[str] = []
    cancelled = 0

    async def one(i: int, request: harness.Request) -> None:
        nonlocal cancelled
        if i % 2 == 0 and request.endpoint in ("/explain", "/build"):
            # The handler pauses 10 ms inside its tape / between its graph's ops: cancel there.
            with anyio.move_on_after(0.004) as scope:
                await client.post(request.endpoint, json=request.body)
            cancelled += scope.cancelled_caught
            return
        problem = harness.check(request, await client.post(request.endpoint, json=request.body))
        if problem is not None:
            errors.append(problem)

    async with anyio.create_task_group() as tg:
        for i, request in enumerate(requests):
            tg.start_soon(one, i, request)
    if cancelled < len(requests) // 6:
        errors.append(f"only {cancelled} requests were cancelled mid-handler")
    return errors


@pytest.mark.anyio
async def test_cancelled_requests_change_no_other_answer_and_leak_nothing(
    served: tuple[Any, serving_app.ServedModel, Any],
) -> None:
    application, served_model, weights = served
    requests = [
        r
        for r in harness.mixed_requests(weights, 120, seed=7, pause=0.01)
        if r.endpoint != "/predict_sync"  # ASGITransport has no thread pool portal
    ]
    graphs = {id(obj) for obj in gc.get_objects() if type(obj) is sf.Graph}
    tapes = _live(sf.GradientTape)
    threads = threading.active_count()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert await _round(client, requests) == []
        assert await _round(client, requests[::-1]) == []
        # The next request after all that is answered right.
        nxt = harness.mixed_requests(weights, 3, seed=8)
        for request in nxt:
            assert (
                harness.check(request, await client.post(request.endpoint, json=request.body))
                is None
            )
    assert served_model.predict.trace_count == 1
    # Let the event loop drop its expired timer handles: a handle keeps the context it
    # was scheduled in (and so that request's graph) until the loop discards it.
    await anyio.sleep(0.05)
    left = _new_graphs(graphs)
    assert left == []  # every per-request graph was freed
    assert _live(sf.GradientTape) == tapes
    assert threading.active_count() <= threads + ARUN_THREADS  # pooled workers, no growth
    assert sf.get_name_scope() == ""
    assert not sf.has_default_graph()


@pytest.mark.anyio
async def test_a_trace_cancelled_midway_is_redone_by_the_next_caller() -> None:
    started = anyio.Event()
    calls = 0

    @sf.function(input_signature=[sf.TensorSpec((None, 2), sf.float32)])
    async def scaled(x: Any) -> Any:
        nonlocal calls
        calls += 1
        started.set()
        await anyio.sleep(0.02)  # stands in for fetching a setting while tracing
        return x * 3.0

    batch = np.arange(6, dtype=np.float32).reshape(3, 2)
    graphs = _live(sf.FuncGraph)
    results: list[Any] = []

    async def waiter() -> None:
        await started.wait()
        results.append((await scaled(batch)).numpy())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(waiter)
        with anyio.move_on_after(0.005) as scope:  # cancels the first trace in its await
            await scaled(batch)
    assert scope.cancelled_caught
    assert len(results) == 20
    for result in results:
        np.testing.assert_allclose(result, batch * 3.0)
    # trace_count counts every trace run, the cancelled one too; only the completed one
    # was kept, and it serves every later call.
    assert (calls, scaled.trace_count) == (2, 2)
    np.testing.assert_allclose((await scaled(batch)).numpy(), batch * 3.0)
    assert (calls, scaled.trace_count) == (2, 2)
    assert _live(sf.FuncGraph) == graphs + 1  # only the completed trace's graph is kept


def test_wait_for_timeouts_inside_tapes_on_asyncio() -> None:
    """asyncio.wait_for cancels handlers that hold a tape across an await."""
    x = sf.constant([1.0, 2.0])

    async def handler(pause: float) -> Any:
        async with sf.GradientTape() as tape:
            tape.watch(x)
            y = x * x
            await asyncio.sleep(pause)
        return tape.gradient(y, x)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(asyncio.wait_for(handler(0.5 if i % 2 else 0.0), 0.05) for i in range(40)),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())
    assert sum(isinstance(o, TimeoutError) for o in outcomes) == 20
    for o in outcomes[::2]:
        np.testing.assert_allclose(o.numpy(), [2.0, 4.0])
    np.testing.assert_allclose(asyncio.run(handler(0.0)).numpy(), [2.0, 4.0])
    del outcomes, o  # the TimeoutErrors' tracebacks hold the cancelled handlers' frames
    assert _live(sf.GradientTape) == 0


@pytest.mark.slow
@pytest.mark.anyio
async def test_10000_concurrent_tasks_each_get_their_own_right_answer(
    served: tuple[Any, serving_app.ServedModel, Any],
) -> None:
    _, served_model, weights = served
    n = 10_000
    rng = np.random.default_rng(11)
    batches = rng.normal(size=(n, 2, model.N_FEATURES)).astype(np.float32)
    want = model.numpy_forward(weights, batches.reshape(-1, model.N_FEATURES)).reshape(n, 2, -1)
    wrong: list[int] = []

    async def request(i: int) -> None:
        batch = batches[i]
        scope = f"request{i}"
        with sf.name_scope(scope):
            await anyio.sleep(0)
            # Mostly predictions; every tenth request a tape, another tenth a graph.
            kind = i % 10
            if kind > 1:
                scores = served_model.predict(batch)["scores"].numpy()
            elif kind == 0:
                x = sf.constant(batch)
                async with sf.GradientTape() as tape:
                    tape.watch(x)
                    out = served_model.predict(x)["scores"]
                    await anyio.sleep(0)
                    top = sf.reduce_max(out, axis=1)
                grad = tape.gradient(top, x).numpy()
                if not np.allclose(grad, model.numpy_top_gradient(weights, batch), atol=1e-5):
                    wrong.append(i)
                scores = out.numpy()
            else:
                graph = sf.Graph()
                with graph.as_default():
                    ph = sf.placeholder(sf.float32, (None, model.N_FEATURES))
                    await anyio.sleep(0)
                    out = served_model.signature(x=ph)["scores"]
                with sf.Session(graph=graph) as session:
                    scores = session.run(out, feed_dict={ph: batch})
            await anyio.sleep(0)
            if sf.get_name_scope() != scope:
                wrong.append(i)
        if not np.allclose(scores, want[i], rtol=1e-5, atol=1e-5):
            wrong.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(request, i)
    assert wrong == []
    assert served_model.predict.trace_count == 1
