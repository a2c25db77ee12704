"""Cancellation and load on the serving example, in process, on asyncio and trio.

Requests go through ``httpx.ASGITransport``, which runs the app inside the calling task:
a cancelled request is cancelled in the middle of its handler (inside its tape, between
the ops of its graph, inside a trace). No other request's answer may change, the next
request must succeed and nothing may be left behind (graphs, tapes, threads, scopes).
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from starlette.requests import Request

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


# -- hostile input, in process -------------------------------------------------------------

_ROW = [0.25] * model.N_FEATURES
_HUGE = [3.4e38] * model.N_FEATURES  # finite float32 values whose scores overflow
_HOSTILE: list[tuple[str, str, bytes, int, str]] = [
    # (method, path, body, status, anchored pattern of the error message)
    ("POST", "/predict", json.dumps({"inputs": [_HUGE]}).encode(), 422,
     r"^the model's 'scores' output for this input is not finite \(it overflowed\); send "),
    ("POST", "/explain", json.dumps({"inputs": [_HUGE]}).encode(), 422,
     r"^the model's 'scores' output for this input is not finite"),
    ("POST", "/build", json.dumps({"inputs": [_HUGE]}).encode(), 422,
     r"^the model's 'top_scores' output for this input is not finite"),
    ("POST", "/predict", b"[" * 100_000, 400,
     r"^the body nests arrays or objects too deeply; inputs need only two levels$"),
    ("POST", "/predict", b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400,
     r"^the body nests arrays or objects too deeply"),
    ("POST", "/predict", b'{"inputs": [[0,0,0,0,0,0,0,0]], "inputs": 5}', 400,
     r'^the body repeats the key "inputs"; send each key once$'),
    ("POST", "/predict", json.dumps({"inputs": [["x" * 500_000, *_ROW[1:]]]}).encode(), 400,
     r'^inputs\[0\]\[0\] is "x{56}\.\.\.; expected a number$'),
    ("POST", "/predict", b'{"inputs": [[1' + b"0" * 400 + b", 0, 0, 0, 0, 0, 0, 0]]}", 400,
     r"^inputs\[0\]\[0\] = 10{56}\.\.\. is not a finite float32$"),
    ("POST", "/predict", b'{"inputs": [[Infinity, 0, 0, 0, 0, 0, 0, 0]]}', 400,
     r"^inputs\[0\]\[0\] = Infinity is not a finite float32$"),
    ("POST", "/predict", b'{"inputs": [0.5, 0.5]}', 400,
     r"^inputs\[0\] is 0.5; every row must be a list of 8 numbers$"),
    ("POST", "/predict", b'{"inputs": [[0.5]]}', 400,
     r"^inputs\[0\] has 1 value; every row must be a list of 8 numbers$"),
    ("POST", "/explain", json.dumps({"inputs": [_ROW], "pause": "p" * 100_000}).encode(), 400,
     r'^"pause" must be a number of seconds from 0 to 0.1, got "p{56}\.\.\.$'),
    ("POST", "/nowhere", b"{}", 404, r"^no endpoint '/nowhere'; see GET /healthz"),
    ("GET", "/predict", b"", 405, r"^GET is not allowed on '/predict'; use POST$"),
    ("POST", "/healthz", b"", 405,
     r"^POST is not allowed on '/healthz'; use (GET, HEAD|HEAD, GET)$"),
]  # fmt: skip


@pytest.mark.anyio
async def test_hostile_input_gets_a_json_4xx_and_leaves_the_model_alone(
    served: tuple[Any, serving_app.ServedModel, Any],
) -> None:
    application, served_model, weights = served
    probe = {"inputs": np.linspace(-1, 1, 3 * model.N_FEATURES).reshape(3, -1).tolist()}
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        before = (await client.post("/predict", json=probe)).json()
        for method, path, body, status, pattern in _HOSTILE:
            response = await client.request(method, path, content=body)
            assert response.status_code == status, (path, body[:60], response.text[:300])
            assert response.headers["content-type"] == "application/json"
            assert re.search(pattern, response.json()["error"]), response.json()
        after = (await client.post("/predict", json=probe)).json()
    assert after == before  # bit for bit: no variable changed
    want = model.numpy_forward(weights, np.asarray(probe["inputs"]))
    np.testing.assert_allclose(after["scores"], want, rtol=1e-5, atol=1e-6)
    assert served_model.predict.trace_count == 1


@pytest.mark.anyio
async def test_a_body_that_stalls_gets_a_408_within_the_time_limit(
    served: tuple[Any, serving_app.ServedModel, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    application, served_model, _ = served
    monkeypatch.setattr(serving_app, "BODY_TIMEOUT", 0.2)

    async def slowloris() -> AsyncIterator[bytes]:
        yield b'{"inputs": [[0.25'
        await anyio.sleep(30)  # never finishes within the test's own limit below
        yield b"]]}"

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with anyio.fail_after(10):
            start = anyio.current_time()
            response = await client.post("/explain", content=slowloris())
            waited = anyio.current_time() - start
    assert response.status_code == 408
    assert re.fullmatch(
        r"the body did not arrive within 0.2 s; send it at once", response.json()["error"]
    )
    assert 0.15 <= waited < 5
    assert served_model.predict.trace_count == 1


@pytest.mark.anyio
async def test_the_ray_replica_refuses_bad_and_overflowing_input_with_its_status(
    exported: tuple[Path, Any],
) -> None:
    import ray_app

    path, weights = exported
    replica = ray_app.Predictor(str(path))
    batch = np.full((2, model.N_FEATURES), 0.25, np.float32)
    good = await replica({"endpoint": "explain", "inputs": batch.tolist()})
    assert good["status"] == 200
    np.testing.assert_allclose(good["scores"], model.numpy_forward(weights, batch), rtol=1e-5)
    overflow = await replica({"endpoint": "explain", "inputs": [_HUGE]})
    assert overflow["status"] == 422
    assert re.match(r"^the model's 'scores' output for this input is not finite", overflow["error"])
    short = await replica({"endpoint": "predict", "inputs": [[1.0]]})
    assert (short["status"], short["error"]) == (
        400,
        "inputs[0] has 1 value; every row must be a list of 8 numbers",
    )
    again = await replica({"endpoint": "predict", "inputs": batch.tolist()})
    assert again["scores"] == good["scores"]
    assert again["traces"] == 1


@pytest.mark.anyio
async def test_a_content_length_that_is_not_a_number_gets_a_400() -> None:
    # The ASGI scope a server that let the header through would pass on ("²".isdigit()).
    headers = [(b"content-length", "²".encode("latin-1"))]  # as HTTP sends it
    request = Request({"type": "http", "method": "POST", "path": "/predict", "headers": headers})
    with pytest.raises(serving_app.BadRequest) as caught:
        await serving_app.read_json(request)
    assert caught.value.status == 400
    assert re.fullmatch(
        r'the Content-Length header is "\\u00b2", not a number of bytes', caught.value.message
    )
