"""Build several graphs at once in asyncio tasks that await in the middle of construction.

Each task makes its own graph the default, opens a name scope and then awaits a (simulated)
download of its weights. While it waits, the other tasks build their graphs; none of them
sees another task's default graph or name scope, and the parent task sees neither. The
graphs are then run concurrently with ``Session.arun``, and a thread pool shows how to carry
the caller's scopes into worker threads with ``sf.ScopedExecutor``.

Run it with ``python examples/concurrent_graphs.py``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import scopeflow as sf

# name -> (weight, bias, download delay in seconds): the slowest download starts first.
MODELS = {
    "small": (2.0, 1.0, 0.03),
    "medium": (3.0, 0.5, 0.02),
    "large": (4.0, -1.0, 0.01),
}


@dataclass(frozen=True)
class Model:
    """A built graph with its input and output tensors."""

    name: str
    graph: sf.Graph
    x: sf.Tensor
    y: sf.Tensor


async def download(name: str, field: str) -> float:
    """Stand-in for fetching a parameter from a file store or another service."""
    weight, bias, delay = MODELS[name]
    await asyncio.sleep(delay)
    return weight if field == "weight" else bias


async def build_model(name: str) -> Model:
    """Build ``y = x * weight + bias`` in a new graph, awaiting each parameter."""
    graph = sf.Graph()
    async with graph.as_default():
        x = sf.placeholder(sf.float32, shape=(None,), name="x")
        async with sf.name_scope(name):
            w = sf.constant(await download(name, "weight"), name="weight")
            b = sf.constant(await download(name, "bias"), name="bias")
            # Other tasks ran during both awaits; this task's scopes are still its own.
            if sf.get_default_graph() is not graph or sf.get_name_scope() != name:
                msg = f"{name}: another task's scopes leaked into this one"
                raise RuntimeError(msg)
            y = sf.add(x * w, b, name="y")
    return Model(name, graph, x, y)


async def run_models() -> None:
    """Build every model concurrently, then run them all concurrently."""
    models = await asyncio.gather(*(build_model(name) for name in MODELS))
    # The parent never entered any of the graphs, and saw none of the tasks' name scopes.
    print(
        f"parent after gather: has_default_graph() = {sf.has_default_graph()}, "
        f"name scope {sf.get_name_scope()!r}"
    )

    inputs = [1.0, 2.0]
    outputs = await asyncio.gather(
        *(sf.Session(m.graph).arun(m.y, feed_dict={m.x: inputs}) for m in models)
    )
    for model, out in zip(models, outputs, strict=True):
        ops = [op.name for op in model.graph.get_operations()]
        print(f"{model.name}: ops {ops}")
        print(f"{model.name}: y({inputs}) = {out.tolist()}")


def worker_threads() -> None:
    """Plain executor threads start from an empty context; ScopedExecutor carries scopes."""
    graph = sf.Graph()
    with ThreadPoolExecutor(max_workers=2) as pool, graph.as_default(), sf.name_scope("job"):
        plain = pool.submit(sf.get_name_scope).result()
        scoped = sf.ScopedExecutor(pool).submit(sf.get_name_scope).result()
    print(f"plain thread pool sees name scope {plain!r}")
    print(f"ScopedExecutor sees name scope {scoped!r}")


def main() -> None:
    """Run the example."""
    asyncio.run(run_models())
    worker_threads()


if __name__ == "__main__":
    main()
