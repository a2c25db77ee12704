"""Neural-network ops: activations, softmax and numerically stable losses.

Names: ``relu``, ``sigmoid``, ``tanh`` (the same functions as ``sf.relu`` and so on),
``softmax`` and ``log_softmax`` (along any axis, the last by default),
``softmax_cross_entropy_with_logits``, ``sparse_softmax_cross_entropy_with_logits``,
``sigmoid_cross_entropy_with_logits`` (each finite and exact for logits of magnitude
1e4, gradients included) and ``l2_loss``. Every op runs eagerly, in graphs and in traced
functions, and has a gradient (to second order).

Example:
    >>> import scopeflow as sf
    >>> logits = sf.constant([[2.0, 0.5, -1.0]])
    >>> loss = sf.nn.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=logits)
    >>> bool(abs(float(loss[0]) - 0.2413) < 1e-3)
    True
"""

from __future__ import annotations

from ._ops._math import relu as relu, sigmoid as sigmoid, tanh as tanh
from ._ops._nn import (
    l2_loss as l2_loss,
    log_softmax as log_softmax,
    sigmoid_cross_entropy_with_logits as sigmoid_cross_entropy_with_logits,
    softmax as softmax,
    softmax_cross_entropy_with_logits as softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits as sparse_softmax_cross_entropy_with_logits,
)

__all__ = [
    "l2_loss",
    "log_softmax",
    "relu",
    "sigmoid",
    "sigmoid_cross_entropy_with_logits",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
    "tanh",
]
