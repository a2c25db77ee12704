"""The served model as a Ray Serve deployment with two replicas.

Each replica is its own process and loads the exported model in its constructor (so it
traces ``predict`` once). Its ``async def __call__`` handlers run concurrently on the
replica's event loop, each request in its own task: the ``"explain"`` requests hold their
own ``GradientTape`` across an await, exactly as in the Starlette app (``app.py``, whose
input checks and model loading this reuses).

``python examples/serving/ray_app.py MODEL_DIR [N_REQUESTS]`` starts a local Ray instance
(no dashboard, loopback only), deploys, sends ``N_REQUESTS`` (default 500) concurrent
requests through the deployment handle, checks every answer against NumPy and shuts Ray
down. Needs the ``ray`` extra (``pip install -e ".[serve,ray]"``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from app import BadRequest, ServedModel, load_model, parse_batch, run_model  # noqa: E402

import scopeflow as sf  # noqa: E402

N_REPLICAS = 2


class Predictor:
    """One replica: the model, loaded once in the constructor."""

    def __init__(self, model_path: str) -> None:
        self.model: ServedModel = load_model(model_path)

    async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"endpoint": "predict" | "explain", "inputs": [[...]]}`` -> the answer."""
        answer: dict[str, Any] = {"pid": os.getpid()}
        try:
            batch = parse_batch(body, self.model.n_features)
            if body.get("endpoint") == "explain":
                x = sf.constant(batch)
                async with sf.GradientTape() as tape:
                    tape.watch(x)
                    scores = run_model(self.model.predict, x)[self.model.score_key]
                    await anyio.sleep(0.001)  # the replica's other requests run here
                    top = sf.reduce_max(scores, axis=1)
                answer["gradients"] = tape.gradient(top, x).tolist()
            else:
                scores = run_model(self.model.predict, batch)[self.model.score_key]
                await anyio.sleep(0)
        except BadRequest as err:
            return {**answer, "status": err.status, "error": err.message}
        answer.update(status=200, scores=scores.tolist(), traces=self.model.predict.trace_count)
        return answer


def weights_of(model_path: str) -> dict[str, np.ndarray[Any, Any]]:
    """The example MLP's weights, read from the export (for the NumPy reference)."""
    loaded = sf.saved_model.load(model_path)
    return {v.name.split("/")[-1].split(":")[0]: v.numpy() for v in loaded.variables}


def check_deployment(model_path: str, n_requests: int) -> int:
    """Deploy, fire ``n_requests`` concurrent requests, check them; the number of errors."""
    import ray
    from model import numpy_forward, numpy_top_gradient
    from ray import serve

    weights = weights_of(model_path)
    n_features = weights["w1"].shape[0]
    rng = np.random.default_rng(0)
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
        _node_ip_address="127.0.0.1",  # loopback only
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}},
    )  # fmt: skip
    try:
        deployment = serve.deployment(
            Predictor, num_replicas=N_REPLICAS, max_ongoing_requests=200,
            ray_actor_options={"num_cpus": 0},
        )  # fmt: skip
        handle = serve.run(deployment.bind(model_path), name="scopeflow", route_prefix=None)
        bodies: list[dict[str, Any]] = []
        for i in range(n_requests):
            batch = rng.normal(size=(1 + i % 8, n_features)).astype(np.float32)
            bodies.append({"endpoint": ("predict", "explain")[i % 2], "inputs": batch.tolist()})
        bodies.append({"endpoint": "predict", "inputs": [[1.0]]})  # bad input: a 400
        start = time.perf_counter()
        responses = [handle.remote(body) for body in bodies]  # all in flight at once
        answers = [response.result(timeout_s=120) for response in responses]
        elapsed = time.perf_counter() - start
        errors = 0
        for body, answer in zip(bodies[:-1], answers, strict=False):
            batch = np.asarray(body["inputs"], np.float32)
            ok = answer["status"] == 200 and np.allclose(
                answer["scores"], numpy_forward(weights, batch), rtol=1e-4, atol=1e-5
            )
            if body["endpoint"] == "explain":
                want = numpy_top_gradient(weights, batch)
                ok = ok and np.allclose(answer["gradients"], want, rtol=1e-4, atol=1e-5)
            errors += not ok
        errors += answers[-1]["status"] != 400
        pids = {answer["pid"] for answer in answers}
        traces = {answer["traces"] for answer in answers if "traces" in answer}
        print(f"{len(bodies)} requests through the handle in {elapsed:.2f} s, {errors} wrong")
        print(f"replicas that answered: {len(pids)}; traces per replica: {sorted(traces)}")
        errors += len(pids) != N_REPLICAS or traces != {1}
        return errors
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    """Check the deployment on a local Ray instance; exit 1 on any wrong answer."""
    if len(sys.argv) not in (2, 3):
        print("usage: python examples/serving/ray_app.py MODEL_DIR [N_REQUESTS]", file=sys.stderr)
        raise SystemExit(2)
    n_requests = int(sys.argv[2]) if len(sys.argv) == 3 else 500
    raise SystemExit(1 if check_deployment(sys.argv[1], n_requests) else 0)


if __name__ == "__main__":
    main()
