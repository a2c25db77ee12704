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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from . import _context
from ._context import (
    CONTROLS,
    DEVICE,
    EAGER,
    FLOW,
    GLOBAL_GRAPH,
    GRAPH,
    LOG,
    NAME,
    SCOPES,
    ContextSwitch,
    _roots,
    process_lock,
    state_get,
)
from ._copying import refuse_copying
from ._introspect import with_description
from ._names import NameMemo, check_name as _check_name, take_verbatim, unique
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
_new = object.__new__
# What an op keeps of the scopes it was created in when there was no control dependency,
# device or control-flow scope (the name scope is in its name): one shared tuple, where
# the frame's tuple is a reference to an object of the task, far from the op in memory,
# that the collector visits whenever it traces the op (the interleaved bench_tasks row).
_PLAIN_SCOPES: Final = ("", (), "", None)


@refuse_copying(
    "a graph owns its operations, names, locks and caches, and every tensor and operation "
    "in it points back to it",
    "Build a new graph by running the same Python code under `with sf.Graph().as_default():`.",
)
class Graph:
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

    # Slots for what op creation reads on every op (SPEC section 11, bench_tasks): a slot is
    # read at a fixed offset where an instance dict costs a lookup in a dict that, with
    # thousands of graphs built by interleaved tasks, is rarely in the cache.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_by_name",
        "_finalized",
        "_indexed",
        "_lock",
        "_name_memo",
        "_names_high",
        "_names_in_use",
        "_ops",
    )

    building_function: bool = False
    """True for a :class:`FuncGraph`: a graph a traced function is being built into."""

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            msg = f"A graph's name must be a string or None, got {name!r}"
            raise TypeError(msg)
        self._name = name if name is not None else f"graph_{next(_graph_ids)}"
        self._lock = threading.Lock()
        self._ops: list[Operation] = []
        # The name index is filled lazily (see _index_names): ops[:_indexed] are in it.
        self._by_name: dict[str, Operation] = {}
        self._indexed = 0
        # See _names: counts of the names asked for, the largest taken suffix per name.
        self._names_in_use: dict[str, int] = {}
        self._names_high: dict[str, int] = {}
        # op type -> its automatic names in the last name scope it was used in (see
        # NameMemo: the counts there are the true ones).
        self._name_memo: dict[str, NameMemo] = {}
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
        cur = state_get(_roots[0])
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
            return list(self._ops)

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

    def _index_names(self) -> dict[str, Operation]:
        """The name -> op index, brought up to date (it is filled lazily: an insert per op
        into a growing dict cost a few cache misses per op of interleaved tasks)."""
        with self._lock:
            return self._index_names_locked()

    def _index_names_locked(self) -> dict[str, Operation]:
        by_name = self._by_name
        ops = self._ops
        n = len(ops)
        if self._indexed < n:
            for op in ops[self._indexed : n]:
                by_name[op._name] = op
            self._indexed = n
        return by_name

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
            return self._unique_name_locked(name, mark_as_used)
        finally:
            lock.release()

    def _unique_name_locked(self, name: str, mark_as_used: bool) -> str:
        self._drop_name_memos_locked()
        return unique(self._names_in_use, self._names_high, name, mark_as_used)

    def _drop_name_memos_locked(self) -> None:
        """Write the counts of the name memos back to the table and drop the memos."""
        memos = self._name_memo
        if memos:
            counts = self._names_in_use
            for memo in memos.values():
                counts[memo.key] = memo.count
            memos.clear()

    def _auto_name_locked(self, op_type: str, prefix: str) -> str:
        """The next automatic name of ``op_type`` in the name scope ``prefix`` when it has
        no memo (the first op of a type in a scope), and a memo for the next ones."""
        self._drop_name_memos_locked()
        full = f"{prefix}/{op_type}" if prefix else op_type
        counts = self._names_in_use
        high = self._names_high
        name = unique(counts, high, full, True)
        key = full.lower()
        count = counts[key]
        if count > high.get(key, 0):  # no taken key_N with N >= count: memo holds
            self._name_memo[op_type] = NameMemo(prefix, full, key, count)
        return name

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
        label = getattr(t._op._graph, "scope_label", None)
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

    def _create_op(
        self,
        op_type: str,
        inputs: tuple[Tensor, ...],
        attrs: dict[str, Any],
        outputs: Sequence[tuple[np.dtype[Any], Shape | None]],
        name: str | None,
        frame: tuple[Any, ...],
        stateful: bool = False,
    ) -> Operation:
        """Create an operation with the calling task's scopes (``frame``).

        The general path; :meth:`_op1` is the hot path for an automatically named op
        with one output. Holds the graph lock only to name and append the op.
        """
        if not frame[EAGER] and (frame[GRAPH] or global_default_graph()) is self:
            scopes = frame[SCOPES]
        else:
            scopes = _context.scopes_of(frame, self, False)
        if name is None and len(outputs) == 1 and not stateful and len(inputs) <= 2:
            dtype, shape = outputs[0]
            a = inputs[0] if inputs else None
            b = inputs[1] if len(inputs) == 2 else None
            return self._op1(op_type, a, b, attrs, dtype, shape, scopes)._op
        prefix = scopes[NAME]
        verbatim = False
        if name is None:
            full = f"{prefix}/{op_type}" if prefix else op_type
        else:
            if not isinstance(name, str):
                msg = f"An op name must be a string, got {name!r}"
                raise TypeError(msg)
            verbatim = name.endswith("/")
            full = name[:-1] if verbatim else (f"{prefix}/{name}" if prefix else name)
            _check_name(full if verbatim else name, bool(prefix) and not verbatim)
        chain = scopes[CONTROLS]
        op = _new(Operation)
        op._type = op_type
        n = len(inputs)
        if n == 1 or n == 2:  # see Operation.__slots__
            op._ins = inputs[0]
            op._in2 = inputs[1] if n == 2 else None
        else:
            op._ins = inputs
            op._in2 = None
        op._attrs = attrs
        op._control_inputs = _control_inputs_for(chain, inputs) if chain else ()
        plain = not chain and not scopes[DEVICE] and scopes[FLOW] is None
        op._scopes = _PLAIN_SCOPES if plain else scopes
        op._graph = self
        tensors = []
        for i, (dtype, shape) in enumerate(outputs):
            t = _new(Tensor)
            t._op = op
            t._graph = self
            t._value_index = i
            t._dtype = dtype
            t._shape = shape
            tensors.append(t)
        op._outs = tensors[0] if len(tensors) == 1 else tuple(tensors)
        with self._lock:
            if self._finalized:
                self._check_not_finalized("add an operation to")
            self._drop_name_memos_locked()
            if verbatim:
                if full in self._index_names_locked():
                    msg = f"An operation named {full!r} already exists in {self!r}"
                    raise ValueError(msg)
                take_verbatim(self._names_in_use, self._names_high, full.lower())
            else:
                full = unique(self._names_in_use, self._names_high, full, True)
            op._name = full
            if stateful and self.building_function:
                # Under the lock, once the op is sure to exist: threads adding stateful
                # ops at once extend one chain, and a refused op never joins it.
                self._order_stateful(op)  # type: ignore[attr-defined]
            ops = self._ops
            op._id = len(ops)
            ops.append(op)
        return op

    def _op1(
        self,
        op_type: str,
        a: Tensor | None,
        b: Tensor | None,
        attrs: dict[str, Any],
        dtype: np.dtype[Any],
        shape: Shape | None,
        scopes: tuple[Any, ...],
    ) -> Tensor:
        """The hot path of graph building (SPEC section 11): a non-stateful op with the
        inputs ``a`` and ``b`` (None: fewer), one output and an automatic name, built
        under ``scopes`` (the scopes tuple of the calling task's frame on this graph);
        returns its output tensor.

        Everything is written out, without helper calls: about 0.6 µs per op.
        """
        chain = scopes[1]  # CONTROLS, written out like the indices below
        op = _new(Operation)
        op._type = op_type
        if a is None:
            op._ins = ()
        else:
            op._ins = a
        op._in2 = b
        op._attrs = attrs
        if chain:
            inputs = () if a is None else (a,) if b is None else (a, b)
            op._control_inputs = _control_inputs_for(chain, inputs)
            op._scopes = scopes
        else:
            op._control_inputs = ()
            # DEVICE and FLOW written out; see _PLAIN_SCOPES
            op._scopes = _PLAIN_SCOPES if not scopes[2] and scopes[3] is None else scopes
        op._graph = self
        t = _new(Tensor)
        t._op = op
        t._graph = self
        t._value_index = 0
        t._dtype = dtype
        t._shape = shape
        op._outs = t
        prefix = scopes[0]  # NAME
        # acquire/release rather than `with`: half the cost on 3.11, on every op.
        lock = self._lock
        lock.acquire()
        try:
            if self._finalized:
                self._check_not_finalized("add an operation to")
            memo = self._name_memo.get(op_type)
            if memo is not None and memo.prefix is prefix:
                i = memo.count
                memo.count = i + 1
                op._name = f"{memo.full}_{i}"
            else:
                op._name = self._auto_name_locked(op_type, prefix)
            ops = self._ops
            op._id = len(ops)
            ops.append(op)
        finally:
            lock.release()
        return t


def _control_inputs_for(
    chain: tuple[Any, ...], inputs: tuple[Tensor, ...]
) -> tuple[Operation, ...]:
    """Control inputs that an op with ``inputs`` gets from the control-dependency chain.

    A dependency scope is skipped when some input was itself created inside that scope:
    the input already waits for those ops, so the new op does too (TensorFlow's pruning).
    A control input that produces one of ``inputs`` is dropped too: the data edge already
    orders it. Deeper ancestors are not searched, which would cost a graph walk per op.
    """
    input_chains = [t._op._ctl for t in inputs]
    per_scope: list[tuple[Operation, ...]] = []  # innermost scope first
    node = chain
    while node:
        parent, ops = node
        dominated = False
        for c in input_chains:
            while c:
                if c is node:
                    dominated = True
                    break
                c = c[0]
            if dominated:
                break
        if not dominated:
            per_scope.append(ops)
        node = parent
    if not per_scope:  # the usual case inside a scope: an input was made in it
        return ()
    result: list[Operation] = []
    for ops in reversed(per_scope):  # outermost scope first, each in the order given
        for op in ops:
            if op not in result:
                result.append(op)
    for t in inputs:
        if t._op in result:
            result.remove(t._op)
    return tuple(result)


def escaped_from(t: Tensor) -> str | None:
    """If ``t`` belongs to a function graph whose trace has finished, say so."""
    fn_name = getattr(t._op._graph, "_sealed_by", None)
    if fn_name is None:
        return None
    return (
        f"Tensor {t.name!r} was created while tracing function {fn_name!r} and escaped it: "
        f"that trace has finished, so the tensor will never have a value. Return it from "
        f"{fn_name} (its outputs are real values), or create it inside init_scope()"
    )


def global_default_graph() -> Graph:
    """The process-wide default graph, created on first need."""
    g = GLOBAL_GRAPH[0]
    if g is None:
        with process_lock:
            g = GLOBAL_GRAPH[0]
            if g is None:
                g = GLOBAL_GRAPH[0] = Graph("global")
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
    g = state_get(_roots[0])[3]  # 3 is GRAPH, written out: this is a hot path
    if g is None:
        g = GLOBAL_GRAPH[0]
        if g is None:
            g = global_default_graph()
    return g  # type: ignore[no-any-return]


def _entered_graph(frame: tuple[Any, ...]) -> Graph | None:
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
    return _entered_graph(state_get(_roots[0])) is not None


def reset_default_graph() -> None:
    """Replace the process-wide global default graph with a new, empty one.

    Raises:
        ScopeNestingError: the calling task is inside a graph's ``as_default()``.
    """
    g = _entered_graph(state_get(_roots[0]))
    if g is not None:
        msg = (
            f"reset_default_graph() was called inside {g!r}.as_default(); exit the nested "
            f"graphs first (other tasks keep their graphs and may leave their scopes)"
        )
        raise ScopeNestingError(with_description(msg))
    with process_lock:
        GLOBAL_GRAPH[0] = Graph("global")


from . import _scopes  # noqa: E402  (the scope classes need Graph, defined above)
