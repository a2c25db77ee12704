"""Errors raised by scopeflow.

Every error derives from :class:`ScopeflowError` and from the builtin exception that
callers already catch for that kind of mistake::

    ScopeflowError
    ├── ScopeNestingError (RuntimeError)      a scope left out of order or in another context
    ├── GraphMismatchError (ValueError)       a tensor used in a graph it does not belong to
    ├── FinalizedGraphError (RuntimeError)    a finalized graph was asked to change
    ├── OpError                               a failure while running a graph
    │   ├── InvalidArgumentError (ValueError) a missing or ill-shaped feed, a bad runtime value
    │   └── FailedPreconditionError (RuntimeError)  e.g. reading an uninitialized variable
    └── TracingError (RuntimeError)           a symbolic tensor used after its trace ended

Example:
    >>> import scopeflow as sf
    >>> issubclass(sf.ScopeNestingError, RuntimeError)
    True
"""

from __future__ import annotations

__all__ = [
    "FailedPreconditionError",
    "FinalizedGraphError",
    "GraphMismatchError",
    "InvalidArgumentError",
    "OpError",
    "ScopeNestingError",
    "ScopeflowError",
    "TracingError",
]


class ScopeflowError(Exception):
    """Base class of every error scopeflow raises on purpose."""


class ScopeNestingError(ScopeflowError, RuntimeError):
    """A scope was left out of order, twice, or from another task, thread or context."""


class GraphMismatchError(ScopeflowError, ValueError):
    """A tensor or operation was used in a graph it does not belong to."""


class FinalizedGraphError(ScopeflowError, RuntimeError):
    """A finalized graph was asked to accept a new operation or collection change."""


class OpError(ScopeflowError):
    """An operation failed while a graph was being run."""


class InvalidArgumentError(OpError, ValueError):
    """A feed is missing or does not match its placeholder, or a runtime value is invalid."""


class FailedPreconditionError(OpError, RuntimeError):
    """An operation ran before what it needs was ready (an uninitialized variable)."""


class TracingError(ScopeflowError, RuntimeError):
    """A symbolic tensor was used after the trace that created it had finished."""
