"""Nested structures of gradient targets, seeds and sources (lists, tuples, dicts).

``GradientTape.gradient`` and ``sf.gradients`` flatten their targets and output gradients,
check that every leaf is a tensor or variable, and give results back in the structure of
the sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._backprop import tensor_of
from ._graph import Tensor
from ._ops._grad_util import zeros_like
from ._tensor import EagerTensor
from ._variables import Variable

__all__ = ["_check_leaves", "_leaves", "_leaves_like", "_rebuild", "unconnected_is_zero"]

_LEAF_TYPES: Final = frozenset({EagerTensor, Tensor, Variable})


def _leaves(value: Any) -> list[Any]:
    """The leaves of a nested list/tuple/dict structure, in order."""
    out: list[Any] = []
    _collect(value, out)
    return out


def _collect(value: Any, out: list[Any]) -> None:
    # Exact lists and tuples (never mappings) are tested before the ABC check, which
    # costs ~0.3 µs per node (a training step's gradient walks its sources thrice).
    kind = type(value)
    if kind is list or kind is tuple:
        for v in value:
            if type(v) in _LEAF_TYPES:
                out.append(v)
            else:
                _collect(v, out)
    elif kind in _LEAF_TYPES:
        out.append(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _collect(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect(v, out)
    else:
        out.append(value)


def _check_leaves(leaves: list[Any], what: str, *, allow_none: bool) -> None:
    for leaf in leaves:
        if type(leaf) in _LEAF_TYPES:
            continue  # the common case, without the isinstance tests
        if leaf is None and allow_none:
            continue
        if not isinstance(leaf, (EagerTensor, Tensor, Variable)):
            msg = (
                f"gradient() {what} must be tensors or variables (or nested lists, tuples "
                f"and dicts of them), got {leaf!r}"
            )
            raise TypeError(msg)


def _leaves_like(value: Any, structure: Any) -> Iterable[Any]:
    """The leaves of ``value`` laid out like ``structure`` (a seed per target tensor)."""
    if isinstance(structure, Mapping):
        for key, sub in structure.items():
            yield from _leaves_like(value[key], sub)
    elif isinstance(structure, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(structure):
            msg = (
                f"output gradients must have the structure of the targets: expected "
                f"{len(structure)} items, got {value!r}"
            )
            raise ValueError(msg)
        for v, sub in zip(value, structure, strict=True):
            yield from _leaves_like(v, sub)
    else:
        yield value


def _rebuild(
    sources: Any, grads: dict[int, Any], var_grads: dict[int, Any], zero: bool = False
) -> Any:
    """The gradients (from ``backprop``) of ``sources``, in their structure."""
    kind = type(sources)
    if kind is Variable:  # exact types first (see _collect)
        grad = var_grads.get(id(sources))
    elif kind is EagerTensor or kind is Tensor:
        grad = grads.get(id(sources))
    elif kind is list:
        return [_rebuild(v, grads, var_grads, zero) for v in sources]
    elif isinstance(sources, Mapping):
        return {k: _rebuild(v, grads, var_grads, zero) for k, v in sources.items()}
    elif isinstance(sources, (list, tuple)):
        items = [_rebuild(v, grads, var_grads, zero) for v in sources]
        return items if isinstance(sources, list) else type(sources)(items)
    elif isinstance(sources, Variable):
        grad = var_grads.get(id(sources))
    elif isinstance(sources, (EagerTensor, Tensor)):
        grad = grads.get(id(sources))
    else:
        msg = f"gradient() sources must be tensors or variables, got {sources!r}"
        raise TypeError(msg)
    if grad is None:
        return zeros_like(sources) if zero else None
    return tensor_of(grad)  # the eager walk gives NumPy arrays


def unconnected_is_zero(unconnected_gradients: Any, what: str) -> bool:
    """Whether TensorFlow's ``unconnected_gradients`` asks for zeros instead of None.

    Accepts ``"none"``/``"zero"`` (any case) or an enum member whose ``value`` is one of
    them (TensorFlow's ``tf.UnconnectedGradients``).
    """
    value = getattr(unconnected_gradients, "value", unconnected_gradients)
    if isinstance(value, str) and value.lower() in ("none", "zero"):
        return value.lower() == "zero"
    msg = (
        f"{what}: unconnected_gradients must be 'none' or 'zero'. Unknown value for "
        f"unconnected_gradients: {unconnected_gradients!r}"
    )
    raise ValueError(msg)
