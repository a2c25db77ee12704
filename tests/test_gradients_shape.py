"""Gradients of the shape, creation and indexing ops of issue 9 against central finite
differences, in every mode of ``test_gradients`` (eager tape; ``sf.gradients`` on
placeholders of known sizes, unknown sizes and unknown rank; a tape in a traced function
of known and unknown sizes), second derivatives, and the ops that have no gradient.

Index tensors are computed from the input's runtime shape where possible
(``sf.range(sf.shape(x)[0])``), so in the unknown-size modes they really are symbolic.
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
    output_weights,
    rand,
    symbolic_gradients,
)
from test_gradients_training import first_order

_MASK = np.array([True, False, True])
_MASK23 = np.array([[True, False, True], [False, True, True]])


def _reversed_rows(x: Any) -> Any:
    """Row indices ``n-1, ..., 0`` of ``x``, known only when the graph runs (or eagerly)."""
    return sf.range(sf.shape(x)[0])[::-1]


def _last(x: Any) -> Any:
    return sf.shape(x)[0] - 1


CASES = [
    # dynamic shapes
    case("reshape-shape-tensor", lambda a: sf.reshape(a, sf.shape(a)[::-1]), rand(2, 3)),
    case("reshape-flatten-batch", lambda a: sf.reshape(a, [sf.shape(a)[0], -1]), rand(2, 3, 2)),
    case("fill-shape-tensor", lambda a, v: sf.fill(sf.shape(a), v) * a, rand(2, 3), rand()),
    case("expand_dims", lambda a: sf.expand_dims(a, 1) * sf.expand_dims(a, -1), rand(2, 3)),
    case("squeeze", lambda a: sf.squeeze(a, [0, 2]) ** 2.0, rand(1, 3, 1)),
    case("squeeze-all", lambda a: sf.squeeze(a), rand(1, 3, 1, 2)),
    case("tile", lambda a: sf.tile(a, [2, 3]), rand(2, 3)),
    case("tile-multiples-tensor", lambda a: sf.tile(a, [sf.shape(a)[0], 1]) ** 2.0, rand(2, 2)),
    case("tile-3d", lambda a: sf.tile(a, [1, 2, 2]), rand(2, 1, 3)),
    case("split-num", lambda a: sf.split(a, 3, axis=1)[1] * sf.split(a, 3, axis=1)[2], rand(2, 6)),
    case("split-sizes", lambda a: sf.split(a, [1, -1], axis=0)[1], rand(3, 2)),
    case("split-one", lambda a: sf.split(a, 1)[0] ** 2.0, rand(3)),
    case("pad-constant", lambda a: sf.pad(a, [[1, 0], [2, 1]], constant_values=3.0), rand(2, 3)),
    case(
        "pad-constant-tensor", lambda a, c: sf.pad(a, [[1, 1]], constant_values=c), rand(3), rand()
    ),
    case("pad-reflect", lambda a: sf.pad(a, [[1, 1], [2, 2]], mode="REFLECT"), rand(2, 3)),
    case("pad-symmetric", lambda a: sf.pad(a, [[2, 1], [0, 3]], mode="SYMMETRIC"), rand(2, 3)),
    case(
        "one_hot-on-off-tensors",
        lambda on, off: sf.one_hot([0, 2, 5], 3, on_value=on, off_value=off),
        rand(),
        rand(),
    ),
    case("one_hot-axis0", lambda on: sf.one_hot([[1, 0]], 2, on_value=on, axis=0) * on, rand()),
    # indexing
    case("gather", lambda a: sf.gather(a, [2, 0]), rand(3, 2)),
    case("gather-repeated", lambda a: sf.gather(a, [1, 1, 0, 1], axis=1), rand(2, 3)),
    case("gather-matrix-indices", lambda a: sf.gather(a, [[0, 2], [2, 2]], axis=-1), rand(2, 3)),
    case("gather-runtime-indices", lambda a: sf.gather(a, _reversed_rows(a)) * a, rand(3, 2)),
    case(
        "gather-batch_dims",
        lambda a: sf.gather(a, [[0, 0], [2, 1]], axis=1, batch_dims=1),
        rand(2, 3),
    ),
    case("boolean_mask", lambda a: sf.boolean_mask(a, _MASK), rand(3, 2)),
    case("boolean_mask-2d", lambda a: sf.boolean_mask(a, _MASK23) ** 2.0, rand(2, 3)),
    case("boolean_mask-axis1", lambda a: sf.boolean_mask(a, _MASK, axis=1), rand(2, 3, 2)),
    case("getitem_tensor-scalar", lambda a: a[_last(a)], rand(3, 2)),
    case("getitem_tensor-slice-bound", lambda a: a[1 : _last(a)], rand(4, 2)),
    case("getitem_tensor-vector", lambda a: a[:, sf.constant([2, 0, 2])], rand(2, 3)),
    case("getitem_tensor-runtime-vector", lambda a: a[_reversed_rows(a)] * a, rand(3, 2)),
    case("getitem_tensor-mask", lambda a: a[a[:, 0] > 0.0], rand(4, 2)),
    case("getitem_tensor-mask-after-int", lambda a: a[1, sf.constant(_MASK)], rand(2, 3)),
]

# The differentiable ops of issue 9 (shape/creation/indexing); each needs a case above.
DIFFERENTIABLE_OPS = frozenset(
    {
        "reshape", "fill", "expand_dims", "squeeze", "tile", "split", "pad", "one_hot",
        "gather", "boolean_mask", "getitem_tensor",
    }
)  # fmt: skip


def test_every_differentiable_op_has_a_case() -> None:
    covered = {p.id.split("-")[0] for p in CASES}
    assert covered >= DIFFERENTIABLE_OPS, DIFFERENTIABLE_OPS - covered


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_finite_differences(mode: str, case: Case) -> None:
    check_gradients(mode, case)


# -- ops without gradients (integer outputs, or values independent of the input's values) -------

_A = rand(2, 3)

NO_GRADIENT = [
    case("shape", lambda a: sf.cast(sf.shape(a), sf.float64), _A),
    case("size", lambda a: sf.cast(sf.size(a), sf.float64), _A),
    case("rank", lambda a: sf.cast(sf.rank(a), sf.float64), _A),
    case("zeros_like", sf.zeros_like, _A),
    case("ones_like", lambda a: sf.ones_like(a, sf.float32), _A),
    case("zeros-shape-tensor", lambda a: sf.zeros(sf.shape(a), sf.float64), _A),
    case("range", lambda a: sf.range(sf.reduce_sum(a), 5.0, dtype=sf.float64), np.array([1.5])),
    case(
        "one_hot-indices", lambda a: sf.one_hot(sf.cast(a * 3.0, sf.int32), 4, dtype=sf.float64), _A
    ),
    case(
        "gather-indices", lambda a: sf.gather(sf.constant([1.0, 2.0]), sf.cast(a > 0, sf.int32)), _A
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", NO_GRADIENT)
def test_non_differentiable_ops_give_none(mode: str, case: Case) -> None:
    assert symbolic_gradients(mode, case.fn, case.inputs) == [None] * len(case.inputs)


@pytest.mark.parametrize("mode", MODES)
def test_repeated_gather_and_index_add_up(mode: str) -> None:
    x = np.array([1.0, 2.0, 3.0])
    (g,) = symbolic_gradients(mode, lambda a: sf.gather(a, [2, 2, 0, 2]), [x])
    np.testing.assert_array_equal(g, [1.0, 0.0, 3.0])
    (g,) = symbolic_gradients(mode, lambda a: a[sf.constant([0, 0, 1])], [x])
    np.testing.assert_array_equal(g, [2.0, 1.0, 0.0])


# -- second derivatives ----------------------------------------------------------------------

SECOND_ORDER: list[tuple[str, Callable[[Any], Any], Any]] = [
    ("reshape-dynamic", lambda x: sf.reshape(x, sf.shape(x)[::-1]) ** 3.0, rand(2, 3)),
    ("expand_dims-squeeze", lambda x: sf.squeeze(sf.expand_dims(x, 0) ** 3.0), rand(2, 3)),
    ("tile", lambda x: sf.tile(x, [2, 1]) ** 3.0, rand(2, 3)),
    ("split", lambda x: sf.split(x, 2, axis=1)[0] ** 3.0, rand(2, 4)),
    ("pad-reflect", lambda x: sf.pad(x, [[1, 1], [1, 2]], mode="REFLECT") ** 3.0, rand(2, 3)),
    ("pad-constant", lambda x: sf.pad(x**3.0, [[1, 0], [0, 1]]), rand(2, 3)),
    ("gather", lambda x: sf.gather(x, [1, 1, 0]) ** 3.0, rand(2, 3)),
    ("boolean_mask", lambda x: sf.boolean_mask(x, _MASK23) ** 3.0, rand(2, 3)),
    ("getitem-tensor", lambda x: x[_reversed_rows(x)] ** 3.0 * x, rand(3, 2)),
    ("getitem-mask", lambda x: x[sf.constant(_MASK)] ** 3.0, rand(3, 2)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fn", "x"), [pytest.param(f, x, id=n) for n, f, x in SECOND_ORDER])
def test_second_derivative_matches_finite_differences(
    mode: str, fn: Callable[[Any], Any], x: np.ndarray[Any, Any]
) -> None:
    w = output_weights(Case(fn, (x,)), seed=3)
    check_gradients(mode, Case(first_order(fn, w), (x,), rtol=1e-5, atol=1e-6))
