"""Train a classifier, checkpoint it, export it, and reload the export in a fresh process.

A two-layer perceptron (64 -> 128 -> 10, the SPEC's benchmark model) learns to classify
points labelled by a fixed random "teacher". Training uses ``sf.optimizers.Adam`` in a
traced step. Then:

- ``sf.train.Checkpoint(model=..., optimizer=...)`` saves every variable, the optimizer's
  slots included, to one safetensors file (for resuming training);
- ``sf.saved_model.save`` exports the traced ``predict`` signature and the variables to a
  directory that runs without this file's classes (for serving);
- a fresh interpreter that imports only ``scopeflow`` loads the export and checks that
  its predictions equal the trained model's.

Run it with ``python examples/train_and_export.py [--out DIRECTORY]``; the export goes to
``DIRECTORY/mlp`` (a new temporary directory by default).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

import numpy as np

import scopeflow as sf

N_IN, N_HIDDEN, N_CLASSES = 64, 128, 10
BATCH = 32
STEPS = 60


class Dense(sf.Module):
    """``x @ w + b``."""

    def __init__(self, n_in: int, n_out: int, seed: int, name: str | None = None) -> None:
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        scale = np.sqrt(2.0 / n_in)
        self.w = sf.Variable(rng.normal(0.0, scale, (n_in, n_out)).astype(np.float32), name="w")
        self.b = sf.Variable(np.zeros(n_out, np.float32), name="b")

    def __call__(self, x: Any) -> Any:
        return sf.matmul(x, self.w) + self.b


class Classifier(sf.Module):
    """``relu(x @ w1 + b1) @ w2 + b2`` and a traced ``predict`` signature."""

    def __init__(self) -> None:
        super().__init__(name="classifier")
        self.hidden = Dense(N_IN, N_HIDDEN, seed=1, name="hidden")
        self.logits = Dense(N_HIDDEN, N_CLASSES, seed=2, name="logits")

    def __call__(self, x: Any) -> Any:
        with self.name_scope:
            return self.logits(sf.relu(self.hidden(x)))

    @sf.function(input_signature=[sf.TensorSpec((None, N_IN), sf.float32, name="features")])
    def predict(self, features: Any) -> Any:
        logits = self(features)
        return {"probabilities": sf.nn.softmax(logits), "classes": sf.argmax(logits, axis=1)}


def make_data(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Points and their labels from a fixed random linear teacher."""
    rng = np.random.default_rng(seed)
    teacher = np.random.default_rng(0).normal(size=(N_IN, N_CLASSES))
    x = rng.normal(size=(n, N_IN)).astype(np.float32)
    return x, np.argmax(x @ teacher, axis=1).astype(np.int32)


def train(model: Classifier, optimizer: sf.optimizers.Optimizer) -> list[float]:
    """Train on mini-batches with a traced step; returns the losses."""

    @sf.function
    def step(x: Any, labels: Any) -> Any:
        with sf.GradientTape() as tape:
            loss = sf.reduce_mean(
                sf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model(x))
            )
        params = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, params), params, strict=True))
        return loss

    x, labels = make_data(BATCH * STEPS, seed=1)
    losses = []
    for i in range(STEPS):
        batch = slice(i * BATCH, (i + 1) * BATCH)
        losses.append(float(step(x[batch], labels[batch])))
    print(f"train step traced {step.trace_count} time(s) for {STEPS} steps")
    return losses


def reload_in_fresh_process(export: str, x_path: str) -> np.ndarray[Any, Any]:
    """Load the export in a new interpreter that never sees this file's classes."""
    script = textwrap.dedent(
        f"""
        import numpy as np, scopeflow as sf
        served = sf.saved_model.load({export!r})
        out = served.signatures["serving_default"](features=np.load({x_path!r}))
        np.save({x_path!r} + ".probs.npy", out["probabilities"].numpy())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    result: np.ndarray[Any, Any] = np.load(x_path + ".probs.npy")
    return result


def main() -> None:
    """Train, checkpoint, export, reload and compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="where to write (default: a new temporary directory)")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="sf-export-")
    os.makedirs(out, exist_ok=True)

    model = Classifier()
    optimizer = sf.optimizers.Adam(learning_rate=0.01)
    losses = train(model, optimizer)
    print(f"loss went from {losses[0]:.2f} to {losses[-1]:.2f}: {losses[-1] < losses[0] / 2}")

    ckpt = sf.train.Checkpoint(model=model, optimizer=optimizer)
    path = ckpt.save(os.path.join(out, "ckpt"))
    print(f"checkpoint written: {os.path.basename(path)} (model and optimizer state)")

    export = os.path.join(out, "mlp")
    sf.saved_model.save(model, export, signatures={"serving_default": model.predict})
    print(f"exported to {export}: {sorted(os.listdir(export))}")

    x_test, labels = make_data(BATCH, seed=2)
    x_path = os.path.join(out, "x_test.npy")
    np.save(x_path, x_test)
    want = model.predict(x_test)
    accuracy = float(np.mean(want["classes"].numpy() == labels))
    print(f"test accuracy above 0.5: {accuracy > 0.5}")
    got = reload_in_fresh_process(export, x_path)
    same = np.array_equal(got, want["probabilities"].numpy())
    print(f"reloaded in a fresh process: predictions identical: {same}")


if __name__ == "__main__":
    main()
