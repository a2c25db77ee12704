"""Graphs, operations and symbolic tensors.

A :class:`Graph` owns its operations, the names in use, its collections and its finalized
flag; all of that is process-wide and guarded by the graph's lock, so several tasks and
threads may build one graph at once. What a task has *open* on a graph (name scope,
control dependencies, device, control-flow scope) is task-local and lives in the frame
(see ``_context``), never on the graph.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import _context
from ._context import (
    GLOBAL_GRAPH,
    GRAPH,
    LOG,
    NAME,
    ContextSwitch,
    Frame,
    process_lock,
    state_get,
)
from ._copying import refuse_copying
from ._graph_build import OpBuilder
from ._introspect import with_description
from ._names import NameMemo, unique
from ._operation import Operation, Shape, Tensor
from .errors import FinalizedGraphError, GraphMismatchError, ScopeNestingError, TracingError

if TYPE_CHECKING:
    from ._context import Scope

__all__ = [
    "Graph",
    "Operation",
    "Shape",
    "Tensor",
    "get_default_graph",
    "has_default_graph",
    "reset_default_graph",
]


_graph_ids = itertools.count(1)


@refuse_copying(
    "a graph owns its operations, names, locks and caches, and every tensor and operation "
    "in it points back to it",
    "Build a new graph by running the same Python code under `with sf.Graph().as_default():`.",
)
class Graph(OpBuilder):
    """A dataflow graph: operations that a :class:`Session` or a function call runs.

    Building from several tasks or threads at once is safe. ``with g.as_default():`` makes
    ``g`` the default graph of the calling task only.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default() as same:
        ...     c = sf.constant(3.0)
        >>> same is g, [op.name for op in g.get_operations()]
        (True, ['Const'])
    """

    __slots__ = ("__dict__", "__weakref__")  # the op-building state is in OpBuilder's

    building_function: bool = False
    """True for a :class:`FuncGraph`: a graph a traced function is being built into."""
    # Set once a gradient in this graph replays a call when the graph runs: its runs
    # then keep the reads of such calls (see _read_log.CALL_READS).
    _replays_reads: bool = False

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            msg = f"A graph's name must be a string or None, got {name!r}"
            raise TypeError(msg)
        self._name = name if name is not None else f"graph_{next(_graph_ids)}"
        self._lock = threading.Lock()
        self._ops: list[Operation | Tensor | str] = []  # see Tensor: lean ops
        # The name index is filled lazily (see _index_names): ops[:_indexed] are in it.
        self._by_name: dict[str, Operation] = {}
        self._indexed = 0
        # See _names: counts of the names asked for, the largest taken suffix per name.
        self._names_in_use: dict[str, int] = {}
        self._names_high: dict[str, int] = {}
        # op type -> its automatic names in the last name scope it was used in (see
        # NameMemo: the counts there are the true ones).
        self._name_memo: dict[str, NameMemo] = {}
        self._last_memo: NameMemo | None = None
        self._const_memo: NameMemo | None = None
        self._last_scope: str | None = None
        self._collections: dict[str, list[Any]] = {}
        self._finalized = False
        self._switch = ContextSwitch(
            is_building_function=self.building_function,
            enter_context=self.as_default,
            graph=self,
            is_eager=False,
        )
        self._eager_switch: ContextSwitch | None = None
        # Filled by the execution module: a cache of compiled run plans.
        self._plans: dict[Any, Any] = {}
        # Filled by sf.function: the traces each function made for calls from this graph.
        # Held here so that they die with the graph (they refer to it as their outer graph).
        self._function_caches: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"<sf.Graph {self._name!r}>"

    @property
    def name(self) -> str:
        """A label used in messages (not part of the graph's semantics)."""
        return self._name

    # -- scopes --------------------------------------------------------------------------

    def as_default(self) -> Scope:
        """A scope that makes this graph the calling task's default graph.

        Entering it switches to graph mode and logs a context switch.
        """
        return _scopes.AsDefault(self)

    def name_scope(self, name: str | None) -> Scope:
        """A name scope on this graph; ``with ... as s`` binds the full scope ("a/").

        ``None`` or ``""`` returns to the root; a name ending in ``/`` re-enters that scope
        exactly; any other name is made unique in the graph (``a``, ``a_1``, ...).
        """
        return _scopes.name_scope._on(self, name)

    def get_name_scope(self) -> str:
        """The calling task's current name scope on this graph, without trailing slash."""
        cur = state_get()
        return _context.scopes_of(cur, self, False)[NAME]

    def control_dependencies(self, control_inputs: Iterable[Any] | None) -> Scope:
        """A scope whose new ops run after ``control_inputs`` (ops or tensors).

        ``None`` clears every enclosing control dependency (and control-flow scope).
        """
        return _scopes.control_dependencies._on(self, control_inputs)

    def device(self, spec: str | None) -> Scope:
        """A scope that records ``spec`` as the device of new ops; ``None`` clears it."""
        return _scopes.device._on(self, spec)

    # -- contents ------------------------------------------------------------------------

    def get_operations(self) -> list[Operation]:
        """All operations in creation order."""
        with self._lock:
            return list(self._operations_locked())

    def to_dot(self) -> str:
        """This graph as Graphviz DOT text.

        Ops are labelled with their type and name, data edges with the tensor's dtype and
        shape, control edges are dashed, name scopes are clusters, and the function graphs
        of call, ``If`` and ``While`` ops are drawn as boxes linked from those ops by
        dotted edges. ``ConcreteFunction.graph`` is a graph too.

        Example:
            >>> import scopeflow as sf
            >>> g = sf.Graph("demo")
            >>> with g.as_default(), sf.name_scope("layer"):
            ...     y = sf.add(sf.constant(1.0, name="x"), 2.0, name="y")
            >>> print(g.to_dot().splitlines()[5])
              subgraph "cluster_g0_layer" {
        """
        from ._pictures import to_dot  # a picture is never drawn on a hot path

        return to_dot(self)

    def to_mermaid(self) -> str:
        """This graph as a Mermaid flowchart (the same picture as :meth:`to_dot`).

        Example:
            >>> import scopeflow as sf
            >>> g = sf.Graph()
            >>> with g.as_default():
            ...     y = sf.negative(sf.constant(1.0, name="x"), name="y")
            >>> print(g.to_mermaid())
            flowchart TD
              g0_0["Const<br/>x"]
              g0_1["Neg<br/>y"]
              g0_0 -->|"float32 ()"| g0_1
            <BLANKLINE>
        """
        from ._pictures import to_mermaid

        return to_mermaid(self)

    def get_operation_by_name(self, name: str) -> Operation:
        """The operation called ``name``; ``KeyError`` if there is none."""
        if not isinstance(name, str):
            msg = f"Operation names are strings, got {name!r}"
            raise TypeError(msg)
        if ":" in name:
            msg = f"{name!r} looks like a tensor name; use get_tensor_by_name() for tensors"
            raise ValueError(msg)
        try:
            return self._index_names()[name]
        except KeyError:
            msg = f"The name {name!r} refers to no operation in {self!r}"
            raise KeyError(msg) from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        """The tensor called ``"<op name>:<index>"``."""
        if not isinstance(name, str):
            msg = f"Tensor names are strings, got {name!r}"
            raise TypeError(msg)
        op_name, sep, index = name.rpartition(":")
        if not sep or not index.isdigit():
            msg = f"{name!r} is not a tensor name: use '<op name>:<output index>', e.g. 'a:0'"
            raise ValueError(msg)
        op = self.get_operation_by_name(op_name)
        i = int(index)
        if i >= len(op._outputs):
            msg = f"Operation {op_name!r} has {len(op._outputs)} outputs; {name!r} does not exist"
            raise KeyError(msg)
        return op._outputs[i]

    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """``name`` under the current name scope, made unique in this graph."""
        prefix = self.get_name_scope()
        return self._unique_name(f"{prefix}/{name}" if prefix else name, mark_as_used)

    def _unique_name(self, name: str, mark_as_used: bool = True) -> str:
        # TensorFlow's rule: names are compared case-insensitively, and "a" taken makes
        # the next request "a_1", skipping suffixes that were taken explicitly.
        lock = self._lock
        lock.acquire()
        try:
            if not self._name_memo:
                # No name memo to write back and take back (e.g. name scopes opened
                # before any op is built): the table alone. Saves ~250 ns per
                # name_scope('a') in a graph (bench_scopes).
                return unique(self._names_in_use, self._names_high, name, mark_as_used)
            return self._unique_name_locked(name, mark_as_used)
        finally:
            lock.release()

    # -- collections and finalization ----------------------------------------------------

    def add_to_collection(self, key: str, value: Any) -> None:
        """Append ``value`` to the collection ``key``."""
        with self._lock:
            self._check_not_finalized("add to a collection of")
            self._collections.setdefault(key, []).append(value)

    def get_collection(self, key: str) -> list[Any]:
        """A copy of the collection ``key`` (empty if it does not exist)."""
        with self._lock:
            return list(self._collections.get(key, ()))

    def get_all_collection_keys(self) -> list[str]:
        """The names of all non-empty collections."""
        with self._lock:
            return [k for k, v in self._collections.items() if v]

    def finalize(self) -> None:
        """Make the graph read-only: new ops and collection changes raise ``RuntimeError``."""
        self._finalized = True

    @property
    def finalized(self) -> bool:
        """Whether :meth:`finalize` was called."""
        return self._finalized

    def _check_not_finalized(self, action: str) -> None:
        if self._finalized:
            msg = f"Cannot {action} {self!r}: the graph is finalized and can no longer change"
            raise FinalizedGraphError(msg)

    # -- building ------------------------------------------------------------------------

    def _non_function_outer(self) -> Graph | None:
        """This graph, or the nearest outer graph that is not building a function."""
        g: Graph | None = self
        while g is not None and g.building_function:
            g = g.outer_graph  # type: ignore[attr-defined]
        return g

    def _foreign_input(self, t: Tensor) -> Tensor:
        """Called for an input tensor of another graph; a function graph captures it."""
        escaped = escaped_from(t)
        if escaped is not None:
            raise TracingError(escaped)
        label = getattr(t._graph, "scope_label", None)
        if label is not None:
            msg = (
                f"Tensor {t.name!r} was produced inside the {label} and is out of scope in "
                f"{self!r}; return it from the loop body (as a loop variable) or from the "
                f"branch instead"
            )
            raise GraphMismatchError(with_description(msg))
        msg = (
            f"Tensor {t.name!r} belongs to {t.graph!r}, not to {self!r} being built here; "
            f"ops can only combine tensors of one graph. Create the value in {self!r}, or "
            f"build the computation in a traced function to capture it"
        )
        raise GraphMismatchError(with_description(msg))

    def _eager_input(self, value: Any) -> Tensor:
        """Called for an eager tensor used to build an op here."""
        msg = (
            f"An eager tensor was used to build an op in {self!r}, which is not a function "
            f"graph; eager values can only enter graphs through a traced function "
            f"(sf.function captures them). Pass its .numpy() value to make a constant"
        )
        raise RuntimeError(with_description(msg))


def escaped_from(t: Tensor) -> str | None:
    """If ``t`` belongs to a function graph whose trace has finished, say so."""
    fn_name = getattr(t._graph, "_sealed_by", None)
    if fn_name is None:
        return None
    return (
        f"Tensor {t.name!r} was created while tracing function {fn_name!r} and escaped it: "
        f"that trace has finished, so the tensor will never have a value. Return it from "
        f"{fn_name} (its outputs are real values), or create it inside init_scope()"
    )


# The global default graph as get_default_graph reads it: a copy of GLOBAL_GRAPH[0] (the
# truth, shared with _context), written together with it under the process lock and never
# None (the first global graph is made at import, below). Reading a module global instead
# of indexing the shared list and testing for None saves about 10 ns (0.8 x G) on the
# eager get_default_graph() (bench_scopes).
_global_graph: Graph


def global_default_graph() -> Graph:
    """The process-wide default graph (the first one is made at import)."""
    global _global_graph
    g = GLOBAL_GRAPH[0]
    if g is None:
        with process_lock:
            g = GLOBAL_GRAPH[0]
            if g is None:
                g = GLOBAL_GRAPH[0] = _global_graph = Graph("global")
    return g


def get_default_graph() -> Graph:
    """The calling task's default graph: the innermost ``as_default()``, else the global one.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     sf.get_default_graph() is g
        True
    """
    # 3 is GRAPH, written out; `or` rather than `is None` tests: a graph is always true
    # (Graph and its subclasses define neither __bool__ nor __len__; the scopes rely on
    # that too, and a test checks it). About 12 ns less than the spelled-out form.
    return state_get()[3] or _global_graph


def _entered_graph(frame: Frame) -> Graph | None:
    """The innermost graph the context has entered and not left, if any.

    Usually the frame's default graph; but in eager mode entered inside a function graph
    (directly, or through ``init_scope``) the default graph is not that function graph,
    and only the context-switch log still shows it.
    """
    g: Graph | None = frame[GRAPH]
    if g is not None:
        return g
    for switch in reversed(frame[LOG]):
        if not switch._is_eager:
            return switch._graph  # type: ignore[no-any-return]
    return None


def has_default_graph() -> bool:
    """Whether the calling task has entered a graph (its default-graph stack is non-empty)."""
    return _entered_graph(state_get()) is not None


def reset_default_graph() -> None:
    """Replace the process-wide global default graph with a new, empty one.

    Raises:
        ScopeNestingError: the calling task is inside a graph's ``as_default()``.
    """
    g = _entered_graph(state_get())
    if g is not None:
        msg = (
            f"reset_default_graph() was called inside {g!r}.as_default(); exit the nested "
            f"graphs first (other tasks keep their graphs and may leave their scopes)"
        )
        raise ScopeNestingError(with_description(msg))
    global _global_graph
    with process_lock:
        GLOBAL_GRAPH[0] = _global_graph = Graph("global")


from . import _scopes  # noqa: E402  (the scope classes need Graph, defined above)

global_default_graph()  # the first global graph, so that _global_graph is set
