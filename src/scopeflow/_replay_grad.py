"""Gradients of a replayed function graph: how ops that run function graphs (calls,
``cond`` branches, ``while_loop`` bodies) are differentiated, by running the graph again
on a fresh tape."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._backprop import differentiable
from ._tape import GradientTape

if TYPE_CHECKING:
    from ._variables import Variable

__all__ = ["replay_gradients"]


def replay_gradients(
    replay: Callable[[list[Any]], Sequence[Any]],
    inputs: list[Any],
    variables: list[Variable],
    dys: Sequence[Any],
    needed: Sequence[bool] | None = None,
) -> tuple[list[Any], list[Any]]:
    """Gradients of ``replay(inputs)`` (output gradients ``dys``) with respect to the
    inputs and the variables, by running ``replay`` again on a fresh tape.

    This is how ops that run function graphs (calls, branches, loops) are differentiated:
    eagerly the replay computes values, in a graph it inlines the function's ops. Tapes
    that see the caller record the replay and its gradient too (higher orders).

    ``needed`` (one bool per input) limits the differentiated inputs; the others get None.

    Returns:
        (one gradient or None per input, one per variable). A tensor given for several
        inputs gets its whole gradient at its first position and None at the others,
        since the caller adds up an op's input gradients position by position.
    """
    tape = GradientTape(watch_accessed_variables=False)
    tape._force = True
    with tape:
        tape.watch(
            [x for i, x in enumerate(inputs) if differentiable(x) and (needed is None or needed[i])]
        )
        tape.watch(variables)
        outputs = replay(inputs)
    kept = [(o, d) for o, d in zip(outputs, dys, strict=True) if differentiable(o)]
    input_grads, var_grads = tape.gradient(
        [o for o, _ in kept], [inputs, variables], output_gradients=[d for _, d in kept]
    )
    # The tape answers per tensor: one tensor given for several inputs (f(x, x), or a
    # capture that is also an argument) already has the sum over all its uses.
    seen: set[int] = set()
    for i, x in enumerate(inputs):
        if id(x) in seen:
            input_grads[i] = None
        else:
            seen.add(id(x))
    return input_grads, var_grads
