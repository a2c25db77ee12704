"""``sf.nn``: values against NumPy in every mode, numerical stability, errors, the module
itself, and a small TF2-style classifier trained against a NumPy reference."""

from __future__ import annotations

import contextvars
import itertools
import pydoc
import re
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import nn
from test_gradients import MODES as GRAD_MODES, symbolic_gradients
from test_ops import MODES, Runner, assert_same, data

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


# NumPy oracles in float64, cast back to the input dtype.


def _log_softmax(x: Any, axis: int = -1) -> Any:
    w = x.astype(np.float64)
    if w.shape[axis] == 0:
        return x.copy()
    m = np.max(w, axis=axis, keepdims=True)
    return (w - m - np.log(np.sum(np.exp(w - m), axis=axis, keepdims=True))).astype(x.dtype)


def _softmax(x: Any, axis: int = -1) -> Any:
    return np.exp(_log_softmax(x.astype(np.float64), axis)).astype(x.dtype)


def _sigmoid_ce(z: Any, x: Any) -> Any:
    w, zw = x.astype(np.float64), z.astype(np.float64)
    return (np.maximum(w, 0) - w * zw + np.log1p(np.exp(-np.abs(w)))).astype(x.dtype)


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((5,), None), ((2, 3), -1), ((2, 3), 0), ((2, 3, 4), 1), ((2, 0), -1), ((0, 3), 0)],
    ids=str,
)
def test_softmax_and_log_softmax(run: Runner, dtype: Any, shape: Any, axis: Any) -> None:
    x = data(shape, dtype, -4, 4, seed=1)
    ax = -1 if axis is None else axis
    assert_same(run(lambda t: nn.softmax(t, axis), x), _softmax(x, ax))
    assert_same(run(lambda t: nn.log_softmax(t, axis=axis), x), _log_softmax(x, ax))


def test_softmax_rows_sum_to_one(run: Runner) -> None:
    x = data((4, 7), F64, -10, 10, seed=2)
    np.testing.assert_allclose(run(nn.softmax, x).sum(axis=-1), np.ones(4), rtol=1e-12)


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_cross_entropy(run: Runner, dtype: Any, axis: int) -> None:
    logits = data((3, 4), dtype, -3, 3, seed=3)
    labels = np.abs(data((3, 4), dtype, -1, 1, seed=4))
    expected = -np.sum(
        labels.astype(np.float64) * _log_softmax(logits.astype(np.float64), axis), axis=axis
    )
    out = run(
        lambda z, x: nn.softmax_cross_entropy_with_logits(labels=z, logits=x, axis=axis),
        labels,
        logits,
    )
    assert_same(out, expected.astype(dtype))


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64], ids=str)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3,), (0, 4)], ids=str)
def test_sparse_softmax_cross_entropy(run: Runner, label_dtype: Any, shape: Any) -> None:
    logits = data(shape, F32, -3, 3, seed=5)
    labels = np.random.default_rng(6).integers(0, shape[-1], shape[:-1]).astype(label_dtype)
    log_p = _log_softmax(logits.astype(np.float64))
    expected = -np.take_along_axis(log_p, labels[..., None].astype(np.intp), -1)[..., 0]
    out = run(
        lambda z, x: nn.sparse_softmax_cross_entropy_with_logits(labels=z, logits=x), labels, logits
    )
    assert_same(out, expected.astype(np.float32))


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
def test_sigmoid_cross_entropy(run: Runner, dtype: Any) -> None:
    logits = data((3, 4), dtype, -6, 6, seed=7)
    labels = np.abs(data((3, 4), dtype, -1, 1, seed=8))
    out = run(lambda z, x: nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), labels, logits)
    assert_same(out, _sigmoid_ce(labels, logits))


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (0,)], ids=str)
def test_l2_loss(run: Runner, dtype: Any, shape: Any) -> None:
    t = data(shape, dtype, -3, 3, seed=9)
    assert_same(run(nn.l2_loss, t), (np.sum(t.astype(np.float64) ** 2) / 2).astype(dtype))


def test_activations_are_the_top_level_functions() -> None:
    assert nn.relu is sf.relu
    assert nn.sigmoid is sf.sigmoid
    assert nn.tanh is sf.tanh


# -- numerical stability: logits of magnitude 1e4 ------------------------------------

_BIG = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], np.float32)


def test_softmax_is_stable_for_huge_logits(run: Runner) -> None:
    assert_same(
        run(nn.softmax, _BIG),
        np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], np.float32),
    )
    log_p = run(nn.log_softmax, _BIG)
    ln3, ln2 = np.log(3.0), np.log(2.0)
    assert_same(
        log_p,
        np.array([[0, -2e4, -1e4], [-ln3, -ln3, -ln3], [-ln2, -ln2, -2e4 - ln2]], np.float32),
    )


def test_cross_entropies_are_exact_for_huge_logits(run: Runner) -> None:
    onehot = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    dense = run(lambda z, x: nn.softmax_cross_entropy_with_logits(z, x), onehot, _BIG)
    assert_same(dense, np.array([0.0, np.log(3.0), 2e4 + np.log(2.0)], np.float32))
    sparse = run(
        lambda z, x: nn.sparse_softmax_cross_entropy_with_logits(z, x),
        np.array([0, 1, 2], np.int64),
        _BIG,
    )
    assert_same(sparse, dense)
    z = np.array([1.0, 0.0, 1.0, 0.0, 0.5], np.float32)
    x = np.array([1e4, 1e4, -1e4, -1e4, 1e4], np.float32)
    sig = run(lambda a, b: nn.sigmoid_cross_entropy_with_logits(labels=a, logits=b), z, x)
    assert_same(sig, np.array([0.0, 1e4, 1e4, 0.0, 5e3], np.float32))


@pytest.mark.parametrize("mode", GRAD_MODES)
def test_cross_entropy_gradients_are_exact_for_huge_logits(mode: str) -> None:
    big = _BIG.astype(np.float64)
    onehot = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    dlabels, dlogits = symbolic_gradients(
        mode, lambda z, x: nn.softmax_cross_entropy_with_logits(z, x), [onehot, big]
    )
    softmax = np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]])
    np.testing.assert_allclose(dlogits, softmax - onehot, rtol=1e-12, atol=0)
    np.testing.assert_allclose(dlabels, -_log_softmax(big), rtol=1e-12)
    (sparse,) = symbolic_gradients(
        mode, lambda x: nn.sparse_softmax_cross_entropy_with_logits([0, 1, 2], x), [big]
    )
    np.testing.assert_allclose(sparse, softmax - onehot, rtol=1e-12, atol=0)
    z = np.array([1.0, 0.0, 1.0, 0.0])
    x = np.array([1e4, 1e4, -1e4, -1e4])
    dz, dx = symbolic_gradients(
        mode, lambda a, b: nn.sigmoid_cross_entropy_with_logits(labels=a, logits=b), [z, x]
    )
    np.testing.assert_array_equal(dx, [0.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(dz, -x)
    (dsoft,) = symbolic_gradients(mode, lambda a: nn.softmax(a)[:, 0], [big])
    assert np.isfinite(dsoft).all()
    (dlog,) = symbolic_gradients(mode, nn.log_softmax, [big])
    np.testing.assert_allclose(dlog, 1.0 - 3.0 * softmax, atol=1e-12)


# -- TensorFlow's conventions ---------------------------------------------------------


@pytest.mark.parametrize("mode", GRAD_MODES)
def test_logits_gradient_is_softmax_minus_labels_as_in_tensorflow(mode: str) -> None:
    # One class: the loss is 0 whatever the labels, but TensorFlow's backprop is
    # softmax - labels (exact only for labels summing to 1); ported tests rely on it.
    labels = np.array([[-1.0], [0.0], [1.0], [1.0]])
    logits = np.array([[1.0], [-1.0], [0.0], [1.0]])
    fn = nn.softmax_cross_entropy_with_logits
    _, dlogits = symbolic_gradients(mode, lambda z, x: fn(z, x), [labels, logits])
    np.testing.assert_allclose(dlogits, [[2.0], [1.0], [0.0], [0.0]])
    assert_same(np.asarray(fn(labels, logits).numpy()), np.zeros(4))


@pytest.mark.parametrize("mode", GRAD_MODES)
def test_labels_broadcast_against_logits(mode: str) -> None:
    labels = np.array([[0.0], [2.0], [0.25]])
    logits = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    probs = _softmax(logits)
    fn = nn.softmax_cross_entropy_with_logits
    dlabels, dlogits = symbolic_gradients(mode, lambda z, x: fn(z, x), [labels, logits])
    np.testing.assert_allclose(dlogits, probs - labels, rtol=1e-12)
    np.testing.assert_allclose(dlabels, -_log_softmax(logits).sum(axis=1, keepdims=True))
    loss = np.asarray(fn(labels, logits).numpy())
    np.testing.assert_allclose(loss, -np.sum(labels * _log_softmax(logits), axis=1))


# -- static shapes --------------------------------------------------------------------


def test_static_shapes() -> None:
    with sf.Graph().as_default():
        logits = sf.placeholder(sf.float32, (None, 5))
        assert nn.softmax(logits).shape == (None, 5)
        assert nn.log_softmax(sf.placeholder(sf.float32, None)).shape is None
        labels = sf.placeholder(sf.float32, (8, None))
        assert nn.softmax_cross_entropy_with_logits(labels, logits).shape == (8,)
        row = sf.placeholder(sf.float32, (1, 5))
        assert nn.softmax_cross_entropy_with_logits(row, logits).shape == (None,)
        assert nn.softmax_cross_entropy_with_logits(labels, logits, axis=0).shape == (5,)
        ids = sf.placeholder(sf.int64, (None,))
        assert nn.sparse_softmax_cross_entropy_with_logits(ids, logits).shape == (None,)
        ids8 = sf.placeholder(sf.int32, (8,))
        assert nn.sparse_softmax_cross_entropy_with_logits(ids8, logits).shape == (8,)
        unknown = sf.placeholder(sf.float32, None)
        assert nn.sparse_softmax_cross_entropy_with_logits(ids, unknown).shape == (None,)
        assert nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits).shape == (8, 5)
        assert nn.l2_loss(unknown).shape == ()


# -- errors ---------------------------------------------------------------------------


def test_bad_dtypes_are_type_errors(run: Runner) -> None:
    ints = np.array([[1, 2]], np.int32)
    floats = np.array([[1.0, 2.0]], np.float32)
    with pytest.raises(
        TypeError, match=r"^Softmax: logits must be floating-point, got dtype int32"
    ):
        run(nn.softmax, ints)
    with pytest.raises(TypeError, match=r"^L2Loss: t must be floating-point, got dtype int32"):
        run(nn.l2_loss, ints)
    # Labels of another dtype are cast to the logits' (TensorFlow does the same); int
    # logits stay an error.
    with pytest.raises(
        TypeError,
        match=r"^SoftmaxCrossEntropyWithLogits: logits must be floating-point, got dtype int32",
    ):
        run(nn.softmax_cross_entropy_with_logits, floats, ints)
    with pytest.raises(
        TypeError,
        match=r"^SparseSoftmaxCrossEntropyWithLogits: labels must be integer class indices, "
        r"got dtype float32",
    ):
        run(nn.sparse_softmax_cross_entropy_with_logits, np.array([0.0], np.float32), floats)
    with pytest.raises(
        TypeError, match=r"^SigmoidCrossEntropyWithLogits: labels and logits must be floating-point"
    ):
        run(lambda z, x: nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), ints, ints)


def test_shape_mismatch_names_op_and_inputs() -> None:
    g = sf.Graph()
    with g.as_default():
        labels = sf.placeholder(sf.float32, (2, 3), name="labels")
        logits = sf.placeholder(sf.float32, (2, 4), name="logits")
        pattern = (
            r"^SoftmaxCrossEntropyWithLogits 'xent': labels of shape \(2, 3\) and logits of "
            r"shape \(2, 4\) cannot be broadcast together \(inputs: 'labels:0' \(float32, "
            r"shape \(2, 3\)\), 'logits:0' \(float32, shape \(2, 4\)\)\)$"
        )
        with pytest.raises(ValueError, match=pattern):
            nn.softmax_cross_entropy_with_logits(labels, logits, name="xent")
        with pytest.raises(
            ValueError,
            match=r"^SigmoidCrossEntropyWithLogits: labels and logits must have the same shape",
        ):
            nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        ids = sf.placeholder(sf.int32, (2, 1), name="ids")
        with pytest.raises(
            ValueError,
            match=r"^SparseSoftmaxCrossEntropyWithLogits: labels must have rank 1 "
            r"\(logits' rank minus one\)",
        ):
            nn.sparse_softmax_cross_entropy_with_logits(ids, logits)
        with pytest.raises(
            ValueError,
            match=r"labels and logits\[\.\.\., 0\] must have the same shape, got \(3,\) and \(2,\)",
        ):
            nn.sparse_softmax_cross_entropy_with_logits(sf.placeholder(sf.int32, (3,)), logits)
        with pytest.raises(
            ValueError, match=r"^SparseSoftmaxCrossEntropyWithLogits: logits must have rank >= 1"
        ):
            nn.sparse_softmax_cross_entropy_with_logits(
                sf.placeholder(sf.int32, ()), sf.placeholder(sf.float32, ())
            )
        with pytest.raises(ValueError, match=r"^Softmax: axis 2 is out of range for rank 2"):
            nn.softmax(logits, axis=2)
    assert [op.type for op in g.get_operations()].count("Placeholder") == len(g.get_operations())


def test_run_time_checks_of_what_was_unknown() -> None:
    g = sf.Graph()
    with g.as_default():
        ids = sf.placeholder(sf.int64, None, name="ids")
        logits = sf.placeholder(sf.float32, (None, 3), name="logits")
        sparse = nn.sparse_softmax_cross_entropy_with_logits(ids, logits)
        soft = nn.softmax_cross_entropy_with_logits(
            sf.placeholder(sf.float32, None, name="z"), logits
        )
    sess = sf.Session(g)
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(
        sf.InvalidArgumentError,
        match=r"Received a label value of 3 which is outside the valid range of \[0, 3\) classes",
    ):
        sess.run(sparse, {ids: np.array([0, 3]), logits: x})
    with pytest.raises(sf.InvalidArgumentError, match=r"label value of -1 which is outside"):
        sess.run(sparse, {ids: np.array([-1, 0]), logits: x})
    with pytest.raises(
        sf.InvalidArgumentError,
        match=r"labels must have the shape of logits without its last dimension",
    ):
        sess.run(sparse, {ids: np.array([0, 1, 2]), logits: x})
    with pytest.raises(
        sf.InvalidArgumentError,
        match=r"labels of shape \(2, 2\) and logits of shape \(2, 3\) cannot be broadcast",
    ):
        sess.run(soft, {"z:0": np.zeros((2, 2), np.float32), logits: x})
    # Labels broadcast against the logits, as in TensorFlow 2.
    out = sess.run(soft, {"z:0": np.array([[0.0, 0.0, 1.0]], np.float32), logits: x})
    assert_same(out, np.full(2, np.log(3.0), np.float32))


def test_eager_label_out_of_range_is_invalid_argument() -> None:
    with pytest.raises(
        sf.InvalidArgumentError,
        match=r"^SparseSoftmaxCrossEntropyWithLogits: Received a label value of 5 ",
    ):
        nn.sparse_softmax_cross_entropy_with_logits([5], [[0.0, 1.0]])


def test_missing_or_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"needs both labels= and logits="):
        nn.sigmoid_cross_entropy_with_logits(logits=[1.0])
    with pytest.raises(TypeError, match=r"^softmax\(\): axis must be an int"):
        nn.softmax([1.0], axis=[0])
    with pytest.raises(
        TypeError, match=r"^softmax_cross_entropy_with_logits\(\): axis must be an int"
    ):
        nn.softmax_cross_entropy_with_logits([1.0], [1.0], axis=None)


# -- the module -----------------------------------------------------------------------


def test_nn_is_a_real_public_submodule() -> None:
    import scopeflow.nn as imported

    assert imported is sf.nn is nn
    assert nn.__name__ == "scopeflow.nn"
    assert nn.__all__ == sorted(nn.__all__)
    assert all(callable(getattr(nn, name)) for name in nn.__all__)
    public = {k for k, v in vars(nn).items() if not k.startswith("_") and callable(v)}
    assert public == set(nn.__all__)
    # The docstring lists every name, and help() renders it.
    listed = set(re.findall(r"``(\w+)``", nn.__doc__ or ""))
    assert set(nn.__all__) <= listed
    text = pydoc.render_doc(nn, renderer=pydoc.plaintext)
    assert all(name in text for name in nn.__all__)


# -- a TF2-style classifier, trained against a NumPy reference ------------------------

_STEPS = 8
_LR = 0.5


def _blobs() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(2024)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = rng.integers(0, 3, 60)
    return centers[labels] + rng.normal(0.0, 0.8, (60, 2)), labels


def _numpy_step(w: Any, b: Any, x: Any, y: Any) -> tuple[float, float, Any, Any]:
    logits = x @ w + b
    log_p = _log_softmax(logits)
    loss = float(-np.mean(log_p[np.arange(len(y)), y]))
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    d_logits = (np.exp(log_p) - np.eye(3)[y]) / len(y)
    return loss, accuracy, w - _LR * (x.T @ d_logits), b - _LR * d_logits.sum(axis=0)


def _init_weights() -> Any:
    sf.random.set_seed(7)
    return sf.random.normal([2, 3], stddev=0.1, dtype=sf.float64, seed=1)


@pytest.mark.parametrize("loss_kind", ["sparse", "dense"])
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "function"])
def test_softmax_classifier_matches_numpy(loss_kind: str, traced: bool) -> None:
    x_np, y_np = _blobs()
    # TF2-style init: seeded sf.random.normal; the NumPy reference starts from the values
    # the variables got, and a fresh context with the same seeds draws them again.
    w = sf.Variable(contextvars.Context().run(_init_weights), name="w")
    b = sf.Variable(sf.zeros([3], dtype=sf.float64), name="b")
    w0, b0 = w.numpy().copy(), b.numpy().copy()
    np.testing.assert_array_equal(contextvars.Context().run(_init_weights).numpy(), w0)
    assert w0.dtype == np.float64
    assert len(np.unique(w0)) == w0.size
    assert 0.0 < np.abs(w0).max() < 0.6
    x = sf.constant(x_np)
    labels = sf.constant(y_np.astype(np.int64))
    onehot = sf.constant(np.eye(3)[y_np])

    def step() -> tuple[Any, Any]:
        with sf.GradientTape() as tape:
            logits = sf.matmul(x, w) + b
            if loss_kind == "sparse":
                per_example = nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            else:
                per_example = nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits)
            loss = sf.reduce_mean(per_example)
        dw, db = tape.gradient(loss, [w, b])
        w.assign_sub(dw * _LR)
        b.assign_sub(db * _LR)
        hits = sf.equal(sf.argmax(logits, axis=1), labels)
        return loss, sf.reduce_mean(sf.cast(hits, sf.float64))

    train_step = sf.function(step) if traced else step
    ref_w, ref_b = w0, b0
    losses = []
    for i in range(_STEPS):
        want_loss, want_acc, ref_w, ref_b = _numpy_step(ref_w, ref_b, x_np, y_np)
        loss, accuracy = train_step()
        np.testing.assert_allclose(float(loss), want_loss, rtol=1e-12, err_msg=f"step {i}")
        assert float(accuracy) == want_acc
        np.testing.assert_allclose(w.numpy(), ref_w, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(b.numpy(), ref_b, rtol=1e-10, atol=1e-13)
        losses.append(float(loss))
    assert all(later < earlier for earlier, later in itertools.pairwise(losses)), losses
    final = sf.argmax(sf.matmul(x, w) + b, axis=1)
    assert float(np.mean(final.numpy() == y_np)) > 0.9
