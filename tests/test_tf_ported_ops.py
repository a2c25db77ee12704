"""Scenarios from TensorFlow's own op tests (``tensorflow/python/kernel_tests/...``), re-run.

Each test names the TensorFlow test it follows. The scenarios and expected values are
TensorFlow's (what TF 2 returns or raises); the code is written for pytest and scopeflow,
and runs each case eagerly, in a graph (shapes checked against the value) and traced.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I32, I64, C64 = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.complex64)


@pytest.fixture(params=MODES[:3])
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _same(actual: Any, expected: Any) -> None:
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual, expected)


# -- array_ops/one_hot_op_test.py ------------------------------------------------------------

_IDX = np.array([0, 2, -1, 1], np.int64)
_TRUTH = [[1, -1, -1], [-1, -1, 1], [-1, -1, -1], [-1, 1, -1]]


@pytest.mark.parametrize("dtype", [F16, F32, F64, I32, I64, C64], ids=str)
def test_one_hot_basic_every_dtype(run: Runner, dtype: np.dtype[Any]) -> None:
    """testFloatBasic ... testComplex64Basic: on/off arrays of the dtype, both axes."""
    on, off = np.asarray(1.0).astype(dtype), np.asarray(-1.0).astype(dtype)
    truth = np.asarray(_TRUTH).astype(dtype)
    for axis, want in ((-1, truth), (0, truth.T)):
        got = run(lambda i, a=axis: sf.one_hot(i, 3, on, off, axis=a, dtype=dtype), _IDX)
        _same(got, want)


def test_one_hot_python_values_choose_the_dtype(run: Runner) -> None:
    """testSimpleCases and testSingleValueGiven: Python ints give int32, floats float32."""
    idx = np.array([0, 1, 2], np.int32)
    eye = np.eye(3)
    _same(run(lambda i: sf.one_hot(i, 3), idx), eye.astype(F32))
    _same(run(lambda i: sf.one_hot(i, 3, dtype=np.int32), idx), eye.astype(I32))
    _same(run(lambda i: sf.one_hot(i, 3, on_value=1, off_value=-1), idx), (2 * eye - 1).astype(I32))
    _same(run(lambda i: sf.one_hot(i, 3, on_value=1), idx), eye.astype(I32))
    _same(run(lambda i: sf.one_hot(i, 3, off_value=0.0), idx), eye.astype(F32))


def test_one_hot_empty_batch_and_uint8_indices(run: Runner) -> None:
    """_testEmpty and testIndicesTypes (uint8 255 is out of range like -1)."""
    empty = np.zeros((0, 16), np.int64)
    _same(run(lambda i: sf.one_hot(i, 3, 1.0, -1.0), empty), np.empty((0, 16, 3), F32))
    idx = np.array([[0, 2, 255, 1], [1, 0, 1, 255]], np.uint8)
    want = np.where(idx[..., None] == np.arange(3), 1.0, -1.0).astype(F32)
    _same(run(lambda i: sf.one_hot(i, 3, 1.0, -1.0), idx), want)
    _same(run(lambda i: sf.one_hot(i, 3, 1.0, -1.0, axis=1), idx), np.swapaxes(want, 1, 2))


def test_one_hot_dtype_mismatches_are_type_errors() -> None:
    """testOnOffMismatchTypeError and testDtypeMismatchTypeError."""
    with pytest.raises(TypeError, match=r"^one_hot\(\): off_value has dtype float32, but the "):
        sf.one_hot([0, 1, 2], 3, on_value=np.asarray(1.0), off_value=np.float32(0.0))
    f32 = sf.constant(1.0)
    for kwargs in ({"on_value": f32}, {"off_value": f32}):
        with pytest.raises(TypeError, match=r"has dtype float32, but the output is int32 \(set"):
            sf.one_hot([0, 1, 2], 3, dtype=np.int32, **kwargs)


def test_one_hot_python_values_convert_to_the_dtype(run: Runner) -> None:
    """testConvertToTensorOfCorrectDtype: Python floats take a float16 dtype."""
    idx = np.array([0, 1, 2], np.int32)
    eye = np.eye(3, dtype=F16)
    half = np.float16(0.0)
    _same(run(lambda i: sf.one_hot(i, 3, 1.0, sf.constant(half), dtype=F16), idx), eye)
    _same(run(lambda i: sf.one_hot(i, 3, 1.0, 0.0, dtype=F16), idx), eye)


# -- array_ops/gather_op_test.py -------------------------------------------------------------

_BATCH_CASES = [
    (0, None, [6, 7, 8, 9], [[2, 1], [0, 3]], [[8, 7], [6, 9]]),
    (1, None, [[10, 11, 12, 13], [20, 21, 22, 23]], [[2, 1], [0, 3]], [[12, 11], [20, 23]]),
    (-1, None, [[10, 11, 12, 13], [20, 21, 22, 23]], [[2, 1], [0, 3]], [[12, 11], [20, 23]]),
    (1, None, [[10, 11, 12, 13], [20, 21, 22, 23]], [2, 1], [12, 21]),
    (2, None, [[[100, 101], [110, 111]], [[200, 201], [210, 211]]],
     [[[0, 1], [1, 0]], [[0, 0], [1, 1]]], [[[100, 101], [111, 110]], [[200, 200], [211, 211]]]),
    (None, 1, [[10, 11, 12], [13, 14, 15]], [1, 0], [[11, 10], [14, 13]]),
    (-3, 1, [[0, 1, 2], [3, 4, 5]], [[[0, 1], [1, 0]]], [[[[0, 1], [1, 0]]], [[[3, 4], [4, 3]]]]),
]  # fmt: skip


@pytest.mark.parametrize(("batch_dims", "axis", "params", "indices", "expected"), _BATCH_CASES)
def test_gather_batch_dims(
    run: Runner, batch_dims: Any, axis: Any, params: Any, indices: Any, expected: Any
) -> None:
    """testBatchDims: batch_dims None, negative and positive; axis None means batch_dims."""
    p, i = np.asarray(params, np.int32), np.asarray(indices, np.int32)
    got = run(lambda a, b: sf.gather(a, b, axis=axis, batch_dims=batch_dims), p, i)
    _same(got, np.asarray(expected, np.int32))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_empty_slices(run: Runner, axis: int) -> None:
    """testEmptySlices: a gather along a non-empty axis of an otherwise empty tensor."""
    shape = [0, 0, 0]
    shape[axis] = 7
    want = [0, 0, 0]
    want[axis] = 2
    got = run(lambda p: sf.gather(p, [3, 4], axis=axis), np.zeros(shape, F32))
    _same(got, np.zeros(want, F32))


def test_gather_bad_indices_name_the_position() -> None:
    """testBadIndicesCPU: the error says which index is out of which range."""
    params = [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(sf.InvalidArgumentError, match=r"indices\[0,0\] = 7 is not in \[0, 2\)"):
        sf.gather(params, [[7]], axis=0)
    with pytest.raises(sf.InvalidArgumentError, match=r"indices\[1,0\] = 7 is not in \[0, 3\)"):
        sf.gather(params, [[1], [7]], axis=1)


def test_gather_bad_index_type_and_axis() -> None:
    """testBadIndicesType and testBadAxis."""
    with pytest.raises(TypeError, match=r"float.* not in.* list of allowed values: int16, int32"):
        sf.gather([0], 0.0)
    for bad_axis in (1, 2, -2):
        with pytest.raises(ValueError, match=r"Shape must be at least rank .* but is rank 1"):
            sf.gather([0, 1, 2], 0, axis=bad_axis)


@pytest.mark.parametrize("batch_dims", [-(2**31), 2**31 - 1])
def test_gather_batch_dims_extreme_bounds(batch_dims: int) -> None:
    """testBatchDimsExtremeBounds: a clear ValueError, in eager code and in a graph."""
    with pytest.raises(ValueError, match=r"Expected batch_dims in the range \[-1, 1\]"):
        sf.gather([[0.69]], [0], batch_dims=batch_dims)
    with sf.Graph().as_default():
        idx = sf.placeholder(sf.int32, shape=[None])
        with pytest.raises(ValueError, match=r"Expected batch_dims in the range \[-1, 1\]"):
            sf.gather(sf.constant([[0.69]]), idx, batch_dims=batch_dims)


def test_gather_gradients_of_indices_and_axis_are_none() -> None:
    """testHigherRankGradientTape: only params get a gradient (summed over repeats)."""
    params = np.arange(12, dtype=np.float64).reshape(2, 1, 3, 2)
    p, i, ax = sf.constant(params), sf.constant([[1, 0], [1, 1]]), sf.constant(2)
    upstream = np.arange(16, dtype=np.float64).reshape(2, 1, 2, 2, 2)
    with sf.GradientTape() as tape:
        for t in (p, i, ax):
            tape.watch(t)
        out = sf.gather(p, i, axis=ax)
    dp, di, dax = tape.gradient(out, [p, i, ax], output_gradients=sf.constant(upstream))
    assert di is None
    assert dax is None
    want = np.zeros_like(params)
    for src, dst in enumerate([1, 0, 1, 1]):
        want[:, :, dst] += upstream.reshape(2, 1, 4, 2)[:, :, src]
    np.testing.assert_allclose(dp.numpy(), want)


# -- nn_ops/xent_op_test_base.py and sparse_xent_op_test_base.py ------------------------------


def _xent_and_grad(labels: Any, logits: Any, axis: int = -1) -> tuple[Any, Any]:
    z = sf.constant(logits)
    with sf.GradientTape() as tape:
        tape.watch(z)
        loss = sf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=z, axis=axis)
    return loss.numpy(), tape.gradient(loss, z).numpy()


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
def test_xent_single_class(dtype: np.dtype[Any]) -> None:
    """testSingleClass: one class gives a zero loss; the gradient is 1 - labels."""
    labels = np.array([[-1.0], [0.0], [1.0], [1.0]], dtype)
    logits = np.array([[1.0], [-1.0], [0.0], [1.0]], dtype)
    loss, grad = _xent_and_grad(labels, logits)
    np.testing.assert_allclose(loss, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(grad, [[2.0], [1.0], [0.0], [0.0]])


def test_xent_values_and_gradient() -> None:
    """testNpXent: a uniform row and a soft-target row, checked against TF's numbers."""
    logits = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    labels = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 0.5, 0.0]])
    loss, grad = _xent_and_grad(labels, logits)
    np.testing.assert_allclose(loss, [1.3862, 1.9401], atol=1e-3)
    want = [[0.25, 0.25, 0.25, -0.75], [0.0321, -0.4129, -0.2632, 0.6439]]
    np.testing.assert_allclose(grad, want, atol=1e-3)


def test_xent_labels_broadcast_and_are_cast_to_the_logits_dtype() -> None:
    """testLabelsBroadcast (float16 logits): labels broadcast; int or float64 labels are
    cast to the logits' dtype as TensorFlow's wrapper does."""
    logits = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], F16)
    _, grad = _xent_and_grad(np.array([[0.0], [2.0], [0.25]], F16), logits)
    want = [[0.25, 0.25, 0.25, 0.25], [-1.968, -1.913, -1.763, -1.355],
            [-0.218, -0.163, -0.013, 0.394]]  # fmt: skip
    np.testing.assert_allclose(grad, want, atol=1e-2)
    one_hot = [[0, 0, 0, 1]]  # Python ints
    for labels in (one_hot, np.array(one_hot, np.float64), sf.constant(one_hot)):
        loss, _ = _xent_and_grad(labels, logits[:2].astype(F32))
        assert loss.dtype == F32
        np.testing.assert_allclose(loss, [1.3862944, 0.4401897], rtol=1e-5)


def test_xent_labels_cast_in_a_graph_and_their_gradient() -> None:
    g = sf.Graph()
    with g.as_default():
        labels = sf.placeholder(sf.float64, shape=[None, 3])
        logits = sf.placeholder(sf.float32, shape=[None, 3])
        loss = sf.nn.softmax_cross_entropy_with_logits(labels, logits)
        dlabels, dlogits = sf.gradients(sf.reduce_sum(loss), [labels, logits])
    z = np.array([[0.1, 0.2, 0.7]], np.float32)
    y = np.array([[0.0, 1.0, 0.0]])
    got = sf.Session(g).run([loss, dlabels, dlogits], {labels: y, logits: z})
    log_p = z - np.log(np.exp(z).sum())
    np.testing.assert_allclose(got[0], [-log_p[0, 1]], rtol=1e-6)
    assert got[1].dtype == np.float64
    np.testing.assert_allclose(got[1], -log_p, rtol=1e-6)
    np.testing.assert_allclose(got[2], np.exp(log_p) - y, rtol=1e-6, atol=1e-7)


def test_xent_axes_zero_size_and_shape_mismatch(run: Runner) -> None:
    """test3D, testZeroDimension and testShapeMismatch."""
    labels = np.array([[[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]],
                       [[0.0, 0.5, 0.5, 0.0], [0.5, 0.5, 0.0, 0.0]],
                       [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]], F32)  # fmt: skip
    logits = np.array([[[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]],
                       [[2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0]],
                       [[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]]], F32)  # fmt: skip
    for axis in (0, 1, -1):
        log_p = logits - np.log(np.exp(logits).sum(axis, keepdims=True))
        got = run(
            lambda y, z, a=axis: sf.nn.softmax_cross_entropy_with_logits(y, z, axis=a),
            labels,
            logits,
        )
        np.testing.assert_allclose(got, -(labels * log_p).sum(axis), rtol=1e-5)
    empty = np.zeros([0, 2, 4], F32)
    _same(run(sf.nn.softmax_cross_entropy_with_logits, empty, empty), np.zeros([0, 2], F32))
    with pytest.raises(ValueError, match=r"cannot be broadcast together"):
        sf.nn.softmax_cross_entropy_with_logits(
            labels=[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], logits=[[0.0, 1.0], [2.0, 3.0]]
        )


def test_sparse_xent_invalid_label_wording() -> None:
    """_testInvalidLabelCPU: TensorFlow's message, with the label values."""
    logits = [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]] * 1
    with pytest.raises(
        sf.InvalidArgumentError,
        match=r"Received a label value of 4 which is outside the valid range of \[0, 4\) "
        r"classes\. Label values: 4 3 0$",
    ):
        sf.nn.sparse_softmax_cross_entropy_with_logits(labels=[4, 3, 0], logits=logits)


# -- array_ops/concat_op_test.py --------------------------------------------------------------


def test_concat_of_one_tensor_not_in_a_list(run: Runner) -> None:
    """testConcatTuple / a lone tensor: TensorFlow treats it as a list of one."""
    x = np.arange(6, dtype=F32).reshape(2, 3)
    _same(run(lambda t: sf.concat(t, 1), x), x)
    _same(run(lambda t: sf.concat((t, t), -1), x), np.concatenate([x, x], -1))


# -- math_ops/reduction_ops_test.py -----------------------------------------------------------

_REDUCTIONS = [sf.reduce_sum, sf.reduce_mean, sf.reduce_prod, sf.reduce_max, sf.reduce_min]


def _powerset(n: int) -> list[tuple[int, ...]]:
    return [tuple(a for a in range(n) if mask >> a & 1) for mask in range(1 << n)]


@pytest.mark.parametrize("dtype", [I32, F32, F64, C64], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_over_every_axis_subset(dtype: np.dtype[Any], keepdims: bool) -> None:
    """_compareAllAxes on incremental data: every subset of axes, both keepdims."""
    x = np.arange(8).reshape(2, 2, 2).astype(dtype)
    if dtype.kind == "c":
        x -= 2j * x
    for axes in [None, *_powerset(3)]:
        # NumPy widens int32 sums and products; TensorFlow keeps the input dtype.
        want_sum = np.sum(x, axis=axes, keepdims=keepdims).astype(dtype)
        _same(sf.reduce_sum(x, axes, keepdims).numpy(), want_sum)
        count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        want_mean = want_sum // count if dtype.kind == "i" else want_sum / count
        np.testing.assert_allclose(
            sf.reduce_mean(x, axes, keepdims).numpy(), want_mean.astype(dtype), rtol=1e-6
        )
        want_prod = np.prod(x, axis=axes, keepdims=keepdims).astype(dtype)
        _same(sf.reduce_prod(x, axes, keepdims).numpy(), want_prod)


def test_reduction_axis_errors_use_tensorflows_words() -> None:
    """testInvalidIndex, testWrongShapeForReductionIndices, testInvalidRepeatedReduction
    Indices and ReductionInvalidKeepdims."""
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    for axes in ([-3], [2], [0, 2]):
        with pytest.raises(ValueError, match=r"Invalid reduction dimension"):
            sf.reduce_sum(x, axes)
    with pytest.raises(ValueError, match=r"must be at most rank 1|at most rank 1"):
        sf.reduce_sum(x, [[1], [2]])
    with pytest.raises(sf.InvalidArgumentError, match=r"Axes contains duplicate dimension: 0"):
        sf.reduce_sum([1.0, 2.0], sf.constant([0, 0]))
    for fn, value in ((sf.reduce_sum, 1), (sf.reduce_all, True)):
        with pytest.raises(ValueError, match=r"The truth value"):
            fn(input_tensor=value, keepdims=np.array([63600, 1], np.float16))


def test_reductions_of_unknown_shape_and_axis_tensors() -> None:
    """ReductionUnknownShape.testBasic and testAxesType."""
    with sf.Graph().as_default():
        x = sf.placeholder(sf.float32, shape=None)
        b = sf.placeholder(sf.bool_, shape=None)
        for fn in _REDUCTIONS:
            assert fn(x).shape == ()
        assert sf.reduce_all(b).shape == ()
        assert sf.reduce_any(b).shape == ()
        assert sf.reduce_sum(x, [1, 2], keepdims=True).shape is None
    for dtype in (sf.int32, sf.int64):
        for fn in (sf.reduce_sum, sf.reduce_mean, sf.reduce_prod):
            assert fn([0, 0], sf.constant(0, dtype=dtype)).numpy() == 0


def test_reductions_of_zero_size_tensors(run: Runner) -> None:
    """testExpand, testDegenerate and testEmptyGradients."""
    empty = np.zeros((0, 5), F32)
    _same(run(lambda t: sf.reduce_sum(t, 0), empty), np.zeros(5, F32))
    _same(run(lambda t: sf.reduce_prod(t, 0), empty), np.ones(5, F32))
    _same(run(lambda t: sf.reduce_sum(t, [1]), np.zeros((5, 0), F32)), np.zeros(5, F32))
    assert np.isnan(run(lambda t: sf.reduce_mean(t, 0), empty)).all()
    x = sf.zeros([0, 3])
    for fn in (sf.reduce_sum, sf.reduce_mean, sf.reduce_prod):
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, [1])
        _same(tape.gradient(y, x).numpy(), np.zeros((0, 3), F32))


# -- gradients at the edges (clip_ops_test, cwise_ops_test, reduction_ops_test) ----------------


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "function"])
def test_gradients_at_ties_and_bounds_follow_tensorflow(traced: bool) -> None:
    """TensorFlow's choices where the maths has a kink: clip passes the gradient at a
    bound (and the bound gets it outside), maximum/minimum give ties to ``x``, reduce_max
    splits it between ties, abs and relu give 0 at 0."""

    def grads(x: Any, lo: Any, hi: Any, a: Any, b: Any) -> list[Any]:
        with sf.GradientTape(persistent=True) as tape:
            tape.watch([x, lo, hi, a, b])
            clip = sf.clip_by_value(x, lo, hi)
            big, small = sf.maximum(a, b), sf.minimum(a, b)
            top = sf.reduce_max(sf.concat([a, b], 0))
            kinks = sf.abs(x) + sf.nn.relu(x)
        out = [*tape.gradient(clip, [x, lo, hi]), *tape.gradient(big, [a, b])]
        out += [*tape.gradient(small, [a, b]), *tape.gradient(top, [a, b])]
        return [*out, tape.gradient(kinks, x)]

    fn = sf.function(grads) if traced else grads
    args = [sf.constant(v) for v in ([-1.0, 0.0, 0.5, 1.0, 2.0], 0.0, [1.0] * 5, [1.0, 3.0],
                                     [1.0, 3.0])]  # fmt: skip
    got = [g.numpy().tolist() for g in fn(*args)]
    assert got == [
        [0.0, 1.0, 1.0, 1.0, 0.0], 1.0, [0.0, 0.0, 0.0, 0.0, 1.0],  # clip: x, lo, hi
        [1.0, 1.0], [0.0, 0.0],  # maximum ties go to x
        [1.0, 1.0], [0.0, 0.0],  # minimum ties go to x
        [0.0, 0.5], [0.0, 0.5],  # reduce_max splits between the tied 3.0s
        [-1.0, 0.0, 2.0, 2.0, 2.0],  # d(|x| + relu(x)) is 0 at 0
    ]  # fmt: skip


def test_cross_entropy_gradients_at_huge_logits_and_second_order() -> None:
    """No overflow at +-1e4; the second derivative matches finite differences."""
    z = sf.constant([[1e4, -1e4, 0.0]], dtype=sf.float64)
    with sf.GradientTape() as tape:
        tape.watch(z)
        loss = sf.nn.softmax_cross_entropy_with_logits([[0.0, 1.0, 0.0]], z)
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), [[1.0, -1.0, 0.0]], atol=1e-12)

    labels = np.array([0.2, 0.3, 0.5])

    def hess_row(v: Any) -> Any:
        t = sf.constant(v)
        with sf.GradientTape() as outer:
            outer.watch(t)
            with sf.GradientTape() as inner:
                inner.watch(t)
                y = sf.nn.softmax_cross_entropy_with_logits(labels, t)
            g = inner.gradient(y, t)
            first = g[0]
        return g.numpy(), outer.gradient(first, t).numpy()

    v = np.array([0.1, -0.4, 0.7])
    _, h = hess_row(v)
    eps = 1e-6
    numeric = [
        (hess_row(v + eps * e)[0][0] - hess_row(v - eps * e)[0][0]) / (2 * eps) for e in np.eye(3)
    ]
    np.testing.assert_allclose(h, numeric, rtol=1e-6, atol=1e-8)


# -- math_ops/argmax_op_test.py ---------------------------------------------------------------


def test_argmax_argmin_empty_default_axis_and_output_empty() -> None:
    """testEmpty, testDefaultAxis, testOutputEmpty and a bad axis."""
    for op in (sf.argmin, sf.argmax):
        with pytest.raises(
            sf.InvalidArgumentError, match=r"Reduction axis 0 is empty in shape \[0\]"
        ):
            op([], 0)
        assert op([1]).numpy() == 0
        out = op(sf.zeros([1, 0, 2]), axis=-1)
        assert out.shape == (1, 0)
        assert out.dtype == np.int64
        with pytest.raises(
            ValueError, match=r"Expected dimension in the range \[-1, 1\), but got 1"
        ):
            op([1.0, 2.0], 1)


def test_argmax_ties_take_the_first_index(run: Runner) -> None:
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.int32)
    _same(run(lambda t: sf.argmax(t, axis=1), x), np.array([1, 0], np.int64))
    _same(run(lambda t: sf.argmin(t, axis=1, output_type=sf.int32), x), np.array([3, 0], I32))


# -- array_ops/pad_op_test.py -----------------------------------------------------------------


def test_pad_paddings_errors_and_scalars() -> None:
    """testPaddingsDim*, testPaddingsNonNegative, testPaddingsMaximum, and a scalar."""
    x = sf.reshape([1, 2], [1, 2])
    for paddings in ([1, 2], [[1], [2]], [[1, 2]], [[1, 2], [3, 4], [5, 6]]):
        with pytest.raises(ValueError, match=r"paddings"):
            sf.pad(x, paddings)
    with pytest.raises(ValueError, match=r"must be non-negative"):
        sf.pad(sf.constant([1], shape=[1]), sf.constant([-1, 0], shape=[1, 2]))
    two = sf.constant([1], shape=[2])
    with pytest.raises(ValueError, match=r"REFLECT padding of dimension 0 must be less than"):
        sf.pad(two, [[2, 0]], mode="REFLECT")
    with pytest.raises(ValueError, match=r"SYMMETRIC padding of dimension 0 must be at most"):
        sf.pad(two, [[0, 3]], mode="SYMMETRIC")
    for mode in ("CONSTANT", "reflect", "Symmetric"):
        assert float(sf.pad(5.0, np.zeros((0, 2), np.int32), mode=mode)) == 5.0


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC"])
@pytest.mark.parametrize("dtype", [I32, I64, F32, F64], ids=str)
def test_pad_matches_numpy(run: Runner, mode: str, dtype: np.dtype[Any]) -> None:
    """_testPad / testIntTypes / testFloatTypes against np.pad."""
    x = (np.arange(36) * 3 % 17).reshape(4, 3, 3).astype(dtype)
    paddings = [[1, 0], [2, 2], [0, 2]]
    want = np.pad(x, paddings, mode=mode.lower())
    _same(run(lambda t: sf.pad(t, paddings, mode=mode), x), want)


# -- array_ops/split_op_test.py ---------------------------------------------------------------


def test_split_uneven_and_size_lists(run: Runner) -> None:
    """testSplitCols / testSpecialCasesVariable / an uneven split is an error."""
    x = np.arange(24, dtype=F32).reshape(4, 6)
    for sizes in ([1, 2, 3], [1, -1, 2], [6]):
        pieces = np.split(x, np.cumsum([6 - sum(s for s in sizes if s > 0) if s == -1 else s
                                        for s in sizes])[:-1], axis=1)  # fmt: skip
        for k, want in enumerate(pieces):
            _same(run(lambda t, k=k, s=sizes: sf.split(t, s, axis=1)[k], x), want)
    _same(run(lambda t: sf.split(t, 2, axis=-2)[1], x), x[2:])
    with pytest.raises(ValueError, match=r"Number of ways to split should evenly divide the split"):
        sf.split(x, 4, axis=1)


def test_one_hot_depth_known_only_at_run_time() -> None:
    """``one_hot(labels, depth=tf.shape(logits)[-1])`` with unknown sizes, and a fed depth."""
    g = sf.Graph()
    with g.as_default():
        depth = sf.placeholder(sf.int32, [])
        idx = sf.placeholder(sf.int32, [None])
        on = sf.placeholder(sf.float32, [])
        logits = sf.placeholder(sf.float32, [None, None])
        fed = sf.one_hot(idx, depth, on_value=on, off_value=0.0, axis=0)
        from_shape = sf.one_hot(idx, sf.shape(logits)[-1])
        (d_on,) = sf.gradients(sf.reduce_sum(fed * 3.0), [on])
        with pytest.raises(TypeError, match=r"^OneHot: depth must be a scalar int tensor"):
            sf.one_hot(idx, sf.placeholder(sf.float32, []))
    assert fed.shape == (None, None)
    assert from_shape.shape == (None, None)
    sess = sf.Session(g)
    got, grad = sess.run([fed, d_on], {depth: 4, idx: [1, 0], on: 2.0})
    _same(got, np.array([[0, 2], [2, 0], [0, 0], [0, 0]], F32))
    assert grad == 6.0
    zeros = np.zeros((2, 3), np.float32)
    _same(sess.run(from_shape, {logits: zeros, idx: [2, 5]}), np.array([[0, 0, 1], [0, 0, 0]], F32))
    with pytest.raises(sf.InvalidArgumentError, match=r"depth must be >= 0, got -1"):
        sess.run(fed, {depth: -1, idx: [1], on: 1.0})

    @sf.function(input_signature=[sf.TensorSpec([None, None], sf.float32)])
    def traced(z: Any) -> Any:
        return sf.one_hot(sf.argmax(z, axis=1), sf.shape(z)[1])

    _same(traced(sf.constant([[0.0, 5.0, 1.0]])).numpy(), np.array([[0, 1, 0]], F32))


# -- math_ops/math_ops_test.py, cwise_ops_binary_test.py: dtypes, division, NaN ---------------


def test_error_received_if_dtype_mismatch_from_op() -> None:
    """BinaryOpsTest.testErrorReceivedIfDtypeMismatchFromOp: TF never promotes int32 + float32.

    TF raises InvalidArgumentError eagerly and TypeError in a graph; scopeflow raises
    TypeError in every mode (documented: "bad types TypeError", coming-from-tensorflow.md).
    """
    for build in (lambda: sf.constant(1) + sf.constant(1.0), lambda: sf.matmul([[1]], [[1.0]])):
        with pytest.raises(TypeError, match="same dtype"):
            build()
    with sf.Graph().as_default(), pytest.raises(TypeError, match="same dtype"):
        sf.add(sf.placeholder(sf.int32, ()), sf.placeholder(sf.float32, ()))


def test_floor_div_and_mod_int(run: Runner) -> None:
    """DivAndModTest.testFloorModInt, testFloorDivideInt and testConsistent: Python's floor
    semantics for every sign combination, and x == y * (x // y) + x % y."""
    x = np.array([-7, 7, -7, 7, 0, -1], I32)
    y = np.array([2, -2, -2, 2, 3, 5], I32)
    _same(run(sf.floordiv, x, y), x // y)
    _same(run(sf.mod, x, y), x % y)
    _same(run(lambda a, b: a // b, x, y), x // y)
    _same(run(lambda a, b: a % b, x, y), x % y)
    q, r = run(sf.floordiv, x, y), run(sf.mod, x, y)
    _same(y * q + r, x)


def test_floor_mod_and_div_float(run: Runner) -> None:
    """DivAndModTest.testFloorModFloat and testFloorDivideFloat: the result takes the
    divisor's sign; division by zero gives inf or nan, not an error."""
    x = np.array([-7.5, 7.5, -7.5, 7.5], F32)
    y = np.array([2.0, -2.0, -2.0, 2.0], F32)
    _same(run(sf.mod, x, y), np.mod(x, y))
    _same(run(sf.floordiv, x, y), np.floor_divide(x, y))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.array([1.0, -1.0, 0.0], F32)
        _same(run(sf.floordiv, z, np.zeros(3, F32)), np.array([np.inf, -np.inf, np.nan], F32))
        assert np.isnan(run(sf.mod, z, np.zeros(3, F32))).all()


def test_integer_division_by_zero_is_invalid_argument() -> None:
    """DivAndModTest (integer divide-by-zero): TF's CPU kernels fail with
    InvalidArgumentError ("Integer division by zero") for FloorDiv and FloorMod."""
    for fn in (sf.floordiv, sf.mod):
        with pytest.raises(sf.InvalidArgumentError, match="by zero"):
            fn(sf.constant([1, 2]), sf.constant([1, 0]))


def test_divide_int(run: Runner) -> None:
    """DivAndModTest.testDivideInt and testRealDiv: true division of int32 gives float64
    (inf/nan at zero, no error); floats keep their dtype."""
    x = np.array([7, -7, 1, 0], I32)
    y = np.array([2, 2, 0, 0], I32)
    with np.errstate(divide="ignore", invalid="ignore"):
        _same(run(sf.divide, x, y), np.array([3.5, -3.5, np.inf, np.nan]))
    _same(run(lambda a, b: a / b, x[:2], y[:2]), np.array([3.5, -3.5]))
    _same(run(sf.divide, x.astype(F16), np.full(4, 2, F16)), (x / 2).astype(F16))


def test_divide_small_int_dtype_is_float32() -> None:
    """_TRUEDIV_TABLE: int8/int16/uint8/uint16 divide to float32, wider integers to float64."""
    for dtype, want in [(np.int8, F32), (np.uint16, F32), (np.int32, F64), (np.uint64, F64)]:
        out = sf.divide(sf.constant(np.array([7], dtype)), sf.constant(np.array([2], dtype)))
        assert out.dtype == want, dtype
        np.testing.assert_array_equal(out.numpy(), [3.5])


def test_integer_ops_wrap_around(run: Runner) -> None:
    """cwise_ops_binary_test testInt*: integer arithmetic keeps the dtype and wraps."""
    big = np.array([2**31 - 1], I32)
    _same(run(lambda a: a + 1, big), np.array([-(2**31)], I32))
    u = np.array([0], np.uint8)
    _same(run(lambda a: sf.subtract(a, sf.constant(np.array([1], np.uint8))), u), [np.uint8(255)])
    _same(run(sf.abs, np.array([-128], np.int8)), np.array([-128], np.int8))
    _same(run(sf.reduce_sum, np.array([100, 100], np.int8)), np.int8(-56))


def test_min_max_nan_propagation(run: Runner) -> None:
    """MinMaxOpTest / testNaNPropagation: maximum and minimum return NaN if either is NaN,
    and so do reduce_max/reduce_min."""
    a = np.array([np.nan, 1.0, 2.0], F32)
    b = np.array([1.0, np.nan, 1.0], F32)
    assert np.isnan(run(sf.maximum, a, b)[:2]).all()
    assert np.isnan(run(sf.minimum, a, b)[:2]).all()
    assert run(sf.maximum, a, b)[2] == 2.0
    assert np.isnan(run(sf.reduce_max, a))
    assert np.isnan(run(sf.reduce_min, a))


def test_bcast_mismatched_shapes() -> None:
    """BinaryOpTest.testMismatchedDimensions: incompatible shapes fail (TF: ValueError at
    build time, InvalidArgumentError eagerly; both are ValueErrors in scopeflow)."""
    with pytest.raises(ValueError, match="broadcast"):
        sf.constant([1, 2, 3]) + sf.constant([1, 2])
    with sf.Graph().as_default(), pytest.raises(ValueError, match="broadcast"):
        sf.placeholder(sf.float32, (3,)) * sf.placeholder(sf.float32, (2,))


def test_pow_integer_negative_exponent() -> None:
    """math_ops_test PowTest / cwise_ops_binary_test testPowNegativeExponent: integers to
    negative integer powers are an InvalidArgumentError; non-negative ones stay integers."""
    with pytest.raises(sf.InvalidArgumentError, match="negative integer powers"):
        sf.pow(sf.constant([2]), sf.constant([-1]))
    _same(
        sf.pow(sf.constant([2, -2, 0]), sf.constant([3, 3, 0])).numpy(), np.array([8, -8, 1], I32)
    )


def test_unary_edges(run: Runner) -> None:
    """cwise_ops_unary_test (testFloatBasic, RoundingTest, testSign): NaN and inf propagate;
    round is half-to-even; sign(0) is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.array([-np.inf, -1.0, -0.0, 0.0, 1.0, np.inf, np.nan], F32)
        for fn, ref in ((sf.exp, np.exp), (sf.tanh, np.tanh), (sf.sqrt, np.sqrt),
                        (sf.log, np.log), (sf.log1p, np.log1p), (sf.abs, np.abs),
                        (sf.negative, np.negative), (sf.reciprocal, np.reciprocal),
                        (sf.floor, np.floor)):  # fmt: skip
            _same(run(fn, x), ref(x))
    _same(
        run(sf.round, np.array([0.5, 1.5, 2.5, -0.5, -1.5], F32)), np.array([0, 2, 2, -0, -2], F32)
    )
    _same(run(sf.sign, np.array([-3, 0, 4], I32)), np.array([-1, 0, 1], I32))
    _same(run(sf.sigmoid, np.array([-1000.0, 0.0, 1000.0], F32)), np.array([0, 0.5, 1], F32))
    _same(run(sf.nn.relu, np.array([np.nan, -1.0, 2.0], F32)), np.array([np.nan, 0.0, 2.0], F32))
    _same(run(sf.nn.relu, np.array([-3, 4], I32)), np.array([0, 4], I32))


def test_float_only_ops_refuse_integers() -> None:
    """cwise_ops_unary_test: exp/sqrt/sigmoid/floor/softmax are registered for floats only, so
    an int32 input is a TypeError, as in TF (round and abs accept integers)."""
    for fn in (sf.exp, sf.sqrt, sf.sigmoid, sf.floor, sf.rsqrt, sf.nn.softmax):
        with pytest.raises(TypeError):
            fn(sf.constant([1]))
    with pytest.raises(TypeError):
        sf.add(sf.constant([True]), sf.constant([False]))


# -- math_ops/matmul_op_test.py, batch_matmul_op_test.py -----------------------------------------


def test_matmul_transposes_and_dtypes(run: Runner) -> None:
    """MatMulTest (testSimple, transpose_a/transpose_b, int32 and float16)."""
    a = np.arange(6, dtype=F32).reshape(2, 3)
    b = np.arange(12, dtype=F32).reshape(3, 4)
    _same(run(sf.matmul, a, b), a @ b)
    _same(run(lambda x, y: sf.matmul(x, y, transpose_a=True), a.T.copy(), b), a @ b)
    _same(run(lambda x, y: sf.matmul(x, y, transpose_b=True), a, b.T.copy()), a @ b)
    _same(run(lambda x, y: x @ y, a.astype(I32), b.astype(I32)), (a @ b).astype(I32))
    _same(run(sf.matmul, a.astype(F16), b.astype(F16)), (a @ b).astype(F16))


def test_matmul_empty(run: Runner) -> None:
    """MatMulTest.testEmpty (zero inner dimension gives zeros) and zero-size outer ones."""
    _same(run(sf.matmul, np.ones((2, 0), F32), np.ones((0, 3), F32)), np.zeros((2, 3), F32))
    _same(run(sf.matmul, np.ones((0, 2), F32), np.ones((2, 3), F32)), np.zeros((0, 3), F32))


def test_batch_matmul_broadcast(run: Runner) -> None:
    """BatchMatmulOpTest (testBroadcasting): batch dimensions broadcast."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 1, 2, 3)).astype(F32)
    b = rng.standard_normal((3, 3, 4)).astype(F32)
    out = run(sf.matmul, a, b)
    assert out.shape == (2, 3, 2, 4)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5, atol=1e-6)


def test_matmul_shape_errors() -> None:
    """MatMulTest shape checks: rank < 2 and mismatched inner dimensions fail when built."""
    with pytest.raises(ValueError, match="rank"):
        sf.matmul(sf.constant([1.0, 2.0]), sf.constant([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="inner dimensions"):
        sf.matmul(sf.ones([2, 3]), sf.ones([2, 3]))
    with sf.Graph().as_default(), pytest.raises(ValueError, match="inner dimensions"):
        sf.matmul(sf.placeholder(sf.float32, (None, 3)), sf.placeholder(sf.float32, (2, None)))


# -- math_ops/reduction_ops_test.py --------------------------------------------------------------


def test_reduce_duplicate_axes_are_invalid() -> None:
    """ReductionHelper: "Axes contains duplicate dimension" (also after normalising -1)."""
    x = sf.constant([[1, 2], [3, 4]])
    for axis in ([0, 0], [1, -1]):
        with pytest.raises(sf.InvalidArgumentError, match="duplicate dimension"):
            sf.reduce_sum(x, axis)


def test_reduce_mean_of_integers_truncates(run: Runner) -> None:
    """MeanReductionTest (testInt32): an integer mean stays an integer (truncated)."""
    _same(run(sf.reduce_mean, np.array([1, 2], I32)), I32.type(1))
    _same(
        run(lambda t: sf.reduce_mean(t, -1, keepdims=True), np.array([[-1, -2]], I32)),
        np.array([[-1]], I32),
    )


def test_reduce_all_any_empty_and_negative_axis(run: Runner) -> None:
    """AllReductionTest / AnyReductionTest (testEmpty, testAxesType)."""
    b = np.array([[True, False], [True, True]])
    _same(run(lambda t: sf.reduce_all(t, -1), b), np.array([False, True]))
    _same(run(lambda t: sf.reduce_any(t, -2), b), np.array([True, True]))
    _same(run(sf.reduce_any, np.zeros((0,), bool)), np.bool_(False))
    _same(run(sf.reduce_all, np.zeros((0,), bool)), np.bool_(True))


def test_reduce_max_of_nothing() -> None:
    """MaxReductionTest/MinReductionTest over no elements: the identity (-inf / +inf, or
    the dtype's lowest/highest integer)."""
    assert float(sf.reduce_max(sf.zeros([0]))) == -np.inf
    assert float(sf.reduce_min(sf.zeros([0]))) == np.inf
    assert int(sf.reduce_max(sf.zeros([0], sf.int8))) == -128
    assert int(sf.reduce_min(sf.zeros([0], sf.uint8))) == 255


# -- nn_ops/softmax_op_test.py, xent_op_test.py, sparse_xent_op_test.py, nn_xent_test.py --------


def _np_softmax(x: np.ndarray[Any, Any], axis: int = -1) -> np.ndarray[Any, Any]:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    out: np.ndarray[Any, Any] = e / e.sum(axis=axis, keepdims=True)
    return out


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
def test_softmax_and_log_softmax_along_each_axis(run: Runner, dtype: np.dtype[Any]) -> None:
    """SoftmaxTest.testFloat/testDouble/testHalf, testAlongFirstDimension, testSoftmaxAxes."""
    x = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]], dtype)
    tol = 1e-3 if dtype == F16 else 1e-6
    for axis in (-1, 0, 1):
        want = _np_softmax(x.astype(F64), axis)
        got = run(lambda t, a=axis: sf.nn.softmax(t, axis=a), x)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        got = run(lambda t, a=axis: sf.nn.log_softmax(t, axis=a), x)
        np.testing.assert_allclose(got, np.log(want), rtol=tol, atol=tol)


def test_softmax_large_and_empty_and_bad_axis(run: Runner) -> None:
    """SoftmaxTest.testLargeDims-style stability, testEmptyInput and testDimTooLarge."""
    big = np.array([[1000.0, 0.0]], F32)
    _same(run(sf.nn.log_softmax, big), np.array([[0.0, -1000.0]], F32))
    _same(run(sf.nn.softmax, big), np.array([[1.0, 0.0]], F32))
    _same(run(sf.nn.softmax, np.zeros((0, 3), F32)), np.zeros((0, 3), F32))
    with pytest.raises(ValueError):
        sf.nn.softmax(sf.constant([[1.0, 2.0]]), axis=2)


def test_sparse_xent_vector_high_dim_and_invalid_label() -> None:
    """SparseXentTest.testVector, testHighDim, testInvalidLabel, testShapeMismatch."""
    logits = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], F32)
    want = -np.log(_np_softmax(logits.astype(F64)))[[0, 1], [2, 0]]
    for dt in (I32, I64):
        got = sf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=sf.constant(np.array([2, 0], dt)), logits=sf.constant(logits)
        )
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    high = sf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=sf.constant([[2, 0]]), logits=sf.constant(logits[None])
    )
    np.testing.assert_allclose(high.numpy(), want[None], rtol=1e-6)
    for bad in ([0, 3], [-1, 0]):
        with pytest.raises(sf.InvalidArgumentError, match="outside the valid range"):
            sf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=sf.constant(bad), logits=sf.constant(logits)
            )
    with pytest.raises(ValueError):
        sf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=sf.constant([[0, 1]]), logits=sf.constant(logits)
        )


def test_sigmoid_xent_logistic_output_and_shape_error(run: Runner) -> None:
    """SigmoidCrossEntropyWithLogitsTest.testLogisticOutput(MultiDim), testShapeError: the
    stable formula max(x, 0) - x * z + log(1 + exp(-|x|))."""
    x = np.array([[-100.0, -2.0, 0.0, 2.0, 100.0]], F32)
    z = np.array([[0.0, 0.0, 0.5, 1.0, 1.0]], F32)
    want = (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x.astype(F64))))).astype(F32)
    got = run(lambda a, b: sf.nn.sigmoid_cross_entropy_with_logits(labels=a, logits=b), z, x)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        sf.nn.sigmoid_cross_entropy_with_logits(
            labels=sf.constant([0.0, 1.0, 1.0]), logits=sf.constant([1.0, 2.0])
        )


# -- array_ops: reshape, concat, stack, tile, squeeze/expand_dims, transpose, fill, range ---------


def test_reshape_infers_and_refuses(run: Runner) -> None:
    """ReshapeTest (testFloatBasic, testZeroDim with -1, testErrors)."""
    x = np.arange(6, dtype=F32)
    _same(run(lambda t: sf.reshape(t, [-1, 2]), x), x.reshape(3, 2))
    _same(run(lambda t: sf.reshape(t, [-1, 3]), np.zeros((0, 3), F32)), np.zeros((0, 3), F32))
    _same(run(lambda t: sf.reshape(t, []), np.array([5], I32)), I32.type(5))
    for shape in ([4, -1], [-1, -1], [7]):
        with pytest.raises(ValueError):
            sf.reshape(sf.constant(x), shape)


def test_concat_zero_size_negative_axis_and_errors(run: Runner) -> None:
    """ConcatOpTest (testZeroSize, testConcatNegativeAxis, testConcatDtype mismatches,
    testInvalidConcatDimTypeAndShape)."""
    a = np.zeros((0, 3), F32)
    b = np.ones((2, 3), F32)
    _same(run(lambda x, y: sf.concat([x, y], 0), a, b), b)
    _same(run(lambda x, y: sf.concat([x, y], -1), b, b), np.ones((2, 6), F32))
    with pytest.raises(TypeError, match="same dtype"):
        sf.concat([sf.constant([1]), sf.constant([2.0])], 0)
    with pytest.raises(ValueError):
        sf.concat([sf.constant([1]), sf.constant([[2]])], 0)
    with pytest.raises(ValueError):
        sf.concat([sf.constant([1]), sf.constant([2])], 1)


def test_stack_axis_range_and_scalars(run: Runner) -> None:
    """StackOpTest (testSimple, testAxis0Default, testAxisOutOfRange,
    testAxisOutOfNegativeRange, testConst of scalars)."""
    a, b = np.array([1, 2], I32), np.array([3, 4], I32)
    _same(run(lambda x, y: sf.stack([x, y]), a, b), np.stack([a, b]))
    _same(run(lambda x, y: sf.stack([x, y], axis=-1), a, b), np.stack([a, b], -1))
    _same(sf.stack([sf.constant(1), sf.constant(2)]).numpy(), np.array([1, 2], I32))
    for axis in (3, -4):
        with pytest.raises(ValueError, match="out of range"):
            sf.stack([sf.constant(a), sf.constant(b)], axis=axis)
    with pytest.raises(ValueError):
        sf.stack([sf.constant([1, 2]), sf.constant([3])])


def test_tile_simple_empty_scalar_and_errors(run: Runner) -> None:
    """TileTest (testScalar, testSimple, testEmpty, testInvalidDim / wrong multiples length)."""
    x = np.array([[1, 2]], I32)
    _same(run(lambda t: sf.tile(t, [2, 2]), x), np.tile(x, (2, 2)))
    _same(run(lambda t: sf.tile(t, [0, 2]), x), np.zeros((0, 4), I32))
    _same(sf.tile(sf.constant(1), []).numpy(), I32.type(1))
    with pytest.raises(ValueError):
        sf.tile(sf.constant(x), [2])
    with pytest.raises(ValueError):
        sf.tile(sf.constant(x), [2, -1])


def test_squeeze_and_expand_dims(run: Runner) -> None:
    """ShapeOpsTest.testSqueeze(SpecificDimension, AllOnes, Errors) and testExpandDims
    (axis in [-rank-1, rank])."""
    x = np.zeros((1, 2, 1), F32)
    _same(run(sf.squeeze, x), np.zeros(2, F32))
    _same(run(lambda t: sf.squeeze(t, [-1]), x), np.zeros((1, 2), F32))
    _same(run(sf.squeeze, np.zeros((1, 1), F32)), F32.type(0))
    with pytest.raises(ValueError, match="cannot squeeze"):
        sf.squeeze(sf.constant(x), [1])
    v = np.array([1, 2], I32)
    for axis, shape in ((0, (1, 2)), (1, (2, 1)), (-1, (2, 1)), (-2, (1, 2))):
        assert run(lambda t, a=axis: sf.expand_dims(t, a), v).shape == shape
    for axis in (3, -3):
        with pytest.raises(ValueError, match="out of range"):
            sf.expand_dims(sf.constant(v), axis)


def test_transpose_perms_and_errors(run: Runner) -> None:
    """TransposeTest (test1D, testNop, testSimple, testError: short or repeated perm)."""
    x = np.arange(24, dtype=F32).reshape(2, 3, 4)
    _same(run(sf.transpose, x), x.T)
    _same(run(lambda t: sf.transpose(t, [2, 0, 1]), x), x.transpose(2, 0, 1))
    _same(run(sf.transpose, np.array([1, 2], I32)), np.array([1, 2], I32))
    for perm in ([2, 0], [2, 0, 0], [-1, 0, 1]):
        with pytest.raises(ValueError):
            sf.transpose(sf.constant(x), perm)


def test_fill_zeros_ones(run: Runner) -> None:
    """FillTest.testFillNonFloat / testFillNegative, ZerosTest, OnesTest (dtypes, bool)."""
    _same(run(lambda: sf.fill([2, 3], 9)), np.full((2, 3), 9, I32))
    _same(run(lambda: sf.fill([2], 1.5)), np.full(2, 1.5, F32))
    _same(run(lambda: sf.zeros([2], sf.int64)), np.zeros(2, I64))
    _same(run(lambda: sf.ones([2], sf.bool)), np.ones(2, bool))
    _same(run(lambda x: sf.zeros_like(x), np.array([True])), np.array([False]))
    _same(run(lambda x: sf.ones_like(x, dtype=sf.float32), np.array([1], I32)), np.ones(1, F32))
    for make in (lambda: sf.fill([-1, 3], 9), lambda: sf.zeros([-2])):
        with pytest.raises(ValueError, match="negative"):
            make()


def test_range_basic_empty_non_integer_and_dtypes(run: Runner) -> None:
    """RangeTest (testBasic, testLimitOnly, testNegativeDelta, testNonInteger, testDType,
    testMixedDType); a start past the limit is an error in TF's kernel."""
    _same(run(lambda: sf.range(5)), np.arange(5, dtype=I32))
    _same(run(lambda: sf.range(5, 0, -2)), np.array([5, 3, 1], I32))
    _same(run(lambda: sf.range(0, 1, 0.25)), np.arange(0, 1, 0.25, dtype=F32))
    _same(run(lambda: sf.range(1.0, -1.0, -0.5)), np.array([1.0, 0.5, 0.0, -0.5], F32))
    _same(run(lambda: sf.range(0, 2.5)), np.array([0.0, 1.0, 2.0], F32))
    _same(run(lambda: sf.range(3, dtype=sf.float64)), np.arange(3.0))
    _same(run(lambda: sf.range(3, dtype=sf.int64)), np.arange(3, dtype=I64))
    for args in ((0, 5, 0), (5, 0), (0, 5, -1), (-3,)):
        with pytest.raises(ValueError):
            sf.range(*args)


# -- clip_ops_test.py, where_op_test.py, array_ops_test.py (BooleanMaskTest), gather ------------


def test_clip_by_value(run: Runner) -> None:
    """ClipTest.testClipByValue (scalar and tensor bounds), testClipByValueNonFinite (NaN
    stays NaN), testClipByValueBadShape."""
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], F32)
    _same(run(lambda t: sf.clip_by_value(t, 2.0, 5.0), x), np.clip(x, 2.0, 5.0))
    lo, hi = np.array([2.0, 2.0, 1.0], F32), np.array([4.0, 5.0, 2.0], F32)
    _same(run(sf.clip_by_value, x, lo, hi), np.minimum(np.maximum(x, lo), hi))
    _same(
        run(lambda t: sf.clip_by_value(t, 2, 4), np.array([1, 5, 3], I32)), np.array([2, 4, 3], I32)
    )
    nan = np.array([np.nan, -np.inf, np.inf], F32)
    _same(run(lambda t: sf.clip_by_value(t, -1.0, 1.0), nan), np.array([np.nan, -1.0, 1.0], F32))
    with pytest.raises(ValueError):
        sf.clip_by_value(sf.constant([1.0, 5.0]), sf.constant([1.0, 2.0, 3.0]), 4.0)


def test_clip_by_value_min_above_max(run: Runner) -> None:
    """clip_ops.clip_by_value computes maximum(minimum(t, max), min), so a lower bound above
    the upper one wins everywhere (regression: scopeflow used to return the upper bound, as
    np.clip does)."""
    x = np.array([1.0, 3.0, 5.0], F32)
    _same(run(lambda t: sf.clip_by_value(t, 4.0, 2.0), x), np.full(3, 4.0, F32))
    _same(run(lambda t: sf.clip_by_value(t, 4, 2), x.astype(I32)), np.full(3, 4, I32))


def test_where_basic_scalar_and_broadcast(run: Runner) -> None:
    """WhereOpTest.testBasicVec/testBasicMat/testRandomInt32 (non-bool condition),
    testScalar, and where_v2's three-way broadcasting."""
    cond = np.array([[True, False], [False, True]])
    _same(run(sf.where, cond, exact_shape=False), np.argwhere(cond).astype(I64))
    _same(run(sf.where, np.array([0, 3, 1], I32), exact_shape=False), np.array([[1], [2]], I64))
    _same(
        run(sf.where, np.array([0.0, 1.0, np.nan], F32), exact_shape=False),
        np.array([[1], [2]], I64),
    )
    assert sf.where(sf.constant(True)).shape == (1, 0)
    c = np.array([[True], [False]])
    _same(
        run(sf.where, c, np.array([1, 2], I32), np.array([[10], [20]], I32)),
        np.array([[1, 2], [20, 20]], I32),
    )
    with pytest.raises(TypeError):
        sf.where(sf.constant([True]), sf.constant([1]), sf.constant([1.0]))
    with pytest.raises(ValueError):
        sf.where(sf.constant([True]), sf.constant([1]))


def test_boolean_mask_dims_axis_and_errors(run: Runner) -> None:
    """BooleanMaskTest (testOneDimensionalMask, testMultidimensionalMask, testEmptyInput2D /
    all-false mask, testMaskWithAxis, testMaskIsScalarRaises,
    testMaskShapeDifferentThanFirstPartOfTensorShapeRaises)."""
    x = np.array([[1, 2], [3, 4]], I32)
    _same(
        run(sf.boolean_mask, x, np.array([True, False]), exact_shape=False), np.array([[1, 2]], I32)
    )
    _same(
        run(sf.boolean_mask, x, np.array([[True, False], [False, True]]), exact_shape=False),
        np.array([1, 4], I32),
    )
    _same(
        run(sf.boolean_mask, x, np.array([False, False]), exact_shape=False), np.zeros((0, 2), I32)
    )
    got = run(
        lambda t, m: sf.boolean_mask(t, m, axis=1), x, np.array([True, False]), exact_shape=False
    )
    _same(got, np.array([[1], [3]], I32))
    with pytest.raises(ValueError, match="scalar"):
        sf.boolean_mask(sf.constant([1, 2]), sf.constant(True))
    with pytest.raises(ValueError):
        sf.boolean_mask(sf.constant(x), sf.constant([True, False, True]))


def test_gather_negative_axis_and_out_of_range_index() -> None:
    """GatherTest.testBadIndicesCPU (negative and too-large indices are InvalidArgumentError
    on CPU) and a negative axis."""
    p = sf.constant([[1, 2], [3, 4]])
    _same(sf.gather(p, sf.constant([1]), axis=-1).numpy(), np.array([[2], [4]], I32))
    for bad in ([2], [-1]):
        with pytest.raises(sf.InvalidArgumentError, match="out of range"):
            sf.gather(sf.constant([1, 2]), sf.constant(bad))


# -- gradients, checked against central finite differences (gradient_checker style) -----------

_RNG = np.random.default_rng(7)
_A = _RNG.uniform(0.5, 2.0, (2, 3))
_W = np.arange(1.0, 7.0).reshape(2, 3)


def _numeric_grad(f: Any, x: np.ndarray[Any, Any], eps: float = 1e-6) -> np.ndarray[Any, Any]:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[i] += eps
        lo[i] -= eps
        g[i] = (f(sf.constant(hi)).numpy().sum() - f(sf.constant(lo)).numpy().sum()) / (2 * eps)
    return g


def _k(v: Any) -> Any:
    return sf.constant(np.asarray(v, F64))


_GRAD_CASES: list[tuple[str, Any, np.ndarray[Any, Any]]] = [
    ("softmax", lambda t: sf.nn.softmax(t) * _k(_W), _A),
    ("softmax_axis0", lambda t: sf.nn.softmax(t, axis=0) * _k(_W), _A),
    ("log_softmax", lambda t: sf.nn.log_softmax(t) * _k(_W), _A),
    ("xent_logits", lambda t: sf.nn.softmax_cross_entropy_with_logits(
        labels=_k([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]), logits=t), _A),
    ("xent_labels", lambda t: sf.nn.softmax_cross_entropy_with_logits(labels=t, logits=_k(_A)), _A),
    ("sparse_xent", lambda t: sf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=sf.constant([2, 0]), logits=t), _A),
    ("sigmoid_xent", lambda t: sf.nn.sigmoid_cross_entropy_with_logits(
        labels=_k([0.0, 1.0, 0.5]), logits=t), np.array([-30.0, 30.0, 0.3])),
    ("relu", sf.nn.relu, _A - 1.2),
    ("l2_loss", sf.nn.l2_loss, _A),
    ("matmul_a", lambda t: sf.matmul(t, _k(_W.T)), _A),
    ("matmul_transpose_b", lambda t: sf.matmul(_k(_W), t, transpose_b=True), _A),
    ("batch_matmul_broadcast", lambda t: sf.matmul(t, _k(np.ones((2, 3, 4)) * _W[0, 0])), _A),
    ("reduce_prod_with_zeros", lambda t: sf.reduce_prod(t, 1), np.array([[0.0, 2, 3], [0, 0, 1]])),
    ("reduce_max", lambda t: sf.reduce_max(t, -1, keepdims=True) * _k(2.0), _A),
    ("reduce_mean_neg_axes", lambda t: sf.reduce_mean(t, [-1, -2]) * _k(3.0), _A),
    ("reshape", lambda t: sf.reshape(t, [3, -1]) * _k(_W.reshape(3, 2)), _A),
    ("transpose", lambda t: sf.transpose(t) * _k(_W.T), _A),
    ("concat", lambda t: sf.concat([t, t * _k(2.0)], -1) * _k(np.tile(_W, 2)), _A),
    ("stack", lambda t: sf.stack([t, t * _k(3.0)], axis=1) * _k(np.stack([_W, _W], 1)), _A),
    ("split", lambda t: sf.split(t, [1, 2], axis=1)[1] * _k(_W[:, :2]), _A),
    ("tile", lambda t: sf.tile(t, [2, 3]) * _k(np.arange(36.0).reshape(4, 9)), _A),
    ("pad_reflect", lambda t: sf.pad(t, [[1, 0], [2, 1]], mode="REFLECT")
        * _k(np.arange(18.0).reshape(3, 6)), _A),
    ("gather", lambda t: sf.gather(t, [2, 0, 2], axis=1) * _k(_W), _A),
    ("where", lambda t: sf.where(sf.constant([True, False, True]), t, t * t), _A),
    ("boolean_mask", lambda t: sf.boolean_mask(t, sf.constant([[False, True, True],
        [True, False, False]])) * _k([1.0, 2.0, 3.0]), _A),
    ("squeeze", lambda t: sf.squeeze(t, [0]) * _k([1.0, 2.0, 3.0]), _A[:1]),
    ("expand_dims", lambda t: sf.expand_dims(t, -1) * _k(_W[..., None]), _A),
    ("clip", lambda t: sf.clip_by_value(t, _k(0.8), _k(1.5)), _A),
    ("divide_bcast", lambda t: sf.divide(_k(_A), t), _A[:1]),
    ("pow_both", lambda t: sf.pow(t, t), _A),
    ("mod", lambda t: sf.mod(t, _k(0.3)), _A),
    ("fill", lambda t: sf.fill([2, 2], t[0, 0]) * _k([[1.0, 2], [3, 4]]), _A),
    ("one_hot_values", lambda t: sf.one_hot([0, 2], 3, on_value=t[0, 0], off_value=t[0, 1])
        * _k(_W), _A),
    ("rsqrt", sf.rsqrt, _A),
    ("log1p", sf.log1p, _A),
    ("sigmoid", sf.sigmoid, _A),
]  # fmt: skip


@pytest.mark.parametrize(("f", "x"), [c[1:] for c in _GRAD_CASES], ids=[c[0] for c in _GRAD_CASES])
def test_gradient_checker(f: Any, x: np.ndarray[Any, Any]) -> None:
    """gradient_checker.compute_gradient-style checks from the op tests (testGradient*):
    the tape's gradient of sum(f(x)) matches central differences in float64."""
    t = sf.constant(x)
    with sf.GradientTape() as tape:
        tape.watch(t)
        y = f(t)
    g = tape.gradient(y, t)
    np.testing.assert_allclose(g.numpy(), _numeric_grad(f, x), rtol=1e-5, atol=1e-6)


def test_piecewise_constant_and_index_ops_have_no_gradient() -> None:
    """math_grad.py: Floor, Round, FloorDiv, ArgMax, Equal and a float->int Cast give None."""
    x = sf.constant([0.5, -1.5, 2.0])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = [sf.floor(x), sf.round(x), sf.floordiv(x, sf.constant(0.3)), sf.argmax(x),
                sf.equal(x, x), sf.cast(x, sf.int32)]  # fmt: skip
    for y in outs:
        assert tape.gradient(y, x) is None


def test_sign_gradient() -> None:
    """math_grad._SignGrad returns zeros_like(x), so tape.gradient(sign(x), x) is zeros;
    inside a larger expression it contributes nothing."""
    x = sf.constant([0.0, -1.0, 2.0])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        alone = sf.sign(x)
        mixed = sf.sign(x) * x
    _same(tape.gradient(alone, x).numpy(), np.array([0.0, 0.0, 0.0], F32))
    _same(tape.gradient(mixed, x).numpy(), np.array([0.0, -1.0, 1.0], F32))


def test_shape_inference_with_unknown_dimensions() -> None:
    """testShapeInference / testUnknownShape cases of the array and matmul tests: static
    shapes keep what is known, and a known mismatch fails when the graph is built."""
    with sf.Graph().as_default():
        p = sf.placeholder(sf.float32, (None, 3))
        r = sf.placeholder(sf.float32, (2, None))
        assert (p + r).shape == (2, 3)
        assert sf.concat([p, r], 1).shape == (2, None)
        assert sf.stack([p, p], 1).shape == (None, 2, 3)
        assert sf.tile(p, [2, 2]).shape == (None, 6)
        assert sf.reshape(p, [-1, 6]).shape == (None, 6)
        assert sf.matmul(p, sf.placeholder(sf.float32, (3, 5))).shape == (None, 5)
        assert sf.expand_dims(p, -1).shape == (None, 3, 1)
        assert sf.pad(p, [[1, 1], [0, 2]]).shape == (None, 5)
        assert sf.one_hot(sf.placeholder(sf.int32, (None,)), 4).shape == (None, 4)
        assert [s.shape for s in sf.split(p, 3, axis=1)] == [(None, 1)] * 3
        with pytest.raises(ValueError):
            sf.split(p, 2, axis=1)
        with pytest.raises(ValueError):
            sf.reduce_sum(p, 2)
        with pytest.raises(ValueError):
            sf.nn.softmax_cross_entropy_with_logits(
                labels=sf.placeholder(sf.float32, (2, 4)), logits=p
            )


def test_run_time_shape_errors_in_a_graph() -> None:
    """Shapes known only when the graph runs: a bad reshape, matmul or broadcast fails
    with InvalidArgumentError from Session.run, as in TF."""
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, (None, 3))
        q = sf.placeholder(sf.float32, (None, None))
        outs = [sf.reshape(p, [4, -1]), sf.matmul(p, q), p + sf.placeholder(sf.float32, None)]
    feeds = [{p: np.zeros((2, 3), F32)},
             {p: np.zeros((2, 3), F32), q: np.zeros((2, 2), F32)},
             {p: np.zeros((2, 3), F32), outs[2].op.inputs[1]: np.zeros((3, 3), F32)}]  # fmt: skip
    for out, feed in zip(outs, feeds, strict=True):
        with pytest.raises(sf.InvalidArgumentError):
            sf.Session(g).run(out, feed_dict=feed)


def test_python_ints_beyond_int32_are_int64() -> None:
    """constant_op_test: a Python int that does not fit in int32 becomes int64, also in a
    list; beyond int64 it is refused."""
    assert sf.constant(2**31 - 1).dtype == sf.int32
    assert sf.constant(2**31).dtype == sf.int64
    assert sf.constant(-(2**31) - 1).dtype == sf.int64
    big = sf.constant([1, 2**40])
    assert big.dtype == sf.int64
    assert big.numpy().tolist() == [1, 2**40]
    assert sf.constant([1, 2]).dtype == sf.int32
    with sf.Graph().as_default():
        assert sf.constant(2**40).dtype == sf.int64
    with pytest.raises(TypeError, match=r"does not fit in int64"):
        sf.constant(2**63)
    with pytest.raises(TypeError, match=r"int32 tensor without changing its value"):
        sf.constant(1) + 2**40  # an operand takes the other's dtype, as in TensorFlow
