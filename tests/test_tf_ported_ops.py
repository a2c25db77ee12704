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
