"""The graph scopes: ``as_default``, name scopes, control dependencies and devices.

Each scope pushes one frame (see ``_context``). The module-level ``name_scope``,
``control_dependencies`` and ``device`` act on the calling task's current context: eager
mode, or the default graph. ``Graph.name_scope`` and friends act on that graph even when it
is not the default; the change is then carried in the frame's ``AUX`` field so the graph
finds it when it becomes the default again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, final

from . import _context
from ._context import (
    CONTROLS,
    DEVICE,
    EAGER,
    EMPTY_SCOPES,
    FLOW,
    GLOBAL_GRAPH,
    GRAPH,
    LOG,
    NAME,
    PARENT,
    PAUSED,
    SCOPES,
    TAPES,
    Frame,
    Scope,
    Scopes,
    _roots,
    state_get,
    state_set,
)
from ._device import canonical_device, merge_devices
from ._graph import (
    Graph,
    Operation,
    Tensor,
    global_default_graph,
)
from ._introspect import with_description
from ._names import check_name as _check_name
from .errors import GraphMismatchError

__all__ = [
    "AsDefault",
    "control_dependencies",
    "device",
    "get_name_scope",
    "name_scope",
]


@final
class AsDefault(Scope):
    """``graph.as_default()``: the graph becomes the default of the calling task."""

    __slots__ = ("_graph",)

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self._frame = None

    def __enter__(self) -> Graph:
        cur = state_get(_roots[0])
        graph = self._graph
        # A root frame holds no graph's scopes: skip the walk.
        scopes = EMPTY_SCOPES if cur[PARENT] is None else _context.scopes_of(cur, graph, False)
        frame = (
            cur, self, False, graph, scopes, cur[LOG] + (graph._switch,), cur[TAPES],
            cur[PAUSED], None,
        )  # fmt: skip
        token = state_set(frame)
        if self._frame is None:  # _push, inlined on this hot path
            self._frame = frame
            self._token = token
        else:
            self._push_more(frame, token)
        return graph

    def __repr__(self) -> str:
        return f"{self._graph!r}.as_default()"


def _modify(cur: Frame, owner: Scope, graph: Graph | None, new: Scopes) -> Frame:
    """A frame like ``cur`` in which ``graph``'s (None: current context's) scopes are ``new``."""
    if graph is None:
        return (
            cur, owner, cur[EAGER], cur[GRAPH], new, cur[LOG], cur[TAPES], cur[PAUSED], None,
        )  # fmt: skip
    return (
        cur, owner, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], cur[TAPES], cur[PAUSED],
        (graph, new),
    )  # fmt: skip


def _push_scopes(owner: Scope, cur: Frame, aux: Graph | None, new: Scopes) -> None:
    """Push a frame like ``cur`` with ``new`` scopes for the current context (``aux`` None)
    or for the graph ``aux``; ``Scope._push`` inlined, as this runs on every scope entry."""
    if aux is None:
        frame = (
            cur, owner, cur[EAGER], cur[GRAPH], new, cur[LOG], cur[TAPES], cur[PAUSED], None,
        )  # fmt: skip
    else:
        frame = _modify(cur, owner, aux, new)
    token = state_set(frame)
    if owner._frame is None:
        owner._frame = frame
        owner._token = token
    else:
        owner._push_more(frame, token)


# Device specs already validated by DeviceScope, with their canonical form (a program
# uses a few distinct strings).
_known_specs: dict[str, str] = {}


def _target(cur: Frame, graph: Graph | None) -> tuple[Graph | None, Scopes, Graph | None]:
    """(graph to act on or None for eager, its scopes, graph to pass to ``_modify``)."""
    if graph is None:
        if cur[EAGER]:
            return None, cur[SCOPES], None
        g = cur[GRAPH]
        return (g if g is not None else global_default_graph()), cur[SCOPES], None
    if not cur[EAGER]:
        g = cur[GRAPH]
        if g is graph or (g is None and graph is GLOBAL_GRAPH[0]):
            return graph, cur[SCOPES], None
    return graph, _context.scopes_of(cur, graph, False), graph


@final
class name_scope(Scope):  # a class used like a function, as in TensorFlow
    """A name scope on the calling task's current context (eager, or the default graph).

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default():
        ...     with sf.name_scope("layer") as scope:
        ...         c = sf.constant(1.0, name="w")
        >>> scope, c.op.name
        ('layer/', 'layer/w')
    """

    __slots__ = ("_graph", "_name")

    def __init__(self, name: str | None) -> None:
        if name is not None and not isinstance(name, str):
            msg = f"A name scope must be a string or None, got {name!r}"
            raise TypeError(msg)
        self._name = name
        self._graph: Graph | None = None  # None: the calling task's current context
        self._frame = None

    @classmethod
    def _on(cls, graph: Graph, name: str | None) -> name_scope:
        """The scope ``graph.name_scope(name)``: on that graph even if not the default."""
        scope = cls(name)
        scope._graph = graph
        return scope

    def __enter__(self) -> str:
        # Hot path (SPEC section 11): the current context is read once and, for the
        # current context, the frame is built and pushed inline.
        cur = state_get(_roots[0])
        name = self._name
        if self._graph is None:
            scopes = cur[SCOPES]
            aux = None
            graph = None if cur[EAGER] else (cur[GRAPH] or global_default_graph())
        else:
            graph, scopes, aux = _target(cur, self._graph)
        old = scopes[NAME]
        if not name:
            new = ""
        elif graph is None:  # eager name scopes just concatenate
            new = name[:-1] if name[-1] == "/" else (f"{old}/{name}" if old else name)
        else:
            _check_name(name, bool(old))
            if name[-1] == "/":
                new = name[:-1]
            else:
                new = graph._unique_name(f"{old}/{name}" if old else name)
        new_scopes = (new, scopes[CONTROLS], scopes[DEVICE], scopes[FLOW])
        if aux is not None:
            _push_scopes(self, cur, aux, new_scopes)
        else:
            frame = (
                cur, self, cur[EAGER], cur[GRAPH], new_scopes, cur[LOG], cur[TAPES],
                cur[PAUSED], None,
            )  # fmt: skip
            token = state_set(frame)
            if self._frame is None:
                self._frame = frame
                self._token = token
            else:
                self._push_more(frame, token)
        return f"{new}/" if new else ""

    def __repr__(self) -> str:
        return f"name_scope({self._name!r})"


def _control_ops(control_inputs: tuple[Any, ...], graph: Graph | None) -> tuple[Operation, ...]:
    if len(control_inputs) == 1 and graph is not None:  # the common case, without a list
        (c,) = control_inputs
        op = c._op if type(c) is Tensor else c
        if type(op) is Operation and op._graph is graph:
            return (op,)
    ops: list[Operation] = []
    for c in control_inputs:
        if isinstance(c, Tensor):
            c = c._op
        elif graph is not None and not isinstance(c, Operation) and _is_variable(c):
            # A graph variable stands for its read snapshot, as in TensorFlow; an eager
            # variable's value exists already (a no-op in a function, like eager tensors).
            if c._snapshot is not None:
                c = c._snapshot._op
            elif graph.building_function:
                continue
        if isinstance(c, Operation):
            if graph is not None and c._graph is not graph:
                if graph.building_function:
                    # Captured like a data input (SPEC section 7): the function's calls,
                    # the cond or the loop run after ``c``.
                    graph._capture_control(c)  # type: ignore[attr-defined]
                    continue
                msg = (
                    f"Control input {c.name!r} belongs to {c._graph!r}, not to {graph!r} "
                    f"where the dependent ops are being built"
                )
                raise GraphMismatchError(with_description(msg))
            if c not in ops:
                ops.append(c)
        elif graph is None or (graph.building_function and _is_eager_tensor(c)):
            if callable(c):
                c()
            # Eager values already exist: a dependency on them is a no-op.
        else:
            msg = (
                f"control_dependencies() takes operations or tensors of {graph!r}, "
                f"got {c!r} of type {type(c).__name__}"
            )
            raise TypeError(msg)
    return tuple(ops)


def _is_variable(value: Any) -> bool:
    from ._variables import Variable  # imported here: _variables imports this module

    return isinstance(value, Variable)


def _is_eager_tensor(value: Any) -> bool:
    # Imported here: _tensor imports _graph, which imports this module at its end.
    from ._tensor import EagerTensor

    return isinstance(value, EagerTensor)


@final
class control_dependencies(Scope):  # a class used like a function, as in TensorFlow
    """Make ops created in the body run after ``control_inputs``; ``None`` clears.

    An op that already has a control input as a data input, or whose inputs were made
    under the same scope, does not get it again. In a function body, ``cond`` branch or
    loop body, ops of the enclosing graphs are captured: the call, ``cond`` or loop runs
    after them; eager tensors there are no-ops. In eager mode the inputs have already
    run; callables among them are called once.

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default():
        ...     a = sf.constant(1.0, name="a")
        ...     with sf.control_dependencies([a]):
        ...         b = sf.constant(2.0, name="b")
        >>> [op.name for op in b.op.control_inputs]
        ['a']
    """

    __slots__ = ("_graph", "_inputs")

    @classmethod
    def _on(cls, graph: Graph, control_inputs: Iterable[Any] | None) -> control_dependencies:
        """The scope ``graph.control_dependencies(...)``: on that graph."""
        scope = cls(control_inputs)
        scope._graph = graph
        return scope

    def __init__(self, control_inputs: Iterable[Any] | None) -> None:
        # A list is the common case; the ABC check for other iterables is slow.
        if (
            control_inputs is not None
            and type(control_inputs) is not list
            and (
                isinstance(control_inputs, (Tensor, Operation))
                or not isinstance(control_inputs, Iterable)
            )
        ):
            msg = (
                f"control_dependencies() takes a list of operations or tensors, or "
                f"None; got {control_inputs!r}. Wrap a single one in a list"
            )
            raise TypeError(msg)
        self._inputs = None if control_inputs is None else tuple(control_inputs)
        self._graph: Graph | None = None  # None: the calling task's current context
        self._frame = None

    def __enter__(self) -> None:
        cur = state_get(_roots[0])
        if self._graph is None:  # the module-level scope: the current context
            scopes = cur[SCOPES]
            aux = None
            graph = None if cur[EAGER] else (cur[GRAPH] or global_default_graph())
        else:
            graph, scopes, aux = _target(cur, self._graph)
        inputs = self._inputs
        if inputs is None and aux is None and getattr(graph, "_control_flow", False):
            self._push(_leave_control_flow(cur, self, graph, scopes))
            return
        if inputs is None:
            new: Scopes = (scopes[NAME], (), scopes[DEVICE], None)
        else:
            ops = _control_ops(inputs, graph)
            chain = (scopes[CONTROLS], ops) if ops else scopes[CONTROLS]
            new = (scopes[NAME], chain, scopes[DEVICE], scopes[FLOW])
        _push_scopes(self, cur, aux, new)

    def __repr__(self) -> str:
        if self._inputs is None:
            return "control_dependencies(None)"
        names = [getattr(c, "name", repr(c)) for c in self._inputs]
        return f"control_dependencies({names!r})"


def _leave_control_flow(cur: Frame, owner: Scope, graph: Any, scopes: Scopes) -> Frame:
    """A frame in the graph that encloses every cond/while_loop scope around ``graph``.

    Ops created there run once, unconditionally, as part of the enclosing graph; the
    branch or loop body that uses their values captures them.
    """
    outer = graph
    while getattr(outer, "_control_flow", False):
        outer = outer.outer_graph
    new: Scopes = (scopes[NAME], (), scopes[DEVICE], None)
    return (
        cur, owner, False, outer, new, cur[LOG] + (outer._switch,), cur[TAPES], cur[PAUSED],
        None,
    )  # fmt: skip


@final
class device(Scope):  # a class used like a function, as in TensorFlow
    """Record ``spec`` as the device of ops created in the body; ``None`` clears it.

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default(), sf.device("/cpu:0"):
        ...     sf.constant(1.0).op.device
        '/device:CPU:0'
    """

    __slots__ = ("_canonical", "_graph", "_spec")

    @classmethod
    def _on(cls, graph: Graph, spec: str | None) -> device:
        """The scope ``graph.device(spec)``: on that graph."""
        scope = cls(spec)
        scope._graph = graph
        return scope

    def __init__(self, spec: str | None) -> None:
        if spec is None:
            canonical = ""
        else:
            known: str | None
            try:
                known = _known_specs.get(spec)
            except TypeError:  # unhashable, so not a string: canonical_device says so
                known = None
            if known is not None:
                canonical = known
            else:
                # Validate now, so a bad spec fails where it is written.
                canonical = canonical_device(spec)
                if len(_known_specs) >= 4096:
                    _known_specs.clear()
                _known_specs[spec] = canonical
        self._spec = spec
        self._canonical = canonical
        self._graph: Graph | None = None  # None: the calling task's current context
        self._frame = None

    def __enter__(self) -> None:
        cur = state_get(_roots[0])
        if self._graph is None:
            scopes = cur[SCOPES]
            aux = None
        else:
            _, scopes, aux = _target(cur, self._graph)
        outer = scopes[DEVICE]
        spec = self._spec
        # Nothing to merge with (the common case) or device(None): the spec as it is.
        dev = self._canonical if spec is None or not outer else merge_devices(outer, spec)
        new = (scopes[NAME], scopes[CONTROLS], dev, scopes[FLOW])
        if aux is not None:
            _push_scopes(self, cur, aux, new)
            return
        # _push_scopes inlined for the current context: the path SPEC section 11 measures.
        frame = (cur, self, cur[EAGER], cur[GRAPH], new, cur[LOG], cur[TAPES], cur[PAUSED], None)
        token = state_set(frame)
        if self._frame is None:
            self._frame = frame
            self._token = token
        else:
            self._push_more(frame, token)

    def __repr__(self) -> str:
        return f"device({self._spec!r})"


def get_name_scope() -> str:
    """The calling task's current name scope (eager or default graph), no trailing slash.

    Example:
        >>> import scopeflow as sf
        >>> with sf.name_scope("a"), sf.name_scope("b"):
        ...     sf.get_name_scope()
        'a/b'
    """
    return state_get(_roots[0])[SCOPES][NAME]  # type: ignore[no-any-return]
