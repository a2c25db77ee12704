"""Concurrent graph construction: many asyncio tasks, each building its own graph (SPEC §11).

Every task makes a ``sf.Graph``, enters ``g.as_default()`` and ``sf.name_scope(f"t{i}")``
and then creates ``--ops`` ops (a ``Const`` ``x`` holding ``i``, then ``Add`` ops
``x = sf.add(x, c)``), doing ``await asyncio.sleep(0)`` before each op, so all tasks
interleave op by op and each one's scopes must stay its own.

Floor: the same tasks doing the same awaits and a ``list.append`` instead of each op (and
no graph or scopes). Target: wall time ≤ 2 x the floor. Both are timed with
``time.perf_counter`` around ``asyncio.run`` (gc enabled, collected before each run), best
of ``--runs`` runs, interleaved.

Checks (outside the timing): every graph holds exactly the ops it should (names
``t{i}/x, t{i}/Add, t{i}/Add_1, ...``, types, inputs, no control inputs or device, the
constant's value); a sample of graphs is run in a ``Session`` (the last op must equal
``i * ops``); the caller's scopes are untouched; and after the results are dropped, weak
references show that no graph is retained (counted before and after ``gc.collect()``:
graphs hold reference cycles, op <-> graph, so only the collector frees them).

The scalar-operand row runs the same tasks with ``x = x + 1.0`` instead of
``sf.add(x, c)`` (SPEC: the path user code actually takes), so each step builds a ``Const``
and an ``Add`` (names ``t{i}/Const, t{i}/Add, t{i}/Const_1, t{i}/Add_1, ...``); it is
judged against the same floor and checked the same way.

For reference, the same graphs built one after another without an event loop are timed
too: the difference between that and the task run is what interleaving costs.

The default size is the SPEC's, 10,000 tasks x 100 ops; a run of the default takes about
a minute and a half on the 2-core reference machine (the scopeflow side dominates). Use
``--tasks`` and ``--ops`` for quicker runs (``python benchmarks/bench_tasks.py --tasks
1000``).

Run: ``python benchmarks/bench_tasks.py [--tasks N] [--ops N] [--runs N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

import scopeflow as sf
from _common import Row, add_common_args, expect, finish, print_table

T = TypeVar("T")


async def build_graph(i: int, ops: int) -> sf.Graph:
    """Task body: build graph ``i``, one op per ``await``."""
    g = sf.Graph()
    with g.as_default(), sf.name_scope(f"t{i}"):
        await asyncio.sleep(0)
        x = c = sf.constant(float(i), name="x")
        for _ in range(ops - 1):
            await asyncio.sleep(0)
            x = sf.add(x, c)
    return g


async def build_graph_scalar(i: int, ops: int) -> sf.Graph:
    """Task body of the scalar-operand row: ``x = x + 1.0`` between awaits."""
    g = sf.Graph()
    with g.as_default(), sf.name_scope(f"t{i}"):
        await asyncio.sleep(0)
        x = sf.constant(float(i), name="x")
        for _ in range(ops - 1):
            await asyncio.sleep(0)
            x = x + 1.0
    return g


def check_graph_scalar(g: sf.Graph, i: int, ops: int) -> None:
    """Raise RuntimeError unless graph ``i`` is what :func:`build_graph_scalar` builds."""
    got = g.get_operations()
    expect(len(got) == 2 * ops - 1, f"graph {i}: {len(got)} ops, expected {2 * ops - 1}")
    expect(got[0].name == f"t{i}/x" and float(got[0].get_attr("value")) == i, f"graph {i}")
    prev = got[0].outputs[0]
    for k in range(ops - 1):
        const, add = got[1 + 2 * k], got[2 + 2 * k]
        suffix = "" if k == 0 else f"_{k}"
        expect((const.name, const.type) == (f"t{i}/Const{suffix}", "Const"), f"{const}")
        expect(float(const.get_attr("value")) == 1.0, f"graph {i}: value of {const}")
        expect((add.name, add.type) == (f"t{i}/Add{suffix}", "Add"), f"graph {i}: {add}")
        expect(add.inputs == (prev, const.outputs[0]), f"graph {i}: inputs of {add}")
        expect(add.control_inputs == () and add.device == "", f"graph {i}: scopes leaked")
        prev = add.outputs[0]


def check_value_scalar(g: sf.Graph, i: int, ops: int) -> None:
    """Run graph ``i`` of the scalar row: ``i + (ops - 1)``."""
    last = g.get_operations()[-1].outputs[0]
    with sf.Session(g) as session:
        value = session.run(last)
    expect(np.asarray(value).item() == float(i + ops - 1), f"graph {i}: value {value}")


async def floor_task(i: int, ops: int) -> list[int]:
    """Floor task body: the same awaits, a list append instead of each op."""
    out: list[int] = []
    for k in range(ops):
        await asyncio.sleep(0)
        out.append(k)
    return out


def build_graph_sequential(i: int, ops: int) -> sf.Graph:
    """:func:`build_graph` without awaits, for the no-interleaving reference."""
    g = sf.Graph()
    with g.as_default(), sf.name_scope(f"t{i}"):
        x = c = sf.constant(float(i), name="x")
        for _ in range(ops - 1):
            x = sf.add(x, c)
    return g


async def _gather(body: Callable[[int, int], Awaitable[T]], tasks: int, ops: int) -> list[T]:
    return await asyncio.gather(*(body(i, ops) for i in range(tasks)))


# CPU seconds of the latest run_tasks call (time.process_time), read by main().
_cpu_seconds: list[float] = []


def run_tasks(
    body: Callable[[int, int], Awaitable[T]], tasks: int, ops: int, *, collect: bool = True
) -> tuple[float, list[T]]:
    """(wall seconds, results) of one ``asyncio.run`` of ``tasks`` concurrent tasks.

    ``collect`` False disables the garbage collector during the run.
    """
    gc.collect()
    if not collect:
        gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        results = asyncio.run(_gather(body, tasks, ops))
        _cpu_seconds.append(time.process_time() - cpu)
        return time.perf_counter() - start, results
    finally:
        gc.enable()


def run_sequential(tasks: int, ops: int) -> tuple[float, list[sf.Graph]]:
    """(wall seconds, graphs) of building the same graphs one after another, gc disabled."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        graphs = [build_graph_sequential(i, ops) for i in range(tasks)]
        return time.perf_counter() - start, graphs
    finally:
        gc.enable()


def check_graph(g: sf.Graph, i: int, ops: int) -> None:
    """Raise RuntimeError unless graph ``i`` is exactly what :func:`build_graph` builds."""
    got = g.get_operations()
    expect(len(got) == ops, f"graph {i}: {len(got)} ops, expected {ops}")
    const = got[0]
    expect((const.name, const.type) == (f"t{i}/x", "Const"), f"graph {i}: first op is {const}")
    expect(float(const.get_attr("value")) == float(i), f"graph {i}: wrong constant")
    c = const.outputs[0]
    for k, op in enumerate(got[1:]):
        name = f"t{i}/Add" if k == 0 else f"t{i}/Add_{k}"
        expect((op.name, op.type) == (name, "Add"), f"graph {i}: op {k + 1} is {op}, not {name}")
        expect(op.inputs == (got[k].outputs[0], c), f"graph {i}: inputs of {op}")
        expect(op.graph is g, f"graph {i}: {op} belongs to {op.graph}")
        expect(op.control_inputs == () and op.device == "", f"graph {i}: scopes leaked to {op}")


def check_value(g: sf.Graph, i: int, ops: int) -> None:
    """Run graph ``i`` and compare its last op with ``i * ops``."""
    last = g.get_operations()[-1].outputs[0]
    with sf.Session(g) as session:
        value = session.run(last)
    expect(np.asarray(value).item() == float(i * ops), f"graph {i}: value {value}")


def count_alive(refs: list[weakref.ref[Any]]) -> int:
    """How many of ``refs`` still point to a live object."""
    return sum(r() is not None for r in refs)


def main(argv: list[str] | None = None) -> int:
    """Measure, check, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="concurrent tasks")
    parser.add_argument("--ops", type=int, default=100, help="ops per graph (>= 1)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (best kept)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    tasks, ops = args.tasks, args.ops
    if tasks < 1 or ops < 1:
        parser.error("--tasks and --ops must be at least 1")

    best = dict.fromkeys(["floor", "tasks", "scalar", "tasks, gc off", "sequential"], float("inf"))
    scalar_alive = 0
    cpu = dict.fromkeys(["floor", "tasks"], float("inf"))
    graphs: list[sf.Graph] = []
    for _ in range(args.runs):
        t, lists = run_tasks(floor_task, tasks, ops)
        best["floor"] = min(best["floor"], t)
        cpu["floor"] = min(cpu["floor"], _cpu_seconds[-1])
        expect(all(len(x) == ops for x in lists), "floor tasks appended the wrong count")
        del lists
        t, unchecked = run_tasks(build_graph, tasks, ops, collect=False)
        best["tasks, gc off"] = min(best["tasks, gc off"], t)
        del unchecked
        t, unchecked = run_sequential(tasks, ops)
        best["sequential"] = min(best["sequential"], t)
        del unchecked
        graphs.clear()
        graphs.clear()
        t, graphs = run_tasks(build_graph_scalar, tasks, ops)
        best["scalar"] = min(best["scalar"], t)
        for i in range(0, tasks, max(1, tasks // 500)):
            check_graph_scalar(graphs[i], i, ops)
        for i in range(0, tasks, max(1, tasks // 20)):
            check_value_scalar(graphs[i], i, ops)
        scalar_refs = [weakref.ref(g) for g in graphs]
        graphs.clear()
        gc.collect()
        scalar_alive = max(scalar_alive, count_alive(scalar_refs))
        t, graphs = run_tasks(build_graph, tasks, ops)
        best["tasks"] = min(best["tasks"], t)
        cpu["tasks"] = min(cpu["tasks"], _cpu_seconds[-1])

    for i, g in enumerate(graphs):
        check_graph(g, i, ops)
    sample = range(0, tasks, max(1, tasks // 100))
    for i in sample:
        check_value(graphs[i], i, ops)
    expect(not sf.has_default_graph() and sf.get_name_scope() == "", "caller's scopes changed")
    refs = [weakref.ref(g) for g in graphs]
    del graphs, g
    alive_no_gc = count_alive(refs)
    gc.collect()
    alive = count_alive(refs)

    floor = best["floor"]
    ratio = best["tasks"] / floor
    n_ops = tasks * ops
    rows = [
        Row(
            figure=f"{tasks:,} tasks x {ops} ops, await sleep(0) before each op",
            value=f"{best['tasks']:.2f} s",
            floor=f"awaits + list.append = {floor:.2f} s",
            ratio=f"{ratio:.2f}x",
            target="≤ 2x",
            ok=ratio <= 2,
        ),
        Row(
            figure=f"every graph exactly right ({tasks:,} checked, {len(sample)} run)",
            value="yes",
            floor="—",
            ratio="—",
            target="all right",
            ok=True,  # check_graph / check_value raise otherwise
        ),
        Row(
            figure="graphs alive after the results are dropped and gc.collect()",
            value=f"{alive}",
            floor="—",
            ratio="—",
            target="0",
            ok=alive == 0,
        ),
        Row(
            figure=f"{tasks:,} tasks x {ops} steps of x = x + 1.0 (scalar operand)",
            value=f"{best['scalar']:.2f} s",
            floor=f"awaits + list.append = {floor:.2f} s",
            ratio=f"{best['scalar'] / floor:.2f}x",
            target="≤ 2x",
            ok=best["scalar"] / floor <= 2,
        ),
        Row(
            figure="scalar-row graphs right (sampled) and none alive after gc.collect()",
            value="yes" if scalar_alive == 0 else f"{scalar_alive} alive",
            floor="—",
            ratio="—",
            target="all right, 0",
            ok=scalar_alive == 0,
        ),
        Row(
            figure="  the same tasks with gc disabled during the run",
            value=f"{best['tasks, gc off']:.2f} s",
            floor=f"awaits + list.append = {floor:.2f} s",
            ratio=f"{best['tasks, gc off'] / floor:.2f}x",
            target="—",
            ok=None,
        ),
        Row(
            figure="  the same graphs built one by one, no awaits, gc disabled",
            value=f"{best['sequential']:.2f} s",
            floor="—",
            ratio="—",
            target="—",
            ok=None,
        ),
    ]

    def per_op(seconds: float) -> str:
        return f"{seconds / n_ops * 1e6:.2f} µs"

    print_table(
        "bench_tasks: concurrent graph construction in asyncio tasks",
        rows,
        notes=[
            f"best of {args.runs} interleaved runs; gc enabled unless stated",
            f"in CPU time (time.process_time): {cpu['tasks']:.2f} s vs {cpu['floor']:.2f} s, "
            f"{cpu['tasks'] / cpu['floor']:.2f}x",
            f"per op: {per_op(best['tasks'] - floor)} above the floor in tasks, "
            f"{per_op(best['tasks, gc off'] - floor)} with gc off, "
            f"{per_op(best['sequential'])} built one by one with gc off",
            f"graphs alive before gc.collect(): {alive_no_gc:,} of {tasks:,} "
            f"(op <-> graph reference cycles need the collector)",
        ],
    )
    return finish(args, "tasks", rows)


if __name__ == "__main__":
    sys.exit(main())
