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
- **Model-sized rows**, on a 64→128→10 MLP (ReLU hidden layer) at batch 32, float32,
  against the same computation written in NumPy (every result is checked against it):
  - a warm call of the traced MLP vs the NumPy forward (target ≤ 1.5 x);
  - an eager training step (tape, forward, mean squared error, gradients of the four
    variables, SGD update with ``assign_sub``) vs the NumPy forward, hand-written backward
    and update (target ≤ 3 x);
  - an eager tape gradient of a traced MLP call w.r.t. its input (the gradient of the top
    score, a serving "explain" request) vs the NumPy forward and hand-written backward to
    the input (target ≤ 3 x).

Run: ``python benchmarks/bench_functions.py [--rounds N] [--traces N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

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


class _MLP:
    """The 64→128→10 MLP of the model-sized rows, in scopeflow and in NumPy."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.w1 = (rng.standard_normal((64, 128)) * 0.1).astype(np.float32)
        self.b1 = np.zeros(128, np.float32)
        self.w2 = (rng.standard_normal((128, 10)) * 0.1).astype(np.float32)
        self.b2 = np.zeros(10, np.float32)
        self.x = rng.standard_normal((32, 64)).astype(np.float32)
        self.t = rng.standard_normal((32, 10)).astype(np.float32)
        self.vars = [sf.Variable(a) for a in (self.w1, self.b1, self.w2, self.b2)]
        self.sx = sf.constant(self.x)
        self.st = sf.constant(self.t)
        self.traced = sf.function(self.forward)

    def forward(self, x: Any) -> Any:
        w1, b1, w2, b2 = self.vars
        return sf.matmul(sf.nn.relu(sf.matmul(x, w1) + b1), w2) + b2

    def np_forward(self) -> np.ndarray[Any, Any]:
        h = np.maximum(self.x @ self.w1 + self.b1, 0)
        return h @ self.w2 + self.b2  # type: ignore[no-any-return]

    def train_step(self, lr: float = 0.01) -> None:
        with sf.GradientTape() as tape:
            y = self.forward(self.sx)
            loss = sf.reduce_mean(sf.square(y - self.st))
        grads = tape.gradient(loss, self.vars)
        for v, g in zip(self.vars, grads, strict=True):
            v.assign_sub(lr * g)

    def np_train_step(self, lr: float = 0.01) -> None:
        h_pre = self.x @ self.w1 + self.b1
        h = np.maximum(h_pre, 0)
        y = h @ self.w2 + self.b2
        dy = 2.0 * (y - self.t) / y.size
        dw2 = h.T @ dy
        db2 = dy.sum(axis=0)
        dh = (dy @ self.w2.T) * (h_pre > 0)
        dw1 = self.x.T @ dh
        db1 = dh.sum(axis=0)
        self.w1 -= np.float32(lr) * dw1
        self.b1 -= np.float32(lr) * db1
        self.w2 -= np.float32(lr) * dw2
        self.b2 -= np.float32(lr) * db2

    def explain(self) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(self.sx)
            top = sf.reduce_max(self.traced(self.sx))
        return tape.gradient(top, self.sx)

    def np_explain(self) -> np.ndarray[Any, Any]:
        h_pre = self.x @ self.w1 + self.b1
        h = np.maximum(h_pre, 0)
        y = h @ self.w2 + self.b2
        dy = np.zeros_like(y)
        dy[np.unravel_index(np.argmax(y), y.shape)] = 1.0
        return ((dy @ self.w2.T) * (h_pre > 0)) @ self.w1.T  # type: ignore[no-any-return]


def model_rows(rounds: int) -> list[Row]:
    """The model-sized rows: traced MLP call, eager training step, traced-call gradient."""
    m = _MLP()
    np.testing.assert_allclose(m.traced(m.sx).numpy(), m.np_forward(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.explain().numpy(), m.np_explain(), rtol=1e-5, atol=1e-5)
    m.train_step()
    m.np_train_step()
    for v, a in zip(m.vars, (m.w1, m.b1, m.w2, m.b2), strict=True):
        np.testing.assert_allclose(v.numpy(), a, rtol=1e-4, atol=1e-6)
    ns = {"m": m}
    t, _ = time_cases(
        [
            Case("np fwd", "m.np_forward()", ns),
            Case("call", "m.traced(m.sx)", ns),
            Case("np train", "m.np_train_step()", ns),
            Case("train", "m.train_step()", ns),
            Case("np explain", "m.np_explain()", ns),
            Case("explain", "m.explain()", ns),
        ],
        rounds=rounds,
    )
    expect(m.traced.trace_count == 1, "the traced MLP retraced")
    return [
        ratio_row("warm call of a traced MLP 64-128-10, batch 32", t["call"], "NumPy",
                  t["np fwd"], 1.5),
        ratio_row("eager training step of the MLP (tape, grads, SGD)", t["train"], "NumPy",
                  t["np train"], 3),
        ratio_row("tape gradient of a traced MLP call w.r.t. its input", t["explain"], "NumPy",
                  t["np explain"], 3),
    ]  # fmt: skip


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
    rows += model_rows(args.rounds)
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
