"""Concurrent graph building on trio, through anyio's task groups and worker threads.

scopeflow keeps its scopes in ``contextvars``, which trio copies into every task just as
asyncio does, so the same code works on both event loops. Tasks in a task group each build
a graph while awaiting; ``anyio.to_thread.run_sync`` copies the caller's context, so a
worker thread sees the caller's default graph; ``Session.arun`` runs a graph in a worker
thread without blocking the event loop.

Run it with ``python examples/trio_graphs.py`` (needs trio: ``python -m pip install trio``).
"""

from __future__ import annotations

import importlib.util
import sys

import anyio
import anyio.to_thread

import scopeflow as sf

N_TASKS = 5


async def build(index: int, results: dict[int, tuple[sf.Graph, sf.Tensor]]) -> None:
    """Build ``index * 10 + 1`` in a new graph, yielding to the other tasks twice."""
    graph = sf.Graph()
    async with graph.as_default(), sf.name_scope(f"task{index}"):
        tens = sf.constant(float(index), name="tens")
        await anyio.sleep(0)
        total = sf.add(tens * 10.0, 1.0, name="total")
        await anyio.sleep(0)
        # A worker thread started from here sees this task's graph and name scope.
        seen = await anyio.to_thread.run_sync(lambda: (sf.get_default_graph(), sf.get_name_scope()))
        if seen != (graph, f"task{index}"):
            msg = f"task {index}: the worker thread saw {seen}"
            raise RuntimeError(msg)
    results[index] = (graph, total)


async def run_all() -> None:
    """Build the graphs in one task group, then run each with ``Session.arun``."""
    results: dict[int, tuple[sf.Graph, sf.Tensor]] = {}
    async with anyio.create_task_group() as tg:
        for index in range(N_TASKS):
            tg.start_soon(build, index, results)
    print(f"parent task after the task group: has_default_graph() = {sf.has_default_graph()}")
    for index, (graph, total) in sorted(results.items()):
        value = await sf.Session(graph).arun(total)
        ops = [op.name for op in graph.get_operations()]
        print(f"task {index}: {ops} -> {float(value)}")


def main() -> None:
    """Run the example on trio."""
    if importlib.util.find_spec("trio") is None:
        sys.exit("This example needs trio: python -m pip install trio")
    anyio.run(run_all, backend="trio")
    print("every task built its own graph on trio")


if __name__ == "__main__":
    main()
