"""Train a tiny network with variables, a gradient tape and a traced training step.

A two-layer perceptron learns ``y = sin(x)`` on a fixed set of points. It is an
``sf.Module`` whose weights are ``sf.Variable``s named under the module's scope; one
training step computes the loss under an ``sf.GradientTape``, takes the gradient with
respect to every trainable variable and applies it with ``sf.optimizers.SGD``. The step is
an ``sf.function``: it is traced once (the tape then adds gradient operations to the
function graph) and every later call runs that graph, updating the variables in place.

Run it with ``python examples/train_mlp.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

import scopeflow as sf

HIDDEN = 16
LEARNING_RATE = 0.1
STEPS = 300
REPORT_EVERY = 50
TARGET_LOSS = 0.05


class MLP(sf.Module):
    """``tanh(x @ w1 + b1) @ w2 + b2``, with its parameters in variables."""

    def __init__(self, n_in: int, n_hidden: int, seed: int) -> None:
        super().__init__(name="mlp")  # the variables below are named "mlp/..."
        rng = np.random.default_rng(seed)
        self.w1 = sf.Variable(rng.normal(0.0, 1.0, (n_in, n_hidden)), name="w1")
        self.b1 = sf.Variable(np.zeros(n_hidden), name="b1")
        self.w2 = sf.Variable(rng.normal(0.0, 0.3, (n_hidden, 1)), name="w2")
        self.b2 = sf.Variable(np.zeros(1), name="b2")

    def __call__(self, x: Any) -> Any:
        with self.name_scope:
            hidden = sf.tanh(sf.matmul(x, self.w1) + self.b1)
            return sf.matmul(hidden, self.w2) + self.b2


def make_train_step(model: MLP, optimizer: sf.optimizers.Optimizer) -> sf.Function:
    """A traced step: mean squared error, its gradients, one optimizer update."""

    @sf.function
    def train_step(x: Any, y: Any) -> Any:
        with sf.GradientTape() as tape:  # trainable variables are watched automatically
            loss = sf.reduce_mean(sf.square(model(x) - y))
        params = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, params), params, strict=True))
        return loss

    return train_step


def main() -> None:
    """Train, printing the loss as it goes down."""
    x_np = np.linspace(-3.0, 3.0, 64).reshape(-1, 1)
    x, y = sf.constant(x_np), sf.constant(np.sin(x_np))
    model = MLP(n_in=1, n_hidden=HIDDEN, seed=1)
    optimizer = sf.optimizers.SGD(learning_rate=LEARNING_RATE)
    train_step = make_train_step(model, optimizer)

    losses = []
    for step in range(STEPS):
        losses.append(float(train_step(x, y).numpy()))
        if step % REPORT_EVERY == 0:
            print(f"step {step:3d}: loss {losses[-1]:.4f}")
    final = float(sf.reduce_mean(sf.square(model(x) - y)).numpy())
    print(f"step {STEPS:3d}: loss {final:.4f}")

    print(f"variables: {[v.name for v in model.variables]}")
    print(f"optimizer steps: {int(optimizer.iterations.numpy())}")
    print(f"train_step traced {train_step.trace_count} time(s) for {STEPS} steps")
    drops = sum(b < a for a, b in itertools.pairwise([*losses, final]))
    print(f"the loss went down on {drops} of {STEPS} steps")
    print(f"final loss below {TARGET_LOSS}: {final < TARGET_LOSS}")


if __name__ == "__main__":
    main()
