"""Carrying a task's scopes into plain threads, executors and callbacks.

A plain ``threading.Thread`` or ``loop.run_in_executor`` starts from an empty context;
:func:`copy_scopes` / :func:`run_in_scopes` and :class:`ScopedExecutor` carry the caller's
whole context (scopes, random seed, functions being traced) across.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import ParamSpec, TypeVar, final

from ._context import EAGER, LOG, ROOT, Frame, state_get, state_set

__all__ = ["ScopedExecutor", "ScopesSnapshot", "copy_scopes", "run_in_scopes"]

P = ParamSpec("P")
T = TypeVar("T")


@final
class ScopesSnapshot:
    """The state of one context, captured by :func:`copy_scopes`.

    It holds the immutable frame of scopes and a copy of the whole context (every other
    context variable: the random seed, the functions being traced), so later changes in
    the captured context never show, as with :class:`ScopedExecutor`.
    """

    __slots__ = ("_context", "_frame")

    def __init__(self, frame: Frame, context: contextvars.Context | None = None) -> None:
        self._frame = frame
        self._context = context

    def __repr__(self) -> str:
        return f"<ScopesSnapshot eager={self._frame[EAGER]} switches={len(self._frame[LOG])}>"


def copy_scopes() -> ScopesSnapshot:
    """Capture the calling context's scopes for :func:`run_in_scopes`.

    Plain ``threading.Thread`` and ``loop.run_in_executor`` start from an empty context;
    carry the caller's scopes across with this pair.

    Example:
        >>> import threading, scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     snap = sf.copy_scopes()
        >>> seen = []
        >>> t = threading.Thread(
        ...     target=sf.run_in_scopes, args=(snap, lambda: seen.append(sf.get_default_graph()))
        ... )
        >>> t.start(); t.join(); seen[0] is g
        True
    """
    frame = state_get()
    if frame is ROOT:
        # The root follows later mode switches; a snapshot keeps the mode it was taken in.
        frame = tuple(ROOT)
    return ScopesSnapshot(frame, contextvars.copy_context())


def run_in_scopes(
    snapshot: ScopesSnapshot, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Call ``fn`` in the context captured by ``snapshot``, then restore the caller's.

    Scopes that ``fn`` enters and leaves stay its own. The call runs in a fresh copy of
    the captured context (scopes, random seed and every other context variable, as a
    task or :class:`ScopedExecutor` call would see them), so it never changes the
    caller's context nor the snapshot, and one snapshot can serve many calls at once.
    """
    if not isinstance(snapshot, ScopesSnapshot):
        msg = (
            f"run_in_scopes() needs a ScopesSnapshot from sf.copy_scopes(), "
            f"got {type(snapshot).__name__}"
        )
        raise TypeError(msg)

    def call() -> T:
        state_set(snapshot._frame)
        return fn(*args, **kwargs)

    captured = snapshot._context
    return (contextvars.copy_context() if captured is None else captured.copy()).run(call)


@final
class ScopedExecutor(Executor):
    """Wrap an executor so each submitted call runs in the submitter's context.

    The context (scopeflow's scopes and every other ContextVar) is captured at submit
    time, so what the submitter enters afterwards never reaches the call.

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with ThreadPoolExecutor(2) as pool, g.as_default():
        ...     sf.ScopedExecutor(pool).submit(sf.get_default_graph).result() is g
        True
    """

    def __init__(self, executor: Executor) -> None:
        if not isinstance(executor, Executor):
            msg = f"ScopedExecutor wraps a concurrent.futures.Executor, got {executor!r}"
            raise TypeError(msg)
        self._executor = executor

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the calling context."""
        ctx = contextvars.copy_context()
        return self._executor.submit(ctx.run, fn, *args, **kwargs)  # type: ignore[arg-type]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped executor down."""
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)
