"""What the 10,000-task row of bench_tasks.py can reach at best: toy graph stores, same run.

bench_tasks.py builds 10,000 graphs of 100 ops in interleaved asyncio tasks and asks for
≤ 2 x its floor (the same tasks doing the awaits and a ``list.append``). This study runs
the same tasks with *toy* graph stores that do far less than any real graph — no dtype,
shape, attributes, scopes or checks — and differ only in what each op leaves on the heap.
Every toy step reads a ``ContextVar`` (the task's frame), takes the graph's lock and makes
the op's unique name, as any graph must; what the step keeps is:

- ``name only``: the op's name string in the graph's list, nothing else (no op can be
  recovered from it: the least any graph with named ops keeps);
- ``untracked columns``: the name, plus the input indices in an ``array('q')``; each step
  makes a handle object for its result that dies at the next step (a design where ops are
  rows of untracked columns and tensors are made on demand);
- ``tuple per op``: one ``(type, name, (input, input))`` tuple per op (tuples of atomic
  values are untracked, but only once the collector has looked at them);
- ``object per op``: one object with ``__slots__`` per op referring to its inputs and its
  graph (scopeflow's lean op is such an object, with a few more fields).

Reading: an op that stays on the heap as a collector-tracked object (or as a tuple until the
collector untracks it) makes the young generation fill up, and every collection of the older
generations then walks the whole heap of the 10,000 suspended tasks (coroutines, frames,
futures) and of the graphs built so far, scattered in memory by the interleaving. Only the
stores that keep no tracked object per op stay under 2 x; the design scopeflow uses (and
TensorFlow's, where an op is an object that points at its inputs) cannot, however little the
op does. Meeting the row would take a graph whose ops are untracked columns and whose tensors
are handles made on demand, so that two handles of one output are distinct objects
(identity-based hashing and ``is`` on tensors would change) — not done.

Run: ``python benchmarks/study_task_heap.py [--tasks N] [--ops N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import sys
import threading
import time
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

from _common import Row, print_table

FRAME: contextvars.ContextVar[object] = contextvars.ContextVar("frame")
FRAME.set(("", (), "", None))
ATTRS = {"T": "float32"}  # shared, as scopeflow shares an op type's attributes


class ToyGraph:
    """The per-graph state every toy store needs: a lock, a name counter, a name scope."""

    __slots__ = ("count", "inputs", "lock", "ops", "prefix")

    def __init__(self, i: int) -> None:
        self.ops: list[Any] = []
        self.inputs = array("q")
        self.lock = threading.Lock()
        self.count = 0
        self.prefix = f"t{i}"

    def next_name(self) -> str:
        n = self.count
        self.count = n + 1
        return f"{self.prefix}/Add_{n}" if n else f"{self.prefix}/Add"


class Handle:
    """A tensor made on demand: which graph, which op."""

    __slots__ = ("graph", "index")


class LeanOp:
    """An op kept as one object, as scopeflow's lean ops are."""

    __slots__ = ("attrs", "graph", "in1", "in2", "index", "name", "op_type")


async def floor_task(i: int, ops: int) -> list[int]:
    """bench_tasks.py's floor: the awaits and a list append per step."""
    out: list[int] = []
    for k in range(ops):
        await asyncio.sleep(0)
        out.append(k)
    return out


async def name_only(i: int, ops: int) -> ToyGraph:
    g = ToyGraph(i)
    for _ in range(ops):
        await asyncio.sleep(0)
        FRAME.get()
        with g.lock:
            g.ops.append(g.next_name())
    return g


async def untracked_columns(i: int, ops: int) -> ToyGraph:
    g = ToyGraph(i)
    x = c = -1
    for _ in range(ops):
        await asyncio.sleep(0)
        FRAME.get()
        with g.lock:
            index = len(g.ops)
            g.ops.append(g.next_name())
            g.inputs.append(x)
            g.inputs.append(c)
        h = Handle()  # the caller's tensor: gone when the next step replaces it
        h.graph, h.index = g, index
        x = h.index
    return g


async def tuple_per_op(i: int, ops: int) -> ToyGraph:
    g = ToyGraph(i)
    x = c = -1
    for _ in range(ops):
        await asyncio.sleep(0)
        FRAME.get()
        with g.lock:
            index = len(g.ops)
            g.ops.append(("Add", g.next_name(), (x, c)))
        x = index
    return g


async def object_per_op(i: int, ops: int) -> ToyGraph:
    g = ToyGraph(i)
    x: LeanOp | None = None
    c = x
    for _ in range(ops):
        await asyncio.sleep(0)
        FRAME.get()
        op = LeanOp()
        op.graph, op.in1, op.in2, op.attrs, op.op_type = g, x, c, ATTRS, "Add"
        with g.lock:
            op.name = g.next_name()
            op.index = len(g.ops)
            g.ops.append(op)
        x = op
    return g


BODIES: dict[str, Callable[[int, int], Awaitable[Any]]] = {
    "name only": name_only,
    "untracked columns + handle": untracked_columns,
    "tuple per op": tuple_per_op,
    "object per op (scopeflow's kind)": object_per_op,
}


def run(body: Callable[[int, int], Awaitable[Any]], tasks: int, ops: int, collect: bool) -> float:
    """Wall seconds of one ``asyncio.run`` of ``tasks`` tasks (results kept to the end)."""

    async def gather() -> list[Any]:
        return await asyncio.gather(*(body(i, ops) for i in range(tasks)))

    gc.collect()
    if not collect:
        gc.disable()
    try:
        start = time.perf_counter()
        results = asyncio.run(gather())
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    if len(results) != tasks:
        msg = f"{len(results)} results of {tasks} tasks"
        raise RuntimeError(msg)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Time every toy store against the floor, interleaved, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="concurrent tasks")
    parser.add_argument("--ops", type=int, default=100, help="ops per graph")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (best kept)")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.ops < 1:
        parser.error("--tasks and --ops must be at least 1")

    variants = [("floor", floor_task, True)]
    for name, body in BODIES.items():
        variants += [(name, body, True), (f"{name}, gc off", body, False)]
    best = {name: float("inf") for name, _, _ in variants}
    for _ in range(args.runs):
        for name, body, collect in variants:
            best[name] = min(best[name], run(body, args.tasks, args.ops, collect))

    floor = best.pop("floor")
    rows = [
        Row(
            figure=f"{'  ' if name.endswith('gc off') else ''}{name}",
            value=f"{seconds:.2f} s",
            floor=f"awaits + list.append = {floor:.2f} s",
            ratio=f"{seconds / floor:.2f}x",
            target="—",
            ok=None,
        )
        for name, seconds in best.items()
    ]
    print_table(
        f"study_task_heap: toy graph stores, {args.tasks:,} tasks x {args.ops} ops "
        "(bench_tasks.py's target is ≤ 2x)",
        rows,
        notes=[f"best of {args.runs} interleaved runs; gc enabled unless stated"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
