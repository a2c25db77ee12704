"""Scope introspection: what the calling context has open, as readable text.

:func:`describe_scopes` reads the calling context's frame (see ``_context``) once and
turns it into a :class:`ScopeDescription`. Nothing here runs on a hot path: scope errors
call :func:`with_description` only while they build their message, after the decision
to raise was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, final

from ._context import (
    CONTROLS,
    DEVICE,
    EAGER,
    FLOW,
    GRAPH,
    LOG,
    NAME,
    OWNER,
    PARENT,
    PAUSED,
    SCOPES,
    TAPES,
    Frame,
    current,
)

__all__ = ["ScopeDescription", "describe_scopes", "with_description"]


@final
@dataclass(frozen=True)
class ScopeDescription:
    """The scope state of one context (task, thread or copied ``Context``) at one moment.

    ``str()`` renders it as an indented block; the fields hold the same facts as plain
    strings and tuples, for tests and tools.

    Attributes:
        executing_eagerly: whether ops run at once in that context.
        context_switches: the context-switch log, oldest entry first: ``"eager"`` or the
            graph entered, with ``", building a function"`` for a function graph.
        default_graphs: the default-graph stack, outermost first (empty: the context uses
            the process-wide global default graph).
        default_graph: the graph ``sf.get_default_graph()`` returns in that context.
        name_scope: the current name scope ("" at the root).
        control_dependencies: names of the ops new ops will wait for.
        device: the current device ("" for none).
        control_flow: the ``cond``/``while_loop`` scope ops are built in, or "".
        active_tapes: the gradient tapes recording here, outermost first.
        paused_tapes: tapes open around this context that do not record here now
            (``stop_recording``, ``init_scope``), outermost first.
        open_scopes: every scope entered and not yet left, outermost first.
    """

    executing_eagerly: bool
    context_switches: tuple[str, ...]
    default_graphs: tuple[str, ...]
    default_graph: str
    name_scope: str
    control_dependencies: tuple[str, ...]
    device: str
    control_flow: str
    active_tapes: tuple[str, ...]
    paused_tapes: tuple[str, ...]
    open_scopes: tuple[str, ...]

    def __str__(self) -> str:
        def items(values: tuple[str, ...], empty: str) -> str:
            return ", ".join(values) if values else empty

        def listed(values: tuple[str, ...]) -> list[str]:
            return [f"    {value}" for value in values] if values else ["    (none)"]

        mode = "eager" if self.executing_eagerly else "graph"
        return "\n".join(
            [
                "scopes of this context:",
                f"  mode: {mode}",
                "  context-switch log, oldest first:",
                *listed(self.context_switches),
                "  default-graph stack: "
                + items(self.default_graphs, "(none: the global default graph)"),
                f"  default graph: {self.default_graph}",
                f"  name scope: {self.name_scope!r}",
                f"  control dependencies: {items(self.control_dependencies, '(none)')}",
                f"  device: {self.device!r}",
                f"  control-flow scope: {self.control_flow or '(none)'}",
                f"  active tapes: {items(self.active_tapes, '(none)')}",
                f"  paused tapes: {items(self.paused_tapes, '(none)')}",
                "  open scopes, outermost first:",
                *listed(self.open_scopes),
            ]
        )


def _switch_label(switch: Any) -> str:
    if switch._is_eager:
        return "eager"
    label = repr(switch._graph)
    return f"{label}, building a function" if switch.is_building_function else label


def _control_names(chain: tuple[Any, ...]) -> tuple[str, ...]:
    """Op names of a control-dependency chain ``(parent_chain, ops)``, outermost first."""
    per_scope: list[tuple[Any, ...]] = []
    node = chain
    while node:
        node, ops = node
        per_scope.append(ops)
    names: list[str] = []
    for ops in reversed(per_scope):
        for op in ops:
            if op.name not in names:
                names.append(op.name)
    return tuple(names)


def _tape_label(tape: Any) -> str:
    return f"{tape!r} at {id(tape):#x}"


def _describe(frame: Frame) -> ScopeDescription:
    frames: list[Frame] = []
    f: Frame | None = frame
    while f is not None:
        frames.append(f)
        f = f[PARENT]
    frames.reverse()  # root first

    graphs: list[Any] = []
    owners: list[str] = []
    seen_tapes: dict[int, Any] = {}
    for fr in frames:
        owner = fr[OWNER]
        if owner is not None:
            owners.append(repr(owner))
        g = fr[GRAPH]
        parent = fr[PARENT]
        if not fr[EAGER] and g is not None and (parent is None or parent[GRAPH] is not g):
            graphs.append(g)
        for entry in fr[TAPES]:
            seen_tapes.setdefault(id(entry._tape), entry)

    # Imported here: ``_tape`` imports the whole op layer, which imports this package's
    # core modules; describing scopes is never on an import path.
    from ._graph import get_default_graph
    from ._tape import _closed

    def is_open(entry: Any) -> bool:
        return entry._offer is not _closed

    here = frame[TAPES]
    recording = () if frame[PAUSED] else tuple(e for e in here if is_open(e))
    active_ids = {id(e._tape) for e in recording}
    active = tuple(_tape_label(e._tape) for e in recording)
    paused = tuple(
        _tape_label(e._tape)
        for key, e in seen_tapes.items()
        if key not in active_ids and is_open(e)
    )
    # Eager mode entered inside a function graph (init_scope escaping to eager) hides the
    # function graphs: the stack shown ends at the graph the frame still has as default
    # (none at all when the outside is eager), as get_default_graph() answers (SPEC 12.4).
    current_graph = frame[GRAPH]
    if frame[EAGER] and current_graph not in graphs:
        graphs = []
    elif frame[EAGER]:
        del graphs[len(graphs) - graphs[::-1].index(current_graph) :]
    scopes = frame[SCOPES]
    flow = scopes[FLOW]
    graph = frame[GRAPH]
    if flow is None and not frame[EAGER] and getattr(graph, "_control_flow", False):
        flow = graph  # a branch or loop body being built is its own control-flow scope
    return ScopeDescription(
        executing_eagerly=bool(frame[EAGER]),
        context_switches=tuple(_switch_label(s) for s in frame[LOG]),
        default_graphs=tuple(repr(g) for g in graphs),
        default_graph=repr(get_default_graph()),
        name_scope=scopes[NAME],
        control_dependencies=_control_names(scopes[CONTROLS]),
        device=scopes[DEVICE],
        control_flow="" if flow is None else repr(flow),
        active_tapes=active,
        paused_tapes=paused,
        open_scopes=tuple(owners),
    )


def describe_scopes() -> ScopeDescription:
    """Describe the scope state of the calling task, thread or copied context.

    Returns:
        A :class:`ScopeDescription`; ``print()`` it to see the context-switch log, the
        default-graph stack, the name scope, control dependencies, device, control-flow
        scope and the active and paused gradient tapes.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph("model")
        >>> with g.as_default(), sf.name_scope("layer"), sf.device("/cpu:0"):
        ...     print(sf.debug.describe_scopes())
        scopes of this context:
          mode: graph
          context-switch log, oldest first:
            eager
            <sf.Graph 'model'>
          default-graph stack: <sf.Graph 'model'>
          default graph: <sf.Graph 'model'>
          name scope: 'layer'
          control dependencies: (none)
          device: '/device:CPU:0'
          control-flow scope: (none)
          active tapes: (none)
          paused tapes: (none)
          open scopes, outermost first:
            <sf.Graph 'model'>.as_default()
            name_scope('layer')
            device('/cpu:0')
    """
    return _describe(current())


def with_description(msg: str) -> str:
    """``msg`` followed by the description of the calling context's scopes.

    Called only while an error is being raised, never on a hot path.
    """
    try:
        text = str(_describe(current()))
    except Exception as err:  # a description must never hide the real error
        text = f"scopes of this context: (could not be described: {err!r})"
    return f"{msg}\n{text}"
