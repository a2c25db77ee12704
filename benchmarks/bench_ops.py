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
  buffer), timed round-robin, min of N, net of timeit's loop (target ≤ 4 x). The operator
  form ``a + b`` is shown for reference.

Run: ``python benchmarks/bench_ops.py [--ops N] [--runs N] [--rounds N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import timeit

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
