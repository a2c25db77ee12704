"""Control-flow graphs: the graphs ``cond`` branches and ``while_loop`` conditions and
bodies are built into, and the scopes they are built under (see ``_control_flow``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, final

import numpy as np

from ._concrete import ConcreteFunction, _flatten_outputs
from ._context import DEVICE, SCOPES, _roots, state_get
from ._func_graph import FuncGraph
from ._graph import Graph, Shape, Tensor, global_default_graph
from ._init_scope import executing_eagerly_outside_functions
from ._ops._core import graph_tensor, placeholder
from ._ops._registry import Spec
from ._ops._shape import reshape
from ._scopes import name_scope
from ._tensor import EagerTensor
from .errors import ScopeflowError

_BOOL: Final = np.dtype(np.bool_)


@final
class ControlFlowGraph(FuncGraph):
    """The graph of one cond branch, loop condition or loop body."""

    _control_flow = True

    def __init__(self, name: str, outer_graph: Graph, label: str) -> None:
        super().__init__(name, outer_graph)
        self.scope_label = label
        """What this graph is, for messages ("while_loop body 'w'")."""

    def __repr__(self) -> str:
        return f"<sf.ControlFlowGraph {self.scope_label}>"

    # As in TensorFlow, a branch or loop body shares the collections of the graph it is
    # built in: what it reads or adds there is the enclosing graph's (under that lock).

    def _collections_home(self) -> Graph:
        return self.outer_graph or global_default_graph()

    def add_to_collection(self, key: str, value: Any) -> None:
        self._collections_home().add_to_collection(key, value)

    def get_collection(self, key: str) -> list[Any]:
        return self._collections_home().get_collection(key)

    def get_all_collection_keys(self) -> list[str]:
        return self._collections_home().get_all_collection_keys()


class _StructureMismatchError(ScopeflowError, ValueError, TypeError):
    """cond branches returning different structures: a ``ValueError`` here and, as
    TensorFlow raises it, a ``TypeError``."""


def _build(
    outer: Graph,
    fn: Callable[..., Any],
    name: str,
    label: str,
    specs: Sequence[Spec] = (),
    scope: str = "",
) -> tuple[ConcreteFunction, Any, list[Tensor]]:
    """Build ``fn(*placeholders)`` into a control-flow graph, under name scope ``scope``.

    Returns:
        (the graph as a concrete function, the output template, the placeholders).
    """
    graph = ControlFlowGraph(name, outer, label)
    # The device scope open where the cond or loop is built applies inside it, as in
    # TensorFlow (its control-flow graphs copy the outer device stack).
    device = state_get(_roots[0])[SCOPES][DEVICE]
    with graph.as_default(), graph.device(device or None), graph.name_scope(scope or None):
        args = [placeholder(dtype, shape, name=f"{name}_var") for dtype, shape in specs]
        graph.inputs.extend(args)
        result = fn(*args)
        leaves: list[Any] = []
        template = _flatten_outputs(result, leaves)
        frame = state_get(_roots[0])
        graph.outputs = [graph_tensor(frame, graph, value, None) for value in leaves]
    graph.finalize()
    return ConcreteFunction(graph, None, template, []), template, args


def _structure(template: Any) -> Any:
    """An output template without leaf positions, to compare two structures."""
    if isinstance(template, int):
        return "tensor"
    kind, items = template
    if kind == "const":
        return items
    if issubclass(kind, Mapping):
        return (kind.__name__, tuple((k, _structure(v)) for k, v in items))
    return (kind.__name__, tuple(_structure(v) for v in items))


def _merge_shapes(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b, strict=True))


def _check_pred(pred: Any, what: str) -> None:
    dtype, shape = pred.dtype, pred.shape
    if dtype != _BOOL:
        msg = f"{what} must be a bool tensor, got dtype {dtype.name}"
        raise TypeError(msg)
    if shape is not None and shape != ():
        msg = f"{what} must be a scalar, got shape {shape}"
        raise ValueError(msg)


def _squeezed(pred: Any) -> Any:
    """A predicate of one element (shape ``(1, 1)``, ...) as a scalar, as TensorFlow's
    cond_v2 and while_v2 squeeze it; other values are returned as they are."""
    shape = getattr(pred, "shape", None)
    if isinstance(pred, (Tensor, EagerTensor)) and shape and all(d == 1 for d in shape):
        return reshape(pred, ())
    return pred


@contextlib.contextmanager
def _op_scope(label: str) -> Iterator[str]:
    """The name scope a cond or loop is built under, as TensorFlow's cond_v2 and while_v2
    open it: where ``executing_eagerly_outside_functions()`` (eager code and functions
    traced from it), ``name_scope(label)``, whose full name (``"outer/cond/"``) becomes
    the op's name and its branches' or body's name scope. In plain graphs ``""`` (the op
    is named ``label`` made unique, and the branches build at their root)."""
    if not executing_eagerly_outside_functions():
        yield ""
        return
    with name_scope(label) as scope:
        yield scope
