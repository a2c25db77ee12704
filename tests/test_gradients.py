"""Every differentiable op of SPEC section 2 against central finite differences.

Each case is differentiated in every mode: an eager ``GradientTape``; ``sf.gradients``
in a graph run by a ``Session`` (placeholders of known shape, of unknown sizes and of
unknown rank); and a tape inside an ``sf.function`` (traced for the concrete shapes, and
for an ``input_signature`` of unknown sizes). The oracle is a central difference
of ``sum(w * fn(*inputs))`` over the eager forward pass, with a random ``w`` fed as the
output gradient so a gradient that only works for all-ones seeds cannot pass.
Second derivatives and a small trained network are in ``test_gradients_training``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import compatible

MODES = (
    "eager",
    "graph",
    "graph-unknown-sizes",
    "graph-unknown-rank",
    "function",
    "function-unknown-sizes",
)

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Case:
    """``fn`` of float64 ``inputs``; ``eps``/``rtol``/``atol`` tune the comparison."""

    fn: Callable[..., Any]
    inputs: tuple[Array, ...]
    eps: float = 1e-6
    rtol: float = 1e-5
    atol: float = 1e-7


# -- the harness -------------------------------------------------------------------------


def eager_value(fn: Callable[..., Any], inputs: Sequence[Array]) -> Array:
    """``fn`` run eagerly on constants made from ``inputs``."""
    return np.asarray(fn(*[sf.constant(a) for a in inputs]).numpy())


def output_weights(case: Case, seed: int = 7) -> Array:
    """A random output gradient with the dtype and shape of ``case.fn``'s result."""
    out = eager_value(case.fn, case.inputs)
    return np.asarray(np.random.default_rng(seed).uniform(0.5, 1.5, out.shape), out.dtype)


def numeric_gradients(case: Case, w: Array) -> list[Array]:
    """Central differences of ``sum(w * fn(*inputs))`` for each input element."""

    def objective(arrays: list[Array]) -> float:
        out = eager_value(case.fn, arrays).astype(np.float64)
        return float(np.sum(out * w))

    grads = []
    for i, a in enumerate(case.inputs):
        g = np.zeros_like(a, dtype=np.float64)
        for j in np.ndindex(a.shape):
            shifted = []
            for sign in (1.0, -1.0):
                arrays = [x.copy() for x in case.inputs]
                arrays[i][j] += sign * case.eps
                shifted.append(objective(arrays))
            g[j] = (shifted[0] - shifted[1]) / (2 * case.eps)
        grads.append(g)
    return grads


def _placeholder_shape(mode: str, shape: tuple[int, ...]) -> tuple[int | None, ...] | None:
    if mode == "graph-unknown-rank":
        return None
    if mode == "graph-unknown-sizes":
        return (None,) * len(shape)
    return shape


def _check_eager_grad(g: Any, x: Array) -> Array:
    assert type(g) is sf.EagerTensor, f"expected an eager gradient, got {g!r}"
    assert g.dtype == x.dtype
    assert g.shape == x.shape, f"gradient shape {g.shape}, input shape {x.shape}"
    return np.asarray(g.numpy())


def symbolic_gradients(
    mode: str, fn: Callable[..., Any], inputs: Sequence[Array], w: Array | None = None
) -> list[Array | None]:
    """d(sum(w * fn(*inputs)))/d(inputs) computed in ``mode`` (None: not connected)."""
    seed = None if w is None else w
    if mode == "eager":
        xs = [sf.constant(a) for a in inputs]
        with sf.GradientTape() as tape:
            tape.watch(xs)
            y = fn(*xs)
        seeds = None if seed is None else sf.constant(seed)
        grads = tape.gradient(y, xs, output_gradients=seeds)
        return [
            None if g is None else _check_eager_grad(g, a)
            for g, a in zip(grads, inputs, strict=True)
        ]
    if mode.startswith("function"):
        return _function_gradients(fn, inputs, seed, known_sizes=mode == "function")
    graph = sf.Graph()
    with graph.as_default():
        ps = [sf.placeholder(a.dtype, shape=_placeholder_shape(mode, a.shape)) for a in inputs]
        y = fn(*ps)
        seeds = None if seed is None else sf.constant(seed)
        grads = sf.gradients(y, ps, grad_ys=seeds)
    assert len(grads) == len(inputs)
    fetches = [g for g in grads if g is not None]
    for g in fetches:
        assert type(g) is sf.Tensor, f"sf.gradients returned {g!r}, not a graph tensor"
        assert g.graph is graph
    with sf.Session(graph) as sess:
        values = iter(sess.run(fetches, feed_dict=dict(zip(ps, inputs, strict=True))))
    out: list[Array | None] = []
    for g, a in zip(grads, inputs, strict=True):
        if g is None:
            out.append(None)
            continue
        value = np.asarray(next(values))
        assert value.dtype == a.dtype == g.dtype
        assert value.shape == a.shape, f"gradient shape {value.shape}, input shape {a.shape}"
        if mode == "graph":
            assert g.shape == a.shape, f"static gradient shape {g.shape}, input {a.shape}"
        else:
            assert compatible(g.shape, a.shape), f"static {g.shape} vs input {a.shape}"
        out.append(value)
    return out


def _function_gradients(
    fn: Callable[..., Any], inputs: Sequence[Array], seed: Array | None, known_sizes: bool
) -> list[Array | None]:
    traced: list[Any] = []
    signature = None
    if not known_sizes:
        signature = [sf.TensorSpec((None,) * a.ndim, a.dtype) for a in inputs]

    def grad_fn(*xs: Any) -> Any:
        assert sf.inside_function()
        with sf.GradientTape() as tape:
            tape.watch(list(xs))
            y = fn(*xs)
        seeds = None if seed is None else sf.constant(seed)
        grads = tape.gradient(y, list(xs), output_gradients=seeds)
        traced.extend(grads)
        return grads

    grads = sf.function(grad_fn, input_signature=signature)(*[sf.constant(a) for a in inputs])
    assert all(g is None or type(g) is sf.Tensor for g in traced), "the tape was not symbolic"
    return [
        None if g is None else _check_eager_grad(g, a) for g, a in zip(grads, inputs, strict=True)
    ]


def check_gradients(mode: str, case: Case) -> None:
    """The gradient of ``case`` in ``mode`` matches central finite differences."""
    w = output_weights(case)
    expected = numeric_gradients(case, w)
    actual = symbolic_gradients(mode, case.fn, case.inputs, w)
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert got is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(
            got, want, rtol=case.rtol, atol=case.atol, err_msg=f"gradient of input {i}"
        )


# -- inputs (deterministic; kept away from kinks: zero for relu, ties for max/min) -------

_RNG = np.random.default_rng(20240601)


def rand(*shape: int, low: float = -1.0, high: float = 1.0) -> Array:
    return np.asarray(_RNG.uniform(low, high, shape))


def pos(*shape: int) -> Array:
    return rand(*shape, low=0.5, high=2.0)


def off_zero(*shape: int) -> Array:
    """Values at least 0.2 away from zero (either sign)."""
    return rand(*shape, low=0.2, high=1.0) * _RNG.choice([-1.0, 1.0], shape)


def distinct(*shape: int) -> Array:
    """Values 0.1 or more apart, in random order (no ties for max)."""
    n = int(np.prod(shape))
    return ((_RNG.permutation(n) - n / 2) * 0.1).reshape(shape)


def case(name: str, fn: Callable[..., Any], *inputs: Array, **tune: float) -> Any:
    return pytest.param(Case(fn, tuple(inputs), **tune), id=name)


_COND = np.array([[True, False, True], [False, False, True]])
_COND_COL = np.array([[True], [False]])
_X23 = rand(2, 3)
_X3 = rand(3)
# Each side wins somewhere, by 0.2 or more.
_MIXED_X = np.array([[0.0, 1.0, -1.0], [0.5, -0.5, 2.0]])
_MIXED_Y = np.array([0.3, 0.2, 0.9])

CASES = [
    # element-wise arithmetic, with broadcasting
    case("add", sf.add, rand(2, 3), rand(2, 3)),
    case("add-(2,3)+(3,)", sf.add, rand(2, 3), rand(3)),
    case("add-(2,1)+(1,3)", sf.add, rand(2, 1), rand(1, 3)),
    case("add-scalar+matrix", lambda a, b: a + b, rand(), rand(2, 3)),
    case("subtract-(2,3)-(3,)", sf.subtract, rand(2, 3), rand(3)),
    case("subtract-scalar-matrix", lambda a, b: a - b, rand(), rand(2, 3)),
    case("multiply", sf.multiply, rand(2, 3), rand(2, 3)),
    case("multiply-(2,1)*(1,3)", sf.multiply, rand(2, 1), rand(1, 3)),
    case("multiply-scalar*matrix", lambda a, b: a * b, rand(), rand(2, 3)),
    case("multiply-(4,1,3)*(2,1)", sf.multiply, rand(4, 1, 3), rand(2, 1)),
    case("divide-(2,3)/(3,)", sf.divide, rand(2, 3), pos(3)),
    case("divide-(3,)/scalar", lambda a, b: a / b, rand(3), pos()),
    case("negative", sf.negative, rand(2, 3)),
    case("negative-operator", lambda a: -a, rand(4)),
    case("square", sf.square, rand(2, 3)),
    case("sqrt", sf.sqrt, pos(2, 3)),
    case("exp", sf.exp, rand(2, 3)),
    case("log", sf.log, pos(2, 3)),
    case("tanh", sf.tanh, rand(2, 3)),
    case("sigmoid", sf.sigmoid, rand(2, 3, low=-4.0, high=4.0)),
    case("relu", sf.relu, off_zero(2, 3)),
    case("maximum-(2,3),(3,)", sf.maximum, _X23, _X3 + np.where(_X3 > 0, 2.0, -2.0)),
    case("maximum-mixed", sf.maximum, _MIXED_X, _MIXED_Y),
    case("minimum-(2,1),(1,3)", sf.minimum, distinct(2, 1), distinct(1, 3) + 0.03),
    case("minimum-mixed", sf.minimum, _MIXED_X, _MIXED_Y),
    case("pow", sf.pow, pos(2, 3), rand(2, 3)),
    case("pow-(2,3)**(3,)", sf.pow, pos(2, 3), rand(3, low=-2.0, high=2.0)),
    case("pow-operator-constant-exponent", lambda a: a**3.0, rand(2, 3)),
    case("identity", sf.identity, rand(2, 3)),
    case("cast-float64-to-float64", lambda a: sf.tanh(sf.cast(a, sf.float64)), rand(2, 3)),
    # float32 in the middle: looser tolerances for its rounding
    case(
        "cast-float64-to-float32",
        lambda a: sf.square(sf.cast(a, sf.float32)),
        rand(2, 3),
        eps=1e-2,
        rtol=1e-4,
        atol=1e-5,
    ),
    case(
        "cast-float64-float32-float64",
        lambda a: sf.cast(sf.cast(a, sf.float32), sf.float64) * a,
        rand(3),
        eps=1e-2,
        rtol=1e-4,
        atol=1e-5,
    ),
    # matmul: transposes and broadcast batch dimensions
    case("matmul", sf.matmul, rand(2, 3), rand(3, 4)),
    case("matmul-operator", lambda a, b: a @ b, rand(3, 3), rand(3, 2)),
    case(
        "matmul-transpose_a", lambda a, b: sf.matmul(a, b, transpose_a=True), rand(3, 2), rand(3, 4)
    ),
    case(
        "matmul-transpose_b", lambda a, b: sf.matmul(a, b, transpose_b=True), rand(2, 3), rand(4, 3)
    ),
    case(
        "matmul-transpose_a_and_b",
        lambda a, b: sf.matmul(a, b, transpose_a=True, transpose_b=True),
        rand(3, 2),
        rand(4, 3),
    ),
    case("matmul-batch", sf.matmul, rand(2, 2, 3), rand(2, 3, 2)),
    case("matmul-batch-times-matrix", sf.matmul, rand(2, 2, 3), rand(3, 2)),
    case("matmul-matrix-times-batch", sf.matmul, rand(2, 3), rand(3, 3, 2)),
    case("matmul-broadcast-batch", sf.matmul, rand(2, 1, 2, 3), rand(3, 3, 2)),
    case(
        "matmul-broadcast-batch-transposed",
        lambda a, b: sf.matmul(a, b, transpose_a=True, transpose_b=True),
        rand(1, 3, 3, 2),
        rand(2, 1, 4, 3),
    ),
    # reductions
    case("reduce_sum-all", sf.reduce_sum, rand(2, 3)),
    case("reduce_sum-axis0", lambda a: sf.reduce_sum(a, axis=0), rand(2, 3)),
    case("reduce_sum-axis-1-keepdims", lambda a: sf.reduce_sum(a, -1, keepdims=True), rand(2, 3)),
    case("reduce_sum-axes0,2", lambda a: sf.reduce_sum(a, axis=[0, 2]), rand(2, 3, 2)),
    case("reduce_sum-all-keepdims", lambda a: sf.reduce_sum(a, keepdims=True), rand(2, 3)),
    case("reduce_mean-all", sf.reduce_mean, rand(2, 3)),
    case("reduce_mean-axis1", lambda a: sf.reduce_mean(a, axis=1), rand(2, 3)),
    case(
        "reduce_mean-axes0,-1-keepdims",
        lambda a: sf.reduce_mean(a, axis=[0, -1], keepdims=True),
        rand(2, 3, 2),
    ),
    case("reduce_max-all", sf.reduce_max, distinct(2, 3)),
    case("reduce_max-axis0", lambda a: sf.reduce_max(a, axis=0), distinct(2, 3)),
    case(
        "reduce_max-axis-1-keepdims", lambda a: sf.reduce_max(a, -1, keepdims=True), distinct(3, 4)
    ),
    case("reduce_max-axes1,2", lambda a: sf.reduce_max(a, axis=[1, 2]), distinct(2, 2, 3)),
    # shapes
    case("reshape", lambda a: sf.reshape(a, [3, 2]), rand(2, 3)),
    case("reshape-flatten", lambda a: sf.reshape(a, [-1]), rand(2, 3)),
    case("reshape-infer", lambda a: sf.reshape(a, [2, -1, 1]), rand(3, 2, 2)),
    case("reshape-scalar", lambda a: sf.reshape(a, [1, 1]), rand()),
    case("transpose-default", sf.transpose, rand(2, 3, 4)),
    case("transpose-perm", lambda a: sf.transpose(a, [1, 0, 2]), rand(2, 3, 2)),
    case("transpose-perm-cycle", lambda a: sf.transpose(a, [2, 0, 1]), rand(2, 3, 4)),
    case("concat-axis0", lambda a, b: sf.concat([a, b], axis=0), rand(2, 3), rand(1, 3)),
    case(
        "concat-axis-1-three",
        lambda a, b, c: sf.concat([a, b, c], axis=-1),
        rand(2, 1),
        rand(2, 3),
        rand(2, 2),
    ),
    case("concat-one", lambda a: sf.concat([a], axis=1), rand(2, 3)),
    case("concat-same-tensor-twice", lambda a: sf.concat([a, a * a], axis=0), rand(2, 2)),
    case("stack-axis0", lambda a, b: sf.stack([a, b]), rand(2, 3), rand(2, 3)),
    case(
        "stack-axis1",
        lambda a, b, c: sf.stack([a, b, c], axis=1),
        rand(2, 3),
        rand(2, 3),
        rand(2, 3),
    ),
    case("stack-axis-1", lambda a, b: sf.stack([a, b], axis=-1), rand(2, 3), rand(2, 3)),
    case("stack-axis-3", lambda a, b: sf.stack([a, b], axis=-3), rand(2, 3), rand(2, 3)),
    case("stack-scalars", lambda a, b: sf.stack([a, b]), rand(), rand()),
    case("fill-with-a-tensor", lambda a: sf.fill([2, 3], a), rand()),
    # where (condition gets no gradient)
    case("where", lambda a, b: sf.where(_COND, a, b), rand(2, 3), rand(2, 3)),
    case(
        "where-broadcast",
        lambda a, b: sf.where(_COND_COL, a, b),
        rand(3),
        rand(),
    ),
    case("where-cond-broadcast-to-x", lambda a, b: sf.where(_COND[0], a, b), rand(2, 3), rand(3)),
    # indexing
    case("getitem-int", lambda a: a[1], rand(2, 3)),
    case("getitem-negative-int", lambda a: a[-1, 0], rand(2, 3)),
    case("getitem-step", lambda a: a[:, ::2], rand(2, 5)),
    case("getitem-negative-step", lambda a: a[::-1, 1:], rand(3, 3)),
    case("getitem-negative-step-bounds", lambda a: a[3:0:-2], rand(5, 2)),
    case("getitem-ellipsis-newaxis", lambda a: a[..., None], rand(2, 3)),
    case("getitem-newaxis-int-step", lambda a: a[None, 0, ::-2], rand(2, 5)),
    case("getitem-slice-ellipsis-int", lambda a: a[1:3, ..., -1], rand(4, 2, 3)),
    case("getitem-mixed", lambda a: a[-1, None, :, 2], rand(2, 3, 4)),
    case("getitem-all", lambda a: a[...], rand(2, 3)),
    case("getitem-empty-slice", lambda a: sf.concat([a[2:1], a[0:1]], axis=0), rand(3, 2)),
]

# The ops of SPEC section 2 that have a gradient; each needs at least one case above.
DIFFERENTIABLE_OPS = frozenset(
    {
        "add", "subtract", "multiply", "divide", "negative", "square", "sqrt", "exp", "log",
        "tanh", "sigmoid", "relu", "matmul", "reduce_sum", "reduce_mean", "reduce_max",
        "reshape", "transpose", "cast", "concat", "stack", "where", "maximum", "minimum",
        "pow", "identity", "getitem", "fill",
    }
)  # fmt: skip


def test_every_differentiable_op_has_a_case() -> None:
    covered = {p.id.split("-")[0] for p in CASES}
    assert covered >= DIFFERENTIABLE_OPS, DIFFERENTIABLE_OPS - covered


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_finite_differences(mode: str, case: Case) -> None:
    check_gradients(mode, case)


# -- ops without gradients -------------------------------------------------------------

_A, _B = rand(2, 3), rand(2, 3)

NO_GRADIENT = [
    case("equal", sf.equal, _A, _A),
    case("less", sf.less, _A, _B),
    case("greater", lambda a, b: a > b, _A, _B),
    case("logical_not", lambda a, b: sf.logical_not(sf.less(a, b)), _A, _B),
    case("compare-then-cast-to-float", lambda a, b: sf.cast(sf.less(a, b), sf.float64), _A, _B),
    case("cast-to-int", lambda a: sf.cast(a * 10.0, sf.int32), _A),
    case("cast-to-int-and-back", lambda a: sf.cast(sf.cast(a * 10.0, sf.int64), sf.float64), _A),
    case("where-indices", lambda a: sf.where(a > 0.0), _A),
    case("zeros", lambda a: sf.zeros([2, 3], sf.float64), _A),
    case("ones", lambda a: sf.ones([2], sf.float64), _A),
    case("fill-with-a-python-value", lambda a: sf.fill([3], 2.0), _A),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", NO_GRADIENT)
def test_non_differentiable_ops_give_none(mode: str, case: Case) -> None:
    assert symbolic_gradients(mode, case.fn, case.inputs) == [None] * len(case.inputs)


def test_comparison_in_the_path_contributes_nothing() -> None:
    # d/dx (x * [x > 0]) is the mask: the comparison adds no term and raises no error.
    x = np.array([-1.0, 0.5, 2.0])
    for mode in MODES:
        (g,) = symbolic_gradients(mode, lambda a: a * sf.cast(a > 0.0, sf.float64), [x])
        np.testing.assert_array_equal(g, [0.0, 1.0, 1.0])


# -- where finite differences do not apply ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_reduce_max_splits_the_gradient_evenly_among_ties(mode: str) -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    (rows,) = symbolic_gradients(mode, lambda a: sf.reduce_max(a, axis=1), [x])
    np.testing.assert_allclose(rows, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (total,) = symbolic_gradients(mode, sf.reduce_max, [x], np.array(6.0))
    np.testing.assert_allclose(total, [[0.0, 3.0, 3.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("mode", MODES)
def test_maximum_and_minimum_send_ties_to_the_first_input(mode: str) -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 0.0, 5.0])
    assert [g.tolist() for g in symbolic_gradients(mode, sf.maximum, [x, y])] == [
        [1.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
    ]
    assert [g.tolist() for g in symbolic_gradients(mode, sf.minimum, [x, y])] == [
        [1.0, 0.0, 1.0],
        [0.0, 1.0, 0.0],
    ]


@pytest.mark.parametrize("mode", MODES)
def test_gradients_of_int_inputs_are_none_and_float_ones_still_flow(mode: str) -> None:
    x = np.array([1.0, 2.0])
    n = np.array([3, 4], dtype=np.int64)
    gx, gn = symbolic_gradients(mode, lambda a, b: a * sf.cast(b, sf.float64), [x, n])
    assert gn is None
    np.testing.assert_array_equal(gx, [3.0, 4.0])
