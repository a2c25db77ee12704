"""Gradients of the math, reduction and ``sf.nn`` ops of issue 9.

First derivatives are checked against central finite differences in every mode of
``test_gradients`` (eager tape, ``sf.gradients`` in graphs of known and unknown shapes,
tapes in traced functions), second derivatives as in ``test_gradients_training``. The
piecewise-constant and integer-valued ops get ``None``, as in TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_gradients import (
    MODES,
    Case,
    case,
    check_gradients,
    distinct,
    off_zero,
    output_weights,
    pos,
    rand,
    symbolic_gradients,
)
from test_gradients_training import first_order

# Quotients x / y at least 0.05 away from an integer, of both signs: mod is smooth there.
_MOD_X = np.array([[2.5, -3.3, 5.1], [-0.7, 7.6, 1.3]])
_MOD_Y = np.array([[1.2, 1.4, -2.0], [0.9, 3.0, -0.6]])
_MOD_Y_ROW = np.array([1.3, -2.1, 0.7])
# Values 0.05 or more from the clip bounds -0.3 and 0.4, inside and outside.
_CLIP_X = np.array([[-0.9, -0.2, 0.1], [0.35, 0.5, 1.2]])
# Each row a distribution (sums to 1): the logits gradient is softmax - labels, as in TF.
_LABELS_SOFT = np.array([[0.2, 0.5, 0.3, 0.0], [1.0, 0.0, 0.0, 0.0], [0.1, 0.1, 0.1, 0.7]])
_SPARSE = np.array([2, 0, 3], np.int64)
_SPARSE_3D = np.array([[1, 0], [2, 2]], np.int32)


def _soft_ce(axis: int) -> Callable[..., Any]:
    def fn(labels: Any, logits: Any) -> Any:
        return sf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis)

    return fn


CASES = [
    case("abs", sf.abs, off_zero(2, 3)),
    case("sin", sf.sin, rand(2, 3, low=-3.0, high=3.0)),
    case("cos", sf.cos, rand(2, 3, low=-3.0, high=3.0)),
    case("log1p", sf.log1p, rand(2, 3, low=-0.5, high=2.0)),
    case("rsqrt", sf.rsqrt, pos(2, 3)),
    case("reciprocal", sf.reciprocal, off_zero(2, 3)),
    case("mod", sf.mod, _MOD_X, _MOD_Y),
    case("mod-(2,3)%(3,)", sf.mod, _MOD_X, _MOD_Y_ROW),
    case("mod-operator-constant", lambda a: a % 1.8, _MOD_X),
    case("clip_by_value-scalars", lambda a: sf.clip_by_value(a, -0.3, 0.4), _CLIP_X),
    case(
        "clip_by_value-tensor-bounds",
        sf.clip_by_value,
        _CLIP_X,
        np.array([-0.3, 0.0, -0.5]),
        np.array(0.4),
    ),
    case(
        "clip_by_value-per-element-bounds",
        sf.clip_by_value,
        _CLIP_X,
        np.full((2, 3), -0.3),
        np.array([[0.4], [1.0]]),
    ),
    case("reduce_min-all", sf.reduce_min, distinct(2, 3)),
    case("reduce_min-axis1-keepdims", lambda a: sf.reduce_min(a, 1, keepdims=True), distinct(2, 3)),
    case("reduce_min-axes0,2", lambda a: sf.reduce_min(a, [0, 2]), distinct(2, 3, 2)),
    case("reduce_prod-all", sf.reduce_prod, rand(2, 3, low=0.5, high=1.5)),
    case("reduce_prod-axis0", lambda a: sf.reduce_prod(a, 0), rand(3, 4)),
    case("reduce_prod-axis-1-keepdims", lambda a: sf.reduce_prod(a, -1, True), rand(2, 3)),
    case("reduce_prod-axes2,0", lambda a: sf.reduce_prod(a, [2, 0]), rand(2, 3, 2)),
    case(
        "reduce_prod-with-zeros",
        lambda a: sf.reduce_prod(a, 1),
        np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5]]),
    ),
    case("softmax", sf.nn.softmax, rand(2, 4, low=-2.0, high=2.0)),
    case("softmax-axis0", lambda a: sf.nn.softmax(a, axis=0), rand(3, 2)),
    case("softmax-3d-axis1", lambda a: sf.nn.softmax(a, 1), rand(2, 3, 2)),
    case("log_softmax", sf.nn.log_softmax, rand(2, 4, low=-2.0, high=2.0)),
    case("log_softmax-axis0", lambda a: sf.nn.log_softmax(a, axis=0), rand(3, 2)),
    case("softmax_cross_entropy_with_logits", _soft_ce(-1), _LABELS_SOFT, rand(3, 4)),
    case("softmax_cross_entropy_with_logits-axis0", _soft_ce(0), _LABELS_SOFT.T, rand(4, 3)),
    case(
        "softmax_cross_entropy_with_logits-broadcast-labels",
        _soft_ce(-1),
        np.array([[0.1, 0.2, 0.3, 0.4]]),
        rand(3, 4),
    ),
    case(
        "softmax_cross_entropy_with_logits-broadcast-logits",
        _soft_ce(-1),
        _LABELS_SOFT,
        rand(1, 4),
    ),
    case(
        "sparse_softmax_cross_entropy_with_logits",
        lambda a: sf.nn.sparse_softmax_cross_entropy_with_logits(_SPARSE, a),
        rand(3, 4),
    ),
    case(
        "sparse_softmax_cross_entropy_with_logits-rank3",
        lambda a: sf.nn.sparse_softmax_cross_entropy_with_logits(labels=_SPARSE_3D, logits=a),
        rand(2, 2, 3),
    ),
    case(
        "sigmoid_cross_entropy_with_logits",
        lambda z, x: sf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x),
        rand(2, 3, low=0.0, high=1.0),
        rand(2, 3, low=-3.0, high=3.0),
    ),
    case("l2_loss", sf.nn.l2_loss, rand(2, 3)),
    case("relu", sf.nn.relu, off_zero(4)),
]

DIFFERENTIABLE_OPS = frozenset(
    {
        "abs", "sin", "cos", "log1p", "rsqrt", "reciprocal", "mod", "clip_by_value",
        "reduce_min", "reduce_prod", "softmax", "log_softmax",
        "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
        "sigmoid_cross_entropy_with_logits", "l2_loss",
    }
)  # fmt: skip


def test_every_differentiable_op_has_a_case() -> None:
    covered = {p.id.split("-")[0] for p in CASES}
    assert covered >= DIFFERENTIABLE_OPS, DIFFERENTIABLE_OPS - covered


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_finite_differences(mode: str, case: Case) -> None:
    check_gradients(mode, case)


# -- second order -------------------------------------------------------------------------

SECOND_ORDER = [
    ("sin", sf.sin, rand(2, 3)),
    ("cos", lambda x: sf.cos(x) * x, rand(2, 3)),
    ("log1p", sf.log1p, pos(2, 3)),
    ("rsqrt", sf.rsqrt, pos(2, 3)),
    ("reciprocal", sf.reciprocal, off_zero(2, 3)),
    ("mod", lambda x: sf.mod(x * x, 1.7) * x, _MOD_X / 3.0),
    ("clip_by_value", lambda x: sf.clip_by_value(x * x * x, -0.027, 0.064) * x, _CLIP_X),
    ("reduce_min", lambda x: sf.reduce_min(x * x, axis=1) * sf.reduce_sum(x), distinct(2, 3) + 3.0),
    ("reduce_prod", lambda x: sf.reduce_prod(x, axis=1), rand(2, 3)),
    ("reduce_prod-all", sf.reduce_prod, rand(2, 2)),
    (
        "reduce_prod-with-zeros",
        lambda x: sf.reduce_prod(x, 0),
        np.array([[0.0, 1.0], [2.0, 0.0], [0.5, 3.0]]),
    ),
    (
        "reduce_prod-two-and-three-zeros",
        lambda x: sf.reduce_prod(x, 1),
        np.array([[0.0, 0.0, 2.0, 0.5], [0.0, 1.5, -1.0, 2.0], [0.0, 0.0, 0.0, 3.0]]),
    ),
    ("softmax", sf.nn.softmax, rand(2, 3)),
    ("log_softmax", lambda x: sf.nn.log_softmax(x, axis=0), rand(3, 2)),
    ("softmax_cross_entropy", lambda x: _soft_ce(-1)(_LABELS_SOFT, x), rand(3, 4)),
    ("softmax_cross_entropy-labels", lambda z: _soft_ce(-1)(sf.nn.softmax(z * z), z), rand(3, 4)),
    (
        "sparse_softmax_cross_entropy",
        lambda x: sf.nn.sparse_softmax_cross_entropy_with_logits(_SPARSE, x),
        rand(3, 4),
    ),
    (
        "sigmoid_cross_entropy",
        lambda x: sf.nn.sigmoid_cross_entropy_with_logits(labels=sf.sigmoid(x), logits=x * x),
        rand(2, 3),
    ),
    ("l2_loss", lambda x: sf.nn.l2_loss(x * x), rand(2, 3)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fn", "x"), [pytest.param(f, x, id=n) for n, f, x in SECOND_ORDER])
def test_second_derivative_matches_finite_differences(
    mode: str, fn: Callable[[Any], Any], x: np.ndarray[Any, Any]
) -> None:
    w = output_weights(Case(fn, (x,)), seed=3)
    check_gradients(mode, Case(first_order(fn, w), (x,), rtol=1e-5, atol=1e-6))


def test_third_derivative_of_reduce_prod_says_it_is_not_implemented() -> None:
    x = sf.constant([1.0, 2.0, 3.0], sf.float64)
    with sf.GradientTape(persistent=True) as t3:
        t3.watch(x)
        with sf.GradientTape(persistent=True) as t2:
            t2.watch(x)
            with sf.GradientTape() as t1:
                t1.watch(x)
                y = sf.reduce_prod(x)
            g1 = t1.gradient(y, x)
        g2 = t2.gradient(g1, x)
        np.testing.assert_allclose(g2.numpy(), [5.0, 4.0, 3.0])  # sum of the Hessian rows
    with pytest.raises(LookupError, match=r"third and higher derivatives of reduce_prod"):
        t3.gradient(g2, x)


# -- exact values where finite differences do not apply -------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_reduce_prod_gradient_is_exact_at_zeros(mode: str) -> None:
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    (g,) = symbolic_gradients(mode, lambda a: sf.reduce_prod(a, axis=1), [x])
    np.testing.assert_array_equal(g, [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])


@pytest.mark.parametrize("mode", MODES)
def test_reduce_min_splits_the_gradient_evenly_among_ties(mode: str) -> None:
    x = np.array([[1.0, -3.0, -3.0], [2.0, 2.0, 2.0]])
    (rows,) = symbolic_gradients(mode, lambda a: sf.reduce_min(a, axis=1), [x])
    np.testing.assert_allclose(rows, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize("mode", MODES)
def test_clip_by_value_gradient_at_and_beyond_the_bounds(mode: str) -> None:
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    lo = np.array(-1.0)
    hi = np.array(1.0)
    gx, glo, ghi = symbolic_gradients(mode, sf.clip_by_value, [x, lo, hi])
    # Values on a bound count as inside (the gradient goes to t), as in TensorFlow.
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.0, 1.0, 0.0])
    assert float(glo) == 1.0
    assert float(ghi) == 1.0


# -- ops without gradients ------------------------------------------------------------

_A, _B = rand(2, 3), rand(2, 3)

NO_GRADIENT = [
    case("floor", sf.floor, _A),
    case("round", sf.round, _A * 3.0),
    case("floordiv", sf.floordiv, _A, _B),
    case("floordiv-operator", lambda a, b: a // b, _A, _B),
    case("argmax", lambda a: sf.cast(sf.argmax(a, 1), sf.float64), _A),
    case("argmin", lambda a: sf.cast(sf.argmin(a), sf.float64), _A),
    case("not_equal", sf.not_equal, _A, _B),
    case("greater_equal", sf.greater_equal, _A, _B),
    case("less_equal", lambda a, b: a <= b, _A, _B),
    case(
        "logical_ops", lambda a, b: sf.logical_or(a > b, sf.logical_and(a < 0.0, b < 0.0)), _A, _B
    ),
    case("reduce_any", lambda a: sf.reduce_any(a > 0.0), _A),
    case("reduce_all", lambda a: sf.reduce_all(a > 0.0, axis=0), _A),
    case("floor-then-float-math", lambda a: sf.floor(a) * 2.0 + sf.round(a), _A),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", NO_GRADIENT)
def test_non_differentiable_ops_give_none(mode: str, case: Case) -> None:
    assert symbolic_gradients(mode, case.fn, case.inputs) == [None] * len(case.inputs)


@pytest.mark.parametrize("mode", MODES)
def test_piecewise_constant_ops_contribute_nothing_beside_a_real_path(mode: str) -> None:
    x = np.array([-1.7, 0.4, 2.5])
    (g,) = symbolic_gradients(mode, lambda a: a * 3.0 + sf.floor(a) + sf.sign(a) * sf.round(a), [x])
    np.testing.assert_array_equal(g, [3.0, 3.0, 3.0])


@pytest.mark.parametrize("mode", MODES)
def test_sparse_cross_entropy_gives_labels_no_gradient_and_rejects_float_labels(mode: str) -> None:
    logits = rand(2, 3)
    labels = np.array([0.0, 2.0])
    with pytest.raises(TypeError, match=r"labels must be integer class indices, got dtype float64"):
        symbolic_gradients(
            mode,
            lambda z, x: sf.nn.sparse_softmax_cross_entropy_with_logits(z, x),
            [labels, logits],
        )


@pytest.mark.parametrize("mode", MODES)
def test_the_gradient_of_sign_is_zeros(mode: str) -> None:
    # TensorFlow registers zeros for Sign (Floor and Round have none: see above).
    x = np.array([-1.7, 0.0, 2.5])
    (g,) = symbolic_gradients(mode, sf.sign, [x])
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])
