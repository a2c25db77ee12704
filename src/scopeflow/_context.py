"""Task-local scope state: one ContextVar holding an immutable frame.

Every piece of ambient state (execution mode, default graph, context-switch log, the
current name scope / control dependencies / device / control-flow scope, tapes and the
"recording paused" flag) lives in one frame: a plain tuple laid out by the index
constants below. Entering a scope builds a new frame whose ``PARENT`` is the current one
and sets the ContextVar; leaving checks that the scope's frame is still the current one
and resets with the saved token. Because frames are immutable and the ContextVar is
copied with every asyncio/trio task, ``to_thread`` call and ``copy_context()``, a child
always starts from its parent's state and nothing it enters can leak back.

Frames are tuples, not a dataclass, on purpose: building a slots object costs about
25 x building a tuple on our reference machine, and every scope entry builds one frame.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, final

from .errors import ScopeNestingError

if TYPE_CHECKING:
    from types import TracebackType

    from ._graph import Graph

__all__ = [
    "ContextSwitch",
    "context_switches",
    "disable_eager_execution",
    "eager_mode",
    "enable_eager_execution",
    "executing_eagerly",
    "graph_mode",
    "stop_recording",
]

P = ParamSpec("P")
T = TypeVar("T")

# ---------------------------------------------------------------------------------------
# Frame layout. A frame is a tuple (the root frame a list, see ``ROOT``) with these fields:
PARENT: Final = 0  # the frame this one was pushed on, or None for a root frame
OWNER: Final = 1  # the scope object that pushed it (named in nesting errors), or None
EAGER: Final = 2  # True while executing eagerly
GRAPH: Final = 3  # the default graph, or None: the process-wide global default graph
SCOPES: Final = 4  # name scope / control deps / device / control-flow scope (see below)
LOG: Final = 5  # tuple[ContextSwitch, ...], oldest first
TAPES: Final = 6  # tuple of active gradient tapes, outermost first
PAUSED: Final = 7  # True while every tape visible here is paused
AUX: Final = 8  # (graph, scopes) when a scope changed a graph that is not current, else None

# The scope record of one op-creation context (a graph, or eager mode) is a 4-tuple:
NAME: Final = 0  # absolute name scope without trailing slash; "" at the root
CONTROLS: Final = 1  # control-dependency chain: () or (parent_chain, ops_tuple)
DEVICE: Final = 2  # canonical device string; "" for none
FLOW: Final = 3  # the control-flow scope ops are created in, or None

Frame = Sequence[Any]  # a tuple, or the root frame (a list)
Scopes = tuple[str, tuple[Any, ...], str, Any]

EMPTY_SCOPES: Final[Scopes] = ("", (), "", None)


@final
class ContextSwitch:
    """One entry of the context-switch log.

    A graph's ``as_default()`` and ``eager_mode()`` append an entry while they are open;
    ``init_scope`` walks the log from the newest entry to find where ops should go.

    Attributes:
        is_building_function: True for a function graph being traced.
        enter_context: a zero-argument callable returning a scope that re-enters it.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     sf.context_switches()[-1].is_building_function
        False
    """

    __slots__ = ("_graph", "_is_eager", "enter_context", "is_building_function")

    def __init__(
        self,
        *,
        is_building_function: bool,
        enter_context: Callable[[], Any],
        graph: Graph | None,
        is_eager: bool,
    ) -> None:
        self.is_building_function = is_building_function
        self.enter_context = enter_context
        # For a graph entry, the graph; for an eager entry, the graph that was the default
        # when eager mode was entered (never a function graph; None = global default).
        self._graph = graph
        self._is_eager = is_eager

    @property
    def device_stack(self) -> str:
        """The device this context currently uses in the calling task ("" for none).

        Like TensorFlow's entry, this is live: it is the device scope open on that graph
        (or eager context) in the current task now, not when the entry was logged.
        """
        cur = state_get()
        return scopes_of(cur, None if self._is_eager else self._graph, self._is_eager)[DEVICE]

    def __repr__(self) -> str:
        if self._is_eager:
            return "ContextSwitch(eager)"
        return f"ContextSwitch({self._graph!r}, is_building_function={self.is_building_function})"


def _eager_switch_for(graph: Graph | None) -> ContextSwitch:
    """The log entry for entering eager mode while ``graph`` is the default graph."""
    if graph is None:
        return _ROOT_EAGER_SWITCH
    switch = graph._eager_switch
    if switch is None:
        switch = graph._eager_switch = ContextSwitch(
            is_building_function=False, enter_context=eager_mode, graph=graph, is_eager=True
        )
    return switch


_ROOT_EAGER_SWITCH: Final = ContextSwitch(
    is_building_function=False,
    enter_context=lambda: eager_mode(),
    graph=None,
    is_eager=True,
)

# Every context without scopes reads the root frame: the ContextVar's default, and the
# value set in the importing context below. Unlike every other frame it is a list, whose
# mode fields ``disable_eager_execution`` / ``enable_eager_execution`` switch in place, so
# that the variable can have a default (a ``get()`` without an argument and without
# loading the root: about 8 ns less per query, bench_scopes) and still follow the
# process default mode. Scopes never change it (pushes build new tuples on top of it).
# Its fields in the two modes; they differ only in EAGER and LOG.
_ROOT_EAGER: Final[Frame] = (
    None, None, True, None, EMPTY_SCOPES, (_ROOT_EAGER_SWITCH,), (), False, None,
)  # fmt: skip
_ROOT_GRAPH: Final[Frame] = (None, None, False, None, EMPTY_SCOPES, (), (), False, None)
ROOT: Final[list[Any]] = list(_ROOT_EAGER)
# Kept for the modules that read ``state_get(_roots[0])`` (the same as ``state_get()``).
_roots: Final[list[Frame]] = [ROOT]

_STATE: Final[contextvars.ContextVar[Frame]] = contextvars.ContextVar(
    "scopeflow_state", default=ROOT
)
# Bound once: on 3.11 `_STATE.get(...)` on an imported name is a generic attribute lookup
# that builds a bound method on every call, and these run on every hot path.
state_get: Final = _STATE.get
state_set: Final = _STATE.set
state_reset: Final = _STATE.reset
# A variable that holds a value in the calling context answers ``get()`` from its cache;
# one without a value costs a lookup in the context's map on every call. Setting the
# root in the importing context (normally the main thread's, which tasks copy) saves
# about 5 ns per query there (bench_scopes).
state_set(ROOT)


def current() -> Frame:
    """The calling context's current frame."""
    return state_get()


def root_frame() -> Frame:
    """The frame every context without scopes starts from (the process default mode)."""
    return ROOT


# The process-wide global default graph, created lazily by ``_graph`` (which imports this
# module, so it cannot be imported here). A one-element list so both modules share it.
GLOBAL_GRAPH: Final[list[Graph | None]] = [None]


def scopes_of(frame: Frame, graph: Graph | None, eager: bool) -> Scopes:
    """The scope record of ``graph`` (or of eager mode) as it stands in ``frame``.

    Walks from ``frame`` towards the root and returns the record of the newest frame in
    which that context was current (or changed through ``AUX``). Only scope entries that
    switch contexts call this; the hot paths read ``frame[SCOPES]`` directly.
    """
    f: Frame | None = frame
    if eager:
        while f is not None:
            if f[EAGER]:
                return f[SCOPES]  # type: ignore[no-any-return]
            f = f[PARENT]
        return EMPTY_SCOPES
    glob = GLOBAL_GRAPH[0]
    if graph is None:
        graph = glob  # None before the global graph exists: frames with GRAPH None match
    is_global = graph is glob
    while f is not None:
        aux = f[AUX]
        if aux is not None and aux[0] is graph:
            return aux[1]  # type: ignore[no-any-return]
        if not f[EAGER]:
            g = f[GRAPH]
            if g is graph or (g is None and is_global):
                return f[SCOPES]  # type: ignore[no-any-return]
        f = f[PARENT]
    return EMPTY_SCOPES


# ---------------------------------------------------------------------------------------
# The scope protocol: push a frame on enter, verify nesting and reset on exit.

_ADVICE: Final = (
    "Scopes must be left in the reverse order they were entered, by the task or thread "
    "that entered them: use `with` / `async with` blocks, and close an async generator "
    "that holds a scope in the task that iterates it (or decorate it with "
    "@sf.scoped_generator, which keeps its scopes in its own context)."
)
_ABANDONED: Final = (
    " {inner} was entered by a generator that was then closed from another context "
    "(an async generator abandoned with `break` and closed by the event loop?), so this "
    "context was still inside it."
)


def _nesting_error(msg: str) -> ScopeNestingError:
    from ._introspect import with_description  # only when raising: never on a hot path

    return ScopeNestingError(with_description(msg))


# Guards the making of a scope object's dict of further simultaneous entries
# (Scope._push_more).
_MORE_LOCK: Final = threading.RLock()


class Scope:
    """Base of every scopeflow scope: usable with ``with`` and ``async with``.

    Entry state (the pushed frame and its ContextVar token) is kept per entry, so one
    scope object may be entered again after it was left, nested in itself, or entered by
    two tasks at once. The first open entry lives in two slots (the common case costs no
    allocation); further simultaneous entries go in a small dict.
    """

    __slots__ = ("_abandoned", "_frame", "_more", "_token")

    # Only ``_frame`` is set at construction (one store per scope object on the hot path):
    # ``_token`` is written together with ``_frame``, and ``_more`` on a second
    # simultaneous entry; the slow paths read it with ``getattr``. ``_abandoned`` is set
    # when an exit came from another context, to explain a later misnesting it causes.
    _token: contextvars.Token[Frame] | None
    _more: dict[int, tuple[Frame, contextvars.Token[Frame]]]
    _abandoned: bool

    def __init__(self) -> None:
        self._frame: Frame | None = None

    def _push(self, frame: Frame) -> None:
        token = state_set(frame)
        # Check-and-claim of the slots runs no call, so no other thread can run between
        # the check and the stores (the interpreter only switches threads at calls and
        # backward jumps): two threads entering one scope object never share a slot.
        if self._frame is None:
            self._frame = frame
            self._token = token
        else:
            self._push_more(frame, token)

    def _push_more(self, frame: Frame, token: contextvars.Token[Frame]) -> None:
        """Record a second simultaneous entry (re-entry, or another task)."""
        entry = (frame, token)
        more = getattr(self, "_more", None)
        if more is None:
            # getattr is a call, where another thread may run: without the lock, two
            # threads making the second and third entries of one scope object could each
            # create the dict, and one entry would be lost (its exit then raised a
            # nesting error). The dict is made before the lock, and the lock is
            # reentrant: a collection during getattr may run code (a gc callback, a
            # finalizer) that enters some scope object twice, in this thread.
            fresh = {id(frame): entry}
            with _MORE_LOCK:
                more = getattr(self, "_more", None)
                if more is None:
                    self._more = fresh
                    return
        more[id(frame)] = entry  # the dict, once made, stays

    def __enter__(self) -> Any:
        """Push this scope's frame; return what ``with ... as x`` binds."""
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Outside every scope get() returns the root, never the frame of an open entry, so
        # one identity test covers "not entered" too.
        cur = state_get()
        if cur is self._frame:
            try:
                state_reset(self._token)  # type: ignore[arg-type]
            except ValueError:
                raise self._elsewhere() from None
            self._frame = self._token = None
            return
        self._exit_slow(cur)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- the uncommon exits ------------------------------------------------------------

    def _entries(self) -> Iterator[tuple[Frame, contextvars.Token[Frame]]]:
        if self._frame is not None:
            yield self._frame, self._token  # type: ignore[misc]
        more = getattr(self, "_more", None)
        if more:
            yield from list(more.values())

    def _forget(self, frame: Frame) -> None:
        if self._frame is frame:
            self._frame = self._token = None
        else:
            more = getattr(self, "_more", None)
            if more:
                more.pop(id(frame), None)

    def _exit_slow(self, cur: Frame | None) -> None:
        mine = {id(frame): (frame, token) for frame, token in self._entries()}
        if not mine:
            msg = (
                f"{self!r} is not open in this context: it was already left, or it was "
                f"closed because a scope around it was left first. {_ADVICE}"
            )
            raise _nesting_error(msg)
        # Walk from the innermost open frame outwards looking for one of our entries.
        f = cur
        while f is not None and id(f) not in mine:
            f = f[PARENT]
        if f is None:
            self._abandoned = True
            msg = (
                f"{self!r} was entered in a different context (another task, thread or "
                f"copied Context) and cannot be left from this one. {_ADVICE}"
            )
            raise _nesting_error(msg)
        frame, token = mine[id(f)]
        try:
            state_reset(token)
        except ValueError:
            raise self._elsewhere() from None
        self._forget(frame)
        if cur is frame:  # a second simultaneous entry of this object, left in order
            return
        # Misnested: close every scope opened inside ours, then report the innermost one.
        assert cur is not None
        # Described before the walk closes it (a closed tape entry forgets its tape).
        inner = repr(cur[OWNER])
        hint = _ABANDONED.format(inner=inner) if getattr(cur[OWNER], "_abandoned", False) else ""
        g: Frame | None = cur
        while g is not None and g is not frame:
            owner = g[OWNER]
            if owner is not None:
                owner._forget(g)
            g = g[PARENT]
        msg = (
            f"{self!r} was left while {inner}, entered inside it, was still open. Both "
            f"are now closed and the state is what it was before {self!r} was entered."
            f"{hint} {_ADVICE}"
        )
        raise _nesting_error(msg)

    def _elsewhere(self) -> ScopeNestingError:
        self._abandoned = True
        msg = (
            f"{self!r} is being left in a different context than the one that entered it "
            f"(another task, thread or copied Context); it was entered elsewhere. {_ADVICE}"
        )
        return _nesting_error(msg)


# ---------------------------------------------------------------------------------------
# Modes


def executing_eagerly() -> bool:
    """Whether ops run immediately in the calling task (True) or build a graph.

    Example:
        >>> import scopeflow as sf
        >>> sf.executing_eagerly()
        True
        >>> with sf.Graph().as_default():
        ...     sf.executing_eagerly()
        False
    """
    return state_get()[2]  # type: ignore[no-any-return]  # 2 is EAGER: no global load


@final
class _EagerMode(Scope):
    __slots__ = ()

    def __enter__(self) -> None:
        cur = state_get()
        graph = cur[GRAPH]
        if graph is not None and graph.building_function:
            graph = graph._non_function_outer()
        self._push(
            (
                cur, self, True, graph, scopes_of(cur, None, True),
                cur[LOG] + (_eager_switch_for(graph),), cur[TAPES], cur[PAUSED], None,
            )
        )  # fmt: skip

    def __repr__(self) -> str:
        return "eager_mode()"


@final
class _GraphMode(Scope):
    __slots__ = ()

    def __enter__(self) -> None:
        cur = state_get()
        graph = cur[GRAPH]
        self._push(
            (
                cur, self, False, graph, scopes_of(cur, graph, False),
                cur[LOG], cur[TAPES], cur[PAUSED], None,
            )
        )  # fmt: skip

    def __repr__(self) -> str:
        return "graph_mode()"


def eager_mode() -> Scope:
    """A scope whose body executes eagerly; logged as a non-function context switch.

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default(), sf.eager_mode():
        ...     sf.executing_eagerly()
        True
    """
    return _EagerMode()


def graph_mode() -> Scope:
    """A scope whose body builds graphs; ops go to the default graph.

    Example:
        >>> import scopeflow as sf
        >>> with sf.graph_mode():
        ...     sf.executing_eagerly()
        False
    """
    return _GraphMode()


def enable_eager_execution() -> None:
    """Make eager execution the process-wide default mode (the initial setting).

    Call it at program start-up: contexts that already entered scopes keep their state,
    every other context (new tasks' parents included) starts from the new default.
    """
    # In place, in one slice assignment. A thread reading the root while another switches
    # it may read EAGER and LOG (the only fields that differ) from different modes: each
    # mix is a state the scopes handle (eager with an empty log, graph mode with the
    # eager entry logged), and the switch is a start-up call.
    ROOT[:] = _ROOT_EAGER


def disable_eager_execution() -> None:
    """Make graph building the process-wide default mode, as in TensorFlow 1.

    Example:
        >>> import scopeflow as sf
        >>> sf.disable_eager_execution(); sf.executing_eagerly()
        False
        >>> sf.enable_eager_execution(); sf.executing_eagerly()
        True
    """
    ROOT[:] = _ROOT_GRAPH


def context_switches() -> tuple[ContextSwitch, ...]:
    """The calling context's log of context switches, oldest first.

    Example:
        >>> import scopeflow as sf
        >>> len(sf.context_switches())
        1
    """
    return state_get()[LOG]  # type: ignore[no-any-return]


@final
class _StopRecording(Scope):
    __slots__ = ()

    def __enter__(self) -> None:
        cur = state_get()
        self._push(
            (cur, self, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], cur[TAPES], True, None)
        )

    def __repr__(self) -> str:
        return "stop_recording()"


def stop_recording() -> Scope:
    """A scope in which every gradient tape visible to this context is paused.

    Nested pauses are safe: recording resumes when the outermost pause ends.

    Example:
        >>> import scopeflow as sf
        >>> with sf.stop_recording():
        ...     pass
    """
    return _StopRecording()


def recording_paused() -> bool:
    """Whether tapes are paused in the calling context."""
    return state_get()[PAUSED]  # type: ignore[no-any-return]


# One lock for lazily created process-wide objects (the global default graph).
process_lock: Final = threading.Lock()
