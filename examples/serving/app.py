"""A Starlette app serving an exported scopeflow model (run it on uvicorn).

The lifespan hook loads the model named by ``$SCOPEFLOW_MODEL`` once per process (so once
per uvicorn worker) and traces ``predict`` once. Endpoints, JSON in and out:

- ``POST /predict`` (``async def``): ``{"inputs": [[...], ...]}`` -> every output of the
  model's ``serving_default`` signature by name, through the traced ``predict`` on the
  event loop.
- ``POST /explain``: the scores and the gradient of each row's top score with respect to
  that row, under the request's own ``GradientTape``, awaiting inside it.
- ``POST /build``: each row's top score and its class, from a graph built for this request
  alone with awaits between its ops, run with ``Session.arun``.
- ``POST /predict_sync`` (plain ``def``): ``predict`` in the server's thread pool.
- ``GET /healthz``: status, the model's path, this worker's pid and trace counts.

``/explain`` and ``/build`` take an optional ``"pause"`` (seconds, at most 0.1) awaited
between steps, standing in for I/O a real handler would do there. Bad input gets a 4xx
with ``{"error": "..."}`` before it reaches the model; every answer carries the header
``x-worker-pid``.

Run it (after ``python examples/serving/model.py /tmp/mlp``)::

    SCOPEFLOW_MODEL=/tmp/mlp uvicorn --app-dir examples/serving app:app --port 8000
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import scopeflow as sf

MODEL_ENV = "SCOPEFLOW_MODEL"
MAX_BATCH = 256
MAX_BODY_BYTES = 1 << 20
MAX_PAUSE = 0.1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class BadRequest(Exception):
    """Input the server refuses, with the HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# The output taken as the scores by /explain and /build, by preference.
SCORE_OUTPUTS = ("scores", "logits", "probabilities")


@dataclass(frozen=True)
class ServedModel:
    """What the lifespan hook loads once per process."""

    path: str
    signature: Any  # the loaded ``serving_default`` function (returns a dict of outputs)
    predict: Any  # an sf.function calling it, traced once for every batch size
    n_features: int
    score_key: str  # which output /explain and /build use


def load_model(path: str) -> ServedModel:
    """Load the exported model at ``path`` and trace ``predict`` once (a warm-up call)."""
    loaded = sf.saved_model.load(path)
    if "serving_default" not in loaded.signatures:
        msg = f"the model at {path!r} has no 'serving_default' signature"
        raise ValueError(msg)
    signature = loaded.signatures["serving_default"]
    (spec,) = signature.input_signature
    if spec.dtype != np.float32 or len(spec.shape) != 2 or spec.shape[1] is None:
        msg = f"serving_default must take a float32 (batch, features) matrix, not {spec!r}"
        raise ValueError(msg)
    n_features = int(spec.shape[1])

    (name,) = signature.input_names  # signatures take their inputs by name, as in TF

    @sf.function(input_signature=[sf.TensorSpec((None, n_features), sf.float32)])
    def predict(x: Any) -> Any:
        return signature(**{name: x})

    outputs = predict(np.zeros((1, n_features), np.float32))
    floats = [k for k, v in outputs.items() if v.dtype.kind == "f" and len(v.shape) == 2]
    preferred = [k for k in SCORE_OUTPUTS if k in floats]
    if not floats:
        msg = f"serving_default of {path!r} has no float (batch, classes) output: {outputs}"
        raise ValueError(msg)
    return ServedModel(path, signature, predict, n_features, (preferred or floats)[0])


# -- input ------------------------------------------------------------------------------


async def read_json(request: Request) -> Any:
    """The request's JSON body, refusing bodies over ``MAX_BODY_BYTES`` before reading."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        msg = f"the body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
        raise BadRequest(413, msg)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            msg = f"the body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
            raise BadRequest(413, msg)
    try:
        return json.loads(body)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError alike
        msg = f"the body is not valid JSON: {err}"
        raise BadRequest(400, msg) from None


def parse_batch(data: Any, n_features: int) -> np.ndarray[Any, Any]:
    """Check ``{"inputs": [[n_features numbers], ...]}``; returns a float32 matrix."""
    if not isinstance(data, dict) or "inputs" not in data:
        msg = 'expected a JSON object {"inputs": [[...], ...]}'
        raise BadRequest(400, msg)
    rows = data["inputs"]
    if not isinstance(rows, list) or not rows:
        msg = f'"inputs" must be a non-empty list of rows of {n_features} numbers'
        raise BadRequest(400, msg)
    if len(rows) > MAX_BATCH:
        msg = f"a batch of {len(rows)} rows is over the limit of {MAX_BATCH}; split it"
        raise BadRequest(413, msg)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n_features:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            msg = f"inputs[{i}] has {got}; every row must be a list of {n_features} numbers"
            raise BadRequest(400, msg)
        for j, value in enumerate(row):
            # bool is an int subclass: true/false would silently become 1/0.
            if type(value) not in (int, float):
                msg = f"inputs[{i}][{j}] is {json.dumps(value)}; expected a number"
                raise BadRequest(400, msg)
            if not -_FLOAT32_MAX <= value <= _FLOAT32_MAX:  # also false for NaN
                msg = f"inputs[{i}][{j}] = {value} is not a finite float32"
                raise BadRequest(400, msg)
    return np.asarray(rows, dtype=np.float32)


def parse_pause(data: dict[str, Any]) -> float:
    """The optional ``"pause"`` in seconds, between 0 and ``MAX_PAUSE``."""
    pause = data.get("pause", 0.0)
    if type(pause) not in (int, float) or not 0.0 <= pause <= MAX_PAUSE:
        msg = f'"pause" must be a number of seconds from 0 to {MAX_PAUSE}, got {pause!r}'
        raise BadRequest(400, msg)
    return float(pause)


def run_model(fn: Any, *args: Any) -> Any:
    """Call the model, mapping its input errors to 400.

    A loaded signature or traced function raises ``TypeError`` (wrong dtype) or
    ``ValueError`` (wrong shape) for arguments that don't fit it, and
    ``sf.errors.InvalidArgumentError`` (a ``ValueError``) for a bad runtime value: all say
    what the client sent wrong. Anything else is the server's fault and stays a 500.
    """
    try:
        return fn(*args)
    except (TypeError, ValueError) as err:
        msg = f"the model refused the input: {err}"
        raise BadRequest(400, msg) from None


def as_json(outputs: dict[str, Any]) -> dict[str, Any]:
    """The model's outputs as JSON-ready lists, by name."""
    return {name: value.tolist() for name, value in outputs.items()}


def reply(content: Any, status: int = 200) -> JSONResponse:
    """A JSON answer tagged with this worker's pid."""
    return JSONResponse(content, status, headers={"x-worker-pid": str(os.getpid())})


# -- endpoints --------------------------------------------------------------------------


async def predict(request: Request) -> JSONResponse:
    """Every output of the traced ``predict``, on the event loop."""
    model: ServedModel = request.app.state.model
    batch = parse_batch(await read_json(request), model.n_features)
    return reply(as_json(run_model(model.predict, batch)))


async def explain(request: Request) -> JSONResponse:
    """Gradient of each row's top score w.r.t. the row, under this request's own tape."""
    model: ServedModel = request.app.state.model
    data = await read_json(request)
    batch = parse_batch(data, model.n_features)
    pause = parse_pause(data)
    x = sf.constant(batch)
    async with sf.GradientTape() as tape:
        tape.watch(x)
        scores = run_model(model.predict, x)[model.score_key]
        await anyio.sleep(pause)  # other requests run here; this tape records only ours
        top = sf.reduce_max(scores, axis=1)
    gradients = tape.gradient(top, x)
    return reply({"scores": scores.tolist(), "gradients": gradients.tolist()})


async def build(request: Request) -> JSONResponse:
    """Top scores and classes from a graph built for this request, awaiting between ops."""
    model: ServedModel = request.app.state.model
    data = await read_json(request)
    batch = parse_batch(data, model.n_features)
    pause = parse_pause(data)
    graph = sf.Graph()
    with graph.as_default():  # this task's default graph only: other requests don't see it
        x = sf.placeholder(sf.float32, (None, model.n_features), name="x")
        await anyio.sleep(pause)
        (name,) = model.signature.input_names
        scores = model.signature(**{name: x})[model.score_key]  # one call op in this graph
        await anyio.sleep(pause)
        top = {
            "top_scores": sf.reduce_max(scores, axis=1, name="top_scores"),
            "classes": sf.argmax(scores, axis=1, name="classes"),
        }
    with sf.Session(graph=graph) as session:
        result = await session.arun(top, feed_dict={x: batch})
    return reply(as_json(result))


def predict_sync(request: Request) -> JSONResponse:
    """``/predict`` as a plain ``def``: Starlette runs it in its thread pool."""
    model: ServedModel = request.app.state.model
    data = anyio.from_thread.run(read_json, request)
    batch = parse_batch(data, model.n_features)
    return reply(as_json(run_model(model.predict, batch)))


async def healthz(request: Request) -> JSONResponse:
    """Liveness, with what a load test checks: trace counts, threads, the worker's pid."""
    model: ServedModel = request.app.state.model
    return reply(
        {
            "status": "ok",
            "model": model.path,
            "pid": os.getpid(),
            "trace_counts": {"predict": model.predict.trace_count},
            "threads": threading.active_count(),
        }
    )


async def bad_request(request: Request, exc: Exception) -> JSONResponse:
    """Turn a :class:`BadRequest` into its 4xx answer."""
    if not isinstance(exc, BadRequest):  # Starlette routes only BadRequest here
        raise exc
    return reply({"error": exc.message}, exc.status)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Load the model once per process, before the first request."""
    path = os.environ.get(MODEL_ENV)
    if not path:
        msg = f"set ${MODEL_ENV} to the directory of an exported model"
        raise RuntimeError(msg)
    # In a worker thread: the event loop stays free, and the thread's copied context
    # makes the variables eager ones whatever the loop's task had entered.
    app.state.model = await anyio.to_thread.run_sync(load_model, path)
    yield


def create_app() -> Starlette:
    """The Starlette application (the model is loaded by its lifespan hook)."""
    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/explain", explain, methods=["POST"]),
        Route("/build", build, methods=["POST"]),
        Route("/predict_sync", predict_sync, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={BadRequest: bad_request})


app = create_app()


def main() -> None:
    """Serve on 127.0.0.1:8000 (``--workers N`` and other uvicorn options: use uvicorn)."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
