"""Start the app on uvicorn in a subprocess, fire mixed requests, check every answer.

Shared by the tests (``tests/test_serving.py``) and the benchmark
(``benchmarks/bench_serving.py``). Loopback only; every loop is bounded in count and time,
and the server is stopped in a ``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
from model import numpy_forward, numpy_top_gradient  # examples/serving is on sys.path

HERE = Path(__file__).resolve().parent
ENDPOINTS = ("/predict", "/explain", "/build", "/predict_sync")
Array = np.ndarray[Any, Any]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running uvicorn subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path


@contextmanager
def run_server(
    model_path: str | os.PathLike[str],
    *,
    workers: int = 1,
    app: str = "app:app",
    log: Path | None = None,
    startup_timeout: float = 60.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``uvicorn --app-dir examples/serving APP`` on a free loopback port.

    Yields once ``/healthz`` answers 200 (from every worker's socket: uvicorn binds before it
    starts the workers, so this waits for one). Stops the server on exit (SIGINT, then
    SIGKILL after 15 s), whatever happened.
    """
    port = free_port()
    env = dict(os.environ)
    env["SCOPEFLOW_MODEL"] = os.fspath(model_path)
    env.update(extra_env or {})
    log_path = log or Path(os.fspath(model_path) + f".uvicorn-{port}.log")
    command = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60",
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                msg = f"uvicorn exited with {process.returncode}:\n{log_path.read_text()}"
                raise RuntimeError(msg)
            try:
                if httpx.get(server.url + "/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                msg = f"uvicorn did not answer within {startup_timeout} s:\n{log_path.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)


# -- requests and their reference answers ------------------------------------------------


def numpy_answer(endpoint: str, weights: dict[str, Array], batch: Array) -> dict[str, Array]:
    """What ``endpoint`` must answer for ``batch``, computed with NumPy alone."""
    scores = numpy_forward(weights, batch.astype(np.float64))
    if endpoint in ("/predict", "/predict_sync"):
        return {"scores": scores}
    if endpoint == "/explain":
        return {"scores": scores, "gradients": numpy_top_gradient(weights, batch)}
    return {"top_scores": scores.max(axis=1), "classes": scores.argmax(axis=1)}


@dataclass
class Request:
    """One request of a load run: what is sent and what must come back."""

    endpoint: str
    body: Any
    status: int = 200
    expected: dict[str, Array] = field(default_factory=dict)


def mixed_requests(
    weights: dict[str, Array], n: int, seed: int = 0, bad_every: int = 0, pause: float = 0.0
) -> list[Request]:
    """``n`` requests cycling over the endpoints, batches of 1-16 rows.

    With ``bad_every``, every that-many-th request carries bad input (a wrong row length,
    a string, a boolean, an oversized batch) and must get its 4xx.
    """
    rng = np.random.default_rng(seed)
    n_features = weights["w1"].shape[0]
    out = []
    for i in range(n):
        endpoint = ENDPOINTS[i % len(ENDPOINTS)]
        if bad_every and i % bad_every == bad_every - 1:
            kind = (i // bad_every) % 4
            row: list[Any] = [0.5] * n_features
            if kind == 0:
                body: Any = {"inputs": [row[:-1]]}
            elif kind == 1:
                body = {"inputs": [[*row[:-1], "x"]]}
            elif kind == 2:
                body = {"inputs": [[True, *row[1:]]]}
            else:
                body = {"inputs": [row] * 1000}
            out.append(Request(endpoint, body, 413 if kind == 3 else 400))
            continue
        batch = rng.normal(size=(1 + i % 16, n_features)).astype(np.float32)
        body = {"inputs": batch.tolist()}
        if pause and endpoint in ("/explain", "/build"):
            body["pause"] = pause
        out.append(Request(endpoint, body, 200, numpy_answer(endpoint, weights, batch)))
    return out


def check(request: Request, response: httpx.Response) -> str | None:
    """``None`` if the response is the right one, else what is wrong with it."""
    if response.status_code != request.status:
        return f"{request.endpoint}: status {response.status_code}: {response.text[:200]}"
    data = response.json()
    if request.status != 200:
        return None if isinstance(data.get("error"), str) else f"no error message: {data}"
    for key, want in request.expected.items():
        got = np.asarray(data.get(key), dtype=np.float64)
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            return f"{request.endpoint}: wrong {key}: {data.get(key)} != {want.tolist()}"
    return None


async def fire(
    url: str, requests: Sequence[Request], concurrency: int, keepalive: bool = True
) -> tuple[list[str], list[float], list[int]]:
    """Send ``requests`` with ``concurrency`` in flight; (errors, latencies, worker pids)."""
    errors: list[str] = []
    latencies: list[float] = []
    pids: list[int] = []
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency if keepalive else 0
    )
    queue = iter(requests)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            for request in queue:  # shared iterator: each request is sent once
                start = time.perf_counter()
                response = await client.post(request.endpoint, json=request.body)
                latencies.append(time.perf_counter() - start)
                pids.append(int(response.headers.get("x-worker-pid", "0")))
                problem = check(request, response)
                if problem is not None:
                    errors.append(problem)

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return errors, latencies, pids
