"""The serving example on a real stack: Starlette on uvicorn, one and two worker processes.

Each test starts ``uvicorn`` on a free 127.0.0.1 port in a subprocess (stopped in a
``finally``), loads the model exported by ``examples/serving/model.py`` and checks every
answer against NumPy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest

import scopeflow as sf
from scopeflow._execution import ARUN_THREADS

ROOT = Path(__file__).resolve().parent.parent
SERVING = ROOT / "examples" / "serving"
sys.path.insert(0, str(SERVING))

import harness  # noqa: E402
import model  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The example model, exported once for the module: (its directory, its weights)."""
    path = tmp_path_factory.mktemp("serving") / "mlp"
    return path, model.export(path, seed=3)


def _healthz(url: str) -> dict[str, Any]:
    response = httpx.get(url + "/healthz", timeout=10.0)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def test_load_1000_mixed_requests_at_concurrency_100(exported: tuple[Path, Any]) -> None:
    path, weights = exported
    requests = harness.mixed_requests(weights, 1200, seed=1, bad_every=10, pause=0.002)
    with harness.run_server(path) as server:
        before = _healthz(server.url)
        errors, latencies, _ = anyio.run(harness.fire, server.url, requests, 100)
        after = _healthz(server.url)
    assert errors == []
    assert len(latencies) == len(requests)
    assert sum(r.status != 200 for r in requests) == 120
    # One trace serves every batch size, and none of the 1,200 requests retraced.
    assert before["trace_counts"] == after["trace_counts"] == {"predict": 1}
    assert after["model"] == str(path)


def test_bad_input_gets_4xx_with_a_message_and_leaves_the_model_alone(
    exported: tuple[Path, Any],
) -> None:
    path, weights = exported
    row = [0.25] * model.N_FEATURES
    cases: list[tuple[str, bytes | dict[str, Any], int, str]] = [
        ("/predict", {"inputs": [row[:3]]}, 400, r"^inputs\[0\] has 3 values; every row must"),
        ("/predict", {"inputs": [[*row[:-1], "7"]]}, 400, r'^inputs\[0\]\[7\] is "7"; expected'),
        ("/predict_sync", {"inputs": [[None, *row[1:]]]}, 400, r"^inputs\[0\]\[0\] is null"),
        ("/explain", {"inputs": [[False, *row[1:]]]}, 400, r"^inputs\[0\]\[0\] is false"),
        ("/build", {"inputs": [row] * 257}, 413, r"^a batch of 257 rows is over the limit"),
        ("/predict", {"inputs": []}, 400, r'^"inputs" must be a non-empty list'),
        ("/predict", {"rows": [row]}, 400, r'^expected a JSON object \{"inputs"'),
        ("/predict", b"{not json", 400, r"^the body is not valid JSON"),
        ("/predict", b'{"inputs": [[NaN' + b", 0" * 7 + b"]]}", 400, r"not a finite float32$"),
        ("/predict", {"inputs": [[1e39, *row[1:]]]}, 400, r"^inputs\[0\]\[0\] = 1e\+39 is not"),
        ("/build", {"inputs": [row], "pause": 5}, 400, r'^"pause" must be a number of seconds'),
        ("/predict", b"[" * 10 + b"1" * (1 << 20), 413, r"^the body is larger than 1048576"),
    ]
    with harness.run_server(path) as server, httpx.Client(base_url=server.url) as client:
        for endpoint, body, status, pattern in cases:
            if isinstance(body, bytes):
                response = client.post(endpoint, content=body)
            else:
                response = client.post(endpoint, json=body)
            assert response.status_code == status, (endpoint, body, response.text)
            assert response.headers["content-type"] == "application/json"
            assert re.search(pattern, response.json()["error"]), response.json()
        # The next good request is answered right, and nothing retraced.
        batch = np.full((2, model.N_FEATURES), 0.25, np.float32)
        response = client.post("/predict", json={"inputs": batch.tolist()})
        assert response.status_code == 200
        want = model.numpy_forward(weights, batch)
        assert np.allclose(response.json()["scores"], want, rtol=1e-5, atol=1e-6)
        assert _healthz(server.url)["trace_counts"] == {"predict": 1}


def test_two_uvicorn_workers_each_load_the_model_and_answer_right(
    exported: tuple[Path, Any],
) -> None:
    path, weights = exported
    with harness.run_server(path, workers=2) as server:
        seen: set[int] = set()
        # Fresh connections let the kernel hand requests to both workers; bounded rounds.
        for round_ in range(20):
            requests = harness.mixed_requests(weights, 100, seed=100 + round_)
            errors, _, pids = anyio.run(harness.fire, server.url, requests, 20, False)
            assert errors == []
            seen.update(pids)
            if len(seen) >= 2:
                break
        assert len(seen) == 2, f"only workers {seen} answered"
        assert server.process.pid not in seen  # the supervisor serves nothing itself
        # Each worker loaded and traced its own model: ask until both have answered.
        health: dict[int, dict[str, Any]] = {}
        for _ in range(200):
            with httpx.Client(
                base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)
            ) as c:
                data = c.get("/healthz").json()
            health[data["pid"]] = data
            if len(health) == 2:
                break
        assert set(health) == seen
        assert all(h["trace_counts"] == {"predict": 1} for h in health.values())


def test_ray_serve_two_replicas_answer_500_concurrent_requests(exported: tuple[Path, Any]) -> None:
    path, _ = exported
    result = subprocess.run(
        [sys.executable, str(SERVING / "ray_app.py"), str(path), "500"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(sf.__file__).resolve().parent.parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(
        re.fullmatch(r"501 requests through the handle in [\d.]+ s, 0 wrong", x) for x in lines
    )
    assert "replicas that answered: 2; traces per replica: [1]" in lines


def test_clients_that_disconnect_mid_request_disturb_no_one(exported: tuple[Path, Any]) -> None:
    path, weights = exported
    good = harness.mixed_requests(weights, 200, seed=9, pause=0.005)
    slow = harness.mixed_requests(weights, 40, seed=10, pause=0.1)
    slow = [r for r in slow if r.endpoint in ("/explain", "/build")]

    async def main(url: str) -> tuple[list[str], int]:
        timeouts = 0

        async def impatient(request: harness.Request) -> None:
            nonlocal timeouts
            # Gives up (closing its connection) while the handler awaits inside its tape
            # or between its graph's ops.
            async with httpx.AsyncClient(base_url=url, timeout=0.05) as client:
                try:
                    await client.post(request.endpoint, json=request.body)
                except httpx.TimeoutException:
                    timeouts += 1

        async with anyio.create_task_group() as tg:
            for request in slow:
                tg.start_soon(impatient, request)
            errors, _, _ = await harness.fire(url, good, 50)
        return errors, timeouts

    with harness.run_server(path) as server:
        threads = _healthz(server.url)["threads"]
        errors, timeouts = anyio.run(main, server.url)
        assert errors == []
        assert timeouts == len(slow)
        after = harness.mixed_requests(weights, 40, seed=11)
        errors, _, _ = anyio.run(harness.fire, server.url, after, 10)
        assert errors == []
        health = _healthz(server.url)
    assert health["trace_counts"] == {"predict": 1}
    # Starlette's and Session.arun's thread pools are bounded (anyio's 40, and ours).
    assert health["threads"] <= threads + 40 + ARUN_THREADS


def test_serves_the_model_train_and_export_trains(tmp_path: Path) -> None:
    out = tmp_path / "trained"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_and_export.py"), "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(sf.__file__).resolve().parent.parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    export = out / "mlp"
    loaded = sf.saved_model.load(export)
    features = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    want = loaded.signatures["serving_default"](features=features)
    with harness.run_server(export) as server, httpx.Client(base_url=server.url) as client:
        got = client.post("/predict", json={"inputs": features.tolist()}).json()
        top = client.post("/build", json={"inputs": features.tolist()}).json()
        explained = client.post("/explain", json={"inputs": features.tolist()}).json()
    assert sorted(got) == ["classes", "probabilities"]
    np.testing.assert_allclose(got["probabilities"], want["probabilities"].numpy(), rtol=1e-5)
    assert got["classes"] == want["classes"].numpy().tolist() == top["classes"]
    np.testing.assert_allclose(top["top_scores"], want["probabilities"].numpy().max(axis=1))
    assert np.asarray(explained["gradients"]).shape == (5, 64)
