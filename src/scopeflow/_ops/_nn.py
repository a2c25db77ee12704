"""Neural-network ops behind ``sf.nn``: softmax, log-softmax, the losses and ``l2_loss``.

Every kernel is written in its numerically stable form: softmax and log-softmax subtract
the maximum before exponentiating, the softmax cross-entropies are ``-sum(labels *
log_softmax(logits))``, and the sigmoid cross-entropy is ``max(x, 0) - x * z +
log1p(exp(-|x|))``, so logits of magnitude 1e4 give finite, exact results and gradients.
Gradients are built from ops (softmax, log-softmax, sigmoid) that have gradients of their
own, so second derivatives work. float16 inputs are computed in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from ._array import as_int, normalize_axis
from ._array_grad import _broadcast_reduced
from ._core import NO_ATTRS, apply, convert_to_tensor
from ._grad_util import GradRecord, register_gradient, unbroadcast
from ._math import cast, exp, multiply, negative, sigmoid, subtract
from ._reduce import reduce_sum
from ._registry import Spec, broadcast_shapes, check_same_dtype, register_op

__all__ = [
    "l2_loss",
    "log_softmax",
    "sigmoid_cross_entropy_with_logits",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
]

_F16: Final = np.dtype(np.float16)
_F32: Final = np.dtype(np.float32)


def _float(dtype: np.dtype[Any], what: str) -> None:
    if dtype.kind != "f":
        msg = f"{what} must be floating-point, got dtype {dtype.name}; use sf.cast()"
        raise TypeError(msg)


def _wide(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return x.astype(_F32) if x.dtype == _F16 else x


def _same_shape(a: Any, b: Any, what: str) -> Any:
    """The most precise shape both static shapes allow; ``ValueError`` if they clash."""
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b) or any(
        x is not None and y is not None and x != y for x, y in zip(a, b, strict=False)
    ):
        msg = f"{what} must have the same shape, got {a} and {b}"
        raise ValueError(msg)
    return tuple(x if x is not None else y for x, y in zip(a, b, strict=True))


def _log_softmax_np(x: np.ndarray[Any, Any], axis: int) -> np.ndarray[Any, Any]:
    x = _wide(x)
    if x.shape[axis] == 0:
        return x.copy()
    shifted = x - np.max(x, axis=axis, keepdims=True)
    out: np.ndarray[Any, Any] = shifted - np.log(np.sum(np.exp(shifted), axis, keepdims=True))
    return out


def _softmax_np(x: np.ndarray[Any, Any], axis: int) -> np.ndarray[Any, Any]:
    x = _wide(x)
    if x.shape[axis] == 0:
        return x.copy()
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    out: np.ndarray[Any, Any] = e / np.sum(e, axis=axis, keepdims=True)
    return out


# -- softmax and log-softmax -----------------------------------------------------------


def _softmax_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    _float(dtype, "logits")
    if shape is not None:
        normalize_axis(attrs["axis"], len(shape))
    return specs


def _softmax_kernel(attrs: dict[str, Any], x: np.ndarray[Any, Any]) -> Any:
    return _softmax_np(x, normalize_axis(attrs["axis"], x.ndim))


def _log_softmax_kernel(attrs: dict[str, Any], x: np.ndarray[Any, Any]) -> Any:
    return _log_softmax_np(x, normalize_axis(attrs["axis"], x.ndim))


SOFTMAX = register_op("Softmax", infer=_softmax_rule, kernel=_softmax_kernel)
LOG_SOFTMAX = register_op("LogSoftmax", infer=_softmax_rule, kernel=_log_softmax_kernel)


def _axis_attrs(axis: Any, what: str) -> dict[str, Any]:
    return {"axis": -1 if axis is None else as_int(axis, f"{what}(): axis")}


def softmax(logits: Any, axis: Any = None, name: str | None = None) -> Any:
    """``exp(logits) / sum(exp(logits), axis)``, computed stably (``axis`` -1 by default).

    Args:
        logits: a floating-point tensor of rank >= 1.
        axis: the dimension the probabilities sum to 1 along; None means the last.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.softmax([[0.0, 0.0], [1e4, 0.0]]).numpy()
        array([[0.5, 0.5],
               [1. , 0. ]], dtype=float32)
    """
    return apply(SOFTMAX, (logits,), _axis_attrs(axis, "softmax"), name)


def log_softmax(logits: Any, axis: Any = None, name: str | None = None) -> Any:
    """``logits - log(sum(exp(logits), axis))``, computed stably (``axis`` -1 by default).

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.log_softmax([0.0, -1e4]).numpy()
        array([     0., -10000.], dtype=float32)
    """
    return apply(LOG_SOFTMAX, (logits,), _axis_attrs(axis, "log_softmax"), name)


@register_gradient("Softmax")
def _softmax_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (y,) = op.outputs
    axis = op.attrs["axis"]
    inner = reduce_sum(multiply(dy, y), axis, keepdims=True)
    return (multiply(subtract(dy, inner), y),)


@register_gradient("LogSoftmax")
def _log_softmax_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    (y,) = op.outputs
    total = reduce_sum(dy, op.attrs["axis"], keepdims=True)
    return (subtract(dy, multiply(exp(y), total)),)


# -- softmax cross-entropy -------------------------------------------------------------


def _softmax_ce_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dl, sl), (dx, sx) = specs
    check_same_dtype(dl, dx)
    _float(dx, "labels and logits")
    try:
        shape = broadcast_shapes(sl, sx)
    except ValueError:
        msg = f"labels of shape {sl} and logits of shape {sx} cannot be broadcast together"
        raise ValueError(msg) from None
    if shape is None:
        return ((dx, None),)
    axis = normalize_axis(attrs["axis"], len(shape))
    return ((dx, shape[:axis] + shape[axis + 1 :]),)


def _softmax_ce_kernel(
    attrs: dict[str, Any], labels: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]
) -> Any:
    try:
        labels, logits = np.broadcast_arrays(labels, logits)
    except ValueError:
        msg = (
            f"labels of shape {labels.shape} and logits of shape {logits.shape} cannot be "
            f"broadcast together"
        )
        raise ValueError(msg) from None
    axis = normalize_axis(attrs["axis"], logits.ndim)
    # Where a label is 0 its log-probability may be very negative but is finite, so the
    # product is exactly 0: no overflow for logits of any finite magnitude. And 0 - s
    # rather than -s, so that a zero loss is +0.0, not -0.0.
    return 0 - np.sum(_wide(labels) * _log_softmax_np(logits, axis), axis=axis)


SOFTMAX_CE = register_op(
    "SoftmaxCrossEntropyWithLogits", infer=_softmax_ce_rule, kernel=_softmax_ce_kernel
)


def softmax_cross_entropy_with_logits(
    labels: Any, logits: Any, axis: Any = -1, name: str | None = None
) -> Any:
    """The cross-entropy ``-sum(labels * log_softmax(logits), axis)``, computed stably.

    Args:
        labels: a probability distribution along ``axis`` for each example (one-hot or
            soft labels); it broadcasts against ``logits`` and is cast to their dtype, as
            in TensorFlow (so int one-hot labels work).
        logits: unscaled log-probabilities, floating-point.
        axis: the class dimension (the last by default).
        name: the op name in graph mode.

    Returns:
        The loss per example: the broadcast shape without ``axis``. Gradients flow to
        both inputs; as in TensorFlow the gradient for ``logits`` is ``softmax(logits) -
        labels``, the exact derivative when each distribution in ``labels`` sums to 1.

    Raises:
        ValueError: the shapes cannot be broadcast together, or ``axis`` is out of range.
        TypeError: ``logits`` are not floating-point.

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.softmax_cross_entropy_with_logits(
        ...     labels=[[0.0, 1.0]], logits=[[1e4, -1e4]]).numpy()
        array([20000.], dtype=float32)
    """
    attrs = {"axis": as_int(axis, "softmax_cross_entropy_with_logits(): axis")}
    return apply(SOFTMAX_CE, _labels_like_logits(labels, logits), attrs, name)


def _labels_like_logits(labels: Any, logits: Any) -> tuple[Any, Any]:
    """``labels`` cast to the dtype of ``logits``, as TensorFlow's dense cross-entropy does
    (labels are data, often one-hot ints; the loss and gradients follow the logits)."""
    dtype = getattr(logits, "dtype", None)
    if dtype is None:
        logits = convert_to_tensor(logits)
        dtype = logits.dtype
    if dtype.kind != "f":
        msg = (
            f"SoftmaxCrossEntropyWithLogits: logits must be floating-point, got dtype "
            f"{dtype.name}; use sf.cast()"
        )
        raise TypeError(msg)
    if getattr(labels, "dtype", dtype) != dtype:
        labels = cast(labels, dtype)
    return labels, logits


@register_gradient("SoftmaxCrossEntropyWithLogits")
def _softmax_ce_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    labels, logits = op.inputs
    axis = op.attrs["axis"]
    # Both have the broadcast shape of the inputs.
    backprop = subtract(softmax(logits, axis), labels)
    g = _broadcast_reduced(dy, backprop, {"axis": (axis,), "keepdims": False})
    dlogits = multiply(g, backprop)
    dlabels = negative(multiply(g, log_softmax(logits, axis)))
    return unbroadcast(dlabels, labels), unbroadcast(dlogits, logits)


# -- sparse softmax cross-entropy ------------------------------------------------------


def _sparse_ce_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dl, sl), (dx, sx) = specs
    if dl.kind not in "iu":
        msg = f"labels must be integer class indices, got dtype {dl.name}"
        raise TypeError(msg)
    _float(dx, "logits")
    if sx is not None and len(sx) == 0:
        msg = "logits must have rank >= 1 (a class dimension), got a scalar"
        raise ValueError(msg)
    if sl is not None and sx is not None and len(sl) != len(sx) - 1:
        msg = (
            f"labels must have rank {len(sx) - 1} (logits' rank minus one), got labels of "
            f"shape {sl} and logits of shape {sx}"
        )
        raise ValueError(msg)
    shape = _same_shape(sl, None if sx is None else sx[:-1], "labels and logits[..., 0]")
    return ((dx, shape),)


def _sparse_ce_kernel(
    attrs: dict[str, Any], labels: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]
) -> Any:
    if logits.ndim == 0 or labels.shape != logits.shape[:-1]:
        msg = (
            f"labels must have the shape of logits without its last dimension, got "
            f"{labels.shape} and {logits.shape}"
        )
        raise ValueError(msg)
    classes = logits.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)].reshape(-1)[0]
        shown = " ".join(map(str, labels.reshape(-1)[:10].tolist()))
        more = " ..." if labels.size > 10 else ""
        # TensorFlow's wording, which ported tests and users' log searches match.
        msg = (
            f"Received a label value of {bad} which is outside the valid range of "
            f"[0, {classes}) classes. Label values: {shown}{more}"
        )
        raise ValueError(msg)
    log_p = _log_softmax_np(logits, -1)
    picked = np.take_along_axis(log_p, labels[..., None].astype(np.intp), axis=-1)
    return 0 - picked[..., 0]


def _one_hot_like_kernel(
    attrs: dict[str, Any], labels: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]
) -> Any:
    out = np.zeros(logits.shape, logits.dtype)
    np.put_along_axis(out, labels[..., None].astype(np.intp), 1, axis=-1)
    return out


def _second_like(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return (specs[1],)


SPARSE_CE = register_op(
    "SparseSoftmaxCrossEntropyWithLogits",
    infer=_sparse_ce_rule,
    kernel=_sparse_ce_kernel,
    same_dtype=False,
)
# One-hot rows of ``labels`` shaped like ``logits``: the target in the sparse gradient.
ONE_HOT_LIKE = register_op(
    "OneHotLike",
    infer=_second_like,
    kernel=_one_hot_like_kernel,
    same_dtype=False,
    differentiable=False,
)


def sparse_softmax_cross_entropy_with_logits(
    labels: Any, logits: Any, name: str | None = None
) -> Any:
    """The cross-entropy of integer class ``labels`` under ``softmax(logits)``, stably.

    Args:
        labels: class indices in ``[0, num_classes)``, int32 or int64, shaped like
            ``logits`` without its last dimension. A value out of range raises
            ``InvalidArgumentError`` when the op runs.
        logits: unscaled log-probabilities ``[..., num_classes]``, floating-point.
        name: the op name in graph mode.

    Returns:
        The loss per example, shaped like ``labels`` with ``logits``' dtype. The gradient
        flows to ``logits`` only (labels are indices).

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.sparse_softmax_cross_entropy_with_logits(
        ...     labels=[1, 0], logits=[[0.0, 0.0], [1e4, -1e4]]).numpy()
        array([0.6931472, 0.       ], dtype=float32)
    """
    return apply(SPARSE_CE, (labels, logits), NO_ATTRS, name)


@register_gradient("SparseSoftmaxCrossEntropyWithLogits")
def _sparse_ce_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    labels, logits = op.inputs
    g = _broadcast_reduced(dy, logits, {"axis": (-1,), "keepdims": False})
    target = apply(ONE_HOT_LIKE, (labels, logits), NO_ATTRS)
    return None, multiply(g, subtract(softmax(logits, -1), target))


# -- sigmoid cross-entropy -------------------------------------------------------------


def _sigmoid_ce_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dl, sl), (dx, sx) = specs
    check_same_dtype(dl, dx)
    _float(dx, "labels and logits")
    return ((dx, _same_shape(sl, sx, "labels and logits")),)


def _sigmoid_ce_kernel(
    attrs: dict[str, Any], labels: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]
) -> Any:
    if labels.shape != logits.shape:
        msg = f"labels and logits must have the same shape, got {labels.shape} and {logits.shape}"
        raise ValueError(msg)
    x, z = _wide(logits), _wide(labels)
    # max(x, 0) - x z + log(1 + exp(-|x|)): exp never sees a positive argument.
    return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


SIGMOID_CE = register_op(
    "SigmoidCrossEntropyWithLogits", infer=_sigmoid_ce_rule, kernel=_sigmoid_ce_kernel
)


def sigmoid_cross_entropy_with_logits(
    labels: Any = None, logits: Any = None, name: str | None = None
) -> Any:
    """The element-wise logistic loss of ``logits`` against ``labels`` (in [0, 1]), stably.

    ``labels * -log(sigmoid(logits)) + (1 - labels) * -log(1 - sigmoid(logits))``,
    computed as ``max(x, 0) - x * z + log(1 + exp(-|x|))``. Gradients flow to both.

    Raises:
        ValueError: ``labels`` or ``logits`` is missing, or their shapes differ.

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.sigmoid_cross_entropy_with_logits(
        ...     labels=[1.0, 0.0, 1.0], logits=[1e4, 1e4, 0.0]).numpy()
        array([0.000000e+00, 1.000000e+04, 6.931472e-01], dtype=float32)
    """
    if labels is None or logits is None:
        msg = "sigmoid_cross_entropy_with_logits() needs both labels= and logits="
        raise ValueError(msg)
    return apply(SIGMOID_CE, (labels, logits), NO_ATTRS, name)


@register_gradient("SigmoidCrossEntropyWithLogits")
def _sigmoid_ce_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    labels, logits = op.inputs
    dlogits = multiply(dy, subtract(sigmoid(logits), labels))
    dlabels = negative(multiply(dy, logits))
    return unbroadcast(dlabels, labels), unbroadcast(dlogits, logits)


# -- l2_loss ---------------------------------------------------------------------------


def _l2_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, _),) = specs
    _float(dtype, "t")
    return ((dtype, ()),)


def _l2_kernel(attrs: dict[str, Any], t: np.ndarray[Any, Any]) -> Any:
    w = _wide(t)
    return np.sum(w * w) / 2


L2_LOSS = register_op("L2Loss", infer=_l2_rule, kernel=_l2_kernel)


def l2_loss(t: Any, name: str | None = None) -> Any:
    """Half the sum of squares of ``t``, ``sum(t ** 2) / 2``, as a scalar of ``t``'s dtype.

    Example:
        >>> import scopeflow as sf
        >>> sf.nn.l2_loss([[1.0, 2.0], [3.0, 0.0]]).numpy()
        array(7., dtype=float32)
    """
    return apply(L2_LOSS, (t,), NO_ATTRS, name)


@register_gradient("L2Loss")
def _l2_loss_grad(op: GradRecord, dy: Any) -> Sequence[Any]:
    return (multiply(op.inputs[0], dy),)
