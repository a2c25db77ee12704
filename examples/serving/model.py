"""The served model: a two-layer perceptron exported with ``sf.saved_model``.

``python examples/serving/model.py PATH`` exports it to the directory ``PATH``. (Any model
with a ``serving_default`` signature taking a float32 ``(batch, features)`` matrix and
returning float ``(batch, classes)`` scores can be served, such as the classifier
``examples/train_and_export.py`` trains.) :func:`numpy_forward` and :func:`numpy_top_gradient` are
the independent NumPy answers the tests and the benchmark check the server against.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

import scopeflow as sf

N_FEATURES = 8
N_HIDDEN = 32
N_CLASSES = 4

Array = np.ndarray[Any, Any]


class MLP(sf.Module):
    """``relu(x @ w1 + b1) @ w2 + b2`` with seeded weights."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(name="mlp")
        rng = np.random.default_rng(seed)
        with self.name_scope:
            self.w1 = sf.Variable(
                rng.normal(0.0, 0.5, (N_FEATURES, N_HIDDEN)).astype(np.float32), name="w1"
            )
            self.b1 = sf.Variable(rng.normal(0.0, 0.1, N_HIDDEN).astype(np.float32), name="b1")
            self.w2 = sf.Variable(
                rng.normal(0.0, 0.5, (N_HIDDEN, N_CLASSES)).astype(np.float32), name="w2"
            )
            self.b2 = sf.Variable(rng.normal(0.0, 0.1, N_CLASSES).astype(np.float32), name="b2")

    @sf.function(input_signature=[sf.TensorSpec((None, N_FEATURES), sf.float32, name="x")])
    def serve(self, x: Any) -> Any:
        """Scores for a batch of any size, as the signature's ``"scores"`` output."""
        hidden = sf.relu(sf.matmul(x, self.w1) + self.b1)
        return {"scores": sf.matmul(hidden, self.w2) + self.b2}

    def weights(self) -> dict[str, Array]:
        """The parameters as NumPy arrays, for the reference answers."""
        return {name: getattr(self, name).numpy() for name in ("w1", "b1", "w2", "b2")}


def export(path: str | Path, seed: int = 0) -> dict[str, Array]:
    """Export a seeded :class:`MLP` to ``path``; returns its weights as NumPy arrays."""
    model = MLP(seed)
    sf.saved_model.save(model, str(path), signatures={"serving_default": model.serve})
    return model.weights()


def numpy_forward(weights: dict[str, Array], x: Array) -> Array:
    """The scores, computed with NumPy alone."""
    hidden = np.maximum(x @ weights["w1"] + weights["b1"], 0.0)
    return hidden @ weights["w2"] + weights["b2"]


def numpy_top_gradient(weights: dict[str, Array], x: Array) -> Array:
    """Per row, the gradient of that row's highest score with respect to the row."""
    pre = x @ weights["w1"] + weights["b1"]
    scores = np.maximum(pre, 0.0) @ weights["w2"] + weights["b2"]
    top = scores.argmax(axis=1)
    # d score_k / d x = w1 @ (relu'(pre) * w2[:, k]), row by row.
    return ((pre > 0) * weights["w2"][:, top].T) @ weights["w1"].T


def main() -> None:
    """Export the model to the directory named on the command line."""
    if len(sys.argv) != 2:
        print("usage: python examples/serving/model.py EXPORT_DIR", file=sys.stderr)
        raise SystemExit(2)
    export(sys.argv[1])
    print(f"exported the model to {sys.argv[1]}")


if __name__ == "__main__":
    main()
