"""Axes and permutations known only when the graph runs (graph tensors), as TensorFlow
accepts them: reductions, argmax/argmin, concat, expand_dims, transpose and gather.

Values are compared with NumPy; gradients with those of the same op built with a Python
int axis (the static op, tested elsewhere). Axes that fold while the graph is built keep
the static op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow.errors import InvalidArgumentError

F32, F64, I32, I64 = np.float32, np.float64, np.int32, np.int64

_X = np.arange(1.0, 25.0).reshape(2, 3, 4) * np.array([1.0, -0.5, 2.0, 0.25])


def _session_run(
    build: Any, x: Any, axis: Any, *, x_shape: Any = "known", dtype: Any = I32, a_shape: Any = ""
) -> Any:
    """``build(x, axis)`` on placeholders (of the fed shapes unless given), run."""
    x = np.asarray(x)
    axis = np.asarray(axis, dtype)
    g = sf.Graph()
    with g.as_default():
        xp = sf.placeholder(x.dtype, x.shape if x_shape == "known" else x_shape, name="x")
        ap = sf.placeholder(axis.dtype, axis.shape if a_shape == "" else a_shape, name="axis")
        out = build(xp, ap)
    with sf.Session(g) as session:
        return session.run(out, {xp: x, ap: axis})


# -- reductions ------------------------------------------------------------------------------

_REDUCTIONS = [
    (sf.reduce_sum, np.sum, "Sum"),
    (sf.reduce_mean, np.mean, "Mean"),
    (sf.reduce_max, np.max, "Max"),
    (sf.reduce_min, np.min, "Min"),
    (sf.reduce_prod, np.prod, "Prod"),
]
_AXES = [0, 1, 2, -1, -3, [0], [2, 0], [-1, 1], [0, 1, 2], []]


@pytest.mark.parametrize(("fn", "oracle", "op_type"), _REDUCTIONS, ids=lambda v: str(v)[:12])
@pytest.mark.parametrize("axis", _AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis_dtype", [I32, I64])
def test_reductions_match_numpy(
    fn: Any, oracle: Any, op_type: str, axis: Any, keepdims: bool, axis_dtype: Any
) -> None:
    got = _session_run(lambda x, a: fn(x, a, keepdims=keepdims), _X, axis, dtype=axis_dtype)
    want = oracle(_X, axis=tuple(np.atleast_1d(axis)), keepdims=keepdims)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == want.shape
    assert got.dtype == F64


@pytest.mark.parametrize("axis", [0, 1, -1, [0, 1], []], ids=str)
def test_bool_and_int_reductions(axis: Any) -> None:
    b = np.array([[True, False, True], [True, True, True]])
    for fn, oracle in ((sf.reduce_any, np.any), (sf.reduce_all, np.all)):
        got = _session_run(lambda x, a, fn=fn: fn(x, a), b, axis)
        np.testing.assert_array_equal(got, oracle(b, axis=tuple(np.atleast_1d(axis))))
    ints = np.array([[7, -3, 2], [-8, 5, 1]], np.int32)
    got = _session_run(lambda x, a: sf.reduce_mean(x, a), ints, axis)
    want = sf.reduce_mean(ints, list(np.atleast_1d(axis))).numpy()  # rounds toward zero
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_reduction_static_shapes_say_what_holds_for_every_axis() -> None:
    def shape(x_shape: Any, a_shape: Any, keepdims: bool = False) -> Any:
        with sf.Graph().as_default():
            x = sf.placeholder(F32, x_shape)
            return sf.reduce_sum(x, sf.placeholder(I32, a_shape), keepdims=keepdims).shape

    assert shape((2, 3, 4), ()) == (None, None)  # a scalar axis removes one dimension
    assert shape((2, 3, 4), (2,)) == (None,)  # two distinct axes remove two
    assert shape((2, 3, 4), (0,)) == (2, 3, 4)  # no axis: nothing reduced
    assert shape((2, 3, 4), (None,)) is None  # how many: only known at run time
    assert shape((2, 1, 4), (None,), keepdims=True) == (None, 1, None)
    assert shape((2, 1, 4), (), keepdims=True) == (None, 1, None)
    assert shape(None, ()) is None
    assert shape(None, (), keepdims=True) is None
    with pytest.raises(ValueError, match="axis has 3 entries but the input has rank 2"):
        shape((2, 3), (3,))
    with pytest.raises(ValueError, match="must be a scalar or a vector, got a tensor of shape"):
        shape((2, 3), (1, 1))
    with sf.Graph().as_default(), pytest.raises(TypeError, match="must be an integer tensor"):
        sf.reduce_mean(sf.placeholder(F32, (2,)), sf.placeholder(F32, ()))


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        (3, r"axis 3 is out of range for rank 3 .*Invalid reduction dimension 3"),
        (-4, r"axis -4 is out of range for rank 3"),
        ([0, -3], r"Axes contains duplicate dimension: 0"),
        ([[0]], r"axis must be an integer scalar or vector"),
    ],
)
def test_bad_reduction_axes_fail_when_the_graph_runs(axis: Any, message: str) -> None:
    for fn, _, _ in _REDUCTIONS:
        with pytest.raises(InvalidArgumentError, match=message):
            _session_run(lambda x, a, fn=fn: fn(x, a), _X, axis, x_shape=None, a_shape=None)


def test_axes_that_fold_keep_the_static_op() -> None:
    with sf.Graph().as_default():
        x = sf.placeholder(F32, (2, 3))
        folded = {
            "Sum": sf.reduce_sum(x, sf.constant(1)),
            "Max": sf.reduce_max(x, [sf.constant(0), 1]),
            "ArgMax": sf.argmax(x, sf.shape(sf.placeholder(F32, (1,)))[0]),  # folds to 1
            "Concat": sf.concat([x, x], sf.constant(-1)),
            "Transpose": sf.transpose(x, sf.constant([1, 0])),
            "ExpandDims": sf.expand_dims(x, sf.constant(0)),
            "Gather": sf.gather(x, [0], axis=sf.constant(1)),
        }
        for op_type, t in folded.items():
            assert t.op.type == op_type
        assert folded["Sum"].shape == (2,)
        assert folded["Concat"].shape == (2, 6)
        mixed = sf.reduce_sum(x, [0, sf.placeholder(I32, ())])  # packed into a vector
        assert (mixed.op.type, mixed.shape) == ("DynamicSum", ())


# -- argmax / argmin -------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
@pytest.mark.parametrize("axis_dtype", [I32, I64])
@pytest.mark.parametrize("output_type", [sf.int32, sf.int64])
def test_argmax_argmin_match_numpy(axis: int, axis_dtype: Any, output_type: Any) -> None:
    for fn, oracle in ((sf.argmax, np.argmax), (sf.argmin, np.argmin)):
        got = _session_run(
            lambda x, a, fn=fn: fn(x, a, output_type=output_type), _X, axis, dtype=axis_dtype
        )
        np.testing.assert_array_equal(got, oracle(_X, axis=axis))
        assert got.dtype == output_type


def test_argmax_shapes_and_errors() -> None:
    with sf.Graph().as_default():
        a = sf.placeholder(I32, ())
        assert sf.argmax(sf.placeholder(F32, (2, 3, 4)), a).shape == (None, None)
        assert sf.argmin(sf.placeholder(F32, None), a).shape is None
        with pytest.raises(ValueError, match="must be a scalar, got a tensor of shape"):
            sf.argmax(sf.placeholder(F32, (2, 3)), sf.placeholder(I32, (1,)))
        with pytest.raises(ValueError, match="the input is a scalar"):
            sf.argmax(sf.placeholder(F32, ()), a)
    with pytest.raises(InvalidArgumentError, match=r"Expected dimension in the range \[-3, 3\)"):
        _session_run(lambda x, a: sf.argmax(x, a), _X, 3)
    with pytest.raises(InvalidArgumentError, match="Reduction axis 1 is empty"):
        _session_run(lambda x, a: sf.argmin(x, a), np.zeros((2, 0)), 1)


# -- concat, expand_dims, transpose, gather --------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_concat_matches_numpy(axis: int) -> None:
    other = _X[..., :2] if axis in (2, -1) else _X
    got = _session_run(lambda x, a: sf.concat([x, other, x], a), _X, axis)
    np.testing.assert_array_equal(got, np.concatenate([_X, other, _X], axis=axis))


def test_concat_shapes_and_errors() -> None:
    with sf.Graph().as_default():
        a = sf.placeholder(I64, ())
        x = sf.placeholder(F32, (2, 3))
        assert sf.concat([x, x], a).shape == (None, None)  # the rank; no size for sure
        assert sf.concat([sf.placeholder(F32, None), x], a).shape == (None, None)
        assert sf.concat([[[1.0, 2.0]], x], a).dtype == np.float32  # values take x's dtype
        with pytest.raises(ValueError, match="all inputs must have the same rank"):
            sf.concat([x, sf.placeholder(F32, (2,))], a)
        with pytest.raises(ValueError, match="cannot concatenate scalars"):
            sf.concat([sf.placeholder(F32, ()), sf.placeholder(F32, ())], a)
        with pytest.raises(TypeError, match="same dtype"):
            sf.concat([x, sf.placeholder(F64, (2, 3))], a)
    with pytest.raises(InvalidArgumentError, match="axis 3 is out of range for rank 3"):
        _session_run(lambda x, a: sf.concat([x, x], a), _X, 3)
    with pytest.raises(InvalidArgumentError):  # sizes off the axis differ
        _session_run(lambda x, a: sf.concat([x, x[:1]], a), _X, 1)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -4])
def test_expand_dims_matches_numpy(axis: int) -> None:
    got = _session_run(lambda x, a: sf.expand_dims(x, a), _X, axis, dtype=I64)
    np.testing.assert_array_equal(got, np.expand_dims(_X, axis))
    with sf.Graph().as_default():
        assert sf.expand_dims(sf.placeholder(F32, (2, 3)), sf.placeholder(I32, ())).shape == (
            None,
            None,
            None,
        )


def test_expand_dims_bad_axis() -> None:
    with pytest.raises(InvalidArgumentError, match="axis 4 is out of range for rank 4"):
        _session_run(lambda x, a: sf.expand_dims(x, a), _X, 4)


@pytest.mark.parametrize("perm", [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]], ids=str)
def test_transpose_matches_numpy(perm: list[int]) -> None:
    got = _session_run(lambda x, p: sf.transpose(x, p), _X, perm, dtype=I64)
    np.testing.assert_array_equal(got, np.transpose(_X, perm))


def test_transpose_shapes_and_errors() -> None:
    with sf.Graph().as_default():
        p = sf.placeholder(I32, (None,))
        assert sf.transpose(sf.placeholder(F32, (2, 3)), p).shape == (None, None)
        assert sf.transpose(sf.placeholder(F32, (3, 3)), p).shape == (3, 3)  # any order
        assert sf.transpose(sf.placeholder(F32, None), sf.placeholder(I32, (3,))).shape == (
            None,
            None,
            None,
        )
        with pytest.raises(ValueError, match="perm has 3 entries but the input has rank 2"):
            sf.transpose(sf.placeholder(F32, (2, 3)), sf.placeholder(I32, (3,)))
    for bad in ([0, 0, 1], [0, 1, 3], [0, 1]):
        with pytest.raises(InvalidArgumentError, match=r"perm \[.*\] (is not a permutation|has 2)"):
            _session_run(lambda x, p: sf.transpose(x, p), _X, bad, a_shape=(None,))


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_gather_matches_numpy(axis: int) -> None:
    idx = np.array([[1, 0], [0, 1]])
    got = _session_run(lambda x, a: sf.gather(x, idx, axis=a), _X, axis)
    np.testing.assert_array_equal(got, np.take(_X, idx, axis=axis))


def test_gather_batch_dims_shapes_and_errors() -> None:
    idx = np.array([[2, 0], [1, 1]])
    got = _session_run(lambda x, a: sf.gather(x, idx, axis=a, batch_dims=1), _X, 2)
    np.testing.assert_array_equal(got, sf.gather(_X, idx, axis=2, batch_dims=1).numpy())
    with sf.Graph().as_default():
        a = sf.placeholder(I32, ())
        assert sf.gather(sf.placeholder(F32, (2, 3)), [[0, 1]], axis=a).shape == (None,) * 3
        assert sf.gather(sf.placeholder(F32, None), [0], axis=a).shape is None
    with pytest.raises(InvalidArgumentError, match="axis 3 is out of range for rank 3"):
        _session_run(lambda x, a: sf.gather(x, [0], axis=a), _X, 3)
    with pytest.raises(InvalidArgumentError, match=r"axis 0 is less than batch_dims \(1\)"):
        _session_run(lambda x, a: sf.gather(x, idx, axis=a, batch_dims=1), _X, 0)
    with pytest.raises(InvalidArgumentError, match=r"is not in \[0, 2\)"):
        _session_run(lambda x, a: sf.gather(x, [5], axis=a), _X, 0)


@pytest.mark.parametrize("mode", ["CONSTANT", "reflect", "SYMMETRIC"])
@pytest.mark.parametrize("pads", [[[0, 1], [2, 0], [1, 1]], [[0, 0], [0, 0], [3, 2]]], ids=str)
def test_pad_matches_numpy(mode: str, pads: Any) -> None:
    got = _session_run(lambda x, p: sf.pad(x, p, mode, constant_values=-2.5), _X, pads)
    np_mode = {"CONSTANT": "constant", "reflect": "reflect", "SYMMETRIC": "symmetric"}[mode]
    extra = {"constant_values": -2.5} if mode == "CONSTANT" else {}
    np.testing.assert_array_equal(got, np.pad(_X, pads, mode=np_mode, **extra))


def test_pad_shapes_and_errors() -> None:
    with sf.Graph().as_default():
        p = sf.placeholder(I32, (None, 2))
        assert sf.pad(sf.placeholder(F32, (2, 3)), p).shape == (None, None)
        assert sf.pad(sf.placeholder(F32, None), sf.placeholder(I32, (3, 2))).shape == (None,) * 3
        assert sf.pad(sf.placeholder(F32, None), p).shape is None
        with pytest.raises(ValueError, match="paddings has 3 rows but the input has rank 2"):
            sf.pad(sf.placeholder(F32, (2, 3)), sf.placeholder(I32, (3, 2)))
        with pytest.raises(ValueError, match=r"paddings must have shape \[rank, 2\]"):
            sf.pad(sf.placeholder(F32, (2, 3)), sf.placeholder(I32, (2, 3)))
        with pytest.raises(TypeError, match="constant_values has dtype float64, the input float32"):
            sf.pad(sf.placeholder(F32, (2, 3)), p, constant_values=sf.constant(1.0, F64))
    for bad in ([[0, 1], [2, -1], [0, 0]], [[0, 1], [2, 1]]):
        with pytest.raises(InvalidArgumentError, match=r"paddings must be a \[3, 2\] tensor"):
            _session_run(lambda x, p: sf.pad(x, p), _X, bad, a_shape=None)
    with pytest.raises(InvalidArgumentError, match="REFLECT padding of dimension 0 must be less"):
        _session_run(lambda x, p: sf.pad(x, p, "REFLECT"), _X, [[2, 0], [0, 0], [0, 0]])


# -- gradients -------------------------------------------------------------------------------

_DIFFERENTIABLE = {
    "sum": lambda x, a: sf.reduce_sum(x, a),
    "sum_keepdims": lambda x, a: sf.reduce_sum(x, a, keepdims=True),
    "mean": lambda x, a: sf.reduce_mean(x, a),
    "max": lambda x, a: sf.reduce_max(x, a, keepdims=True),
    "min": lambda x, a: sf.reduce_min(x, a),
    "prod": lambda x, a: sf.reduce_prod(x, a),
    "concat": lambda x, a: sf.concat([x, 2.0 * x], a),
    "expand_dims": lambda x, a: sf.expand_dims(x, a),
    "gather": lambda x, a: sf.gather(x, [1, 0, 1], axis=a),
}
_PADS = [[1, 0], [0, 2], [2, 1]]
# Ties for max/min and zeros for prod: the cases their gradients treat specially.
_GX = np.array([[[3.0, 3.0, -1.0, 0.0], [2.0, 0.5, 4.0, 4.0], [1.0, 2.0, 0.0, 0.0]]] * 2)
_GX[1] *= -1.5


def _graph_grads(build: Any, axis: Any, dynamic: bool) -> tuple[Any, Any]:
    """The value and the first and second gradients of ``sum(w * build(x, axis))``."""
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F64, _GX.shape)
        a = sf.placeholder(I32, np.shape(axis)) if dynamic else axis
        y = build(x, a)
        w = sf.cast(sf.reshape(sf.range(sf.size(y)), sf.shape(y)), F64) + 1.0
        (dx,) = sf.gradients(sf.reduce_sum(w * y), [x])
        (ddx,) = sf.gradients(sf.reduce_sum(dx * dx), [x])  # None where dx is constant
        feed = {x: _GX, a: axis} if dynamic else {x: _GX}
    with sf.Session(g) as session:
        got = session.run([dx, ddx if ddx is not None else sf.constant(0.0)], feed)
    return got[0], None if ddx is None else got[1]


@pytest.mark.parametrize(
    ("name", "axis"),
    [(name, axis) for name in _DIFFERENTIABLE for axis in (0, 1, -1)]
    + [(name, [0, 2]) for name in _DIFFERENTIABLE if name.startswith(("sum", "m", "prod"))],
    ids=str,
)
def test_graph_gradients_match_the_static_op(name: str, axis: Any) -> None:
    build = _DIFFERENTIABLE[name]
    want = _graph_grads(build, axis, dynamic=False)
    got = _graph_grads(build, axis, dynamic=True)
    for w, gv in zip(want, got, strict=True):
        assert (w is None) == (gv is None)
        if w is not None:
            np.testing.assert_allclose(gv, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("build", "arg"),
    [
        (lambda x, p: sf.transpose(x, p) ** 2, [2, 0, 1]),
        (lambda x, p: sf.pad(x, p) ** 2, _PADS),
        (lambda x, p: sf.pad(x, p, "REFLECT") ** 2, _PADS),
        (lambda x, p: sf.pad(x, p, "SYMMETRIC") ** 2, _PADS),
    ],
    ids=["transpose", "pad", "reflect", "symmetric"],
)
def test_permutation_and_padding_gradients(build: Any, arg: Any) -> None:
    got = _graph_grads(build, arg, dynamic=True)
    want = _graph_grads(build, arg, dynamic=False)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_the_fill_value_of_a_run_time_pad_has_a_gradient() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F64, (2, 3))
        c = sf.placeholder(F64, ())
        p = sf.placeholder(I64, (2, 2))
        y = sf.pad(x, p, constant_values=c)
        dx, dc = sf.gradients(sf.reduce_sum(y * y), [x, c])
    with sf.Session(g) as session:
        got = session.run([y, dx, dc], {x: _X[0, :2, :3], c: 3.0, p: [[1, 0], [0, 2]]})
    assert got[0].shape == (3, 5)
    np.testing.assert_array_equal(got[1], 2 * _X[0, :2, :3])
    assert got[2] == 2 * 3.0 * (15 - 6)  # nine padded elements


# -- traced functions and saved models -------------------------------------------------------


def test_one_trace_serves_every_axis_and_tapes_see_through_it() -> None:
    @sf.function
    def f(x: Any, axis: Any) -> Any:
        return sf.reduce_sum(x * x, axis), sf.argmax(x, axis), sf.concat([x, x], axis)

    x = sf.constant(_GX)
    for axis in (0, 1, -1, 2):
        with sf.GradientTape() as tape:
            tape.watch(x)
            total, best, joined = f(x, sf.constant(axis))
        np.testing.assert_allclose(total.numpy(), np.sum(_GX * _GX, axis=axis))
        np.testing.assert_array_equal(best.numpy(), np.argmax(_GX, axis=axis))
        np.testing.assert_array_equal(joined.numpy(), np.concatenate([_GX, _GX], axis))
        # x appears twice in the concatenation: 2 from it, 2 x from the sum of squares.
        np.testing.assert_allclose(tape.gradient([total, joined], x).numpy(), 2 * _GX + 2)
    assert f.trace_count == 1
    with pytest.raises(InvalidArgumentError, match="out of range"):
        f(x, sf.constant(3))
    assert f(x, sf.constant(np.int64(1)))[0].shape == (2, 4)


def test_a_tape_over_a_traced_max_with_a_vector_of_axes() -> None:
    @sf.function
    def f(x: Any, axes: Any) -> Any:
        return sf.reduce_max(x, axes)

    x = sf.constant(_GX)
    for axes in ([0, 2], [1], [-1, 0, 1]):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x, sf.constant(axes))
        with sf.GradientTape() as ref:
            ref.watch(x)
            z = sf.reduce_max(x, axes)
        np.testing.assert_array_equal(y.numpy(), z.numpy())
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), ref.gradient(z, x).numpy())


def test_run_time_axes_survive_export_and_load(tmp_path: Path) -> None:
    spec = [sf.TensorSpec((None, 3, 4), F32, name="x"), sf.TensorSpec((), I32, name="axis")]

    class Model(sf.Module):
        @sf.function(input_signature=spec)
        def __call__(self, x: Any, axis: Any) -> Any:
            return {
                "sum": sf.reduce_sum(x, axis, keepdims=True),
                "mean": sf.reduce_mean(x, [axis]),
                "max": sf.reduce_max(x, axis),
                "prod": sf.reduce_prod(x, axis),
                "any": sf.reduce_any(x > 0, axis),
                "argmin": sf.argmin(x, axis),
                "concat": sf.concat([x, x], axis),
                "expand": sf.expand_dims(x, axis),
                "gather": sf.gather(x, [0, 0], axis=axis),
                "transpose": sf.transpose(x, sf.stack([axis % 3, (axis + 1) % 3, (axis + 2) % 3])),
                "pad": sf.pad(x, sf.reshape(sf.range(6) % (axis + 2), [3, 2]), "SYMMETRIC"),
            }

    model = Model()
    path = str(tmp_path / "axes")
    sf.saved_model.save(model, path)
    loaded = sf.saved_model.load(path)
    x = _X.astype(F32)
    for axis in (0, 1, 2, -1):
        got = loaded(x, np.int32(axis))
        want = model(sf.constant(x), sf.constant(axis, I32))
        assert got.keys() == want.keys()
        for key, value in got.items():
            np.testing.assert_allclose(value.numpy(), want[key].numpy(), err_msg=key)
    np.testing.assert_allclose(loaded(x, np.int32(1))["max"].numpy(), np.max(x, axis=1))
    with pytest.raises(InvalidArgumentError, match="out of range"):
        loaded(x, np.int32(5))
