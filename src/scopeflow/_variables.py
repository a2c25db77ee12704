"""Variables: mutable state read and written by ops.

An eager variable owns a NumPy buffer; a graph variable is a handle op, an initializer op
and read ops in its graph, and its value lives in each :class:`Session` that initializes
it. Reads and writes are ops (``ReadVariableOp``, ``AssignVariableOp``, ...) whose kernels
reach the storage, so the same ops work eagerly, in sessions and inside traced functions.
A variable created while a function is being traced is lifted out with ``init_scope``.
"""

from __future__ import annotations

import threading
from typing import Any, Final, final

import numpy as np

from . import _execution
from ._context import EAGER, GRAPH, NAME, SCOPES, Frame, eager_mode, state_get
from ._func_graph import TRACES
from ._graph import Graph, Operation, Shape, Tensor, get_default_graph
from ._init_scope import init_scope
from ._introspect import with_description
from ._ops._core import EAGER_READS, apply, convert_to_tensor, group, offer_read
from ._quiet import QUIET, quiet_reset, quiet_set
from ._tensor import EagerTensor, as_dtype, check_tensor_dtype, to_array, wrap
from ._tensor_ops import TensorOperators
from ._tracing import check_variable_creation
from ._variable_conversions import ValueConversions
from ._variable_ops import ASSIGN, ASSIGN_ADD, ASSIGN_SUB, READ, UPDATES, VAR_HANDLE
from .errors import FailedPreconditionError, GraphMismatchError, InvalidArgumentError

__all__ = ["Variable", "global_variables_initializer"]

VARIABLES: Final = "variables"
_new: Final = object.__new__
TRAINABLE_VARIABLES: Final = "trainable_variables"


@final
class Variable(ValueConversions, TensorOperators):
    """A mutable tensor-like value.

    Eager variables hold their value; graph variables get theirs in a session when their
    ``initializer`` (or ``sf.global_variables_initializer()``) runs. A variable is usable
    wherever a tensor is (operators included). Created while a function is traced, it is
    lifted out of the function (as if made in ``init_scope``), so it is created once.

    Args:
        initial_value: a value, tensor or zero-argument callable returning one.
        name: the name (under the current name scope); "Variable" by default.
        trainable: whether it joins the ``"trainable_variables"`` collection and is
            watched by gradient tapes automatically.
        dtype: convert the initial value to this dtype.

    Example:
        >>> import scopeflow as sf
        >>> v = sf.Variable(1.0, name="v")
        >>> _ = v.assign_add(2.0)
        >>> v.numpy(), v.name
        (array(3., dtype=float32), 'v:0')
    """

    __slots__ = (
        "__weakref__",
        "_dtype",
        "_graph",
        "_handle",
        "_initializer",
        "_lock",
        "_name",
        "_shape",
        "_snapshot",
        "_trainable",
        "_value",
    )

    _dtype: np.dtype[Any]
    _shape: Shape
    _name: str

    def __init__(
        self,
        initial_value: Any,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            msg = f"A variable name must be a string, got {name!r}"
            raise TypeError(msg)
        self._trainable = bool(trainable)
        self._lock = threading.Lock()
        self._graph: Graph | None = None
        self._handle: Operation | None = None
        self._initializer: Operation | None = None
        self._snapshot: Tensor | None = None
        self._value: np.ndarray[Any, Any] | None = None
        dt = None
        if dtype is not None:
            dt = as_dtype(dtype)
            check_tensor_dtype(dt)
        traces = TRACES.get()
        if traces:
            check_variable_creation(traces)
        frame = state_get()
        graph = frame[GRAPH] if frame[GRAPH] is not None else get_default_graph()
        if frame[EAGER]:
            self._create(initial_value, name or "Variable", dt)
            return
        if graph.building_function:
            _check_initial_value(graph, initial_value)
        # In a plain graph too (SPEC section 8): the handle and initializer never inherit
        # the control dependencies or control-flow scope open here, so initializing the
        # variable needs nothing but its initial value.
        with init_scope():
            self._create(initial_value, name or "Variable", dt)

    def _create(self, initial_value: Any, name: str, dtype: np.dtype[Any] | None) -> None:
        if callable(initial_value):
            initial_value = initial_value()
        frame = state_get()
        if frame[EAGER]:
            arr = to_array(initial_value, dtype)
            if isinstance(initial_value, EagerTensor) or arr is initial_value:
                arr = arr.copy()
            arr.flags.writeable = False
            self._value = arr
            self._dtype = arr.dtype
            self._shape = arr.shape
            prefix = frame[SCOPES][NAME]
            self._name = f"{prefix}/{name}" if prefix else name
            return
        graph = get_default_graph()
        initial = convert_to_tensor(initial_value, dtype)
        if initial.shape is None:
            msg = f"Variable {name!r} needs an initial value of known rank"
            raise ValueError(msg)
        self._dtype = initial.dtype
        self._shape = initial.shape
        self._graph = graph
        self._handle = apply(VAR_HANDLE, (), {"var": self}, name)
        handle = self._handle.name
        self._name = handle
        self._initializer = apply(ASSIGN, (initial,), {"var": self}, f"{handle}/Assign/").op
        self._snapshot = apply(READ, (), {"var": self}, f"{handle}/Read/ReadVariableOp/")
        graph.add_to_collection(VARIABLES, self)
        if self._trainable:
            graph.add_to_collection(TRAINABLE_VARIABLES, self)

    # -- properties ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``"<name>:0"``, under the name scope current at creation."""
        return f"{self._name}:0"

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the value."""
        return self._dtype

    @property
    def shape(self) -> Shape:
        """The static shape of the value."""
        return self._shape

    @property
    def trainable(self) -> bool:
        """Whether gradient tapes watch it automatically."""
        return self._trainable

    @property
    def graph(self) -> Graph | None:
        """The graph of a graph variable; None for an eager variable."""
        return self._graph

    @property
    def initializer(self) -> Operation:
        """The op that assigns the initial value (graph variables only)."""
        if self._initializer is None:
            msg = (
                f"Eager variable {self.name!r} is initialized at creation and has no initializer op"
            )
            raise AttributeError(msg)
        return self._initializer

    def __repr__(self) -> str:
        head = f"<sf.Variable '{self.name}' shape={self._shape} dtype={self._dtype.name}"
        if self._value is not None:
            return f"{head} numpy={np.array2string(self._value, separator=', ')}>"
        return f"{head}>"

    # -- equality, hashing, copying --------------------------------------------------------

    def _elementwise_equality(self) -> bool:
        # Eager variables compare element-wise like eager tensors (SPEC section 6); graph
        # variables by identity, so they stay usable as keys (collections, feeds).
        return self._graph is None

    def __hash__(self) -> int:
        if self._graph is None:
            msg = (
                f"Variable {self.name!r} is unhashable: == compares it element-wise. Use "
                f"variable.ref() as the dict key or set member (ref.deref() gives the "
                f"variable back)"
            )
            raise TypeError(msg)
        return id(self)

    def __copy__(self) -> Variable:
        # As in TensorFlow: a shallow copy is the variable itself (both names refer to the
        # same state); copy.deepcopy makes a new, independent variable.
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Variable:
        return self._copy_eager("deep-copied")

    def __reduce__(self) -> tuple[Any, ...]:
        value = self._copyable_value("pickled")
        return (_unpickle, (np.array(value), self._name, self._trainable))

    def _copyable_value(self, verb: str) -> np.ndarray[Any, Any]:
        if self._value is None:
            msg = (
                f"Graph variable {self.name!r} of {self._graph!r} cannot be {verb}: its "
                f"value lives in each Session that initializes it. Fetch the value with "
                f"sf.Session(graph).run(variable) and create a new variable from it"
            )
            raise TypeError(msg)
        return self._value

    def _copy_eager(self, verb: str) -> Variable:
        """A new, independent eager variable with this one's value, name and flags."""
        return _new_eager(self._copyable_value(verb), self._name, self._trainable)

    # -- values --------------------------------------------------------------------------

    def numpy(self) -> np.ndarray[Any, Any]:
        """The current value of an eager variable, as a read-only array.

        Raises:
            TypeError: for a graph variable, or while a function is being traced (the
                value would be frozen into the trace; use the variable as a tensor).
        """
        if self._value is None:
            msg = (
                f"Variable {self.name!r} lives in {self._graph!r}: fetch it with "
                f"sf.Session(graph).run(variable) instead of .numpy()"
            )
            raise TypeError(msg)
        frame = state_get()
        if not frame[EAGER] and frame[GRAPH] is not None and frame[GRAPH].building_function:
            msg = (
                f"Variable {self.name!r}.numpy() was called while tracing "
                f"{frame[GRAPH].name!r}: the trace would keep today's value forever. Use "
                f"the variable itself (or .read_value()) as a tensor in the function, and "
                f"return it or sf.print() it to see its value"
            )
            raise TypeError(msg)
        return self._value

    def tolist(self) -> Any:
        """The current value of an eager variable as a (nested) Python list or scalar.

        Example:
            >>> import scopeflow as sf
            >>> sf.Variable([1, 2]).tolist()
            [1, 2]
        """
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        value = self.numpy()
        if dtype is not None and np.dtype(dtype) != value.dtype:
            return value.astype(dtype)
        return value.copy() if copy else value

    def read_value(self) -> Any:
        """The current value as a tensor of the calling context."""
        frame = state_get()
        out = _peek(self, frame)
        if out is not None:
            # The eager ReadVariableOp without the op machinery (its kernel returns the
            # value, which is never written in place), offered to the tapes as the op
            # would be: ~2 µs less per variable read under a tape (bench_functions).
            offer_read(frame, READ, self, out)
            return out
        self._check_usable_here(frame)
        return apply(READ, (), {"var": self})

    def value(self) -> Any:
        """Alias of :meth:`read_value`."""
        return self.read_value()

    def __sf_tensor__(self) -> Any:
        return self.read_value()

    def __sf_fetch__(self, graph: Graph) -> Tensor:
        if self._graph is not graph or self._snapshot is None:
            msg = (
                f"Cannot fetch variable {self.name!r} from a session on {graph!r}: it "
                f"belongs to {self._graph!r}" if self._graph is not None else
                f"Cannot fetch eager variable {self.name!r} from a session; use .numpy()"
            )  # fmt: skip
            raise GraphMismatchError(msg)
        return self._snapshot

    def assign(
        self,
        value: Any,
        use_locking: Any = None,
        name: str | None = None,
        read_value: bool = True,
    ) -> Any:
        """Set the value; returns the new value as a tensor of the calling context.

        As in TensorFlow, ``read_value=False`` returns the write's operation instead (None
        when executing eagerly). Writes are always atomic; ``use_locking`` is accepted and
        ignored.
        """
        if read_value:  # the common case first: one test, no temporary
            return self._write(ASSIGN, value, name)
        return _no_read(self._write(ASSIGN, value, name))

    def assign_add(
        self,
        delta: Any,
        use_locking: Any = None,
        name: str | None = None,
        read_value: bool = True,
    ) -> Any:
        """Add ``delta`` atomically; returns the new value (see :meth:`assign`)."""
        if read_value:  # the common case first: one test, no temporary
            return self._write(ASSIGN_ADD, delta, name)
        return _no_read(self._write(ASSIGN_ADD, delta, name))

    def assign_sub(
        self,
        delta: Any,
        use_locking: Any = None,
        name: str | None = None,
        read_value: bool = True,
    ) -> Any:
        """Subtract ``delta`` atomically; returns the new value (see :meth:`assign`)."""
        if read_value:  # the common case first: one test, no temporary
            return self._write(ASSIGN_SUB, delta, name)
        return _no_read(self._write(ASSIGN_SUB, delta, name))

    def _write(self, opdef: Any, value: Any, name: str | None) -> Any:
        frame = state_get()
        if (
            frame[EAGER]
            and type(value) is EagerTensor
            and self._graph is None
            and self._value is not None
            and value._value.dtype == self._dtype
            and value._value.shape == self._shape
        ):
            # The eager op on a tensor the rule accepts as it is, run without the op
            # machinery (an SGD update: ~8 µs -> ~3 µs per variable, bench_functions).
            # Writes are not differentiable: tapes ignore them, so none is offered it.
            # _update's eager branch, inlined (its checks hold here): two calls less.
            fn = UPDATES[opdef.type]
            operand = value._value
            token = quiet_set(QUIET)
            try:
                with self._lock:
                    new = operand.copy() if fn is None else fn(self._value, operand)
                    if type(new) is not np.ndarray:
                        new = np.asarray(new)  # ufuncs give NumPy scalars for 0-d values
                    new.flags.writeable = False
                    self._value = new
            except (ValueError, IndexError, TypeError) as err:
                msg = f"{opdef.type}: {err}"
                raise InvalidArgumentError(msg) from None
            finally:
                quiet_reset(token)
            return wrap(new)
        self._check_usable_here(frame)
        if isinstance(value, (Tensor, EagerTensor)) or hasattr(value, "__sf_tensor__"):
            return apply(opdef, (value,), {"var": self}, name)
        # Python values take the variable's dtype, as in TensorFlow.
        return apply(opdef, (to_array(value, self._dtype),), {"var": self}, name)

    def _check_usable_here(self, frame: Frame) -> None:
        if frame[EAGER]:
            if self._value is None:
                msg = (
                    f"Graph variable {self.name!r} of {self._graph!r} cannot be used "
                    f"eagerly; build ops with it inside `with graph.as_default():` and run "
                    f"them in a Session"
                )
                raise TypeError(msg)
            return
        graph = frame[GRAPH] if frame[GRAPH] is not None else get_default_graph()
        home = self._graph
        g: Graph | None = graph
        while g is not None and g is not home:
            g = getattr(g, "outer_graph", None) if g.building_function else None
        if g is home and home is not None:
            return
        if home is None and graph.building_function:
            return  # eager variables are read by kernels at call time
        where = f"{home!r}" if home is not None else "eager mode"
        msg = (
            f"Variable {self.name!r} was created in {where} and cannot be used in {graph!r}; "
            f"use it in its own graph or in a function traced from there"
        )
        raise GraphMismatchError(with_description(msg))

    # -- storage (called by kernels) -----------------------------------------------------

    def _check_value(self, dtype: np.dtype[Any], shape: Shape | None) -> None:
        if shape == self._shape and dtype == self._dtype:
            return  # the common case, without the size-by-size comparison below
        if dtype != self._dtype:
            msg = (
                f"Cannot assign a {dtype.name} value to variable {self.name!r} of dtype "
                f"{self._dtype.name}"
            )
            raise TypeError(msg)
        mine = self._shape
        if shape is not None and (
            len(shape) != len(mine)
            or any(
                a is not None and b is not None and a != b for a, b in zip(shape, mine, strict=True)
            )
        ):
            msg = (
                f"Cannot assign a value of shape {shape} to variable {self.name!r} of shape {mine}"
            )
            raise ValueError(msg)

    def _load(self) -> np.ndarray[Any, Any]:
        if self._graph is None:
            return self._value  # type: ignore[return-value]
        run = _execution.current_run()
        value = run.resources.get(self) if run is not None else None
        if value is None:
            msg = (
                f"Attempting to use uninitialized variable {self._name!r}: run its "
                f"initializer (or sf.global_variables_initializer()) in this session first"
            )
            raise FailedPreconditionError(msg)
        return value

    def _update(
        self, fn: Any, operand: np.ndarray[Any, Any], adopt: bool = False
    ) -> np.ndarray[Any, Any]:
        """Replace the value with ``operand`` or ``fn(old, operand)``, atomically.

        ``adopt``: ``operand`` is a read-only array nobody will change (a checkpoint
        restore's views), kept without a copy.
        """
        operand = np.asarray(operand)
        self._check_value(operand.dtype, operand.shape)
        if self._graph is None:
            with self._lock:
                if fn is None:
                    new = operand if adopt and not operand.flags.writeable else operand.copy()
                else:
                    new = np.asarray(fn(self._value, operand))
                new.flags.writeable = False
                self._value = new
            return new
        run = _execution.current_run()
        if run is None:
            msg = f"Graph variable {self._name!r} can only be assigned in a Session"
            raise FailedPreconditionError(msg)
        with run.lock:
            if fn is None:
                new = operand.copy()
            else:
                old = run.resources.get(self)
                if old is None:
                    self._load()  # raises the uninitialized error
                new = np.asarray(fn(old, operand))
            new.flags.writeable = False
            run.resources[self] = new
        return new


def _no_read(written: Any) -> Operation | None:
    """What a write with ``read_value=False`` returns: its op in a graph, else None."""
    return written.op if isinstance(written, Tensor) else None


def _new_eager(value: np.ndarray[Any, Any], name: str, trainable: bool) -> Variable:
    """An eager variable holding a copy of ``value``, named exactly ``name``.

    It is made in eager mode whatever the calling context (a copy of an eager variable
    is eager), and keeps the original's full name rather than nesting it in the caller's
    name scope.
    """
    with eager_mode():
        var = Variable(value, name=name, trainable=trainable, dtype=value.dtype)
    var._name = name
    return var


def _unpickle(value: Any, name: Any, trainable: Any) -> Variable:
    """A variable from its pickled state (see ``Variable.__reduce__``)."""
    if not isinstance(value, np.ndarray) or not isinstance(name, str):
        msg = "A pickled Variable holds a NumPy array and a name"
        raise TypeError(msg)
    return _new_eager(value, name, bool(trainable))


def _check_initial_value(graph: Any, initial_value: Any) -> None:
    """A variable lifted out of a function needs an initial value from outside it."""
    if isinstance(initial_value, Tensor) and initial_value.graph.building_function:
        msg = (
            f"The initial value of a variable created inside function graph {graph!r} was "
            f"computed inside the function ({initial_value.name!r}). The variable is lifted "
            f"out of the function, so compute its initial value in sf.init_scope() or pass "
            f"a zero-argument callable that returns it"
        )
        raise ValueError(msg)


def _peek(var: Any, frame: Frame) -> EagerTensor | None:
    """The value of eager ``var`` as an eager tensor, recording nothing (the fast paths
    offer the read themselves, see ``_core.EAGER_READS``); None unless eager."""
    value = var._value
    if not frame[EAGER] or value is None:
        return None
    out = _new(EagerTensor)  # wrap(), written out
    out._value = value
    return out


EAGER_READS[Variable] = (_peek, READ)


def global_variables_initializer() -> Operation | None:
    """An op that initializes every variable of the default graph (None when eager).

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     v = sf.Variable([1.0, 2.0], name="v")
        ...     init = sf.global_variables_initializer()
        >>> with sf.Session(g) as sess:
        ...     _ = sess.run(init)
        ...     sess.run(v)
        array([1., 2.], dtype=float32)
    """
    frame = state_get()
    if frame[EAGER]:
        return None
    graph = get_default_graph()
    inits = [v.initializer for v in graph.get_collection(VARIABLES)]
    return group(*inits, name="init")
