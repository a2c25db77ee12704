"""Function graphs: graphs a traced function is built into, with captures.

A :class:`FuncGraph` turns every outside value its body uses into an input: a tensor of
an enclosing graph or an eager tensor becomes a placeholder of the function graph (a
*capture*), and the outside value is bound to it at call time (``captured_inputs``).
Stateful ops (variable reads and writes, calls of stateful functions) are chained in
program order by control edges, so a function's side effects happen as written.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from ._context import EMPTY_SCOPES, GRAPH, PAUSED, TAPES, state_get
from ._graph import Graph, Operation, Tensor, escaped_from
from ._introspect import with_description
from .errors import GraphMismatchError, TracingError

__all__ = ["TRACES", "FuncGraph", "add_control_captures"]


class FuncGraph(Graph):
    """A graph that a traced function is built into (``building_function`` is True).

    Attributes:
        outer_graph: the graph the function is traced from (None: the global graph);
            held weakly once the trace has ended.
        inputs: placeholders for the arguments, then one per captured value.
        outputs: the flat outputs, set when the trace ends.
        control_outputs: stateful operations, in program order; they run on every call.

    Example:
        >>> import scopeflow as sf
        >>> outer = sf.Graph()
        >>> fg = sf.FuncGraph("f", outer_graph=outer)
        >>> fg.building_function, fg.outer_graph is outer
        (True, True)
    """

    building_function = True

    def __init__(self, name: str, outer_graph: Graph | None = None) -> None:
        if outer_graph is not None and not isinstance(outer_graph, Graph):
            msg = f"outer_graph must be a Graph or None, got {outer_graph!r}"
            raise TypeError(msg)
        if not isinstance(name, str):
            msg = f"A function graph's name must be a string, got {name!r}"
            raise TypeError(msg)
        super().__init__(name)
        # The graph itself while the trace is built; a weak reference once it is sealed.
        self._outer: Graph | weakref.ref[Graph] | None = outer_graph
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.control_outputs: list[Operation] = []
        # id(captured value) -> (that value, kept alive so its id stays unique; the value
        # to bind from the immediately enclosing context; the placeholder)
        self._captures: dict[int, tuple[Any, Any, Tensor]] = {}
        # Outer operations the body has control dependencies on (SPEC section 7): every
        # call of the function runs after them. Ops of any enclosing graph, in order.
        self._control_captures: list[Operation] = []
        # Guards the check-then-act of capturing: threads building this graph at once
        # must capture each outer value once (a second placeholder would be unbound).
        self._capture_lock = threading.Lock()
        self._last_stateful: Operation | None = None
        # Set when the trace ends: the function's name, for errors about escaped tensors.
        self._sealed_by: str | None = None
        # Whether variables may be created while this graph is being traced (only on a
        # function's first trace), and the sf.function tracing it.
        self._allow_variables = True
        self._traced_by: object | None = None
        # Ops that make captures are created without the tracing task's scopes.
        self._capture_frame = (None, None, False, self, EMPTY_SCOPES, (), (), False, None)

    def __repr__(self) -> str:
        return f"<sf.FuncGraph {self._name!r}>"

    @property
    def outer_graph(self) -> Graph | None:
        """The graph this one is built from (held weakly once a traced function's trace
        has ended, so a cached trace does not keep that graph alive: None after it died)."""
        outer = self._outer
        return outer() if type(outer) is weakref.ref else outer  # type: ignore[return-value]

    @property
    def captured_inputs(self) -> list[Any]:
        """The outside values bound to the capture placeholders, in input order."""
        with self._capture_lock:  # a snapshot, even while other threads capture
            return [outer for _, outer, _ in self._captures.values()]

    @property
    def captures(self) -> list[tuple[Any, Tensor]]:
        """(outside value, placeholder) pairs, in input order."""
        with self._capture_lock:
            return [(outer, ph) for _, outer, ph in self._captures.values()]

    def _order_stateful(self, op: Operation) -> None:
        """Run ``op`` after the previous stateful op, and on every call."""
        last = self._last_stateful
        if (
            last is not None
            and last not in op._control_inputs
            and not any(t._op is last for t in op._inputs)
        ):
            op._control_inputs = (*op._control_inputs, last)
        self._last_stateful = op
        self.control_outputs.append(op)

    def _new_capture(self, key: Any, outer: Any, dtype: Any, shape: Any) -> Tensor:
        attrs = {"dtype": dtype, "shape": shape, "name": None}
        op = self._create_op(
            "Placeholder", (), attrs, ((dtype, shape),), "capture", self._capture_frame
        )
        attrs["name"] = op.name
        ph: Tensor = op._outputs[0]
        self._captures[id(key)] = (key, outer, ph)
        self.inputs.append(ph)
        return ph

    def _foreign_input(self, t: Tensor) -> Tensor:
        """Capture ``t``, a tensor of an enclosing graph (through every graph between)."""
        hit = self._captures.get(id(t))
        if hit is None:
            with self._capture_lock:
                hit = self._captures.get(id(t))
                ph = hit[2] if hit is not None else self._capture_tensor(t)
        else:
            ph = hit[2]
        self._offer_capture(t, ph)
        return ph

    def _offer_capture(self, outer: Any, ph: Tensor) -> None:
        """Show tapes recording in this graph the capture as an identity from ``outer`` to
        its placeholder, as TensorFlow does on every capture: a tape that watches an outside
        tensor (``tape.watch(x)`` of an eager tensor inside the function) then follows what
        the function computes from it. Tapes entered outside this graph record the call as
        one op instead, and must not see the graph's tensors."""
        frame = state_get()
        if not frame[TAPES] or frame[PAUSED]:
            return
        from ._ops._core import IDENTITY  # the op layer imports this module

        for entry in frame[TAPES]:
            tape = entry._tape
            home = getattr(tape, "_frame", None) if tape is not None else None
            # Once per placeholder (TensorFlow's tape keeps the last record of a tensor):
            # a second record would count the gradient through the capture twice.
            if home is not None and home[GRAPH] is self and id(ph) not in tape._tracked:
                entry._offer(IDENTITY, (outer,), (ph,), {})

    def _capture_tensor(self, t: Tensor) -> Tensor:
        source = t._graph
        enclosing = self.outer_graph
        while enclosing is not None and enclosing is not source:
            enclosing = getattr(enclosing, "outer_graph", None)
        if enclosing is None:
            raise self._not_capturable(t)
        outer = self.outer_graph
        assert outer is not None
        outer_value = t if source is outer else outer._foreign_input(t)
        return self._new_capture(t, outer_value, t._dtype, t._shape)

    def _eager_input(self, value: Any) -> Tensor:
        """Capture an eager tensor: it is bound to a placeholder at call time."""
        hit = self._captures.get(id(value))
        if hit is not None:
            ph = hit[2]
        else:
            with self._capture_lock:
                hit = self._captures.get(id(value))
                if hit is not None:
                    ph = hit[2]
                else:
                    outer = self.outer_graph
                    # Inside another function, every enclosing function captures it too, so
                    # each call can pass it on. Lock order: inner graph, then outer graph.
                    outer_value = (
                        outer._eager_input(value) if isinstance(outer, FuncGraph) else value
                    )
                    ph = self._new_capture(value, outer_value, value.dtype, value.shape)
        self._offer_capture(value, ph)
        return ph

    def _capture_control(self, op: Operation) -> None:
        """Make every call of this graph run after ``op``, an op of an enclosing graph.

        Each function graph between records it, so the op that calls this graph in the
        graph owning ``op`` gets it as a control input (see :func:`control_captures_for`).
        """
        if op in self._control_captures:
            return
        source = op._graph
        enclosing = self.outer_graph
        while enclosing is not None and enclosing is not source:
            enclosing = getattr(enclosing, "outer_graph", None)
        if enclosing is None:
            raise self._control_not_capturable(op)
        outer = self.outer_graph
        if outer is not source:
            outer._capture_control(op)  # type: ignore[union-attr]
        with self._capture_lock:
            if op not in self._control_captures:
                self._control_captures.append(op)

    def _not_capturable(self, t: Tensor) -> Exception:
        escaped = escaped_from(t)
        if escaped is not None:
            return TracingError(escaped)
        source = t._graph
        inner = getattr(source, "outer_graph", None)
        while inner is not None and inner is not self:
            inner = getattr(inner, "outer_graph", None)
        if inner is self:
            msg = (
                f"Tensor {t.name!r} belongs to {source!r}, which is nested inside {self!r}: "
                f"it is out of scope here. Pass its value out explicitly (return it from "
                f"the loop body or branch) instead of using it directly"
            )
            return GraphMismatchError(with_description(msg))
        msg = (
            f"Tensor {t.name!r} belongs to {source!r}, which does not enclose {self!r} "
            f"being built here; pass it to the function as an argument instead"
        )
        return GraphMismatchError(with_description(msg))

    def _control_not_capturable(self, op: Operation) -> Exception:
        fn_name = getattr(op._graph, "_sealed_by", None)
        if fn_name is not None:
            msg = (
                f"Control input {op.name!r} was created while tracing function {fn_name!r}, "
                f"whose trace has finished, so it never runs; depend on an op of a graph "
                f"that encloses {self!r}, or on the function's call"
            )
            return TracingError(msg)
        inner = getattr(op._graph, "outer_graph", None)
        while inner is not None and inner is not self:
            inner = getattr(inner, "outer_graph", None)
        if inner is self:
            msg = (
                f"Control input {op.name!r} belongs to {op._graph!r}, which is nested inside "
                f"{self!r}: it is out of scope here. Depend on an op of {self!r} or of the "
                f"graphs around it"
            )
            return GraphMismatchError(with_description(msg))
        msg = (
            f"Control input {op.name!r} belongs to {op._graph!r}, which does not enclose "
            f"{self!r} being built here: control_dependencies() inside a function, branch "
            f"or loop body takes ops of that graph or of the graphs around it"
        )
        return GraphMismatchError(with_description(msg))

    def _seal(self, function_name: str) -> None:
        """End the trace: the graph is read-only and its tensors may not escape."""
        self._sealed_by = function_name
        self.finalize()
        # A trace cached by a module-level function, made from eager code or from a
        # per-request graph, must not keep that graph (or the old global graph after
        # reset_default_graph()) alive: nothing is built here any more.
        outer = self._outer
        if isinstance(outer, Graph):
            self._outer = weakref.ref(outer)


# The function graphs sf.function is tracing in this context, innermost last. A context
# variable, not the frame: init_scope leaves the graphs but not the traces.
TRACES: contextvars.ContextVar[tuple[FuncGraph, ...]] = contextvars.ContextVar(
    "scopeflow_traces", default=()
)


def add_control_captures(op: Operation, functions: Iterable[FuncGraph]) -> None:
    """Make ``op``, which runs ``functions``' graphs, run after their control captures.

    ``op`` was just created and is not visible to anyone else yet. A captured op of
    ``op``'s own graph becomes a control input; one of a graph further out is captured by
    ``op``'s graph in turn (it is then a function graph), so its calls run after it.
    """
    graph = op._graph
    extra: list[Operation] = []
    for fn in functions:
        for dep in fn._control_captures:
            if dep._graph is graph:
                if dep not in extra and dep not in op._control_inputs:
                    extra.append(dep)
            elif isinstance(graph, FuncGraph):
                graph._capture_control(dep)
            else:
                msg = (
                    f"{fn!r} must run after {dep.name!r} of {dep._graph!r} (a "
                    f"control_dependencies() in its body), so it cannot be called in "
                    f"{graph!r}; call it in {dep._graph!r} or in a function traced there"
                )
                raise GraphMismatchError(with_description(msg))
    if extra:
        inputs = {t._op for t in op._inputs}
        op._control_inputs = (*op._control_inputs, *(d for d in extra if d not in inputs))
