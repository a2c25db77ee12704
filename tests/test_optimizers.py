"""Optimizers against NumPy references, eager and traced; lazy slots under init_scope."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

STEPS = 20


def _grad(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of sum((x @ w - 1)^2 ) w.r.t. w (the loss used in every test)."""
    return 2 * x.T @ (x @ w - 1.0)


def _numpy_sgd(w: np.ndarray, x: np.ndarray, lr: float, momentum: float, nesterov: bool) -> Any:
    velocity = np.zeros_like(w)
    for _ in range(STEPS):
        g = _grad(w, x)
        velocity = momentum * velocity - lr * g
        w = w + (momentum * velocity - lr * g if nesterov else velocity)
    return w


def _numpy_adam(w: np.ndarray, x: np.ndarray, lr: float, b1: float, b2: float, eps: float) -> Any:
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, STEPS + 1):
        g = _grad(w, x)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    return w


RNG = np.random.default_rng(7)
X = RNG.normal(size=(8, 3))
W0 = RNG.normal(size=(3, 2))

CASES: list[tuple[str, Callable[[], sf.optimizers.Optimizer], Callable[[], Any]]] = [
    ("sgd", lambda: sf.optimizers.SGD(0.01), lambda: _numpy_sgd(W0, X, 0.01, 0.0, False)),
    (
        "momentum",
        lambda: sf.optimizers.SGD(0.01, momentum=0.9),
        lambda: _numpy_sgd(W0, X, 0.01, 0.9, False),
    ),
    (
        "nesterov",
        lambda: sf.optimizers.SGD(0.01, momentum=0.8, nesterov=True),
        lambda: _numpy_sgd(W0, X, 0.01, 0.8, True),
    ),
    ("adam", lambda: sf.optimizers.Adam(0.05), lambda: _numpy_adam(W0, X, 0.05, 0.9, 0.999, 1e-7)),
    (
        "adam-betas",
        lambda: sf.optimizers.Adam(0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-4),
        lambda: _numpy_adam(W0, X, 0.02, 0.5, 0.9, 1e-4),
    ),
]


def _loss(w: Any, x: Any) -> Any:
    return sf.reduce_sum(sf.square(sf.matmul(x, w) - 1.0))


@pytest.mark.parametrize(("name", "make", "reference"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_matches_numpy_over_20_steps(name: str, make: Any, reference: Any, mode: str) -> None:
    w = sf.Variable(W0, name="w")  # float64: compared to 1e-6 relative
    x = sf.constant(X)
    opt = make()

    def step() -> Any:
        with sf.GradientTape() as tape:
            loss = _loss(w, x)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    run = sf.function(step) if mode == "traced" else step
    for _ in range(STEPS):
        run()
    np.testing.assert_allclose(w.numpy(), reference(), rtol=1e-6, atol=1e-12)
    assert int(opt.iterations.numpy()) == STEPS
    if mode == "traced":
        assert run.trace_count == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "make", "reference"), CASES, ids=[c[0] for c in CASES])
def test_graph_mode_with_a_session(name: str, make: Any, reference: Any) -> None:
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(W0, name="w")
        loss = _loss(w, sf.constant(X))
        opt = make()
        (grad,) = sf.gradients(loss, [w])
        train = opt.apply_gradients([(grad, w)])
        init = sf.global_variables_initializer()
    assert isinstance(train, sf.Operation)
    with sf.Session(g) as sess:
        sess.run(init)
        for _ in range(STEPS):
            sess.run(train)
        final, steps = sess.run([w, opt.iterations])
    np.testing.assert_allclose(final, reference(), rtol=1e-6, atol=1e-12)
    assert steps == STEPS


def test_slots_are_created_once_outside_the_traced_step() -> None:
    w = sf.Variable(np.ones(3, np.float32), name="dense/w")
    opt = sf.optimizers.Adam(0.1)
    assert opt.variables == ()  # lazy

    @sf.function
    def step(x: Any) -> Any:
        with sf.GradientTape() as tape:
            loss = sf.reduce_sum(w * x)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    step(sf.ones(3))
    step(sf.ones(3))
    assert step.trace_count == 1
    assert [v.name for v in opt.variables] == ["Adam/iterations:0", "dense/w/m:0", "dense/w/v:0"]
    assert all(v.graph is None for v in opt.variables)  # eager: lifted out of the function
    assert opt.get_slot(w, "m").shape == (3,)
    assert int(opt.iterations.numpy()) == 2


def test_a_later_trace_that_needs_new_slots_raises() -> None:
    a = sf.Variable(1.0, name="a")
    b = sf.Variable(2.0, name="b")
    opt = sf.optimizers.SGD(0.1, momentum=0.5)

    @sf.function
    def step(use_b: bool) -> None:
        var = b if use_b else a
        with sf.GradientTape() as tape:
            loss = var * var
        opt.apply_gradients([(tape.gradient(loss, var), var)])

    step(False)
    with pytest.raises(ValueError, match="A variable was created while tracing"):
        step(True)  # a second trace would create b's momentum slot
    # Built outside any function, the slot exists and the retrace succeeds.
    opt.build([b])
    step(True)
    assert float(b.numpy()) == pytest.approx(2.0 - 0.1 * 4.0)


def test_none_gradients_are_skipped_and_all_none_raises() -> None:
    a, b = sf.Variable(1.0, name="a"), sf.Variable(1.0, name="b")
    opt = sf.optimizers.SGD(0.5)
    opt.apply_gradients([(sf.constant(1.0), a), (None, b)])
    assert float(a.numpy()) == 0.5
    assert float(b.numpy()) == 1.0
    with pytest.raises(ValueError, match="^No gradients provided for any variable"):
        opt.apply_gradients([(None, a), (None, b)])
    assert int(opt.iterations.numpy()) == 1


@pytest.mark.parametrize(
    ("pairs", "pattern"),
    [
        ([sf.constant(1.0)], r"takes \(gradient, variable\) pairs"),
        ([(sf.constant(1.0), sf.constant(1.0))], r"updates sf.Variable objects"),
    ],
)
def test_bad_pairs(pairs: Any, pattern: str) -> None:
    with pytest.raises(TypeError, match=pattern):
        sf.optimizers.SGD().apply_gradients(pairs)


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: sf.optimizers.SGD(-1.0), ValueError, r"learning_rate=\.\.\.\) must be a finite"),
        (lambda: sf.optimizers.SGD("0.1"), TypeError, r"learning_rate=\.\.\.\) must be a Python"),
        (lambda: sf.optimizers.SGD(momentum=1.0), ValueError, r"momentum=\.\.\.\) must be in"),
        (lambda: sf.optimizers.Adam(beta_1=1.5), ValueError, r"beta_1=\.\.\.\) must be in"),
        (lambda: sf.optimizers.Adam(epsilon=float("nan")), ValueError, r"epsilon=\.\.\.\)"),
    ],
)
def test_bad_hyperparameters(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_gradient_dtype_is_cast_to_the_variable() -> None:
    w = sf.Variable(np.float64(1.0), name="w")
    sf.optimizers.SGD(0.5).apply_gradients([(sf.constant(1.0), w)])  # float32 gradient
    assert w.numpy().dtype == np.float64
    assert float(w.numpy()) == 0.5


def test_threads_making_the_first_step_at_once_create_one_set_of_slots() -> None:
    w = sf.Variable(np.zeros(4, np.float64), name="w")
    opt = sf.optimizers.Adam(0.01)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            opt.apply_gradients([(sf.constant(np.ones(4)), w)])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(opt.variables) == 3
    assert int(opt.iterations.numpy()) == 8
