"""``init_scope``: lift op creation out of function graphs and control-flow scopes.

Entering it (1) drops control dependencies and the control-flow scope, (2) moves op
creation to the newest logged context that is not building a function (a graph, or eager
mode), and (3) pauses every tape. The walk runs over the immutable context-switch log and
pushes one frame for the chosen context; no other graph's state is touched.
"""

from __future__ import annotations

from typing import final

from . import _context
from ._context import (
    DEVICE,
    EAGER,
    GRAPH,
    LOG,
    NAME,
    SCOPES,
    TAPES,
    ContextSwitch,
    Frame,
    Scope,
    state_get,
    state_set,
)
from ._graph import Graph, get_default_graph, global_default_graph

__all__ = [
    "executing_eagerly_outside_functions",
    "init_scope",
    "inside_function",
]


def _outer_context(cur: Frame) -> tuple[bool, Graph | None, ContextSwitch, str]:
    """(eager?, default graph, log entry, device) of the context ``init_scope`` enters.

    ``cur`` must be in graph mode.
    """
    device: str = cur[SCOPES][DEVICE]
    current = cur[GRAPH]
    if current is None:
        # Graph mode, but this context never entered a graph: the global graph is both
        # the default graph and the way out.
        target = global_default_graph()
    else:
        for switch in reversed(cur[LOG]):
            # The current graph's device is the one read above: no walk for its entries
            # (saves a scopes_of call per entry in a graph or while tracing, bench_scopes).
            if not device and (switch._graph is not current or switch._is_eager):
                device = _context.scopes_of(cur, switch._graph, switch._is_eager)[DEVICE]
            if not switch.is_building_function:
                return switch._is_eager, switch._graph, switch, device
        # Every logged context builds a function: the global graph is the last resort.
        target = global_default_graph()
    if target.building_function:
        msg = (
            f"init_scope() found no context outside function building: the global default "
            f"graph {target!r} is itself building a function"
        )
        raise RuntimeError(msg)
    return False, target, target._switch, device


@final
class init_scope(Scope):  # a class used like a function, as in TensorFlow
    """A scope that lifts op creation out of function graphs and control-flow scopes.

    Inside it, control dependencies are cleared, ops go to the innermost context that is
    not building a function (a graph, or eager mode) under the current name scope, and
    gradient tapes are paused. Use it to create state (variables, lookup tables) once,
    outside the function being traced. It works with ``with`` and ``async with``.

    Example:
        >>> import scopeflow as sf
        >>> outer = sf.Graph()
        >>> with outer.as_default(), sf.FuncGraph("f", outer).as_default():
        ...     with sf.init_scope():
        ...         c = sf.constant(1.0)
        >>> c.graph is outer
        True
    """

    # The class itself is the public factory: a separate factory function would add a
    # Python call to every entry (SPEC section 11 counts construction in init_scope's cost).

    __slots__ = ()

    def __init__(self) -> None:
        self._frame = None

    def __enter__(self) -> None:
        cur = state_get()
        if cur[2]:  # EAGER; indices written out on this path (SPEC section 11, eager row)
            # Already outside every function: only pause the tapes.
            frame = (cur, self, True, cur[3], cur[4], cur[5], cur[6], True, None)
        else:
            eager, graph, switch, device = _outer_context(cur)
            # The body keeps the inner name scope (absolute) and the device found on the
            # walk; control dependencies and the control-flow scope are dropped.
            scopes = (cur[SCOPES][NAME], (), device, None)
            frame = (cur, self, eager, graph, scopes, cur[LOG] + (switch,), cur[TAPES], True, None)
        token = state_set(frame)
        if self._frame is None:  # Scope._push, inlined on this hot path
            self._frame = frame
            self._token = token
        else:
            self._push_more(frame, token)

    def __repr__(self) -> str:
        return "init_scope()"


def executing_eagerly_outside_functions() -> bool:
    """Whether ``init_scope`` would execute eagerly here (True in eager code and in
    functions called from it).

    Example:
        >>> import scopeflow as sf
        >>> with sf.FuncGraph("f").as_default():
        ...     sf.executing_eagerly(), sf.executing_eagerly_outside_functions()
        (False, True)
    """
    cur = state_get()
    if cur[EAGER]:
        return True
    if cur[GRAPH] is None:
        return False
    for switch in reversed(cur[LOG]):
        if not switch.is_building_function:
            return bool(switch._is_eager)
    return False


def inside_function() -> bool:
    """Whether the default graph is a function graph being built.

    Example:
        >>> import scopeflow as sf
        >>> with sf.FuncGraph("f").as_default():
        ...     sf.inside_function()
        True
    """
    return get_default_graph().building_function
