"""Op tests: the execution-mode harness and the error paths every op shares.

``Runner`` runs an op-building function eagerly, in a graph executed by a Session (with
placeholders of fully known shape, of unknown sizes, or of unknown rank), or traced by
``sf.function``, and checks what the op promised: the dtype of the value, and its static
shape in graphs. The
per-op suites (``test_ops_math``, ``test_ops_array``, ``test_ops_reduce``) compare the
values against NumPy with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

MODES = ("eager", "graph", "function", "graph-unknown-sizes", "graph-unknown-rank")
# Modes where every input shape is fully known while the op is built.
KNOWN_SHAPE_MODES = ("eager", "graph", "function")
_RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


class Runner:
    """Build ``fn(*inputs)`` in one mode and return its value as a NumPy array.

    NumPy array inputs become eager constants or fed placeholders; other values (Python
    numbers, lists) are passed to ``fn`` unchanged.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.static_shape: tuple[int | None, ...] | None = None

    @property
    def shapes_known(self) -> bool:
        return self.mode in KNOWN_SHAPE_MODES

    def _placeholder_shape(self, shape: tuple[int, ...]) -> tuple[int | None, ...] | None:
        if self.mode == "graph-unknown-rank":
            return None
        if self.mode == "graph-unknown-sizes":
            return (None,) * len(shape)
        return shape

    def __call__(
        self, fn: Callable[..., Any], *inputs: Any, exact_shape: bool = True
    ) -> np.ndarray[Any, Any]:
        if self.mode == "eager":
            assert sf.executing_eagerly()
            out = fn(*[sf.constant(a) if isinstance(a, np.ndarray) else a for a in inputs])
            assert type(out) is sf.EagerTensor, f"an eager op returned {out!r}"
            value = np.array(out.numpy())
            assert out.dtype == value.dtype
            assert out.shape == value.shape
            self.static_shape = out.shape
            return value
        if self.mode == "function":
            return self._call_function(fn, inputs, exact_shape)
        g = sf.Graph()
        feed = {}
        args = []
        with g.as_default():
            assert not sf.executing_eagerly()
            for i, a in enumerate(inputs):
                if isinstance(a, np.ndarray):
                    p = sf.placeholder(
                        a.dtype, shape=self._placeholder_shape(a.shape), name=f"in{i}"
                    )
                    feed[p] = a
                    args.append(p)
                else:
                    args.append(a)
            out = fn(*args)
        assert type(out) is sf.Tensor, f"a graph op returned {out!r}"
        assert out.graph is g
        value = np.asarray(sf.Session(g).run(out, feed_dict=feed))
        assert value.dtype == out.dtype, f"ran to {value.dtype}, but the op promised {out.dtype}"
        static = self.static_shape = out.shape
        if self.mode == "graph" and exact_shape:
            assert static == value.shape, f"static shape {static}, value shape {value.shape}"
        else:
            assert compatible(static, value.shape), f"static {static} vs value {value.shape}"
        return value

    def _call_function(
        self, fn: Callable[..., Any], inputs: tuple[Any, ...], exact_shape: bool
    ) -> np.ndarray[Any, Any]:
        # Arrays become arguments of the traced function; other values stay Python values.
        positions = [i for i, a in enumerate(inputs) if isinstance(a, np.ndarray)]

        def traced(*tensors: Any) -> Any:
            assert sf.inside_function()
            assert not sf.executing_eagerly()
            args = list(inputs)
            for i, t in zip(positions, tensors, strict=True):
                args[i] = t
            return fn(*args)

        f = sf.function(traced)
        consts = [sf.constant(inputs[i]) for i in positions]
        out = f(*consts)
        assert type(out) is sf.EagerTensor, f"a function call returned {out!r}"
        value = np.array(out.numpy())
        assert out.dtype == value.dtype
        assert out.shape == value.shape
        (traced_out,) = f.get_concrete_function(*consts).outputs
        assert traced_out.dtype == value.dtype
        static = self.static_shape = traced_out.shape
        if exact_shape:
            assert static == value.shape, f"static shape {static}, value shape {value.shape}"
        else:
            assert compatible(static, value.shape), f"static {static} vs value {value.shape}"
        return value


def compatible(static: tuple[int | None, ...] | None, shape: tuple[int, ...]) -> bool:
    """Whether a value of ``shape`` fits the static shape ``static``."""
    if static is None:
        return True
    return len(static) == len(shape) and all(
        s is None or s == d for s, d in zip(static, shape, strict=True)
    )


def assert_same(actual: np.ndarray[Any, Any], expected: Any) -> None:
    """Same dtype, same shape and the same values (close, for floating point)."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype}, expected {expected.dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    if actual.dtype.kind in "fc":
        rtol = _RTOL.get(actual.dtype, 1e-5)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def data(
    shape: tuple[int, ...], dtype: Any, low: float = -3, high: float = 3, seed: int = 0
) -> Any:
    """Deterministic test values in ``[low, high]``; floats are multiples of 1/2 (ties)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        return rng.integers(int(low), int(high), size=shape, endpoint=True).astype(dt)
    values = rng.integers(int(2 * low), int(2 * high), size=shape, endpoint=True) / 2
    if dt.kind == "c":
        return (values + 0.5j * values[::-1] if values.ndim else values + 0j).astype(dt)
    return values.astype(dt)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def test_runner_eager_and_graph_modes_really_differ(run: Runner) -> None:
    seen = []

    def fn(x: Any) -> Any:
        seen.append((sf.executing_eagerly(), type(x)))
        return x + 1.0

    assert_same(run(fn, np.array([1.0, 2.0], np.float32)), np.array([2.0, 3.0], np.float32))
    expected_type = sf.EagerTensor if run.mode == "eager" else sf.Tensor
    assert seen == [(run.mode == "eager", expected_type)]


# -- every op, in the wrong context ----------------------------------------------------

_F = np.arange(4, dtype=np.float32).reshape(2, 2)
_B = np.array([[True, False], [False, True]])

# (id, a function building one op from the tensor made from the value, the value)
EVERY_OP: list[tuple[str, Callable[[Any], Any], Any]] = [
    ("add", lambda x: sf.add(x, x), _F),
    ("subtract", lambda x: sf.subtract(x, x), _F),
    ("multiply", lambda x: sf.multiply(x, x), _F),
    ("divide", lambda x: sf.divide(x, x), _F),
    ("pow", lambda x: sf.pow(x, x), _F),
    ("maximum", lambda x: sf.maximum(x, x), _F),
    ("minimum", lambda x: sf.minimum(x, x), _F),
    ("equal", lambda x: sf.equal(x, x), _F),
    ("less", lambda x: sf.less(x, x), _F),
    ("greater", lambda x: sf.greater(x, x), _F),
    ("negative", sf.negative, _F),
    ("square", sf.square, _F),
    ("sqrt", sf.sqrt, _F),
    ("exp", sf.exp, _F),
    ("log", sf.log, _F),
    ("tanh", sf.tanh, _F),
    ("sigmoid", sf.sigmoid, _F),
    ("relu", sf.relu, _F),
    ("cast", lambda x: sf.cast(x, sf.int32), _F),
    ("logical_not", sf.logical_not, _B),
    ("identity", sf.identity, _F),
    ("matmul", lambda x: sf.matmul(x, x), _F),
    ("reduce_sum", sf.reduce_sum, _F),
    ("reduce_mean", sf.reduce_mean, _F),
    ("reduce_max", sf.reduce_max, _F),
    ("reshape", lambda x: sf.reshape(x, [4]), _F),
    ("transpose", sf.transpose, _F),
    ("concat", lambda x: sf.concat([x, x], 0), _F),
    ("stack", lambda x: sf.stack([x, x]), _F),
    ("fill", lambda x: sf.fill([3], x), np.array(2.5, np.float32)),
    ("where-select", lambda c: sf.where(c, 1.0, 2.0), _B),
    ("where-indices", sf.where, _B),
    ("getitem", lambda x: x[0], _F),
    ("operator-add", lambda x: x + 1.0, _F),
    ("operator-matmul", lambda x: x @ x, _F),
    ("operator-neg", lambda x: -x, _F),
    ("operator-less", lambda x: x < 1.0, _F),
]
_EVERY_OP_IDS = [case[0] for case in EVERY_OP]


@pytest.mark.parametrize(("label", "build", "value"), EVERY_OP, ids=_EVERY_OP_IDS)
def test_graph_tensor_in_eager_op_is_type_error(label: str, build: Any, value: Any) -> None:
    with sf.Graph().as_default():
        t = sf.constant(value, name="leaked")
    assert sf.executing_eagerly()
    with pytest.raises(TypeError, match=r"'leaked:0'.*cannot be used outside its graph"):
        build(t)


@pytest.mark.parametrize(("label", "build", "value"), EVERY_OP, ids=_EVERY_OP_IDS)
def test_eager_tensor_in_plain_graph_is_runtime_error(label: str, build: Any, value: Any) -> None:
    eager = sf.constant(value)
    g = sf.Graph()
    with g.as_default(), pytest.raises(RuntimeError, match="eager tensor was used to build an op"):
        build(eager)
    assert not any(op.type not in ("Const", "Fill") for op in g.get_operations())


@pytest.mark.parametrize(("label", "build", "value"), EVERY_OP, ids=_EVERY_OP_IDS)
def test_tensor_of_another_graph_is_value_error(label: str, build: Any, value: Any) -> None:
    with sf.Graph().as_default():
        foreign = sf.constant(value, name="foreign")
    with sf.Graph().as_default(), pytest.raises(ValueError, match=r"'foreign:0' belongs to"):
        build(foreign)


@pytest.mark.parametrize(("label", "build", "value"), EVERY_OP, ids=_EVERY_OP_IDS)
def test_every_op_builds_in_graph_and_runs_like_eager(label: str, build: Any, value: Any) -> None:
    eager = np.asarray(build(sf.constant(value)).numpy())
    g = sf.Graph()
    with g.as_default():
        out = build(sf.placeholder(value.dtype, value.shape, name="x"))
    assert isinstance(out, sf.Tensor)
    got = np.asarray(sf.Session(g).run(out, {"x:0": value}))
    assert_same(got, eager)


@pytest.mark.parametrize(("label", "build", "value"), EVERY_OP, ids=_EVERY_OP_IDS)
def test_every_op_captures_an_eager_tensor_in_a_traced_function(
    label: str, build: Any, value: Any
) -> None:
    eager = sf.constant(value)
    f = sf.function(lambda: build(eager))
    assert_same(np.asarray(f().numpy()), np.asarray(build(eager).numpy()))
    assert [t is eager for t in f.get_concrete_function().captured_inputs] == [True]


# -- dtype mismatch: the op and both inputs are named ----------------------------------

_MIXED = [
    ("Add", sf.add),
    ("Sub", sf.subtract),
    ("Mul", sf.multiply),
    ("RealDiv", sf.divide),
    ("Pow", sf.pow),
    ("Maximum", sf.maximum),
    ("Minimum", sf.minimum),
    ("Equal", sf.equal),
    ("Less", sf.less),
    ("Greater", sf.greater),
    ("MatMul", sf.matmul),
    ("Concat", lambda a, b, name: sf.concat([a, b], 0, name=name)),
    ("Stack", lambda a, b, name: sf.stack([a, b], name=name)),
    ("Select", lambda a, b, name: sf.where(True, a, b, name=name)),
]


@pytest.mark.parametrize(("op_type", "fn"), _MIXED, ids=[m[0] for m in _MIXED])
def test_dtype_mismatch_in_graph_names_op_and_both_inputs(op_type: str, fn: Any) -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.placeholder(sf.float32, (2, 2), name="a")
        b = sf.placeholder(sf.int32, (2, 2), name="b")
        pattern = (
            rf"^{op_type} 'bad': .*float32.*int32.*"
            r"\(inputs: .*'a:0' \(float32, shape \(2, 2\)\), 'b:0' \(int32, shape \(2, 2\)\)\)$"
        )
        with pytest.raises(TypeError, match=pattern):
            fn(a, b, name="bad")
    # The failed op was never added.
    assert op_type not in [op.type for op in g.get_operations()]


@pytest.mark.parametrize(("op_type", "fn"), _MIXED, ids=[m[0] for m in _MIXED])
def test_dtype_mismatch_in_eager_names_op_and_both_inputs(op_type: str, fn: Any) -> None:
    a = sf.constant(np.ones((2, 2), np.float32))
    b = sf.constant(np.ones((2, 2), np.int32))
    pattern = rf"^{op_type} 'bad': .*float32.*int32.*eager \(float32, .*eager \(int32, "
    with pytest.raises(TypeError, match=pattern):
        fn(a, b, name="bad")


def test_python_value_that_does_not_fit_the_tensor_dtype_is_type_error(run: Runner) -> None:
    with pytest.raises(TypeError, match=re.escape("1.5")):
        run(lambda x: x + 1.5, np.array([1, 2], np.int32))
    with pytest.raises(TypeError, match=re.escape("1.5")):
        run(lambda x: sf.where(x > 1, x, 1.5), np.array([1, 2], np.int32))


# -- run-time failures ------------------------------------------------------------------

_RUNTIME = [
    ("reshape", lambda x: sf.reshape(x, [4, 2]), np.ones((3, 3), np.float32)),
    ("getitem", lambda x: x[5], np.ones((3,), np.float32)),
    ("reduce_mean-empty-int", sf.reduce_mean, np.ones((0,), np.int32)),
    ("matmul-inner", lambda x: sf.matmul(x, x), np.ones((2, 3), np.float32)),
    ("add-broadcast", lambda x: x + x[:2], np.ones((3,), np.float32)),
    ("concat", lambda x: sf.concat([x, x[:, :1, None]], 0), np.ones((1, 2), np.float32)),
]


@pytest.mark.parametrize(("label", "build", "value"), _RUNTIME, ids=[r[0] for r in _RUNTIME])
def test_failures_that_depend_on_values_raise_invalid_argument_at_run_time(
    label: str, build: Any, value: Any
) -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(value.dtype, shape=None, name="x")
        out = build(x)
    with pytest.raises(sf.InvalidArgumentError, match=r"Operation '\S+' \(\w+\) failed"):
        sf.Session(g).run(out, {x: value})
