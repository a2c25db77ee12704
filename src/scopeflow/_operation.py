"""Operations and the symbolic tensors they produce.

Both are created only by a graph while it builds ops; they are read-only for users. An
operation records the scopes of the task that created it (control inputs, device,
control-flow scope) and the control-dependency chain it was created under, which is how
later ops prune dependencies their inputs already carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, final

import numpy as np

from ._copying import refuse_copying
from ._tensor_ops import TensorOperators

if TYPE_CHECKING:
    from ._graph import Graph

__all__ = ["Operation", "Shape", "Tensor"]

Shape = tuple[int | None, ...]


def _no_public_constructor(cls: type, how: str) -> NoReturn:
    msg = f"{cls.__name__} objects are created by scopeflow, not directly: {how}"
    raise TypeError(msg)


@final
class Tensor(TensorOperators):
    """A symbolic value: output ``value_index`` of an operation in a graph.

    Graph tensors are made by ops while a graph is being built and get values only when a
    :class:`Session` (or a traced function call) runs the graph.

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default():
        ...     t = sf.constant([1.0, 2.0], name="c")
        >>> t.name, t.shape
        ('c:0', (2,))
    """

    # The lean representation (SPEC section 11, bench_tasks): an op with one output built
    # on the hot paths (Graph._op1, Graph._const_op) is at first only its tensor, which
    # holds the op's fields (the ``_l_*`` slots) and stands in the graph's op list; the
    # Operation object is made when first asked for (``_op``), and replaces the tensor in
    # that list. So building ``x = x + c`` makes one object the collector must trace
    # instead of two (four with the former tuples), while graphs of interleaved tasks
    # grow. ``_graph`` is the op's graph, so that the fast paths never need the op.
    # ``x + 1.0`` (Graph._const_op) builds its Const op in the same tensor: the input is
    # then the Const's attrs dict, and the Const's place in the list (``_l_id - 1``)
    # holds its name until its Operation and tensor are made with the op's (about 0.2 µs
    # less per ``x + 1.0``: one object where two were).
    __slots__ = (
        "_dtype",
        "_graph",
        "_l_attrs",
        "_l_id",
        "_l_in2",
        "_l_ins",
        "_l_name",
        "_l_scopes",
        "_l_type",
        "_opv",
        "_shape",
        "_value_index",
    )

    _graph: Graph
    _opv: Operation | None  # None while the op is lean
    _value_index: int
    _dtype: np.dtype[Any]
    _shape: Shape | None
    # The fields of a lean op (set only then); see Operation.__slots__.
    _l_attrs: dict[str, Any]
    _l_id: int
    _l_in2: Tensor | dict[str, Any] | None  # a dict: a Const's attrs (see above)
    _l_ins: Tensor | tuple[Tensor, ...] | dict[str, Any]  # a dict: as _l_in2
    _l_name: str
    _l_scopes: tuple[Any, ...]
    _l_type: str

    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_public_constructor(
            Tensor,
            "build one with an op such as sf.constant() or sf.placeholder() inside "
            "`with graph.as_default():`",
        )

    @property
    def _op(self) -> Operation:
        op = self._opv
        if op is None:
            op = self._graph._materialize(self)
        return op

    @property
    def op(self) -> Operation:
        """The operation that produces this tensor."""
        op = self._opv
        if op is None:
            op = self._graph._materialize(self)
        return op

    @property
    def graph(self) -> Graph:
        """The graph this tensor belongs to."""
        return self._graph

    @property
    def value_index(self) -> int:
        """Which output of :attr:`op` this tensor is."""
        return self._value_index

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype of the values."""
        return self._dtype

    @property
    def shape(self) -> Shape | None:
        """The static shape: a tuple of ints and ``None`` (unknown), or None if even the
        rank is unknown."""
        return self._shape

    @property
    def name(self) -> str:
        """``"<op name>:<value_index>"``."""
        op = self._opv
        return f"{self._l_name if op is None else op._name}:{self._value_index}"

    @property
    def device(self) -> str:
        """The device of the producing operation."""
        op = self._opv
        return self._l_scopes[2] if op is None else op._scopes[2]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<sf.Tensor '{self.name}' shape={self._shape} dtype={self._dtype.name}>"

    def __bool__(self) -> bool:
        msg = (
            f"The truth value of symbolic tensor {self.name!r} is not known while the graph "
            f"is being built; use sf.cond() for graph control flow, or run the graph first"
        )
        raise TypeError(msg)

    def _elementwise_equality(self) -> bool:
        # TensorFlow's rule: tensors of function graphs compare element-wise (where
        # executing_eagerly_outside_functions() holds); plain-graph tensors by identity.
        return self._graph.building_function

    def __hash__(self) -> int:
        graph = self._graph
        if graph.building_function:
            msg = (
                f"Tensor {self.name!r} of function graph {graph.name!r} is unhashable: == "
                f"compares it element-wise. Use tensor.ref() as the dict key or set member "
                f"(ref.deref() gives the tensor back)"
            )
            raise TypeError(msg)
        return id(self)

    def _no_value(self, what: str) -> TypeError:
        from ._graph import escaped_from

        escaped = escaped_from(self)
        if escaped is not None:
            return TypeError(f"{what} is not available: {escaped}")
        graph = self._graph
        if graph.building_function:
            msg = (
                f"{what} is not available: {self.name!r} is a symbolic tensor of function "
                f"graph {graph.name!r}, which has no value while the function is traced. "
                f"Return it from the function to get its value, or print it when the "
                f"function runs with sf.print()"
            )
        else:
            msg = (
                f"{what} is not available: {self.name!r} is a symbolic tensor of "
                f"{graph!r}, which has no value while the graph is built. Run the graph to "
                f"get it: sf.Session(graph).run(tensor)"
            )
        return TypeError(msg)

    def numpy(self) -> NoReturn:
        """Always raises ``TypeError``: a symbolic tensor has no value (see the message)."""
        what = ".numpy()"
        raise self._no_value(what)

    def tolist(self) -> NoReturn:
        """Always raises ``TypeError``: a symbolic tensor has no value (see the message)."""
        what = ".tolist()"
        raise self._no_value(what)

    def item(self) -> NoReturn:
        """Always raises ``TypeError``: a symbolic tensor has no value (see the message)."""
        what = ".item()"
        raise self._no_value(what)

    def __float__(self) -> NoReturn:
        what = "float()"
        raise self._no_value(what)

    def __int__(self) -> NoReturn:
        what = "int()"
        raise self._no_value(what)

    def __complex__(self) -> NoReturn:
        what = "complex()"
        raise self._no_value(what)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NoReturn:
        what = "Conversion to a NumPy array"
        raise self._no_value(what)

    # A graph tensor is a node of its graph: a copy would have to copy the graph.
    def __copy__(self) -> NoReturn:
        what = "copied"
        raise self._no_copy(what)

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        what = "deep-copied"
        raise self._no_copy(what)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        what = "pickled"
        raise self._no_copy(what)

    def _no_copy(self, verb: str) -> TypeError:
        msg = (
            f"Symbolic tensor {self.name!r} cannot be {verb}: it is a node of "
            f"{self._graph!r} and has no value of its own. Copy its value instead "
            f"(sf.Session(graph).run(tensor), or return it from a traced function), or "
            f"build the graph again"
        )
        return TypeError(msg)

    def __iter__(self) -> NoReturn:
        msg = (
            f"Symbolic tensor {self.name!r} cannot be iterated while the graph is being built; "
            f"index it with a known size or use sf.while_loop()"
        )
        raise TypeError(msg)


@refuse_copying(
    "an operation is a node of its graph",
    "Create the op again in the graph that needs it (run the same Python code there).",
)
@final
class Operation:
    """A node of a graph: a named, typed computation with tensor inputs and outputs.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     s = sf.add(1.0, 2.0, name="sum")
        >>> s.op.name, s.op.type, [t.name for t in s.op.inputs]
        ('sum', 'Add', ['Const:0', 'Const_1:0'])
    """

    # A lean layout (SPEC section 11, bench_tasks): the collector traces every op of every
    # graph, again and again while graphs grow. One or two inputs and a single output are
    # held as they are, not in tuples (``_inputs`` and ``_outputs`` make the tuples on
    # demand), and the scopes are one shared tuple rather than one slot each. With the
    # lean ops of Tensor (no Operation until one is asked for), ``x = x + c`` makes one
    # tracked object where it made four (op, tensor, inputs and outputs tuples): in the
    # 10,000-task row the collector's time fell from 8.0 s to 4.0 s.
    __slots__ = (
        "__weakref__",
        "_attrs",
        "_control_inputs",
        "_graph",
        "_id",
        "_in2",
        "_ins",
        "_name",
        "_outs",
        "_scopes",
        "_type",
    )

    _attrs: dict[str, Any]
    _control_inputs: tuple[Operation, ...]
    _graph: Graph
    _id: int
    _ins: Tensor | tuple[Tensor, ...]  # the first input when there are one or two
    _in2: Tensor | None  # the second input when there are exactly two
    _name: str
    _outs: Tensor | tuple[Tensor, ...]  # the tensor itself when there is exactly one
    _scopes: tuple[Any, ...]  # (name scope, control chain, device, flow): name scope unused
    _type: str

    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_public_constructor(
            Operation,
            "an op function such as sf.no_op() or sf.add() adds one to the default "
            "graph; reach it through a tensor's .op",
        )

    @property
    def _ctl(self) -> tuple[Any, ...]:
        """The control-dependency chain the op was created under."""
        return self._scopes[1]  # type: ignore[no-any-return]

    @property
    def _device(self) -> str:
        return self._scopes[2]  # type: ignore[no-any-return]

    @property
    def _flow(self) -> Any:
        """The control-flow scope the op was created in, or None."""
        return self._scopes[3]

    @property
    def name(self) -> str:
        """The unique name of this operation in its graph."""
        return self._name

    @property
    def type(self) -> str:
        """The registered op type, e.g. ``"Add"``."""
        return self._type

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """The data inputs."""
        first = self._ins
        if type(first) is Tensor:
            second = self._in2
            return (first,) if second is None else (first, second)
        return first

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        """The output tensors."""
        outs = self._outs
        return (outs,) if type(outs) is Tensor else outs

    # The internal names of the same properties (one getter each, not a copy).
    _inputs = inputs
    _outputs = outputs

    @property
    def control_inputs(self) -> tuple[Operation, ...]:
        """Operations that must run before this one though no data flows from them."""
        return self._control_inputs

    @property
    def device(self) -> str:
        """The device recorded for this operation ("" for none)."""
        return self._scopes[2]  # type: ignore[no-any-return]

    @property
    def graph(self) -> Graph:
        """The graph this operation belongs to."""
        return self._graph

    def get_attr(self, name: str) -> Any:
        """The attribute ``name`` the op was built with (e.g. a constant's value)."""
        try:
            return self._attrs[name]
        except KeyError:
            msg = f"Operation {self._name!r} of type {self._type!r} has no attribute {name!r}"
            raise ValueError(msg) from None

    def __repr__(self) -> str:
        return f"<sf.Operation '{self._name}' type={self._type}>"
