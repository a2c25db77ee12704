"""Model state on disk: checkpoints and exported models (SPEC §11).

- **Checkpoint save + restore**: ``sf.train.Checkpoint.write`` then ``restore`` of
  100 MiB of float32 variables (four 25 MiB variables), against the floor ``np.save`` +
  ``np.load`` of the same arrays to the same directory (target ≤ 1.5 x). Each run writes
  and reads fresh files; the two alternate and the best of N runs is kept. The restored
  values are checked.
- **saved_model.load + first call**: ``sf.saved_model.load`` of an exported 2-layer MLP
  (64 -> 128 -> 10) and the first call of its signature on a batch of 32 (parsing,
  validation, graph building, variable creation, plan compilation and the run), best of N
  fresh loads (target ≤ 50 ms, absolute). The result is checked against the model.

Run: ``python benchmarks/bench_model_state.py [--runs N] [--mib N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

import scopeflow as sf
from _common import Row, add_common_args, expect, finish, fmt_ns, print_table


def checkpoint_row(runs: int, mib: int, directory: str) -> Row:
    """Best checkpoint write + restore against best np.save + np.load."""
    n = mib * 2**20 // 4 // 4  # float32 elements per variable, four variables
    rng = np.random.default_rng(0)
    arrays = [rng.random(n, dtype=np.float32) for _ in range(4)]
    model = sf.Module(name="model")
    model.weights = [sf.Variable(a, name=f"w{i}") for i, a in enumerate(arrays)]
    ckpt = sf.train.Checkpoint(model=model)
    path = os.path.join(directory, "ckpt.safetensors")
    files = [os.path.join(directory, f"a{i}.npy") for i in range(4)]
    best_ckpt = best_np = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for f, a in zip(files, arrays, strict=True):
            np.save(f, a)
        loaded = [np.load(f) for f in files]
        best_np = min(best_np, time.perf_counter() - start)
        del loaded
        start = time.perf_counter()
        ckpt.write(path)
        ckpt.restore(path)
        best_ckpt = min(best_ckpt, time.perf_counter() - start)
    for var, a in zip(model.weights, arrays, strict=True):
        expect(np.array_equal(var.numpy(), a), "a restored variable differs from its value")
    ratio = best_ckpt / best_np
    return Row(
        figure=f"Checkpoint write + restore, {mib} MiB of variables",
        value=fmt_ns(best_ckpt * 1e9),
        floor=f"np.save + np.load = {fmt_ns(best_np * 1e9)}",
        ratio=f"{ratio:.2f}x",
        target="≤ 1.5x",
        ok=ratio <= 1.5,
    )


class MLP(sf.Module):
    """The SPEC's benchmark MLP: relu(x @ w1 + b1) @ w2 + b2, 64 -> 128 -> 10."""

    def __init__(self) -> None:
        super().__init__(name="mlp")
        rng = np.random.default_rng(1)
        self.w1 = sf.Variable(rng.normal(size=(64, 128)).astype(np.float32), name="w1")
        self.b1 = sf.Variable(np.zeros(128, np.float32), name="b1")
        self.w2 = sf.Variable(rng.normal(size=(128, 10)).astype(np.float32), name="w2")
        self.b2 = sf.Variable(np.zeros(10, np.float32), name="b2")

    @sf.function(input_signature=[sf.TensorSpec((None, 64), sf.float32, name="x")])
    def __call__(self, x: Any) -> Any:
        return sf.matmul(sf.relu(sf.matmul(x, self.w1) + self.b1), self.w2) + self.b2


def load_row(runs: int, directory: str) -> Row:
    """Best time of a fresh load plus the first call of the exported MLP."""
    model = MLP()
    path = os.path.join(directory, "mlp")
    sf.saved_model.save(model, path)
    x = np.random.default_rng(2).normal(size=(32, 64)).astype(np.float32)
    want = model(x).numpy()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        loaded = sf.saved_model.load(path)
        got = loaded.signatures["__call__"](x=x)["output_0"]
        best = min(best, time.perf_counter() - start)
        expect(np.array_equal(got.numpy(), want), "the loaded model computed a wrong result")
    ns = best * 1e9
    return Row(
        figure="saved_model.load + first call, MLP 64->128->10, batch 32",
        value=fmt_ns(ns),
        floor="— (absolute)",
        ratio="—",
        target="≤ 50 ms",
        ok=ns <= 50e6,
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (best is kept)")
    parser.add_argument("--mib", type=int, default=100, help="checkpoint size in MiB")
    add_common_args(parser)
    args = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="sf-bench-state-")
    try:
        rows = [checkpoint_row(args.runs, args.mib, directory), load_row(args.runs, directory)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print_table(
        "bench_model_state: checkpoints and exported models",
        rows,
        notes=[
            f"best of {args.runs} runs each; files in a temporary directory "
            f"({tempfile.gettempdir()})",
        ],
    )
    return finish(args, "model_state", rows)


if __name__ == "__main__":
    sys.exit(main())
