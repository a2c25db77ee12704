"""``sf.scoped_generator``: generators whose scopes never leak into the code iterating them.

A generator runs in its caller's context, so a scope it enters and holds across a ``yield``
is visible to whoever iterates it, and an async generator abandoned with ``break`` is closed
later by the event loop in another context, leaving the iterating task inside its scopes
for good. The decorator gives each generator a private copy of the caller's context, taken
when the generator is created, and runs every step (and the final close) inside it.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, ParamSpec, TypeVar, overload

__all__ = ["scoped_generator"]

P = ParamSpec("P")
Y = TypeVar("Y")
S = TypeVar("S")
R = TypeVar("R")


@overload
def scoped_generator(
    func: Callable[P, AsyncGenerator[Y, S]],
) -> Callable[P, AsyncGenerator[Y, S]]: ...


@overload
def scoped_generator(func: Callable[P, Generator[Y, S, R]]) -> Callable[P, Generator[Y, S, R]]: ...


def scoped_generator(func: Callable[P, Any]) -> Callable[P, Any]:
    """Run each step of a generator or async generator in the generator's own context.

    The generator starts from a snapshot of its caller's scopes (taken when it is created)
    and keeps the scopes it enters to itself: the code iterating it never sees them, also
    while the generator is suspended at a ``yield``, and also when the iteration is
    abandoned (``break``) and the generator is closed later by the garbage collector or
    the event loop. ``send``, ``throw``, ``close`` (and ``asend``, ``athrow``, ``aclose``)
    are forwarded.

    Example:
        >>> import scopeflow as sf
        >>> @sf.scoped_generator
        ... def layers():
        ...     with sf.name_scope("block"):
        ...         for i in range(2):
        ...             yield sf.get_name_scope()
        >>> gen = layers()
        >>> next(gen), repr(sf.get_name_scope())  # the caller is not inside "block"
        ('block', "''")
        >>> gen.close()

    Raises:
        TypeError: ``func`` is not a generator function or async generator function.
    """
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def make_async(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
            ctx = contextvars.copy_context()
            return _drive_async(ctx, ctx.run(func, *args, **kwargs))

        return make_async
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def make(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
            ctx = contextvars.copy_context()
            return _drive(ctx, ctx.run(func, *args, **kwargs))

        return make
    msg = (
        f"sf.scoped_generator decorates generator functions and async generator functions "
        f"(a `def` or `async def` containing `yield`), got {func!r}"
    )
    raise TypeError(msg)


def _drive(ctx: contextvars.Context, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Forward every step of ``gen`` into ``ctx``; close it there too."""
    value: Any = None
    pending: BaseException | None = None  # thrown into this wrapper, to forward to ``gen``
    try:
        while True:
            try:
                if pending is None:
                    item = ctx.run(gen.send, value)
                else:
                    exc, pending = pending, None
                    item = ctx.run(gen.throw, exc)
            except StopIteration as stop:
                return stop.value
            try:
                value = yield item
            except GeneratorExit:
                raise
            except BaseException as exc:
                pending = exc
    finally:
        ctx.run(gen.close)


async def _drive_async(
    ctx: contextvars.Context, agen: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, Any]:
    """Forward every step of ``agen`` (each resumption of each step) into ``ctx``."""
    value: Any = None
    pending: BaseException | None = None
    try:
        while True:
            try:
                if pending is None:
                    item = await _InContext(ctx, agen.asend(value))
                else:
                    exc, pending = pending, None
                    item = await _InContext(ctx, agen.athrow(exc))
            except StopAsyncIteration:
                return
            try:
                value = yield item
            except GeneratorExit:
                raise
            except BaseException as exc:
                pending = exc
    finally:
        # Abandoned iterations end here too: the event loop's finalizer closes this
        # wrapper, and the wrapped generator leaves its scopes in its own context.
        await _InContext(ctx, agen.aclose())


class _InContext:
    """An awaitable that runs every resumption of ``awaitable`` inside ``ctx``.

    Whatever the wrapped awaitable yields to the event loop passes through unchanged, and
    whatever the loop sends or throws back (values, cancellation) goes back into it.
    """

    __slots__ = ("_awaitable", "_ctx")

    def __init__(self, ctx: contextvars.Context, awaitable: Awaitable[Any]) -> None:
        self._ctx = ctx
        self._awaitable = awaitable

    def __await__(self) -> Generator[Any, Any, Any]:
        run = self._ctx.run
        it = self._awaitable.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                if thrown is None:
                    request = run(it.send, sent)
                else:
                    exc, thrown = thrown, None
                    request = run(it.throw, exc)
            except StopIteration as stop:
                return stop.value
            try:
                sent = yield request
            except GeneratorExit:
                run(it.close)
                raise
            except BaseException as exc:
                sent, thrown = None, exc
