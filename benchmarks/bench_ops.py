"""Op overhead: graph op creation throughput and the eager ``add`` fast path (SPEC §11).

- **Graph op creation**: a chain of 10,000 ``sf.add`` ops (``x = sf.add(x, c)``) in a
  fresh graph, best of several runs, reported as ops/s (target ≥ 200,000 ops/s; there is
  no floor, the target is absolute). Each run builds a new graph, enters it, creates the
  constant ``c`` and then the chain, so the ops/s figure includes a graph's set-up (about
  0.05 % of a run). Garbage collection stays enabled as in real programs (``gc.enable()``
  in timeit's setup); the same figure with gc disabled is shown for reference. The last
  graph is checked: 10,001 ops named ``Const, Add, Add_1, ...``, each Add reading the
  previous one.
- **Eager add**: ``sf.add(a, b)`` on two shape-(4,) float32 eager tensors against the
  floor ``numpy.add(x, y)`` on the same arrays (``x = a.numpy()``, a view of ``a``'s
  buffer), timed round-robin, min of N, net of timeit's loop (target ≤ 4 x).
- **Operators**: ``a + b`` against ``sf.add(a, b)``, eagerly and while building a graph
  (target ≤ 1.2 x the function form).
- **Python-scalar operands**: ``a + 1.0`` against ``a + b`` (two tensors), eagerly and while
  building a graph (target ≤ 1.3 x). In a graph the scalar becomes a ``Const`` op of its
  own, as in TensorFlow, so ``x + 1.0`` builds two ops where ``x + y`` builds one. Graph
  rows build into a fresh graph every round (entered outside the timing), so the graph's
  growth is the same for the figure and its floor.

Run: ``python benchmarks/bench_ops.py [--ops N] [--runs N] [--rounds N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import timeit
from collections.abc import Iterator
from typing import Any

import numpy as np

import scopeflow as sf
from _common import (
    Case,
    Row,
    add_common_args,
    expect,
    finish,
    print_table,
    ratio_row,
    time_cases,
)


def build_chain(n: int) -> sf.Graph:
    """A fresh graph holding ``Const`` and a chain of ``n`` Add ops."""
    g = sf.Graph()
    with g.as_default():
        c = sf.constant(1.0)
        x = c
        add = sf.add
        for _ in range(n):
            x = add(x, c)
    return g


def check_chain(g: sf.Graph, n: int) -> None:
    """Raise RuntimeError unless ``g`` is exactly what :func:`build_chain` must build."""
    ops = g.get_operations()
    expect(len(ops) == n + 1, f"expected {n + 1} ops, got {len(ops)}")
    const = ops[0]
    expect((const.name, const.type) == ("Const", "Const"), f"first op is {const}")
    for i, op in enumerate(ops[1:]):
        name = "Add" if i == 0 else f"Add_{i}"
        expect((op.name, op.type) == (name, "Add"), f"op {i + 1} is {op}, not {name}")
        expect(op.inputs == (ops[i].outputs[0], const.outputs[0]), f"inputs of {op}")
        expect(op.control_inputs == (), f"control inputs of {op}")
        out = op.outputs[0]
        expect(out.shape == () and out.dtype == sf.float32, f"output of {op}")


def graph_rows(n: int, runs: int) -> list[Row]:
    """Ops/s of :func:`build_chain`, gc enabled (the SPEC row) and disabled (info)."""
    ns = {"build_chain": build_chain, "n": n, "gc": gc}
    best: dict[str, float] = {"gc on": float("inf"), "gc off": float("inf")}
    timers = {
        "gc on": timeit.Timer("build_chain(n)", "gc.enable()", globals=ns),
        "gc off": timeit.Timer("build_chain(n)", globals=ns),
    }
    for timer in timers.values():
        timer.timeit(1)  # warm-up: specialise the interpreter's inline caches
    for _ in range(runs):
        for label, timer in timers.items():
            best[label] = min(best[label], timer.timeit(1))
    check_chain(build_chain(n), n)
    rows = []
    for label, seconds in best.items():
        rate = n / seconds
        rows.append(
            Row(
                figure=f"graph op creation, {n:,}-op add chain, fresh graph ({label})",
                value=f"{rate:,.0f} ops/s ({seconds / n * 1e6:.2f} µs/op)",
                floor="— (absolute)",
                ratio="—",
                target="≥ 200,000 ops/s" if label == "gc on" else "—",
                ok=rate >= 200_000 if label == "gc on" else None,
            )
        )
    return rows


def eager_rows(rounds: int) -> tuple[list[Row], float]:
    """``sf.add`` and ``a + b`` on shape-(4,) float32 against ``numpy.add``."""
    a = sf.constant(np.arange(4, dtype=np.float32))
    b = sf.constant(np.full(4, 0.5, dtype=np.float32))
    x, y = a.numpy(), b.numpy()
    expected = np.add(x, y)
    np.testing.assert_array_equal(sf.add(a, b).numpy(), expected)
    np.testing.assert_array_equal((a + b).numpy(), expected)
    ns = {"sf": sf, "np": np, "a": a, "b": b, "x": x, "y": y}
    t, overhead = time_cases(
        [
            Case("numpy", "np.add(x, y)", ns),
            Case("sf.add", "sf.add(a, b)", ns),
            Case("a + b", "a + b", ns),
        ],
        rounds=rounds,
    )
    rows = [
        ratio_row("eager sf.add(a, b), shape (4,) float32", t["sf.add"], "np.add", t["numpy"], 4),
        ratio_row("eager a + b (operator), shape (4,) float32", t["a + b"], "np.add",
                  t["numpy"], None),
    ]  # fmt: skip
    return rows, overhead


@contextlib.contextmanager
def _fresh_graph(ns: dict[str, Any]) -> Iterator[None]:
    """Enter a new graph holding placeholders ``x`` and ``y`` (stored in ``ns``)."""
    g = sf.Graph()
    with g.as_default():
        ns["x"] = sf.placeholder(sf.float32, (4,), name="x")
        ns["y"] = sf.placeholder(sf.float32, (4,), name="y")
        yield


def operator_rows(rounds: int) -> list[Row]:
    """Operators vs functions and scalar operands vs tensor operands, eager and graph."""
    a = sf.constant(np.arange(4, dtype=np.float32))
    b = sf.constant(np.full(4, 0.5, dtype=np.float32))
    np.testing.assert_array_equal((a + 1.0).numpy(), a.numpy() + np.float32(1.0))
    eager = {"sf": sf, "a": a, "b": b}
    graph: dict[str, Any] = {"sf": sf}
    with _fresh_graph(graph):
        s = graph["x"] + 1.0
        expect(s.op.type == "Add" and s.op.inputs[1].op.type == "Const", "x + 1.0 in a graph")
        expect(s.dtype == sf.float32, "x + 1.0 changed the dtype")

    def env() -> contextlib.AbstractContextManager[Any]:
        return _fresh_graph(graph)

    # A fixed count per round keeps the graphs of a round small and alike for every case.
    number = 2_000
    t, _ = time_cases(
        [
            Case("e add", "sf.add(a, b)", eager),
            Case("e a+b", "a + b", eager),
            Case("e a+1", "a + 1.0", eager),
            Case("e 2*a", "2.0 * a", eager),
            Case("g add", "sf.add(x, y)", graph, env=env, number=number),
            Case("g x+y", "x + y", graph, env=env, number=number),
            Case("g x+1", "x + 1.0", graph, env=env, number=number),
        ],
        rounds=rounds,
    )
    return [
        ratio_row("eager a + b (operator) vs sf.add(a, b)", t["e a+b"], "sf.add", t["e add"], 1.2),
        ratio_row("eager a + 1.0 (scalar operand) vs a + b", t["e a+1"], "a + b", t["e a+b"], 1.3),
        ratio_row("eager 2.0 * a (reflected, scalar) vs a + b", t["e 2*a"], "a + b", t["e a+b"],
                  None),
        ratio_row("graph x + y (operator) vs sf.add(x, y)", t["g x+y"], "sf.add", t["g add"], 1.2),
        ratio_row("graph x + 1.0 (scalar operand) vs x + y", t["g x+1"], "x + y", t["g x+y"], 1.3),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000, help="length of the add chain")
    parser.add_argument("--runs", type=int, default=15, help="graph-building runs (best kept)")
    parser.add_argument("--rounds", type=int, default=25, help="eager timing rounds")
    add_common_args(parser)
    args = parser.parse_args(argv)

    rows = graph_rows(args.ops, args.runs)
    more, overhead = eager_rows(args.rounds)
    rows += more
    rows += operator_rows(args.rounds)
    print_table(
        "bench_ops: graph op creation (absolute) and eager add vs numpy.add",
        rows,
        notes=[
            f"graph: best of {args.runs} runs per gc setting, interleaved; the last graph "
            f"was checked op by op",
            f"eager: min of {args.rounds} interleaved rounds, net of timeit's empty loop "
            f"({overhead:.1f} ns/iteration)",
        ],
    )
    return finish(args, "ops", rows)


if __name__ == "__main__":
    sys.exit(main())
