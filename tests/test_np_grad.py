"""The array walk: eager gradients that no tape records run ``OpDef.np_grad`` on NumPy
arrays (``_ops/_np_grad.py``); they must equal the op-level gradients bit for bit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._backprop import backprop, backprop_arrays, tensor_of
from scopeflow._ops._registry import REGISTRY


def _grads(fn: Callable[..., Any], xs: list[Any], seed: Any = None, op_level: bool = False) -> Any:
    """d(fn(*xs))/d(xs), by the array walk, or (``op_level``) by the op-level one: an
    outer tape that records (and follows nothing) makes the walk use the op-level path."""
    with sf.GradientTape() as tape:
        tape.watch(xs)
        y = fn(*xs)
    if not op_level:
        return tape.gradient(y, xs, output_gradients=seed)
    with sf.GradientTape(watch_accessed_variables=False) as outer:
        grads = tape.gradient(y, xs, output_gradients=seed)
    assert outer.watched_variables() == ()
    return grads


def _same(a: Any, b: Any) -> None:
    assert (a is None) == (b is None)
    if a is None:
        return
    assert type(a) is type(b) is sf.EagerTensor
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.numpy(), b.numpy(), strict=True)


_FLOATS = [np.float16, np.float32, np.float64]

_CASES: list[tuple[str, Callable[..., Any], list[tuple[int, ...]]]] = [
    ("Identity", lambda a: sf.identity(a) * a, [(3,)]),
    ("Add", lambda a, b: a + b, [(2, 3), (3,)]),
    ("Add", lambda a, b: a + b, [(), (4,)]),
    ("Sub", lambda a, b: a - b, [(2, 3), (1, 3)]),
    ("Mul", lambda a, b: a * b, [(), ()]),
    ("Mul", lambda a, b: a * b, [(2, 3), (3,)]),
    ("Mul", lambda a, b: a * b, [(), (2, 2)]),
    ("Mul", lambda a: a * 2.5, [(3,)]),
    ("Mul", lambda a: 2.5 * a * a, [()]),
    ("RealDiv", lambda a, b: a / b, [(2, 3), (3,)]),
    ("Neg", lambda a: -a * a, [(3,)]),
    ("Square", lambda a: sf.square(a), [(2, 2)]),
    ("Square", lambda a: sf.square(a), [()]),
    ("Exp", lambda a: sf.exp(a), [(3,)]),
    ("Log", lambda a: sf.log(a), [(3,)]),
    ("Tanh", lambda a: sf.tanh(a), [(3,)]),
    ("Sigmoid", lambda a: sf.sigmoid(a), [(3,)]),
    ("Relu", lambda a: sf.nn.relu(a), [(2, 3)]),
    ("MatMul", lambda a, b: sf.matmul(a, b), [(2, 3), (3, 4)]),
    ("MatMul", lambda a, b: sf.matmul(a, b, transpose_a=True), [(3, 2), (3, 4)]),
    ("MatMul", lambda a, b: sf.matmul(a, b, transpose_b=True), [(2, 3), (4, 3)]),
    ("MatMul", lambda a, b: sf.matmul(a, b, True, True), [(3, 2), (4, 3)]),
    ("MatMul", lambda a, b: sf.matmul(a, b), [(2, 2, 3), (3, 4)]),
    ("Sum", lambda a: sf.reduce_sum(a, axis=1), [(2, 3)]),
    ("Sum", lambda a: sf.reduce_sum(a, axis=[0, -1], keepdims=True), [(2, 3, 2)]),
    ("Mean", lambda a: sf.reduce_mean(a), [(2, 3)]),
    ("Mean", lambda a: sf.reduce_mean(a, axis=0, keepdims=True), [(4, 3)]),
    ("Max", lambda a: sf.reduce_max(a, axis=1), [(2, 3)]),
    ("Max", lambda a: sf.reduce_max(a), [(3, 4)]),
    ("Max", lambda a: sf.reduce_max(a, axis=[0, -1], keepdims=True), [(2, 3, 2)]),
    ("Max", lambda a: sf.reduce_max(a, axis=-1), [(3,)]),
    ("Max", lambda a: sf.reduce_max(a) * a, [()]),
    ("Min", lambda a: sf.reduce_min(a), [(2, 3)]),
    ("Min", lambda a: sf.reduce_min(a, axis=[0, 2]), [(2, 3, 2)]),
    ("Reshape", lambda a: sf.reshape(a, [-1]) * 3.0, [(2, 3)]),
]


def _values(shapes: list[tuple[int, ...]], dtype: Any, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        v = rng.uniform(0.5, 2.0, size=shape)
        if v.size > 2:
            v.flat[1] = v.flat[0]  # a tie for max/min
        out.append(sf.constant(np.asarray(v, dtype)))
    return out


@pytest.mark.parametrize("dtype", _FLOATS)
@pytest.mark.parametrize(("op_type", "fn", "shapes"), _CASES)
def test_array_walk_equals_op_level_walk(
    op_type: str, fn: Callable[..., Any], shapes: list[tuple[int, ...]], dtype: Any
) -> None:
    assert REGISTRY[op_type].np_grad is not None
    xs = _values(shapes, dtype, 1)
    fast = _grads(fn, xs)
    slow = _grads(fn, xs, op_level=True)
    for a, b in zip(fast, slow, strict=True):
        _same(a, b)


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: a * b + a,
        lambda a, b: a * b * a * b,
        lambda a, b: sf.square(a - b) * b,
        lambda a, b: a / b,
        lambda a, b: sf.exp(a * b) * a,
    ],
)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_gradients_match(fn: Callable[..., Any], dtype: Any) -> None:
    # NumPy's complex scalar multiply rounds unlike np.multiply in ~40% of cases: 0-d
    # values over many seeds catch a walk that multiplies complex scalars directly.
    xs = [sf.constant(np.array([1 + 2j, -0.5j], dtype)), sf.constant(dtype(3 - 1j))]
    for a, b in zip(_grads(fn, xs), _grads(fn, xs, op_level=True), strict=True):
        _same(a, b)
    rng = np.random.default_rng(3)
    for _ in range(40):
        re, im = rng.standard_normal((2, 2))
        xs = [sf.constant(dtype(complex(re[i], im[i]))) for i in range(2)]
        for a, b in zip(_grads(fn, xs), _grads(fn, xs, op_level=True), strict=True):
            _same(a, b)


@pytest.mark.parametrize("dtype", _FLOATS)
def test_nan_inf_and_overflow_match_without_warnings(dtype: Any) -> None:
    # pytest turns warnings into errors here: neither walk may warn on overflow or nan.
    big = float(np.finfo(dtype).max) / 2
    x = sf.constant(np.array([np.nan, np.inf, -np.inf, big, 0.0], dtype))

    def fn(a: Any) -> Any:
        return sf.reduce_sum(a * a * a + sf.nn.relu(a) / a)

    _same(_grads(fn, [x])[0], _grads(fn, [x], op_level=True)[0])


def test_np_grad_is_used_only_when_no_tape_records(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    mul = REGISTRY["Mul"]
    original = mul.np_grad
    assert original is not None

    def spy(rec: Any, dy: Any, want: Any) -> Any:
        calls.append("np")
        return original(rec, dy, want)

    monkeypatch.setattr(mul, "np_grad", spy)
    x = sf.constant(3.0)
    assert float(_grads(lambda a: a * a, [x])[0]) == 6.0
    assert calls == ["np"]
    assert float(_grads(lambda a: a * a, [x], op_level=True)[0]) == 6.0
    assert calls == ["np"]
    # A persistent tape computing a gradient inside its block records it: op level.
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * x
        dy = tape.gradient(y, x)
    assert calls == ["np"]
    assert float(tape.gradient(dy, x)) == 18.0


def test_integer_division_inputs_get_no_gradient() -> None:
    a, b = sf.constant([3, 4]), sf.constant([2, 2])
    with sf.GradientTape() as tape:
        tape.watch([a, b])
        y = a / b
    assert y.dtype == np.float64
    assert tape.gradient(y, [a, b]) == [None, None]


def test_seed_of_another_dtype_raises_as_before() -> None:
    x = sf.constant([1.0, 2.0])
    seed = sf.constant(np.ones(2, np.float64))
    errors = []
    for op_level in (False, True):
        with pytest.raises(TypeError) as info:
            _grads(lambda a: a * a, [x], seed=seed, op_level=op_level)
        errors.append(type(info.value))
    assert errors[0] is errors[1]


def test_seed_and_op_level_gradients_inside_the_array_walk() -> None:
    # A custom gradient (no np_grad) in the middle of np_grad ops, with a given seed.
    @sf.custom_gradient
    def twice(v: Any) -> Any:
        def grad(dy: Any) -> Any:
            return dy * 2.0

        return v * 2.0, grad

    x = sf.constant(np.array([1.0, -2.0], np.float32))
    seed = sf.constant(np.array([0.5, 3.0], np.float32))

    def fn(a: Any) -> Any:
        return sf.square(twice(a * a))

    _same(_grads(fn, [x], seed=seed)[0], _grads(fn, [x], seed=seed, op_level=True)[0])
    _same(_grads(fn, [x], seed=[0.5, 3.0])[0], _grads(fn, [x], seed=seed)[0])


def test_variables_and_target_equal_to_source() -> None:
    v = sf.Variable(np.array([1.0, 2.0], np.float32))
    x = sf.constant(2.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = sf.reduce_sum(v * v) * x
    fast = tape.gradient(y, [v, x])
    with sf.GradientTape(watch_accessed_variables=False):
        slow = tape.gradient(y, [v, x])
    for a, b in zip(fast, slow, strict=True):
        _same(a, b)
    _same(tape.gradient(x, x), sf.constant(1.0))
    _same(tape.gradient([x, x], x), sf.constant(2.0))


def test_backprop_results_read_as_tensors() -> None:
    x = sf.constant(np.float32(2.0))
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    records = list(tape._records)
    grads, _ = backprop_arrays(records, [y], [None])
    assert isinstance(grads[id(x)], (np.ndarray, np.generic))
    t = tensor_of(grads[id(x)])
    assert type(t) is sf.EagerTensor
    assert t.dtype == np.float32
    assert float(t) == 4.0
    assert tensor_of(None) is None
    same, _ = backprop(records, [y], [None])
    assert float(tensor_of(same[id(x)])) == 4.0


@pytest.mark.parametrize(
    "fn",
    [
        lambda w, c: sf.matmul(c, w),
        lambda w, c: sf.matmul(w, c, transpose_a=True, transpose_b=True),
        lambda w, c: w * c,
        lambda w, c: c / w,
        lambda w, c: w - c,
        lambda w, c: sf.reshape(c, [3, 3]) + w,
    ],
)
def test_unwatched_inputs_get_none_on_both_walks(fn: Callable[..., Any]) -> None:
    # Only w is watched; c, an input of the recorded ops that the tape does not follow,
    # gets None on both walks (as in TensorFlow), and the walk may skip it.
    rng = np.random.default_rng(2)
    w = sf.Variable(rng.standard_normal((3, 3)).astype(np.float32))
    c = sf.constant(rng.standard_normal((3, 3)).astype(np.float32))
    with sf.GradientTape(persistent=True) as tape:
        y = sf.reduce_sum(sf.square(fn(w, c)))
    fast = [tape.gradient(y, w), *tape.gradient(y, [w, c]), tape.gradient(y, c)]
    with sf.GradientTape(watch_accessed_variables=False):
        slow = [tape.gradient(y, w), *tape.gradient(y, [w, c]), tape.gradient(y, c)]
    for a, b in zip(fast, slow, strict=True):
        _same(a, b)


@pytest.mark.parametrize(
    "seed",
    [
        2.0,  # a plain value: a 0-d seed for a vector target
        [[1.0, 2.0, 3.0]],  # an extra dimension
        np.float32(3.0),
        "tensor (1,)",
        "tensor ()",
    ],
)
@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: a * b,
        lambda a, b: sf.square(a) + b,
        lambda a, b: sf.reduce_sum(a * b, axis=0, keepdims=True) * a,
        lambda a, b: sf.matmul(sf.reshape(a, [1, 3]), sf.reshape(b, [3, 1])) * a,
    ],
)
def test_seeds_that_do_not_fit_the_target(seed: Any, fn: Callable[..., Any]) -> None:
    # Such seeds broadcast in the op-level gradients (or raise): the array walk keeps
    # them apart from its np_grad functions until a gradient fits its tensor again.
    if seed == "tensor (1,)":
        seed = sf.constant(np.array([0.5], np.float32))
    elif seed == "tensor ()":
        seed = sf.constant(np.float32(-1.5))
    xs = [sf.constant(np.array([1.0, -2.0, 3.0], np.float32)), sf.constant(np.float32(0.5))]
    outcomes = []
    for op_level in (False, True):
        try:
            outcomes.append(_grads(fn, xs, seed=seed, op_level=op_level))
        except (TypeError, ValueError) as err:
            outcomes.append(type(err))
    fast, slow = outcomes
    if isinstance(slow, type):
        assert fast is slow
        return
    for a, b in zip(fast, slow, strict=True):
        _same(a, b)
