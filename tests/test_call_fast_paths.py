"""Fast paths of warm calls and run plans give what the general paths give.

Covers the warm ``sf.function`` call on positional eager tensors and on
``input_signature`` functions, run plans calling kernels with their attributes bound,
the plan's dtype normalisation of kernel results, plan compilation order, and
``TensorSpec.is_compatible_with``.
"""

from __future__ import annotations

import itertools
import random
import warnings
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._execution import compile_plan
from scopeflow._graph import Operation
from scopeflow._ops import apply, register_op
from scopeflow.errors import InvalidArgumentError

_ids = itertools.count()

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8,
          np.complex64]  # fmt: skip


def _body(x: Any, y: Any) -> Any:
    return x * y + x - y


# -- the warm call on positional eager tensors -------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_warm_call_matches_the_python_body(dtype: Any) -> None:
    f = sf.function(_body)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:  # integers wrap around as in NumPy
        a = np.array([info.max, info.min, 3], dtype=dtype)
        b = np.array([2, 1, 0], dtype=dtype)
    else:
        a = np.array([np.nan, -0.0, np.inf, 1.5], dtype=dtype)
        b = np.array([1.0, 2.0, -np.inf, 0.25], dtype=dtype)
    x, y = sf.constant(a), sf.constant(b)
    want = _body(x, y).numpy()
    for _ in range(3):  # the first call traces, the others take the warm path
        got = f(x, y)
        assert type(got) is sf.EagerTensor
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want)
    assert f.trace_count == 1


def test_warm_call_bool_tensors() -> None:
    f = sf.function(lambda a, b: sf.logical_and(a, sf.logical_not(b)))
    a = sf.constant([True, False, True])
    b = sf.constant([False, False, True])
    for _ in range(3):
        np.testing.assert_array_equal(f(a, b).numpy(), [True, False, False])
    assert f.trace_count == 1


def test_arrays_and_tensors_share_a_trace_and_shapes_key_apart() -> None:
    f = sf.function(lambda x: x * 2.0)
    arr = np.ones((2, 3), np.float32)
    t = sf.constant(arr)
    np.testing.assert_array_equal(f(arr).numpy(), arr * 2)
    np.testing.assert_array_equal(f(t).numpy(), arr * 2)  # warm path, the same trace
    assert f.trace_count == 1
    other = sf.constant(np.ones((4,), np.float32))
    np.testing.assert_array_equal(f(other).numpy(), np.full(4, 2, np.float32))
    np.testing.assert_array_equal(f(t).numpy(), arr * 2)  # back to the first trace
    assert f.trace_count == 2
    f64 = sf.constant(np.ones((2, 3), np.float64))
    assert f(f64).dtype == np.float64
    assert f.trace_count == 3


def test_python_scalars_defaults_and_keywords_take_the_general_path() -> None:
    f = sf.function(lambda x, scale=2.0: x * scale)
    x = sf.constant([1.0, 2.0])
    np.testing.assert_array_equal(f(x).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(f(x, 2.0).numpy(), [2.0, 4.0])  # the same canonical call
    np.testing.assert_array_equal(f(x, scale=2.0).numpy(), [2.0, 4.0])
    assert f.trace_count == 1
    np.testing.assert_array_equal(f(x, 3.0).numpy(), [3.0, 6.0])
    assert f.trace_count == 2


def test_warm_call_keys_on_the_device_scope() -> None:
    f = sf.function(lambda x: x + 1.0)
    x = sf.constant([1.0])
    f(x)
    with sf.device("/cpu:1"):
        f(x)
        f(x)
    f(x)
    assert f.trace_count == 2


def test_warm_call_under_a_tape_records_the_call() -> None:
    f = sf.function(lambda x: x * x)
    x = sf.constant([3.0, -1.0])
    f(x)  # traced outside the tape; the next call is warm
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [6.0, -2.0])
    with sf.GradientTape() as tape, tape.stop_recording():
        tape.watch(x)
        y = f(x)
    assert tape.gradient(y, x) is None
    assert f.trace_count == 1


def test_warm_call_structured_outputs_and_outputs_that_are_inputs() -> None:
    f = sf.function(lambda x, y: {"same": x, "pair": (y, x + y), "none": None})
    x, y = sf.constant([1, 2]), sf.constant([3, 4])
    for _ in range(2):
        out = f(x, y)
        assert set(out) == {"same", "pair", "none"}
        np.testing.assert_array_equal(out["same"].numpy(), [1, 2])
        np.testing.assert_array_equal(out["pair"][0].numpy(), [3, 4])
        np.testing.assert_array_equal(out["pair"][1].numpy(), [4, 6])
        assert out["none"] is None


def _retrace_with_warm_calls_between(n_warm: int) -> None:
    f = sf.function(lambda x: x + 1)
    warm = sf.constant([1])
    f(warm)
    for n in range(2, 12):
        for _ in range(n_warm):
            f(warm)
        f(sf.constant(np.arange(n)))


def test_warm_calls_count_as_calls_for_the_retracing_warning() -> None:
    with pytest.warns(sf.RetracingWarning):
        _retrace_with_warm_calls_between(1)  # 5 traces among 10 calls
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _retrace_with_warm_calls_between(2)  # at most 4 traces among any 10 calls


def test_warm_call_of_a_method_and_in_graph_mode() -> None:
    class Scale:
        def __init__(self, k: float) -> None:
            self.k = k

        @sf.function
        def apply(self, x: Any) -> Any:
            return x * self.k

    s = Scale(3.0)
    x = sf.constant([1.0, 2.0])
    for _ in range(2):
        np.testing.assert_array_equal(s.apply(x).numpy(), [3.0, 6.0])
    g = sf.Graph()
    with g.as_default():
        y = s.apply(sf.constant([1.0]))
    assert isinstance(y, sf.Tensor)
    np.testing.assert_array_equal(sf.Session(g).run(y), [3.0])


def test_warm_call_reads_variables_at_call_time() -> None:
    v = sf.Variable([1.0, 2.0])
    f = sf.function(lambda x: sf.matmul(x, sf.reshape(v, (2, 1))))
    x = sf.constant([[1.0, 1.0]])
    np.testing.assert_array_equal(f(x).numpy(), [[3.0]])
    v.assign([10.0, 20.0])
    np.testing.assert_array_equal(f(x).numpy(), [[30.0]])


# -- input_signature functions ------------------------------------------------------------


def test_input_signature_warm_path_checks_like_the_general_path() -> None:
    f = sf.function(lambda x: x * 2.0, input_signature=[sf.TensorSpec((None, 2), sf.float32)])
    ok = sf.constant(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(f(ok).numpy(), np.full((3, 2), 2, np.float32))
    np.testing.assert_array_equal(f(np.ones((5, 2), np.float32)).numpy()[0], [2, 2])
    np.testing.assert_array_equal(f([[1.0, 2.0]]).numpy(), [[2.0, 4.0]])
    assert f.trace_count == 1
    with pytest.raises(TypeError, match=r"argument 0 \(dtype float64.*TensorSpec"):
        f(sf.constant(np.ones((3, 2), np.float64)))
    with pytest.raises(ValueError, match=r"argument 0 \(dtype float32, shape \(3, 3\)\)"):
        f(sf.constant(np.ones((3, 3), np.float32)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        f(sf.constant(np.ones((2,), np.float32)))
    with pytest.raises(TypeError, match="takes 1 tensor arguments"):
        f(ok, ok)
    assert f.trace_count == 1


def test_input_signature_arrays_are_copied_and_checked_like_the_general_path() -> None:
    f = sf.function(lambda x: x, input_signature=[sf.TensorSpec((None,), sf.float32)])
    arr = np.array([1.0, 2.0], np.float32)
    for _ in range(2):
        out = f(arr)
        assert not np.shares_memory(out.numpy(), arr)  # a private copy, as to_array makes
        np.testing.assert_array_equal(out.numpy(), arr)
    exact = f(np.array([1.5, -0.0], np.float64))  # another dtype: the checked cast
    assert exact.dtype == np.float32
    np.testing.assert_array_equal(exact.numpy(), [1.5, -0.0])
    np.testing.assert_array_equal(f(np.arange(3, dtype=np.float32)[::2]).numpy(), [0.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(2, 1\)"):
        f(np.ones((2, 1), np.float32))
    assert f.trace_count == 1
    text = sf.function(lambda x: x, input_signature=[sf.TensorSpec((None,), np.dtype("U3"))])
    with pytest.raises(TypeError, match="argument 0"):
        text(np.array(["abc"]))


def test_input_signature_key_hashes_once_and_describes_itself() -> None:
    spec = sf.TensorSpec((None,), sf.int32, name="x")
    f = sf.function(lambda x: x + 1, input_signature=[spec])
    f(sf.constant([1, 2]))
    cf = f.get_concrete_function()
    with pytest.raises(TypeError, match=r"input_signature \[TensorSpec\(shape=\(None,\)"):
        cf(1, 2, 3)
    key = f._keys.signature_key
    assert key == ("signature", (spec,))
    assert hash(key) == hash(("signature", (spec,)))


# -- TensorSpec.is_compatible_with ---------------------------------------------------------


def _reference_compatible(spec: sf.TensorSpec, dtype: Any, shape: Any) -> bool:
    if dtype != spec.dtype:
        return False
    if spec.shape is None or shape is None:
        return True
    return len(shape) == len(spec.shape) and all(
        a is None or b is None or a == b for a, b in zip(spec.shape, shape, strict=True)
    )


def test_is_compatible_with_matches_its_definition() -> None:
    shapes: list[Any] = [None, (), (2,), (None,), (2, 3), (None, 3), (2, None), (None, None),
                         (3, 2), (1, 2, 3)]  # fmt: skip
    dtypes = [np.dtype(np.float32), np.dtype(np.int32)]
    for spec_shape, shape, dtype in itertools.product(shapes, shapes, dtypes):
        spec = sf.TensorSpec(spec_shape, np.float32)
        want = _reference_compatible(spec, dtype, shape)
        assert spec.is_compatible_with(dtype, shape) is want, (spec_shape, shape, dtype)


# -- run plans: bound kernels and the normalisation of results ---------------------------


@pytest.mark.parametrize(("ta", "tb"), [(False, False), (True, False), (False, True), (True, True)])
def test_traced_matmul_with_transposes_matches_eager(ta: bool, tb: bool) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    a_in = a.T.copy() if ta else a
    b_in = b.T.copy() if tb else b
    f = sf.function(lambda x, y: sf.matmul(x, y, transpose_a=ta, transpose_b=tb))
    want = sf.matmul(sf.constant(a_in), sf.constant(b_in), transpose_a=ta, transpose_b=tb)
    for _ in range(2):
        np.testing.assert_allclose(f(sf.constant(a_in), sf.constant(b_in)).numpy(), want.numpy())


def test_traced_matmul_of_a_vector_fails_like_eager() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, None)
        y = sf.matmul(x, x)
    with pytest.raises(InvalidArgumentError, match=r"MatMul.*rank >= 2"):
        sf.Session(g).run(y, {x: np.ones(3, np.float32)})


def test_traced_unary_and_binary_ops_match_eager() -> None:
    x = sf.constant(np.array([-2.0, -0.0, 0.5, np.nan, np.inf], np.float32))
    y = sf.constant(np.array([3.0, 2.0, -1.0, 1.0, np.inf], np.float32))
    fns = [sf.exp, sf.tanh, sf.relu, sf.square, sf.abs, sf.negative]
    for fn in fns:
        np.testing.assert_array_equal(sf.function(fn)(x).numpy(), fn(x).numpy())
    for fn2 in [sf.add, sf.subtract, sf.multiply, sf.divide, sf.maximum, sf.minimum, sf.pow]:
        np.testing.assert_array_equal(sf.function(fn2)(x, y).numpy(), fn2(x, y).numpy())


def _kernel_result(attrs: dict[str, Any], x: np.ndarray) -> Any:
    return attrs["make"](x)


def _op(make: Any, dtype: Any, n_out: int = 1, name: str = "") -> Any:
    """An op of ``n_out`` outputs of ``dtype`` and the input's shape whose kernel calls
    ``make``."""
    opdef = register_op(
        f"TestPlanResult{next(_ids)}{name}",
        infer=lambda specs, attrs: tuple((np.dtype(dtype), specs[0][1]) for _ in range(n_out)),
        kernel=_kernel_result,
        same_dtype=False,
    )
    return lambda x: apply(opdef, (x,), {"make": make})


@pytest.mark.parametrize(
    ("make", "dtype", "want"),
    [
        (lambda x: x.astype(np.float64), np.float32, np.float32),  # cast back
        (lambda x: np.float64(x.sum()), np.float32, np.float32),  # a NumPy scalar
        (lambda x: float(x.sum()), np.float64, np.float64),  # a Python float
        (lambda x: [1, 2], np.int64, np.int64),  # a list
        (lambda x: x.view(np.matrix), np.float32, np.float32),  # a subclass: plain array
        (lambda x: x > 0, np.bool_, np.bool_),
    ],
)
def test_plan_results_become_plain_arrays_of_the_declared_dtype(
    make: Any, dtype: Any, want: Any
) -> None:
    op = _op(make, dtype)
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (2, 2) if dtype is np.float32 else None)
        y = op(x)
    feed = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    got = sf.Session(g).run(y, {x: feed})
    assert np.asarray(got).dtype == want
    eager = op(sf.constant(feed))
    np.testing.assert_array_equal(np.asarray(got), eager.numpy())


def test_plan_results_of_several_outputs() -> None:
    op = _op(lambda x: (x.astype(np.float64), np.float32(1.0)), np.float32, n_out=2)
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, ())
        a, b = op(x)
    got = sf.Session(g).run([a, b], {x: np.float32(2.0)})
    assert [type(v) for v in got] == [np.float32, np.float32]
    assert got == [2.0, 1.0]


def test_kernel_errors_name_the_op_but_cast_errors_are_not_wrapped() -> None:
    def fail(x: Any) -> Any:
        raise ValueError("bad input")

    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, ())
        y = _op(fail, np.float32, name="Fail")(x)
        z = _op(lambda x: np.array("text"), np.float32, name="Text")(x)
    with pytest.raises(InvalidArgumentError, match=r"Operation 'TestPlanResult\d+Fail'.*bad"):
        sf.Session(g).run(y, {x: 1.0})
    with pytest.raises(ValueError, match="could not convert") as info:
        sf.Session(g).run(z, {x: 1.0})
    assert not isinstance(info.value, InvalidArgumentError)


# -- plan compilation order ----------------------------------------------------------------


def _reference_order(targets: tuple[Any, ...], feeds: tuple[Any, ...]) -> list[Operation]:
    """The depth-first post-order of the plan compiler before it keyed ops by id."""
    fed = {id(t) for t in feeds}
    order: list[Operation] = []
    state: dict[Operation, bool] = {}
    roots = [t if isinstance(t, Operation) else t._op for t in targets if id(t) not in fed]
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[Operation, bool]] = [(root, False)]
        while stack:
            op, expanded = stack.pop()
            if expanded:
                state[op] = True
                order.append(op)
                continue
            if op in state:
                continue
            state[op] = False
            stack.append((op, True))
            deps = [t._op for t in reversed(op._inputs) if id(t) not in fed]
            deps.extend(
                c
                for c in reversed(op._control_inputs)
                if not c._outputs or any(id(t) not in fed for t in c._outputs)
            )
            for dep in deps:
                if dep not in state:
                    stack.append((dep, False))
    return order


@pytest.mark.parametrize("seed", range(25))
def test_plan_order_is_the_reference_order_on_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    g = sf.Graph()
    with g.as_default():
        tensors: list[Any] = [sf.placeholder(sf.float32, (), name=f"p{i}") for i in range(3)]
        ops: list[Any] = []
        for i in range(rng.randint(3, 25)):
            controls = rng.sample(ops, min(len(ops), rng.randint(0, 2)))
            with sf.control_dependencies(controls):
                kind = rng.random()
                if kind < 0.2:
                    op = sf.no_op(name=f"n{i}")
                    ops.append(op)
                    continue
                a, b = rng.choice(tensors), rng.choice(tensors)
                t = a + b if kind < 0.6 else sf.identity(a * b)
            tensors.append(t)
            ops.append(t.op)
    checked = 0
    for _ in range(8):
        targets = tuple(rng.sample(tensors[3:] + ops, rng.randint(1, 4)))
        # Usually every placeholder is fed (else the plan refuses), plus some other tensors.
        fed_placeholders = tensors[:3] if rng.random() < 0.8 else tensors[:2]
        feeds = tuple(fed_placeholders + rng.sample(tensors[3:], rng.randint(0, 2)))
        if any(isinstance(t, sf.Tensor) and t in feeds for t in targets):
            continue
        want = _reference_order(targets, feeds)
        if any(op.type == "Placeholder" and op.outputs[0] not in feeds for op in want):
            with pytest.raises(InvalidArgumentError, match="must feed"):
                compile_plan(g, targets, feeds)
            continue
        plan = compile_plan(g, targets, feeds)
        assert [step[0] for step in plan.steps] == want
        checked += 1
    assert checked
