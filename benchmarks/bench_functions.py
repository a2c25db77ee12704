"""Traced functions and the gradient tape (SPEC §11).

- **Warm function call**: ``f(a)`` for ``@sf.function def f(x): return x + x`` on a
  shape-(4,) float32 eager tensor, already traced, against the floor ``numpy.add`` on the
  same arrays (target ≤ 40 x). Min of N interleaved rounds, net of timeit's loop.
- **First trace**: a fresh ``sf.function`` of the same one-op body, called once (trace,
  plan compilation and the call), best of several runs (target ≤ 300 µs, absolute).
- **Tape step**: enter a ``GradientTape``, watch a scalar ``x``, compute ``y = x*x + x``
  and ``tape.gradient(y, x)``, against the floor F of ``bench_scopes.py`` (a slotted
  class whose ``__enter__`` does one ``ContextVar.set`` and ``__exit__`` one ``reset``)
  (target ≤ 40 x F). The gradient's value is checked.

Run: ``python benchmarks/bench_functions.py [--rounds N] [--traces N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import scopeflow as sf
from _common import (
    Case,
    Floor,
    Row,
    add_common_args,
    expect,
    finish,
    fmt_ns,
    print_table,
    ratio_row,
    time_cases,
)


def _double(x: sf.EagerTensor) -> sf.EagerTensor:
    return x + x


def tape_step(x: sf.EagerTensor) -> sf.EagerTensor:
    """One SPEC tape step: enter a tape, y = x*x + x, d(y)/d(x)."""
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x + x
    grad: sf.EagerTensor = tape.gradient(y, x)
    return grad


def call_and_tape_rows(rounds: int) -> tuple[list[Row], float]:
    """Warm call vs numpy.add and tape step vs F, interleaved."""
    a = sf.constant(np.arange(4, dtype=np.float32))
    arr = a.numpy()
    f = sf.function(_double)
    np.testing.assert_array_equal(f(a).numpy(), arr + arr)
    expect(f.trace_count == 1, "the warm function traced more than once")
    x = sf.constant(3.0)
    expect(float(tape_step(x)) == 7.0, "the tape step computed a wrong gradient")
    ns = {"np": np, "arr": arr, "a": a, "f": f, "Floor": Floor, "tape_step": tape_step, "x": x}
    t, overhead = time_cases(
        [
            Case("numpy", "np.add(arr, arr)", ns),
            Case("call", "f(a)", ns),
            Case("F", "with Floor(): pass", ns),
            Case("tape", "tape_step(x)", ns),
        ],
        rounds=rounds,
    )
    expect(f.trace_count == 1, "a warm call retraced")
    rows = [
        ratio_row("warm sf.function call, one-op body, shape (4,)", t["call"], "np.add",
                  t["numpy"], 40),
        ratio_row("tape step: enter, y = x*x + x, gradient(y, x)", t["tape"], "F", t["F"], 40),
    ]  # fmt: skip
    return rows, overhead


def first_trace_row(runs: int) -> Row:
    """Best time of a fresh function's first call (trace + plan + run)."""
    a = sf.constant(np.arange(4, dtype=np.float32))
    best = float("inf")
    for _ in range(runs):
        f = sf.function(_double)
        start = time.perf_counter()
        f(a)
        best = min(best, time.perf_counter() - start)
        expect(f.trace_count == 1, "a first call did not trace exactly once")
    ns = best * 1e9
    return Row(
        figure="first trace + call, one-op body",
        value=fmt_ns(ns),
        floor="— (absolute)",
        ratio="—",
        target="≤ 300 µs",
        ok=ns <= 300_000,
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25, help="timing rounds (min is kept)")
    parser.add_argument("--traces", type=int, default=200, help="first-trace runs (best kept)")
    add_common_args(parser)
    args = parser.parse_args(argv)

    rows, overhead = call_and_tape_rows(args.rounds)
    rows.append(first_trace_row(args.traces))
    print_table(
        "bench_functions: sf.function calls and traces, GradientTape steps",
        rows,
        notes=[
            f"calls and tape steps: min of {args.rounds} interleaved rounds, net of timeit's "
            f"empty loop ({overhead:.1f} ns/iteration)",
            f"first trace: best of {args.traces} fresh functions",
        ],
    )
    return finish(args, "functions", rows)


if __name__ == "__main__":
    sys.exit(main())
