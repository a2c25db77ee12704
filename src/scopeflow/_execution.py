"""Graph execution: :class:`Session` compiles run plans and executes them on NumPy.

A plan is the list of operations a set of fetches needs given a set of fed tensors, in an
order that respects data and control edges. Plans are cached per (fetches, feeds) on the
session, so a repeated ``run`` only executes kernels. ``run`` keeps every value in local
variables and may be called from several threads at once.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

import numpy as np

from ._copying import refuse_copying
from ._graph import Graph, Operation, Tensor, get_default_graph
from ._nest import fill, flatten
from ._ops._registry import REGISTRY
from ._quiet import QUIET, quiet_reset, quiet_set
from ._read_log import CALL_READS
from ._tensor import EagerTensor, to_array
from .errors import GraphMismatchError, InvalidArgumentError, OpError

if TYPE_CHECKING:
    from types import TracebackType

    import anyio

    from ._context import Scope

__all__ = ["ARUN_THREADS", "Session", "current_run", "default_arun_limiter"]


@final
class _RunState:
    """What kernels of stateful ops reach while a session runs: the session's values of
    graph variables, and the lock that makes their updates atomic."""

    __slots__ = ("lock", "resources")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resources: dict[Any, np.ndarray[Any, Any]] = {}


# Set for the duration of Session.run (a function call inside the run sees it too).
_CURRENT_RUN: contextvars.ContextVar[_RunState | None] = contextvars.ContextVar(
    "scopeflow_run", default=None
)


def current_run() -> _RunState | None:
    """The state of the session run executing in this context, if any."""
    return _CURRENT_RUN.get()


@final
class _Plan:
    """A compiled run: kernels over integer value slots.

    ``steps`` holds (op, kernel, input slots, first output slot, output count, output
    dtype) per op, the kernel with the op's attributes bound (it takes the input arrays
    alone) and, for several outputs, a tuple of dtypes; fed tensors occupy the slots
    listed in ``feed_slots``.
    """

    __slots__ = ("feed_slots", "fetch_slots", "n_slots", "steps")

    def __init__(
        self,
        steps: list[tuple[Any, ...]],
        feed_slots: tuple[int, ...],
        fetch_slots: tuple[int | None, ...],
        n_slots: int,
    ) -> None:
        self.steps = steps
        self.feed_slots = feed_slots
        self.fetch_slots = fetch_slots
        self.n_slots = n_slots


def compile_plan(
    graph: Graph, targets: tuple[Tensor | Operation, ...], feeds: tuple[Tensor, ...]
) -> _Plan:
    # Tensors and ops are keyed by id: tensors of function graphs are unhashable (== is
    # element-wise there), every object here is kept alive by ``graph``, and an id is a
    # cheaper key than a hash (a plan is compiled per request in a serving app).
    fed = {id(t) for t in feeds}
    # Iterative depth-first post-order over data and control edges: deterministic and
    # safe for deep graphs (no recursion limit).
    order: list[Operation] = []
    state: dict[int, bool] = {}  # id(op) -> False: on the stack, True: emitted
    for target in targets:
        if id(target) in fed:
            continue
        root = target if isinstance(target, Operation) else target._op
        if id(root) in state:
            continue
        stack: list[tuple[Operation, bool]] = [(root, False)]
        while stack:
            op, expanded = stack.pop()
            if expanded:
                state[id(op)] = True
                order.append(op)
                continue
            if id(op) in state:
                continue
            state[id(op)] = False
            stack.append((op, True))
            # Pushed in reverse, data inputs then control inputs: popped in input order.
            for t in reversed(op._inputs):
                if id(t) not in fed:
                    dep = t._op
                    if id(dep) not in state:
                        stack.append((dep, False))
            for dep in reversed(op._control_inputs):
                # A control input whose outputs are all fed has already "run": its value
                # is given (a fed placeholder would otherwise raise for lack of a feed).
                if id(dep) not in state and (
                    not dep._outputs or any(id(t) not in fed for t in dep._outputs)
                ):
                    stack.append((dep, False))
    return _Plan(*_slot_steps(order, targets, feeds, fed))


def _slot_steps(
    order: list[Operation],
    targets: tuple[Tensor | Operation, ...],
    feeds: tuple[Tensor, ...],
    fed: set[int],
) -> tuple[list[tuple[Any, ...]], tuple[int, ...], tuple[int | None, ...], int]:
    """The steps of ``order`` over value slots; (steps, feed, fetch slots, slot count).

    Ops of one output and of one or two inputs (most) are spelled out: generator
    expressions cost about 0.3 µs each, and /build of the serving example compiles a plan
    per request.
    """
    slots = {id(t): i for i, t in enumerate(feeds)}
    n_slots = len(feeds)
    steps: list[tuple[Any, ...]] = []
    for op in order:
        outputs = op._outputs
        if op._type == "Placeholder":
            missing = [t for t in outputs if id(t) not in fed]
            if missing:
                msg = (
                    f"You must feed a value for placeholder {op.name!r} "
                    f"(dtype {outputs[0].dtype.name}, shape {outputs[0].shape}): "
                    f"pass feed_dict={{{op.name!r}: value}} or the tensor itself as the key"
                )
                raise InvalidArgumentError(msg)
        inputs = op._inputs
        n_in = len(inputs)
        if n_in == 1:
            in_slots: tuple[int, ...] = (slots[id(inputs[0])],)
        elif n_in == 2:
            in_slots = (slots[id(inputs[0])], slots[id(inputs[1])])
        else:
            in_slots = tuple([slots[id(t)] for t in inputs])
        first = n_slots
        n_out = len(outputs)
        if n_out == 1:
            out = outputs[0]
            if id(out) not in fed:
                slots[id(out)] = n_slots
            n_slots += 1
            steps.append((op, _bound_kernel(op), in_slots, first, 1, out._dtype))
            continue
        for t in outputs:
            # A fed output still takes a slot (never read): the outputs stay contiguous.
            if id(t) not in fed:
                slots[id(t)] = n_slots
            n_slots += 1
        dtypes = tuple([t._dtype for t in outputs])
        steps.append((op, _bound_kernel(op), in_slots, first, n_out, dtypes))
    fetch_slots = tuple([slots[id(t)] if isinstance(t, Tensor) else None for t in targets])
    return steps, tuple(range(len(feeds))), fetch_slots, n_slots


@refuse_copying(
    "a session holds the values of its graph's variables, compiled run plans and locks",
    "Create another sf.Session(graph) for the same graph.",
)
@final
class Session:
    """Runs operations of one graph.

    ``with sf.Session(g) as sess:`` also makes ``g`` the default graph of the body, as in
    TensorFlow 1. Fetches may be tensors, operations, tensor names, variables or nested
    lists/tuples/dicts of them; the result has the same structure, with NumPy values for
    tensors and None for operations.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     x = sf.placeholder(sf.float32, shape=(2,))
        ...     y = x * 2.0
        >>> with sf.Session(g) as sess:
        ...     sess.run({"y": y}, feed_dict={x: [1.0, 2.0]})
        {'y': array([2., 4.], dtype=float32)}
    """

    def __init__(
        self, graph: Graph | None = None, *, limiter: anyio.CapacityLimiter | None = None
    ) -> None:
        if limiter is not None and not isinstance(limiter, _anyio().CapacityLimiter):
            msg = f"Session(limiter=...) takes an anyio.CapacityLimiter, got {limiter!r}"
            raise TypeError(msg)
        self._limiter = limiter
        if graph is None:
            graph = get_default_graph()
        elif not isinstance(graph, Graph):
            msg = f"Session(graph) takes a sf.Graph, got {graph!r}"
            raise TypeError(msg)
        self.graph = graph
        self._closed = False
        self._plans: dict[Any, _Plan] = {}
        self._lock = threading.Lock()
        # One as_default() scope serves every `with sess:` entry: scopes keep their state
        # per entry, so tasks and threads entering the same session at once don't clash.
        self._default: Scope = graph.as_default()
        self._run_state = _RunState()

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Release the session; ``run`` afterwards raises ``RuntimeError``."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        self._closed = True
        self._plans = {}
        self._run_state = _RunState()  # drop the values of graph variables

    def __enter__(self) -> Session:
        """Make the session's graph the default of the calling task for the body.

        Several tasks or threads may enter one session at once; each has its own entry,
        and the session closes when the last open entry is left.
        """
        with self._lock:  # checked and entered at once: a last exit closes under it too
            if self._closed:
                msg = "Attempted to enter a closed Session"
                raise RuntimeError(msg)
            self._default.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The session closes when its last open entry is left. A misnested exit raises but
        # still closes its entry (an exit from a context that never entered closes none),
        # so the open entries are counted around the exit either way.
        with self._lock:
            before = _open_entries(self._default)
            try:
                self._default.__exit__(exc_type, exc, tb)
            finally:
                if before > _open_entries(self._default) == 0:
                    # Under the lock: no other task or thread can enter in between and
                    # find itself inside a session that is being closed.
                    self._close_locked()

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- running -------------------------------------------------------------------------

    def _target(self, fetch: Any) -> Tensor | Operation:
        if isinstance(fetch, str):
            g = self.graph
            try:
                if ":" in fetch:
                    return g.get_tensor_by_name(fetch)
                return g.get_operation_by_name(fetch)
            except (KeyError, ValueError) as err:
                msg = f"Cannot fetch {fetch!r}: {err.args[0]}"
                raise ValueError(msg) from None
        hook = getattr(fetch, "__sf_fetch__", None)
        if hook is not None:
            fetch = hook(self.graph)
        if isinstance(fetch, (Tensor, Operation)):
            if fetch.graph is not self.graph:
                msg = (
                    f"Cannot fetch {fetch.name!r}: it belongs to {fetch.graph!r}, but this "
                    f"session runs {self.graph!r}"
                )
                raise GraphMismatchError(msg)
            return fetch
        if isinstance(fetch, EagerTensor):
            msg = (
                "Cannot fetch an eager tensor from a Session: it already has a value "
                "(call .numpy() on it)"
            )
            raise TypeError(msg)
        msg = (
            f"Cannot fetch {fetch!r} of type {type(fetch).__name__}: fetches are tensors, "
            f"operations, tensor or op names, or lists/tuples/dicts of them"
        )
        raise TypeError(msg)

    def _feed(self, key: Any, value: Any) -> tuple[Tensor, np.ndarray[Any, Any]]:
        if isinstance(key, str):
            try:
                key = self.graph.get_tensor_by_name(key if ":" in key else f"{key}:0")
            except (KeyError, ValueError) as err:
                msg = f"Cannot interpret feed_dict key {key!r} as a tensor: {err.args[0]}"
                raise TypeError(msg) from None
        hook = getattr(key, "__sf_fetch__", None)
        if hook is not None:
            key = hook(self.graph)
        if not isinstance(key, Tensor):
            msg = f"feed_dict keys are tensors of the graph or their names, got {key!r}"
            raise TypeError(msg)
        if key.graph is not self.graph:
            msg = f"Cannot feed {key.name!r}: it belongs to {key.graph!r}, not {self.graph!r}"
            raise GraphMismatchError(msg)
        try:
            arr = to_array(value, key.dtype)
        except TypeError as err:
            msg = f"Cannot feed {key.name!r} (dtype {key.dtype.name}): {err}"
            raise InvalidArgumentError(msg) from None
        shape = key.shape
        if shape is not None and shape != arr.shape and not _fits(shape, arr.shape):
            msg = (
                f"Cannot feed a value of shape {arr.shape} for {key.name!r}, which has "
                f"shape {shape}"
            )
            raise InvalidArgumentError(msg)
        return key, arr

    def run(self, fetches: Any, feed_dict: Mapping[Any, Any] | None = None) -> Any:
        """Run the graph to compute ``fetches``.

        Args:
            fetches: a tensor, operation, name, or nested list/tuple/dict of them.
            feed_dict: values for placeholders (or any tensors) by tensor or name.

        Returns:
            ``fetches`` with every tensor replaced by its NumPy value and every
            operation by None.

        Raises:
            InvalidArgumentError: a placeholder the fetches need is not fed, or a fed
                value does not match its tensor's dtype or shape.
            GraphMismatchError: a fetch or feed belongs to another graph.
        """
        if self._closed:
            msg = "Attempted to use a closed Session"
            raise RuntimeError(msg)
        if feed_dict is not None and not isinstance(feed_dict, Mapping):
            msg = (
                f"feed_dict must be a dict mapping tensors (or their names) to values, got "
                f"{type(feed_dict).__name__}: {feed_dict!r}"
            )
            raise TypeError(msg)
        leaves: list[Any] = []
        template = flatten(fetches, leaves)
        targets = tuple(self._target(f) for f in leaves)
        feeds = [self._feed(k, v) for k, v in (feed_dict or {}).items()]
        feed_keys = tuple(t for t, _ in feeds)
        key = (targets, feed_keys)
        plan = self._plans.get(key)
        if plan is None:
            plan = compile_plan(self.graph, targets, feed_keys)
            with self._lock:
                self._plans[key] = plan
        token = _CURRENT_RUN.set(self._run_state)
        # A graph whose gradients replay calls keeps their reads for the run (_read_log).
        reads = CALL_READS.set({}) if self.graph._replays_reads else None
        try:
            values = execute(plan, [a for _, a in feeds])
        finally:
            if reads is not None:
                CALL_READS.reset(reads)
            _CURRENT_RUN.reset(token)
        results = [None if s is None else _to_user(values[s]) for s in plan.fetch_slots]
        return fill(template, results)

    async def arun(
        self,
        fetches: Any,
        feed_dict: Mapping[Any, Any] | None = None,
        *,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> Any:
        """``run`` in a worker thread, in a copy of the caller's context.

        The event loop keeps serving other tasks meanwhile (asyncio and trio alike). The
        worker threads come from a capacity limiter of their own: ``limiter`` if given,
        else the session's (``Session(limiter=...)``), else one shared by every session in
        this event loop with :data:`ARUN_THREADS` tokens. So graph runs never queue behind
        other ``to_thread`` work (a server's sync endpoints) and never starve it.
        """
        aio = _anyio()
        if limiter is None:
            limiter = self._limiter if self._limiter is not None else default_arun_limiter()
        elif not isinstance(limiter, aio.CapacityLimiter):
            msg = f"arun(limiter=...) takes an anyio.CapacityLimiter, got {limiter!r}"
            raise TypeError(msg)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, self.run, fetches, feed_dict)
        return await aio.to_thread.run_sync(call, limiter=limiter)


ARUN_THREADS = 16
"""Worker threads ``Session.arun`` may use at once per event loop, by default."""

_ARUN_LIMITER: list[Any] = []  # the RunVar holding each event loop's limiter, made once


def _anyio() -> Any:
    """The ``anyio`` module, imported on first need: code that never awaits a session
    run does not load it (about 3 ms of ``import scopeflow``, bench_import)."""
    module = _ANYIO.get("anyio")
    if module is None:
        import anyio.lowlevel
        import anyio.to_thread

        module = _ANYIO["anyio"] = anyio  # the same module from every thread
    return module


_ANYIO: dict[str, Any] = {}


def default_arun_limiter() -> anyio.CapacityLimiter:
    """The capacity limiter ``Session.arun`` uses in the running event loop by default.

    Its ``total_tokens`` can be changed to allow more or fewer concurrent graph runs.
    """
    aio = _anyio()
    if not _ARUN_LIMITER:
        with _LIMITER_LOCK:
            if not _ARUN_LIMITER:
                _ARUN_LIMITER.append(aio.lowlevel.RunVar("scopeflow_arun_limiter"))
    run_var = _ARUN_LIMITER[0]
    limiter: anyio.CapacityLimiter
    try:
        limiter = run_var.get()
    except LookupError:
        limiter = aio.CapacityLimiter(ARUN_THREADS)
        run_var.set(limiter)
    return limiter


_LIMITER_LOCK = threading.Lock()


def _fits(shape: tuple[int | None, ...], actual: tuple[int, ...]) -> bool:
    """Whether an array of shape ``actual`` fits the static ``shape`` (None: any size).

    Indexing, not any() over a zip(strict=True): about 0.4 µs less per feed (a served
    batch feeds a placeholder of unknown batch size on every request)."""
    if len(shape) != len(actual):
        return False
    for i, d in enumerate(shape):  # noqa: SIM110 (a loop: no generator per feed)
        if d is not None and d != actual[i]:
            return False
    return True


def _open_entries(scope: Scope) -> int:
    return sum(1 for _ in scope._entries())


def _bound_kernel(op: Operation) -> Any:
    """The kernel of ``op`` with its attributes applied: it takes the input arrays alone."""
    opdef = REGISTRY[op._type]
    if opdef.bind is not None:
        return opdef.bind(op._attrs)
    return functools.partial(opdef.kernel, op._attrs)


def execute(plan: _Plan, fed: list[np.ndarray[Any, Any]]) -> list[Any]:
    """Run ``plan`` with ``fed`` values in its feed slots; return every slot's value."""
    values: list[Any] = [None] * plan.n_slots
    values[: len(fed)] = fed
    ndarray = np.ndarray
    # Floating-point errors are ignored for the whole run (set once, not per op).
    token = quiet_set(QUIET)
    try:
        for op, kernel, in_slots, first, n_out, dtype in plan.steps:
            try:
                # Spelled out for two, one and no inputs (most ops): no list per step.
                n_in = len(in_slots)
                if n_in == 2:
                    result = kernel(values[in_slots[0]], values[in_slots[1]])
                elif n_in == 1:
                    result = kernel(values[in_slots[0]])
                elif n_in == 0:
                    result = kernel()
                else:
                    result = kernel(*[values[i] for i in in_slots])
            except OpError:
                raise
            except (ValueError, IndexError, TypeError) as err:
                msg = f"Operation {op.name!r} ({op.type}) failed: {err}"
                raise InvalidArgumentError(msg) from err
            if n_out == 1:
                # The common case costs two identity checks: an array of the exact dtype
                # object (equality of dtypes is a slower rich comparison).
                if result.__class__ is not ndarray or result.dtype is not dtype:
                    result = _as_dtype(result, dtype)
                values[first] = result
            elif n_out:
                for i, r in enumerate(result):
                    values[first + i] = _as_dtype(r, dtype[i])
    finally:
        quiet_reset(token)
    return values


def _as_dtype(value: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """A kernel's result as a plain array of its tensor's dtype."""
    arr = value if type(value) is np.ndarray else np.asarray(value)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def _to_user(arr: np.ndarray[Any, Any]) -> Any:
    """A value the caller owns: a fresh writable array, or a NumPy scalar for 0-d."""
    if arr.ndim == 0:
        return arr[()]
    if arr.base is not None or not arr.flags.writeable:  # the cheaper test first
        return arr.copy()
    return arr
