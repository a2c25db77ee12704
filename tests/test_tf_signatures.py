"""TensorFlow-style calls: every public op takes TensorFlow 2's argument names and order.

Ported TensorFlow tests call ops with TensorFlow's keyword names (``reduce_sum(input_tensor=
...)``, ``nn.relu(features=...)``, ``transpose(a=...)``); the first table pins each op's
parameter names and order against TensorFlow's, the second calls every op that way (in
eager, graph and traced modes) and checks the value against NumPy.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner, assert_same

# TensorFlow 2's leading parameters, in order (``name`` is checked separately). Where
# scopeflow's parameter list continues past these, the extra ones are TensorFlow's too or
# keyword-only.
TF_PARAMS: dict[str, tuple[str, ...]] = {
    "abs": ("x",),
    "add": ("x", "y"),
    "argmax": ("input", "axis", "output_type"),
    "argmin": ("input", "axis", "output_type"),
    "boolean_mask": ("tensor", "mask", "axis"),
    "cast": ("x", "dtype"),
    "clip_by_value": ("t", "clip_value_min", "clip_value_max"),
    "concat": ("values", "axis"),
    "constant": ("value", "dtype", "shape"),
    "convert_to_tensor": ("value", "dtype", "dtype_hint"),
    "cos": ("x",),
    "divide": ("x", "y"),
    "equal": ("x", "y"),
    "exp": ("x",),
    "expand_dims": ("input", "axis"),
    "fill": ("dims", "value"),
    "floor": ("x",),
    "floordiv": ("x", "y"),
    "gather": ("params", "indices"),
    "greater": ("x", "y"),
    "greater_equal": ("x", "y"),
    "identity": ("input",),
    "less": ("x", "y"),
    "less_equal": ("x", "y"),
    "log": ("x",),
    "log1p": ("x",),
    "logical_and": ("x", "y"),
    "logical_not": ("x",),
    "logical_or": ("x", "y"),
    "matmul": (
        "a",
        "b",
        "transpose_a",
        "transpose_b",
        "adjoint_a",
        "adjoint_b",
        "a_is_sparse",
        "b_is_sparse",
        "output_type",
    ),
    "maximum": ("x", "y"),
    "minimum": ("x", "y"),
    "mod": ("x", "y"),
    "multiply": ("x", "y"),
    "negative": ("x",),
    "not_equal": ("x", "y"),
    "one_hot": ("indices", "depth", "on_value", "off_value", "axis", "dtype"),
    "ones": ("shape", "dtype"),
    "ones_like": ("input", "dtype"),
    "pad": ("tensor", "paddings", "mode", "constant_values"),
    "pow": ("x", "y"),
    "range": ("start", "limit", "delta", "dtype"),
    "rank": ("input",),
    "reciprocal": ("x",),
    "reduce_all": ("input_tensor", "axis", "keepdims"),
    "reduce_any": ("input_tensor", "axis", "keepdims"),
    "reduce_max": ("input_tensor", "axis", "keepdims"),
    "reduce_mean": ("input_tensor", "axis", "keepdims"),
    "reduce_min": ("input_tensor", "axis", "keepdims"),
    "reduce_prod": ("input_tensor", "axis", "keepdims"),
    "reduce_sum": ("input_tensor", "axis", "keepdims"),
    "relu": ("features",),
    "reshape": ("tensor", "shape"),
    "round": ("x",),
    "rsqrt": ("x",),
    "shape": ("input", "out_type"),
    "sigmoid": ("x",),
    "sign": ("x",),
    "sin": ("x",),
    "size": ("input", "out_type"),
    "split": ("value", "num_or_size_splits", "axis", "num"),
    "sqrt": ("x",),
    "square": ("x",),
    "squeeze": ("input", "axis"),
    "stack": ("values", "axis"),
    "stop_gradient": ("input",),
    "subtract": ("x", "y"),
    "tanh": ("x",),
    "tile": ("input", "multiples"),
    "transpose": ("a", "perm", "conjugate"),
    "where": ("condition", "x", "y"),
    "zeros": ("shape", "dtype"),
    "zeros_like": ("input", "dtype"),
    "nn.l2_loss": ("t",),
    "nn.log_softmax": ("logits", "axis"),
    "nn.relu": ("features",),
    "nn.sigmoid": ("x",),
    "nn.sigmoid_cross_entropy_with_logits": ("labels", "logits"),
    "nn.softmax": ("logits", "axis"),
    "nn.softmax_cross_entropy_with_logits": ("labels", "logits", "axis"),
    "nn.sparse_softmax_cross_entropy_with_logits": ("labels", "logits"),
    "nn.tanh": ("x",),
    "random.categorical": ("logits", "num_samples", "dtype", "seed"),
    "random.normal": ("shape", "mean", "stddev", "dtype", "seed"),
    "random.shuffle": ("value", "seed"),
    "random.truncated_normal": ("shape", "mean", "stddev", "dtype", "seed"),
    "random.uniform": ("shape", "minval", "maxval", "dtype", "seed"),
    "debugging.assert_equal": ("x", "y", "message", "summarize"),
    "debugging.assert_greater": ("x", "y", "message", "summarize"),
    "debugging.assert_less": ("x", "y", "message", "summarize"),
    "debugging.assert_non_negative": ("x", "message", "summarize"),
    "debugging.check_numerics": ("tensor", "message"),
}


def _resolve(path: str) -> Any:
    obj: Any = sf
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(("path", "expected"), sorted(TF_PARAMS.items()))
def test_parameters_follow_tensorflow(path: str, expected: tuple[str, ...]) -> None:
    params = inspect.signature(_resolve(path)).parameters
    positional = [
        p.name
        for p in params.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "name"
    ]
    assert tuple(positional[: len(expected)]) == expected
    assert "name" in params, f"{path} takes no name="


def test_every_public_op_is_in_the_table() -> None:
    """A new public op must be added above, with TensorFlow's parameter names."""
    not_ops = {
        "cond", "context_switches", "copy_scopes", "custom_gradient", "disable_eager_execution",
        "eager_mode", "enable_eager_execution", "executing_eagerly", "function",
        "executing_eagerly_outside_functions", "get_default_graph", "get_name_scope",
        "global_variables_initializer", "gradients", "graph_mode", "group", "has_default_graph",
        "inside_function", "no_op", "placeholder", "print", "reset_default_graph",
        "run_in_scopes", "scoped_generator", "stop_recording", "while_loop",
    }  # fmt: skip
    missing = []
    for mod, prefix in (
        (sf, ""),
        (sf.nn, "nn."),
        (sf.random, "random."),
        (sf.debugging, "debugging."),
    ):
        for n in mod.__all__:
            fn = getattr(mod, n)
            is_op = inspect.isfunction(fn) and n not in not_ops and n != "set_seed"
            if is_op and prefix + n not in TF_PARAMS:
                missing.append(prefix + n)
    assert missing == []


def test_module_relu_is_nn_relu() -> None:
    assert sf.relu is sf.nn.relu
    assert sf.nn.relu(features=[-2.0, 3.0]).numpy().tolist() == [0.0, 3.0]


X = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], np.float32)
B = np.array([[True, False, True], [True, True, True]])
IDX = np.array([2, 0], np.int64)

# (label, a TensorFlow-style keyword call of the inputs, the NumPy oracle)
KEYWORD_CALLS: list[tuple[str, Any, Any, tuple[Any, ...]]] = [
    ("identity", lambda x: sf.identity(input=x), lambda x: x, (X,)),
    ("reduce_sum", lambda x: sf.reduce_sum(input_tensor=x, axis=1, keepdims=True),
     lambda x: x.sum(1, keepdims=True), (X,)),
    ("reduce_mean", lambda x: sf.reduce_mean(input_tensor=x, axis=-1), lambda x: x.mean(-1), (X,)),
    ("reduce_max", lambda x: sf.reduce_max(input_tensor=x, axis=0), lambda x: x.max(0), (X,)),
    ("reduce_min", lambda x: sf.reduce_min(input_tensor=x), lambda x: x.min(), (X,)),
    ("reduce_prod", lambda x: sf.reduce_prod(input_tensor=x, axis=[0, 1]), np.prod, (X,)),
    ("reduce_any", lambda b: sf.reduce_any(input_tensor=b, axis=1), lambda b: b.any(1), (B,)),
    ("reduce_all", lambda b: sf.reduce_all(input_tensor=b, axis=1), lambda b: b.all(1), (B,)),
    ("relu", lambda x: sf.nn.relu(features=x), lambda x: np.maximum(x, 0), (X,)),
    ("transpose", lambda x: sf.transpose(a=x, perm=[1, 0], conjugate=True), np.transpose, (X,)),
    ("matmul", lambda x: sf.matmul(a=x, b=x, adjoint_b=True), lambda x: x @ x.T, (X,)),
    ("matmul-adjoint_a", lambda x: sf.matmul(a=x, b=x, adjoint_a=True, a_is_sparse=True),
     lambda x: x.T @ x, (X,)),
    ("gather", lambda x, i: sf.gather(params=x, indices=i, validate_indices=True, axis=1),
     lambda x, i: x[:, i], (X, IDX)),
    ("argmax", lambda x: sf.argmax(input=x, axis=1, output_type=sf.int32),
     lambda x: x.argmax(1).astype(np.int32), (X,)),
    ("clip_by_value", lambda x: sf.clip_by_value(t=x, clip_value_min=-1.0, clip_value_max=2.0),
     lambda x: np.clip(x, -1, 2), (X,)),
    ("where", lambda b, x: sf.where(condition=b, x=x, y=-x), lambda b, x: np.where(b, x, -x),
     (B, X)),
    ("cast", lambda x: sf.cast(x=x, dtype=sf.int32), lambda x: x.astype(np.int32), (X,)),
    ("concat", lambda x: sf.concat(values=[x, x], axis=-1), lambda x: np.concatenate([x, x], -1),
     (X,)),
    ("expand_dims", lambda x: sf.expand_dims(input=x, axis=-1), lambda x: x[..., None], (X,)),
    ("squeeze", lambda x: sf.squeeze(input=sf.expand_dims(x, 0), axis=[0]), lambda x: x, (X,)),
    ("tile", lambda x: sf.tile(input=x, multiples=[1, 2]), lambda x: np.tile(x, [1, 2]), (X,)),
    ("reshape", lambda x: sf.reshape(tensor=x, shape=[-1]), lambda x: x.reshape(-1), (X,)),
    ("pad", lambda x: sf.pad(tensor=x, paddings=[[1, 0], [0, 1]], mode="REFLECT"),
     lambda x: np.pad(x, [[1, 0], [0, 1]], mode="reflect"), (X,)),
    ("one_hot", lambda i: sf.one_hot(indices=i, depth=3, on_value=5.0, off_value=-1.0, axis=0),
     lambda i: np.where(np.arange(3)[:, None] == i[None, :], 5.0, -1.0).astype(np.float32), (IDX,)),
    ("zeros_like", lambda x: sf.zeros_like(input=x, dtype=sf.int64),
     lambda x: np.zeros(x.shape, np.int64), (X,)),
    ("ones_like", lambda x: sf.ones_like(input=x), np.ones_like, (X,)),
    ("shape", lambda x: sf.shape(input=x, out_type=sf.int64), lambda x: np.array(x.shape), (X,)),
    ("size", lambda x: sf.size(input=x), lambda x: np.int32(x.size), (X,)),
    ("rank", lambda x: sf.rank(input=x), lambda x: np.int32(x.ndim), (X,)),
    ("stop_gradient", lambda x: sf.stop_gradient(input=x), lambda x: x, (X,)),
    ("boolean_mask", lambda x, b: sf.boolean_mask(tensor=x, mask=b), lambda x, b: x[b], (X, B)),
    ("split", lambda x: sf.split(value=x, num_or_size_splits=[1, 2], axis=1)[1],
     lambda x: x[:, 1:], (X,)),
    ("stack", lambda x: sf.stack(values=[x, x], axis=1), lambda x: np.stack([x, x], 1), (X,)),
    ("softmax", lambda x: sf.nn.softmax(logits=x, axis=0),
     lambda x: np.exp(x) / np.exp(x).sum(0), (X,)),
    ("log_softmax", lambda x: sf.nn.log_softmax(logits=x, axis=-1),
     lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)), (X,)),
    ("l2_loss", lambda x: sf.nn.l2_loss(t=x), lambda x: np.float32((x * x).sum() / 2), (X,)),
    ("sigmoid_ce", lambda x: sf.nn.sigmoid_cross_entropy_with_logits(labels=x * 0, logits=x),
     lambda x: np.log1p(np.exp(x)), (X,)),
    ("sparse_ce", lambda x, i: sf.nn.sparse_softmax_cross_entropy_with_logits(labels=i, logits=x),
     lambda x, i: np.log(np.exp(x).sum(1)) - x[[0, 1], i], (X, IDX)),
]  # fmt: skip


@pytest.fixture(params=MODES[:3])
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


@pytest.mark.parametrize(("label", "fn", "oracle", "inputs"), [
    pytest.param(*case, id=case[0]) for case in KEYWORD_CALLS
])  # fmt: skip
def test_tensorflow_keyword_calls(
    run: Runner, label: str, fn: Any, oracle: Any, inputs: Any
) -> None:
    expected = np.asarray(oracle(*inputs))
    # A mask's output length is only known when it runs.
    actual = run(fn, *inputs, exact_shape=label != "boolean_mask")
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert actual.dtype == expected.dtype


def test_gather_axis_defaults_to_batch_dims() -> None:
    """TensorFlow's ``axis=None`` means ``axis=batch_dims``; 0 would be an error."""
    params = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    idx = np.array([[2, 0], [1, 1]])
    out = sf.gather(params, idx, batch_dims=1).numpy()
    assert_same(out, np.stack([params[0][[2, 0]], params[1][[1, 1]]]))


def test_convert_to_tensor_dtype_hint() -> None:
    assert sf.convert_to_tensor(1, dtype_hint=sf.float32).dtype == np.float32
    # A hint never fails: a value it cannot hold keeps the default conversion...
    assert sf.convert_to_tensor(1.5, dtype_hint=sf.int32).dtype == np.float32
    # ...and values with a dtype of their own keep it.
    assert sf.convert_to_tensor(np.int64(3), dtype_hint=sf.float32).dtype == np.int64
    assert sf.convert_to_tensor(sf.constant([1]), dtype_hint=sf.float32).dtype == np.int32
    with sf.Graph().as_default():
        assert sf.convert_to_tensor([1, 2], dtype_hint=sf.float64).dtype == np.float64


def test_matmul_transpose_and_adjoint_together_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"^matmul\(\): only one of transpose_a and adjoint_a"):
        sf.matmul(X, X, transpose_a=True, adjoint_a=True)


@pytest.mark.parametrize("call", [
    lambda c: sf.transpose(c, conjugate=True),
    lambda c: sf.matmul(c, c, adjoint_b=True),
])  # fmt: skip
def test_conjugation_of_complex_is_refused_not_ignored(call: Any) -> None:
    c = sf.constant(np.array([[1 + 2j]], np.complex64))
    with pytest.raises(TypeError, match=r"^(transpose|matmul)\(\): .* on a complex tensor is not"):
        call(c)


def test_matmul_output_type_casts_before_the_product() -> None:
    a = np.full((2, 2), 100, np.int8)
    out = sf.matmul(a, a, output_type=sf.int32)
    assert out.dtype == np.int32
    assert out.numpy().tolist() == [[20000, 20000], [20000, 20000]]


def test_tensorflow_dtype_names() -> None:
    """``tf.bool`` and the unsigned widths exist under TensorFlow's names."""
    assert sf.bool is sf.bool_
    assert sf.bool == np.dtype(np.bool_)
    assert (sf.uint16, sf.uint32, sf.uint64) == tuple(map(np.dtype, ("u2", "u4", "u8")))
    assert sf.cast([0.0, 2.5], sf.bool).numpy().tolist() == [False, True]
    assert (sf.constant([3], sf.uint32) * 2).dtype == sf.uint32


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_while_loop_takes_tensorflows_keywords(graph: bool) -> None:
    """parallel_iterations and swap_memory are hints; back_prop=False stops gradients."""

    def build(x: Any, back_prop: bool) -> Any:
        return sf.while_loop(
            lambda i, y: i < 3,
            lambda i, y: (i + 1, y * x),
            [0, x],
            parallel_iterations=1,
            back_prop=back_prop,
            swap_memory=True,
        )[1]

    if not graph:
        x = sf.constant(2.0)
        with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            kept, stopped = build(x, True), build(x, False)
        assert float(kept) == float(stopped) == 16.0
        assert float(tape.gradient(kept, x)) == 32.0
        assert tape.gradient(stopped, x) is None
        return
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, [])
        kept, stopped = build(x, True), build(x, False)
        (dkept,) = sf.gradients(kept, [x])
        assert sf.gradients(stopped, [x]) == [None]
    assert sf.Session(g).run([stopped, dkept], {x: 2.0}) == [16.0, 32.0]


def test_unconnected_gradients_zero_on_the_tape_and_in_graphs() -> None:
    """TensorFlow's ``unconnected_gradients`` ("none"/"zero", or an enum with that value)."""
    import enum

    class Unconnected(enum.Enum):
        NONE = "none"
        ZERO = "zero"

    x, y, v = sf.constant([1.0, 2.0]), sf.constant(3.0), sf.Variable([[1.0]])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch([x, y])
        z = sf.reduce_sum(x * x)
    dx, dy, dv = tape.gradient(z, [x, y, v], unconnected_gradients="zero")
    assert dx.numpy().tolist() == [2.0, 4.0]
    assert dy.numpy() == 0.0
    assert dv.numpy().tolist() == [[0.0]]
    assert float(tape.gradient(z, y, unconnected_gradients=Unconnected.ZERO)) == 0.0
    assert tape.gradient(z, y, unconnected_gradients=Unconnected.NONE) is None
    with pytest.raises(ValueError, match=r"^gradient\(\): unconnected_gradients must be 'none' or"):
        tape.gradient(z, y, unconnected_gradients="ones")
    g = sf.Graph()
    with g.as_default():
        a, b = sf.placeholder(sf.float32, [None]), sf.placeholder(sf.float32, [None, 2])
        da, db = sf.gradients(
            sf.reduce_sum(a * a), [a, b], name="grads", unconnected_gradients="zero"
        )
        assert sf.gradients(sf.reduce_sum(a), [b]) == [None]
        with pytest.raises(NotImplementedError, match=r"stop_gradients is not supported"):
            sf.gradients(a, [a], stop_gradients=[a])
    got = sf.Session(g).run([da, db], {a: [1.0, 2.0], b: [[1.0, 1.0]] * 3})
    assert got[0].tolist() == [2.0, 4.0]
    assert got[1].tolist() == [[0.0, 0.0]] * 3
