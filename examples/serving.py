"""Serve a model to many concurrent asyncio requests.

At start-up (an async context manager standing in for a web framework's lifespan hook) the
server awaits its weights, creates the model's variables once, eagerly, and warms up its
traced ``predict`` function. Then 200 request handlers run concurrently. Each one opens
its own name scope and awaits in the middle of handling; some call ``predict`` straight
from the event loop, some from a worker thread (``asyncio.to_thread``), and "explain"
requests take the gradient of the score with respect to their input under their own
``GradientTape``. No handler re-enters a graph or sees another handler's scopes, each tape
records only its own handler's ops, and every answer is checked against NumPy.

An ``async def`` traced function (``decide``) awaits a (simulated) download of its
decision margin while it is traced: the concurrent first calls trace it once, and the
event loop keeps serving the other requests meanwhile.

Run it with ``python examples/serving.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

import scopeflow as sf

N_FEATURES = 3
N_REQUESTS = 200
WEIGHTS = np.array([[0.5, -1.0], [2.0, 0.25], [-0.5, 1.5]])
BIAS = np.array([0.1, -0.2])
MARGIN = 0.25


class Model(sf.Module):
    """A dense layer whose variables are created once, when the model is built."""

    def __init__(self, weights: np.ndarray[Any, Any], bias: np.ndarray[Any, Any]) -> None:
        super().__init__(name="dense")
        self.w = sf.Variable(weights.astype(np.float32), name="w")
        self.b = sf.Variable(bias.astype(np.float32), name="b")
        self.served = sf.Variable(0, name="served", trainable=False)

    @sf.function(input_signature=[sf.TensorSpec((None, N_FEATURES), sf.float32)])
    def predict(self, x: Any) -> Any:
        """Scores for a batch of any size (one trace serves them all), counting calls."""
        self.served.assign_add(1)
        return sf.matmul(x, self.w) + self.b


async def download_margin() -> float:
    """Stand-in for fetching a setting from a configuration service."""
    await asyncio.sleep(0.02)
    return MARGIN


@sf.function(input_signature=[sf.TensorSpec((None, 2), sf.float32)])
async def decide(scores: Any) -> Any:
    """Per row, whether score 1 beats score 0 by the margin (awaited while tracing)."""
    margin = await download_margin()  # becomes a constant of the function graph
    return scores[:, 1] - scores[:, 0] > margin


@asynccontextmanager
async def lifespan() -> AsyncIterator[Model]:
    """Start-up: load the weights, build the model, trace ``predict`` once."""
    await asyncio.sleep(0.01)  # stand-in for reading the weights from storage
    model = Model(WEIGHTS, BIAS)
    model.predict(np.zeros((1, N_FEATURES), np.float32))  # warm-up trace
    yield model


async def handle(model: Model, request_id: int) -> str:
    """One request: predict (or explain) a batch, checking the answer and the scopes."""
    rng = np.random.default_rng(request_id)
    batch = rng.normal(size=(1 + request_id % 8, N_FEATURES)).astype(np.float32)
    expected = batch @ WEIGHTS.astype(np.float32) + BIAS.astype(np.float32)
    scope = f"request{request_id}"
    async with sf.name_scope(scope):
        await asyncio.sleep(0.001 * (request_id % 5))  # other handlers run meanwhile
        kind = ("event loop", "worker thread", "explain")[request_id % 3]
        if kind == "event loop":
            scores = model.predict(batch)
        elif kind == "worker thread":
            # to_thread copies this task's context: the thread sees this name scope.
            seen, scores = await asyncio.to_thread(
                lambda: (sf.get_name_scope(), model.predict(batch))
            )
            if seen != scope:
                msg = f"request {request_id}: the worker thread saw name scope {seen!r}"
                raise AssertionError(msg)
        else:
            x = sf.constant(batch)
            async with sf.GradientTape() as tape:
                tape.watch(x)
                scores = model.predict(x)
                await asyncio.sleep(0)  # other tasks' ops are never recorded here
            grad = tape.gradient(scores, x)  # of the sum of the scores
            want = np.broadcast_to(WEIGHTS.sum(axis=1), batch.shape)
            if not np.allclose(grad.numpy(), want, rtol=1e-6):
                msg = f"request {request_id}: wrong gradient {grad.numpy()}"
                raise AssertionError(msg)
        decision = await decide(scores)
        if sf.get_name_scope() != scope:
            msg = f"request {request_id} sees name scope {sf.get_name_scope()!r}"
            raise AssertionError(msg)
    if not np.allclose(scores.numpy(), expected, rtol=1e-6, atol=1e-6):
        msg = f"request {request_id}: wrong scores {scores.numpy()}"
        raise AssertionError(msg)
    if decision.numpy().tolist() != (expected[:, 1] - expected[:, 0] > MARGIN).tolist():
        msg = f"request {request_id}: wrong decisions {decision.numpy()}"
        raise AssertionError(msg)
    return kind


async def serve() -> None:
    """Start the server, answer every request concurrently, report."""
    async with lifespan() as model:
        print(f"model loaded: variables {[v.name for v in model.variables]}")
        kinds = await asyncio.gather(*(handle(model, i) for i in range(N_REQUESTS)))
    counts = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
    print(f"{N_REQUESTS} requests answered and checked: {counts}")
    print(f"calls counted by the model: {int(model.served.numpy())} (the warm-up included)")
    print(
        f"predict traced {model.predict.trace_count} time(s), decide traced "
        f"{decide.trace_count} time(s)"
    )
    print(f"after serving, the server task has name scope {sf.get_name_scope()!r}")


def main() -> None:
    """Run the server until every request is answered."""
    asyncio.run(serve())


if __name__ == "__main__":
    main()
