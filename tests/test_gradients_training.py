"""Second derivatives, and a small network trained with the tape against NumPy.

Second derivatives differentiate a first-order gradient (a nested tape eagerly and in a
traced function, ``sf.gradients`` of ``sf.gradients`` in a graph), which exercises the
gradients of the ops that gradient functions themselves build. The training test runs
plain gradient descent on a 4-8-1 network and compares every parameter after every
step with a hand-written NumPy forward and backward pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_gradients import MODES, Case, check_gradients, output_weights, pos, rand


def first_order(fn: Callable[[Any], Any], w: np.ndarray[Any, Any]) -> Callable[[Any], Any]:
    """``x -> d(sum(w * fn(x)))/dx``, built with a tape (eager, traced) or sf.gradients."""

    def grad(x: Any) -> Any:
        if sf.executing_eagerly() or sf.inside_function():
            with sf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return tape.gradient(y, x, output_gradients=sf.constant(w))
        (g,) = sf.gradients(fn(x), [x], grad_ys=sf.constant(w))
        return g

    return grad


_COND = np.array([[True, False, True], [False, True, False]])

SECOND_ORDER = [
    ("tanh", sf.tanh, rand(2, 3)),
    ("sigmoid", sf.sigmoid, rand(2, 3, low=-3.0, high=3.0)),
    ("exp-times-x", lambda x: sf.exp(x) * x, rand(2, 3)),
    ("log", sf.log, pos(2, 3)),
    ("sqrt", sf.sqrt, pos(2, 3)),
    ("divide", lambda x: x / (x * x + 1.0), rand(2, 3)),
    ("pow", lambda x: sf.pow(x, 3.0), pos(2, 3)),
    ("pow-variable-exponent", lambda x: sf.pow(x, x), pos(2, 3)),
    ("matmul", lambda x: sf.matmul(x, x), rand(3, 3)),
    ("matmul-transposed", lambda x: sf.matmul(x, x, transpose_a=True), rand(3, 3)),
    ("matmul-batch", lambda x: sf.matmul(x, x[0]), rand(2, 3, 3)),
    ("reduce_sum", lambda x: sf.reduce_sum(x * x * x, axis=0), rand(2, 3)),
    ("reduce_mean", lambda x: sf.reduce_mean(sf.square(x), axis=1, keepdims=True) * x, rand(2, 3)),
    ("reduce_max", lambda x: sf.reduce_max(x * x, axis=0) * sf.reduce_sum(x), pos(2, 3)),
    ("reshape", lambda x: sf.reshape(x, [3, 2]) ** 3.0, rand(2, 3)),
    ("transpose", lambda x: sf.transpose(sf.tanh(x), [1, 0]) * sf.transpose(x), rand(2, 3)),
    ("concat", lambda x: sf.concat([x, x * x], axis=0) ** 2.0, rand(2, 3)),
    ("stack", lambda x: sf.stack([x, sf.tanh(x)], axis=-1) ** 2.0, rand(2, 3)),
    ("getitem", lambda x: x[::-1, 1:] ** 3.0, rand(2, 3)),
    ("where", lambda x: sf.where(_COND, x * x * x, sf.exp(x)), rand(2, 3)),
    # x * x is 0.13 or more away from 1 everywhere: no ties.
    ("maximum", lambda x: sf.maximum(x * x, 1.0) * x, np.array([[0.6, 0.8, 1.3], [1.6, 2.0, 0.7]])),
    ("cast", lambda x: sf.cast(sf.tanh(x), sf.float64) * x, rand(2, 3)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fn", "x"), [pytest.param(f, x, id=n) for n, f, x in SECOND_ORDER])
def test_second_derivative_matches_finite_differences(
    mode: str, fn: Callable[[Any], Any], x: np.ndarray[Any, Any]
) -> None:
    w = output_weights(Case(fn, (x,)), seed=3)
    check_gradients(mode, Case(first_order(fn, w), (x,), rtol=1e-5, atol=1e-6))


def test_second_derivative_with_nested_tapes_by_hand() -> None:
    x = sf.constant([0.5, -1.0, 2.0], dtype=sf.float64)
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = sf.reduce_sum(sf.tanh(x) * x)
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    t = np.tanh(x.numpy())
    # With t = tanh(x): y' = t + x (1 - t^2) and y'' = 2 (1 - t^2)(1 - x t).
    np.testing.assert_allclose(dy.numpy(), t + x.numpy() * (1 - t**2), rtol=1e-12)
    np.testing.assert_allclose(d2y.numpy(), 2 * (1 - t**2) * (1 - x.numpy() * t), rtol=1e-12)


# -- a small network, trained ----------------------------------------------------------

_LR = 0.1
_STEPS = 5


def _data() -> tuple[list[np.ndarray[Any, Any]], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(1234)
    params = [
        rng.normal(0.0, 0.5, (4, 8)),
        rng.normal(0.0, 0.1, (8,)),
        rng.normal(0.0, 0.5, (8, 1)),
        rng.normal(0.0, 0.1, (1,)),
    ]
    x = rng.normal(0.0, 1.0, (16, 4))
    y = np.sin(x.sum(axis=1, keepdims=True))
    return params, x, y


def _numpy_step(
    params: list[np.ndarray[Any, Any]],
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    activation: str,
) -> tuple[float, list[np.ndarray[Any, Any]]]:
    """One gradient-descent step, forward and backward written out by hand."""
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    h = np.tanh(pre) if activation == "tanh" else np.maximum(pre, 0.0)
    pred = h @ w2 + b2
    err = pred - y
    loss = float(np.mean(err**2))
    d_pred = 2.0 * err / err.size
    d_w2 = h.T @ d_pred
    d_b2 = d_pred.sum(axis=0)
    d_h = d_pred @ w2.T
    d_pre = d_h * (1.0 - h**2) if activation == "tanh" else d_h * (pre > 0.0)
    d_w1 = x.T @ d_pre
    d_b1 = d_pre.sum(axis=0)
    grads = [d_w1, d_b1, d_w2, d_b2]
    return loss, [p - _LR * g for p, g in zip(params, grads, strict=True)]


def _loss(variables: list[sf.Variable], x: Any, y: Any, activation: str) -> Any:
    w1, b1, w2, b2 = variables
    pre = sf.matmul(x, w1) + b1
    h = sf.tanh(pre) if activation == "tanh" else sf.relu(pre)
    pred = sf.matmul(h, w2) + b2
    return sf.reduce_mean(sf.square(pred - y))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "function"])
def test_mlp_trained_with_the_tape_matches_numpy(activation: str, traced: bool) -> None:
    init, x_np, y_np = _data()
    variables = [sf.Variable(p, name=f"p{i}") for i, p in enumerate(init)]
    x, y = sf.constant(x_np), sf.constant(y_np)
    assert all(v.dtype == np.float64 for v in variables)

    calls = []

    def step(x: Any, y: Any) -> Any:
        calls.append(sf.executing_eagerly())
        with sf.GradientTape() as tape:
            loss = _loss(variables, x, y, activation)
        grads = tape.gradient(loss, variables)
        for v, g in zip(variables, grads, strict=True):
            v.assign_sub(g * _LR)
        return loss

    train_step = sf.function(step) if traced else step
    reference = init
    losses = []
    for i in range(_STEPS):
        expected_loss, reference = _numpy_step(reference, x_np, y_np, activation)
        loss = float(train_step(x, y).numpy())
        np.testing.assert_allclose(loss, expected_loss, rtol=1e-12, err_msg=f"step {i}")
        for v, want in zip(variables, reference, strict=True):
            np.testing.assert_allclose(v.numpy(), want, rtol=1e-10, atol=1e-13, err_msg=v.name)
        losses.append(loss)
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    # Traced, the body ran once (symbolically) and its graph did every update.
    assert calls == ([False] if traced else [True] * _STEPS)
