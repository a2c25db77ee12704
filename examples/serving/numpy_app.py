"""The same endpoints as ``app.py`` written in plain NumPy: the benchmark's floor.

Same Starlette app, same input checks and JSON, same awaits; only the model is NumPy code
(the forward pass, and a hand-written backward pass for ``/explain``) on the weights read
from the export. ``/build`` runs its computation in a worker thread, as ``Session.arun``
does.

Run it: ``SCOPEFLOW_MODEL=/tmp/mlp uvicorn --app-dir examples/serving numpy_app:app``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import numpy as np
from app import MODEL_ENV, BadRequest, bad_request, parse_batch, parse_pause, read_json, reply
from model import numpy_forward, numpy_top_gradient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import scopeflow as sf

Weights = dict[str, np.ndarray[Any, Any]]


def _top(weights: Weights, batch: np.ndarray[Any, Any]) -> dict[str, Any]:
    scores = numpy_forward(weights, batch)
    return {"top_scores": scores.max(axis=1).tolist(), "classes": scores.argmax(axis=1).tolist()}


async def predict(request: Request) -> JSONResponse:
    """Scores, on the event loop."""
    weights: Weights = request.app.state.weights
    batch = parse_batch(await read_json(request), weights["w1"].shape[0])
    return reply({"scores": numpy_forward(weights, batch).tolist()})


async def explain(request: Request) -> JSONResponse:
    """Scores and the gradient of each row's top score, by hand."""
    weights: Weights = request.app.state.weights
    data = await read_json(request)
    batch = parse_batch(data, weights["w1"].shape[0])
    pause = parse_pause(data)
    scores = numpy_forward(weights, batch)
    await anyio.sleep(pause)
    gradients = numpy_top_gradient(weights, batch)
    return reply({"scores": scores.tolist(), "gradients": gradients.tolist()})


async def build(request: Request) -> JSONResponse:
    """Top scores and classes, computed in a worker thread."""
    weights: Weights = request.app.state.weights
    data = await read_json(request)
    batch = parse_batch(data, weights["w1"].shape[0])
    pause = parse_pause(data)
    await anyio.sleep(pause)
    await anyio.sleep(pause)
    return reply(await anyio.to_thread.run_sync(_top, weights, batch))


def predict_sync(request: Request) -> JSONResponse:
    """``/predict`` as a plain ``def``, in Starlette's thread pool."""
    weights: Weights = request.app.state.weights
    data = anyio.from_thread.run(read_json, request)
    batch = parse_batch(data, weights["w1"].shape[0])
    return reply({"scores": numpy_forward(weights, batch).tolist()})


async def healthz(request: Request) -> JSONResponse:
    """Liveness."""
    return reply({"status": "ok", "pid": os.getpid()})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Read the weights from the export once."""
    loaded = sf.saved_model.load(os.environ[MODEL_ENV])
    app.state.weights = {
        v.name.split("/")[-1].split(":")[0]: v.numpy().astype(np.float32) for v in loaded.variables
    }
    yield


app = Starlette(
    routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/explain", explain, methods=["POST"]),
        Route("/build", build, methods=["POST"]),
        Route("/predict_sync", predict_sync, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=lifespan,
    exception_handlers={BadRequest: bad_request},
)
