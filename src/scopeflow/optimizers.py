"""Optimizers that apply gradients to variables.

Names: :class:`SGD` (with optional Nesterov momentum), :class:`Adam`, and their base
:class:`Optimizer`. Slot variables and the step counter are created lazily on the first
``apply_gradients``, under ``sf.init_scope``, so a traced train step creates them once.

Example:
    >>> import scopeflow as sf
    >>> w = sf.Variable(3.0)
    >>> opt = sf.optimizers.SGD(learning_rate=0.5)
    >>> with sf.GradientTape() as tape:
    ...     loss = w * w
    >>> opt.apply_gradients([(tape.gradient(loss, w), w)])
    >>> float(w.numpy()), int(opt.iterations.numpy())
    (0.0, 1)
"""

from __future__ import annotations

from ._optimizers import SGD as SGD, Adam as Adam, Optimizer as Optimizer

__all__ = ["SGD", "Adam", "Optimizer"]

for _cls in (SGD, Adam, Optimizer):
    _cls.__module__ = __name__
del _cls
