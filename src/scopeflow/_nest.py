"""Nested structures of values: flatten to leaves plus a template, and fill back in.

Used for session fetches, function outputs, branch results and loop variables. Lists,
tuples (named tuples included) and mappings (a ``defaultdict`` keeps its factory; other
mapping types must rebuild from a dict, checked before anything runs) are containers;
everything else is a leaf, unless the caller's ``constant`` predicate says it is a fixed
value to keep as it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["fill", "flatten"]

_CONST = "const"
_DEFAULTDICT = "defaultdict"  # rebuilt with its default_factory
_rebuildable: set[type] = set()  # mapping types known to rebuild from a dict


def _check_rebuildable(kind: type) -> None:
    """Refuse, before anything runs, a mapping type that cannot be rebuilt from a dict."""
    if kind in _rebuildable:
        return
    try:
        kind({})
    except Exception as err:
        msg = (
            f"Cannot use a {kind.__name__} as a nested structure: it cannot be rebuilt "
            f"from a dict ({type(err).__name__}: {err}); use a dict instead"
        )
        raise TypeError(msg) from None
    _rebuildable.add(kind)


def flatten(value: Any, leaves: list[Any], constant: Callable[[Any], bool] | None = None) -> Any:
    """Append the leaves of ``value`` to ``leaves``; return the template to :func:`fill`.

    A leaf for which ``constant`` is true is not appended: the template keeps None for it.
    """
    if isinstance(value, Mapping):
        items = [(k, flatten(v, leaves, constant)) for k, v in value.items()]
        kind = type(value)
        if isinstance(value, defaultdict):
            return (_DEFAULTDICT, (kind, value.default_factory, items))
        if kind is not dict:
            _check_rebuildable(kind)
        return (kind, items)
    if isinstance(value, (list, tuple)):
        return (type(value), [flatten(v, leaves, constant) for v in value])
    if constant is not None and constant(value):
        return (_CONST, None)
    leaves.append(value)
    return len(leaves) - 1


def fill(template: Any, values: Sequence[Any]) -> Any:
    """The structure of ``template`` with leaf ``i`` replaced by ``values[i]``."""
    if isinstance(template, int):
        return values[template]
    kind, items = template
    if kind == _CONST:
        return items
    if kind == _DEFAULTDICT:
        dd_kind, factory, dd_items = items
        return dd_kind(factory, {k: fill(v, values) for k, v in dd_items})
    if issubclass(kind, Mapping):
        built = {k: fill(v, values) for k, v in items}
        return built if kind is dict else kind(built)
    seq = [fill(v, values) for v in items]
    if kind is list:
        return seq
    if hasattr(kind, "_fields"):  # a named tuple takes its fields as arguments
        return kind(*seq)
    return kind(seq)
