"""The life of a trace: waiting for another caller's trace, and who may create variables.

- :class:`Pending` is a trace in progress that other callers wait for. Threads block on a
  ``threading.Event``; tasks wait on an anyio event of their own event loop, which the
  tracer sets through that loop's thread-safe scheduling, so a waiter holds no worker
  thread and the tracer may run in any thread or event loop.
- :class:`Lifecycle` decides, per :class:`~scopeflow.Function`, which trace may create
  variables. TensorFlow's rule is that only the first trace creates them; here the first
  trace is the first one that *completes*, so a trace that fails or is cancelled poisons
  nothing. Traces of different signatures run in parallel: the first one to create a
  variable becomes the *creator*; another trace that reaches variable creation meanwhile
  is abandoned (:class:`Retrace`), waits for the creator to finish, and is traced again,
  by then normally as a later trace that finds the creator's variables.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

from ._func_graph import FuncGraph

if TYPE_CHECKING:
    import anyio

__all__ = ["Lifecycle", "Pending", "Retrace", "check_variable_creation"]


@final
class Pending:
    """A trace in progress; :meth:`set` wakes every caller waiting for it."""

    __slots__ = ("_event", "_lock", "_wakers")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()  # set once done; blocking waiters wait on it
        # One callable per waiting task; each schedules its task's event on its own loop.
        self._wakers: set[Callable[[], None]] | None = set()

    def set(self) -> None:
        """Mark the trace finished (successfully or not) and wake every waiter."""
        with self._lock:
            wakers, self._wakers = self._wakers, None
            self._event.set()
        for wake in wakers or ():
            wake()

    def wait(self) -> None:
        """Block this thread until :meth:`set`."""
        self._event.wait()

    async def wait_async(self) -> None:
        """Wait in the calling task until :meth:`set`, holding no worker thread."""
        import anyio  # imported here, in a task that waits: ``import scopeflow`` skips it

        event = anyio.Event()
        wake = _loop_waker(event)
        with self._lock:
            if self._wakers is None:
                return
            self._wakers.add(wake)
        try:
            await event.wait()
        finally:
            # A cancelled waiter leaves quietly; the trace and the other waiters go on.
            with self._lock:
                if self._wakers is not None:
                    self._wakers.discard(wake)


def _loop_waker(event: anyio.Event) -> Callable[[], None]:
    """A callable, safe from any thread, that sets ``event`` in the calling task's loop."""
    # asyncio is looked up, not imported: without it no asyncio loop can be running, and
    # importing it at package import would cost about 30 ms (half of numpy's import).
    asyncio = sys.modules.get("asyncio")
    loop = None
    if asyncio is not None:
        with contextlib.suppress(RuntimeError):  # no running loop in this thread
            loop = asyncio.get_running_loop()
    if loop is not None:
        running = loop

        def wake_asyncio() -> None:
            # RuntimeError: the loop has closed, so its waiter is gone.
            with contextlib.suppress(RuntimeError):
                running.call_soon_threadsafe(event.set)

        return wake_asyncio
    import trio  # anyio runs on asyncio or trio; trio is imported only when it runs

    token = trio.lowlevel.current_trio_token()

    def wake_trio() -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the run ended: no waiter left
            token.run_sync_soon(event.set)

    return wake_trio


class Retrace(BaseException):
    """Abandon the trace of ``graph`` and trace again, after ``wait`` (if any) is done.

    A ``BaseException`` so that a broad ``except Exception`` in traced code does not
    swallow it; the tracer of ``graph`` always catches it.
    """

    def __init__(self, graph: FuncGraph, wait: Pending | None) -> None:
        super().__init__(
            f"internal: the trace of {graph!r} is restarted (another trace of the same "
            f"function is creating its variables)"
        )
        self.graph = graph
        self.wait = wait

    @staticmethod
    def of(error: BaseException, graph: FuncGraph) -> Retrace | None:
        """The request to redo ``graph`` that ``error`` is, else None.

        Also when ``error`` is an exception group made only of such requests: a variable
        created in a task that the trace spawned reaches the tracer that way.
        """
        if isinstance(error, Retrace):
            return error if error.graph is graph else None
        if isinstance(error, BaseExceptionGroup):
            match, rest = error.split(lambda e: isinstance(e, Retrace) and e.graph is graph)
            if match is not None and rest is None:
                requests = [e for e in _leaves(match) if isinstance(e, Retrace)]
                waiting = [r for r in requests if r.wait is not None]
                return (waiting or requests)[0]
        return None


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


@final
class Lifecycle:
    """Per-function trace state: the trace count and the right to create variables."""

    __slots__ = ("_completed", "_creator", "_creator_done", "_lock", "count")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        # Set when a trace completes; from then on new traces may not create variables.
        self._completed = False
        # The unfinished trace that has created variables, and its completion notice.
        self._creator: FuncGraph | None = None
        self._creator_done: Pending | None = None

    def begin(self, fg: FuncGraph) -> None:
        """Count a new trace into ``fg``; it may create variables until one completes."""
        with self._lock:
            self.count += 1
            fg._allow_variables = not self._completed
        fg._traced_by = self

    def restarted(self) -> None:
        """A trace was abandoned to be redone: it does not count as a trace."""
        with self._lock:
            self.count -= 1

    def end(self, fg: FuncGraph, completed: bool) -> None:
        """The trace into ``fg`` finished; ``completed`` when it produced a function."""
        done = None
        with self._lock:
            if completed:
                self._completed = True
            if self._creator is fg:
                done, self._creator, self._creator_done = self._creator_done, None, None
        if done is not None:
            done.set()

    def permit_variable(self, fg: FuncGraph) -> None:
        """Allow the trace into ``fg`` to create a variable now, or raise.

        Raises:
            Retrace: another trace is creating this function's variables, or completed
                since this trace began; ``fg`` is traced again once that is settled.
            ValueError: a trace has completed before this one began.
        """
        with self._lock:
            creator = self._creator
            if creator is fg:
                return
            if creator is not None:
                raise Retrace(fg, self._creator_done)
            if not fg._allow_variables:
                raise ValueError(_later_trace_message(fg))
            if self._completed:
                raise Retrace(fg, None)
            self._creator = fg
            self._creator_done = Pending()


def _later_trace_message(fg: FuncGraph) -> str:
    return (
        f"A variable was created while tracing {fg!r} again. Variables may only be "
        f"created on a function's first trace (they are created once and reused by later "
        f"calls): create it outside the function, or keep it on an object and create it "
        f"only if it does not exist yet"
    )


def check_variable_creation(traces: tuple[Any, ...]) -> None:
    """Raise unless every function being traced here may create a variable now.

    Also inside ``init_scope``: a variable made there would be made again by every
    retrace. Outermost trace first, so an abandoned outer trace claims nothing inside.
    """
    for graph in traces:
        owner = graph._traced_by
        if isinstance(owner, Lifecycle):
            owner.permit_variable(graph)
        elif not graph._allow_variables:
            raise ValueError(_later_trace_message(graph))
