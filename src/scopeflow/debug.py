"""Scope introspection: ``sf.debug``.

Names: :func:`describe_scopes`, :func:`ScopeDescription`.

:func:`describe_scopes` shows why an op lands where it does: the calling context's
context-switch log, default-graph stack, name scope, control dependencies, device,
control-flow scope and gradient tapes. Every :class:`~scopeflow.ScopeNestingError` and
every :class:`~scopeflow.errors.GraphMismatchError` raised while building an op from a
tensor, variable or control input of another graph ends with the same description,
taken in the context where the error happened.

Example:
    >>> import scopeflow as sf
    >>> g = sf.Graph()
    >>> with g.as_default(), sf.name_scope("layer"):
    ...     d = sf.debug.describe_scopes()
    >>> d.name_scope, d.executing_eagerly, d.default_graphs == (repr(g),)
    ('layer', False, True)
"""

from __future__ import annotations

from ._introspect import (
    ScopeDescription as ScopeDescription,
    describe_scopes as describe_scopes,
)

__all__ = ["ScopeDescription", "describe_scopes"]

ScopeDescription.__module__ = __name__
