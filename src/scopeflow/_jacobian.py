"""``GradientTape.jacobian`` and ``batch_jacobian``: one gradient per target element.

TensorFlow vectorizes these with ``pfor``; here each element of the target is seeded in
turn (``output_gradients`` set to a one-hot tensor) and the gradients are stacked. The
results have TensorFlow's shapes: ``target.shape + source.shape`` for ``jacobian``,
``(batch,) + target.shape[1:] + source.shape[1:]`` for ``batch_jacobian``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._nest import fill, flatten
from ._ops._grad_util import zeros_like

if TYPE_CHECKING:
    from ._tape import GradientTape

__all__ = ["batch_jacobian", "jacobian"]


def _static_shape(t: Any, what: str) -> tuple[int, ...]:
    shape = t.shape
    if shape is None or any(d is None for d in shape):
        msg = f"{what}: the target's shape must be fully known, got {shape}"
        raise ValueError(msg)
    return tuple(shape)


def _seeded_gradients(
    tape: GradientTape, target: Any, sources: list[Any], unconnected: Any
) -> list[list[Any]]:
    """For each element of ``target`` (row-major), the gradients of that element."""
    import scopeflow as sf  # the public ops; imported here to keep module loading light

    shape = _static_shape(target, "jacobian()")
    n = int(np.prod(shape, dtype=np.int64))
    dtype = np.dtype(target.dtype)
    rows = []
    for i in range(n):
        seed = np.zeros(n, dtype)
        seed[i] = 1
        rows.append(
            list(
                tape.gradient(
                    target,
                    sources,
                    output_gradients=sf.constant(seed.reshape(shape)),
                    unconnected_gradients=unconnected,
                )
            )
        )
    return rows


def _run_persistent(tape: GradientTape, use_pfor: bool, fn: Any) -> Any:
    """Run ``fn`` with ``tape`` allowed several gradients, then use a non-persistent tape
    up as one gradient would (TensorFlow's pfor computes them in one pass)."""
    if tape._persistent:
        return fn()
    if not use_pfor:
        msg = (
            "GradientTape.jacobian with experimental_use_pfor=False needs a persistent "
            "tape: create it with GradientTape(persistent=True)"
        )
        raise RuntimeError(msg)
    with tape._lock:
        if tape._used:
            msg = (
                "A non-persistent GradientTape can only compute gradients once "
                "(GradientTape.gradient can only be called once on non-persistent tapes, "
                "in TensorFlow's words); create it with GradientTape(persistent=True) to "
                "call gradient() several times"
            )
            raise RuntimeError(msg)
        tape._persistent = True
    try:
        return fn()
    finally:
        with tape._lock:
            tape._persistent = False
            tape._used = True
            tape._records = []
            tape._tracked = {}


def jacobian(
    tape: GradientTape,
    target: Any,
    sources: Any,
    unconnected_gradients: Any = "none",
    parallel_iterations: Any = None,
    experimental_use_pfor: bool = True,
) -> Any:
    """d(each element of ``target``)/d(sources), shaped ``target.shape + source.shape``.

    In the structure of ``sources``; None for a source the target does not depend on
    (zeros with ``unconnected_gradients="zero"``). ``parallel_iterations`` is accepted and
    ignored. A non-persistent tape is used up, as by ``gradient()``; with
    ``experimental_use_pfor=False`` it must be persistent (as in TensorFlow).

    Raises:
        ValueError: the target's shape is not fully known.
        RuntimeError: the tape cannot compute (another) gradient.
    """
    import scopeflow as sf

    del parallel_iterations
    use_pfor = experimental_use_pfor

    source_leaves: list[Any] = []
    template = flatten(sources, source_leaves)

    def compute() -> Any:
        rows = _seeded_gradients(tape, target, source_leaves, unconnected_gradients)
        shape = _static_shape(target, "jacobian()")
        out = []
        for j, source in enumerate(source_leaves):
            if not rows:  # an empty target: an empty Jacobian
                out.append(sf.zeros(shape + tuple(source.shape), source.dtype))
                continue
            column = [row[j] for row in rows]
            if all(g is None for g in column):
                out.append(None)
                continue
            column = [zeros_like(source) if g is None else g for g in column]
            out.append(sf.reshape(sf.stack(column), shape + tuple(source.shape)))
        return fill(template, out)

    return _run_persistent(tape, use_pfor, compute)


def batch_jacobian(
    tape: GradientTape,
    target: Any,
    source: Any,
    unconnected_gradients: Any = "none",
    parallel_iterations: Any = None,
    experimental_use_pfor: bool = True,
) -> Any:
    """Per-example Jacobians, ``result[i] = d target[i] / d source[i]``, shaped
    ``(batch,) + target.shape[1:] + source.shape[1:]`` (see :func:`jacobian`).

    Raises:
        ValueError: a rank below 2, or batch sizes that differ.
    """
    import scopeflow as sf

    t_shape, s_shape = target.shape, source.shape
    if t_shape is None or len(t_shape) < 2:
        msg = f"batch_jacobian(): the target must have rank at least 2, got shape {t_shape}"
        raise ValueError(msg)
    if s_shape is None or len(s_shape) < 2:
        msg = f"batch_jacobian(): the source must have rank at least 2, got shape {s_shape}"
        raise ValueError(msg)
    if t_shape[0] is not None and s_shape[0] is not None and t_shape[0] != s_shape[0]:
        msg = (
            f"batch_jacobian(): Need first dimension of target shape {t_shape} and source "
            f"shape {s_shape} to match"
        )
        raise ValueError(msg)
    full = jacobian(
        tape, target, source, unconnected_gradients, parallel_iterations, experimental_use_pfor
    )
    if full is None:
        return None
    batch = t_shape[0]
    rest_t = int(np.prod(t_shape[1:], dtype=np.int64))
    rest_s = int(np.prod(s_shape[1:], dtype=np.int64))
    # (b, T, b, S): keep the blocks where both batch indices agree.
    blocks = sf.reshape(full, (batch, rest_t, batch, rest_s))
    picked = [blocks[i, :, i, :] for i in range(batch)]
    stacked = sf.stack(picked) if picked else sf.zeros((0, rest_t, rest_s), full.dtype)
    return sf.reshape(stacked, (batch, *t_shape[1:], *s_shape[1:]))
