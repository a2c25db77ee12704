"""Concrete functions: one trace of a function graph, and how it is called.

A :class:`ConcreteFunction` pairs a finished :class:`FuncGraph` with the structure of its
arguments and outputs. Called eagerly it executes the graph through a cached plan; called
while a graph is built it adds one call op (``PartitionedCall``, or
``StatefulPartitionedCall`` when the function has side effects), which sessions and
enclosing functions run. The structure helpers here flatten nested arguments and outputs.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, final

import numpy as np

from ._context import EAGER, GRAPH, PAUSED, TAPES, Frame, _roots, state_get
from ._copying import refuse_copying
from ._execution import compile_plan, execute
from ._func_graph import FuncGraph, add_control_captures
from ._graph import Graph, Operation, Shape, Tensor, get_default_graph
from ._nest import fill, flatten
from ._ops._core import apply, constant, graph_tensor, record_hook
from ._ops._registry import REGISTRY, Spec, register_op
from ._ops._seeds import DRAW_LOG, DrawLog
from ._shapes import as_static_shape
from ._tensor import EagerTensor, as_dtype, to_array, wrap
from .errors import GraphMismatchError

__all__ = ["ConcreteFunction", "TensorSpec"]


@final
class TensorSpec:
    """The dtype and (partially known) shape of a tensor argument.

    Example:
        >>> import scopeflow as sf
        >>> spec = sf.TensorSpec((None, 3), sf.float32)
        >>> spec.shape, spec.dtype
        ((None, 3), dtype('float32'))
    """

    __slots__ = ("dtype", "name", "shape")

    def __init__(
        self, shape: Sequence[int | None] | None, dtype: Any = np.float32, name: str | None = None
    ) -> None:
        self.shape: Shape | None = (
            None if shape is None else as_static_shape(shape, "TensorSpec()", allow_unknown=True)
        )
        self.dtype = as_dtype(dtype)
        self.name = name

    def is_compatible_with(self, dtype: np.dtype[Any], shape: Shape | None) -> bool:
        """Whether a value of ``dtype`` and ``shape`` fits this spec."""
        if dtype != self.dtype:
            return False
        if self.shape is None or shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            a is None or b is None or a == b for a, b in zip(self.shape, shape, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and (self.shape, self.dtype, self.name) == (
            other.shape,
            other.dtype,
            other.name,
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.name))

    def __repr__(self) -> str:
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.name}, name={self.name!r})"


# -- argument and output structures ----------------------------------------------------

_LEAF: Final = "T"


def _is_tensor_leaf(value: Any) -> bool:
    return isinstance(value, (EagerTensor, Tensor, np.ndarray, TensorSpec))


def _leaf_spec(value: Any) -> tuple[np.dtype[Any], Shape | None]:
    if isinstance(value, TensorSpec):
        return value.dtype, value.shape
    if isinstance(value, np.ndarray):
        return value.dtype, value.shape
    return value.dtype, value.shape


def _flatten(
    value: Any,
    leaves: list[Any],
    refs: Callable[[Any], _WeakId] | None = None,
    tokens: list[_WeakId] | None = None,
) -> Any:
    """The cache-key structure of ``value``; tensor leaves are appended to ``leaves``.

    Python values key by type and value (so ``1``, ``1.0`` and ``True`` differ, NaN keys
    are stable and ``-0.0`` differs from ``0.0``); containers key by type and contents.
    Objects compared by identity key by a weak reference, made by ``refs`` (a transient
    one when None) and appended to ``tokens``, so the cache never keeps them alive.
    """
    kind = type(value)
    if kind is EagerTensor:  # the warm-call case, first and without a call
        leaves.append(value)
        array = value._value
        return (_LEAF, array.dtype, array.shape)
    if kind in _ATOMS:
        return ("py", kind, value)
    if kind is float:
        return ("py", float, _float_key(value))
    if _is_tensor_leaf(value):
        leaves.append(value)
        dtype, shape = _leaf_spec(value)
        return (_LEAF, dtype, shape)
    if isinstance(value, (list, tuple)):
        return (kind, tuple([_flatten(v, leaves, refs, tokens) for v in value]))
    if isinstance(value, Mapping):
        items = [(_hashable_key(k), _flatten(v, leaves, refs, tokens)) for k, v in value.items()]
        return (kind, tuple(items))
    if isinstance(value, _NUMBERS):
        return _number_key(value)
    try:
        hash(value)
    except TypeError:
        return ("ref", _weak_id(value, refs, tokens, hashable=False))
    if kind.__hash__ is _OBJECT_HASH and kind.__eq__ is _OBJECT_EQ:
        # Compared by identity: a weak key frees the object (and its traces) when it dies.
        try:
            return ("ref", _weak_id(value, refs, tokens, hashable=True))
        except TypeError:
            pass  # not weak-referenceable (a bare object()): keyed, and kept, by value
    return ("py", kind, value)


def _arg_structure(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    leaves: list[Any],
    refs: Callable[[Any], _WeakId] | None = None,
    tokens: list[_WeakId] | None = None,
) -> tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]:
    """The key of bound call arguments: one entry per positional and per keyword argument."""
    return (
        tuple([_flatten(a, leaves, refs, tokens) for a in args]),
        tuple([(k, _flatten(v, leaves, refs, tokens)) for k, v in kwargs.items()]),
    )


class UnkeyableArgumentError(TypeError):
    """An argument that can neither be hashed nor weakly referenced (a ``set``, ...)."""


@final
class _Special:
    """A float key that ``==`` cannot express: NaN (never equal to itself) and ``-0.0``."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


_NAN: Final = _Special("nan")
_NEG_ZERO: Final = _Special("-0.0")
_ATOMS: Final = frozenset({int, bool, str, bytes, type(None)})
_NUMBERS: Final = (float, complex, np.floating, np.complexfloating)
_OBJECT_HASH: Final[Any] = object.__hash__
_OBJECT_EQ: Final[Any] = object.__eq__


def _float_key(x: Any) -> Any:
    if x == x and x != 0:  # the common case first: an ordinary number keys by itself
        return x
    if x != x:
        return _NAN  # every NaN is one key, whatever its payload or sign
    return _NEG_ZERO if math.copysign(1.0, float(x)) < 0 else x


def _number_key(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (complex, np.complexfloating)):
        return ("py", type(value), _float_key(value.real), _float_key(value.imag))
    return ("py", type(value), _float_key(value))


def _hashable_key(value: Any) -> Any:
    """A mapping key as a cache key: ``{1: x}``, ``{True: x}`` and ``{1.0: x}`` differ."""
    if isinstance(value, _NUMBERS):
        return _number_key(value)
    return ("py", type(value), value)


@final
class _WeakId:
    """An identity key that does not keep its object alive.

    Equal to another key for the same live object; once the object is gone it equals
    only itself, so a stale cache entry can never be hit by a newcomer at the same id.
    """

    __slots__ = ("__weakref__", "_hash", "_name", "places", "ref")

    def __init__(self, obj: Any, callback: Callable[[Any], None] | None = None) -> None:
        self.ref = weakref.ref(obj, callback)
        self._hash = id(obj)
        self._name = type(obj).__name__
        # Where traces keyed on it are cached: None for eager callers, else a weak
        # reference to the caller's graph. Replaced whole (a tuple), never mutated.
        self.places: tuple[weakref.ref[Any] | None, ...] = ()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not _WeakId or other._hash != self._hash:
            return False
        obj = self.ref()
        return obj is not None and obj is other.ref()

    def __repr__(self) -> str:
        return f"<{self._name} object at {self._hash:#x}>"


def _weak_id(
    value: Any,
    refs: Callable[[Any], _WeakId] | None,
    tokens: list[_WeakId] | None,
    hashable: bool,
) -> _WeakId:
    try:
        token = refs(value) if refs is not None else _WeakId(value)
    except TypeError:
        if hashable:
            raise
        msg = (
            f"cannot key a trace on {type(value).__name__} {value!r}: it is neither hashable "
            f"nor weak-referenceable; pass a tensor, a hashable value (a tuple or frozenset "
            f"instead of a list or set) or an object that supports weak references"
        )
        raise UnkeyableArgumentError(msg) from None
    if tokens is not None:
        tokens.append(token)
    return token


def _rebuild(value: Any, leaves: Any) -> Any:
    """``value`` with its tensor leaves replaced, in order, from the iterator ``leaves``."""
    if _is_tensor_leaf(value):
        return next(leaves)
    if isinstance(value, (list, tuple)):
        items = [_rebuild(v, leaves) for v in value]
        if isinstance(value, list):
            return items
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, Mapping):
        rebuilt = {k: _rebuild(v, leaves) for k, v in value.items()}
        return rebuilt if type(value) is dict else type(value)(rebuilt)  # type: ignore[call-arg]
    return value


def _flatten_outputs(value: Any, leaves: list[Any]) -> Any:
    """An output template: tensors and values are leaves; None and ops stay None."""
    return flatten(value, leaves, _no_value)


def _no_value(value: Any) -> bool:
    return value is None or isinstance(value, Operation)


def _fill_outputs(template: Any, values: Sequence[Any]) -> Any:
    return fill(template, values)


# -- the call op -----------------------------------------------------------------------


def _call_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    concrete: ConcreteFunction = attrs["f"]
    return tuple((t._dtype, t._shape) for t in concrete.graph.outputs)


def _call_kernel(attrs: dict[str, Any], *arrays: np.ndarray[Any, Any]) -> Any:
    concrete: ConcreteFunction = attrs["f"]
    outputs = concrete._run(list(arrays))
    # Kernels return a lone array for one output, a tuple for several, None for none.
    if len(outputs) == 1:
        return outputs[0]
    return tuple(outputs) if outputs else None


CALL = register_op("PartitionedCall", infer=_call_rule, kernel=_call_kernel, same_dtype=False)
STATEFUL_CALL = register_op(
    "StatefulPartitionedCall", infer=_call_rule, kernel=_call_kernel, same_dtype=False,
    stateful=True,
)  # fmt: skip


@refuse_copying(
    "it holds a traced function graph and its captured values",
    "Share the same ConcreteFunction, or trace again with get_concrete_function().",
)
@final
class ConcreteFunction:
    """One trace of a :class:`Function`: a function graph plus how to call it.

    Attributes:
        graph: the :class:`FuncGraph`.
        inputs: its placeholders: one per tensor argument, then one per capture.
        outputs: its flat output tensors.

    Example:
        >>> import scopeflow as sf
        >>> @sf.function
        ... def f(x):
        ...     return x * 2.0
        >>> cf = f.get_concrete_function(sf.TensorSpec((None,), sf.float32))
        >>> cf(sf.constant([1.0, 2.0])).numpy()
        array([2., 4.], dtype=float32)
    """

    __slots__ = (
        "_arg_key",
        "_backward",
        "_binder",
        "_capture_arrays",
        "_keep_alive",
        "_lock",
        "_out_template",
        "_plan",
        "_reads",
        "graph",
    )

    def __init__(
        self, graph: FuncGraph, arg_key: Any, out_template: Any, keep_alive: list[Any]
    ) -> None:
        self.graph = graph
        self._arg_key = arg_key
        self._out_template = out_template
        self._keep_alive = keep_alive
        # Set by Function.get_concrete_function: binds (args, kwargs) to the Python
        # signature, returning (flat tensor arguments or None, args, kwargs).
        self._binder: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None = None
        self._plan: Any = None
        self._lock = threading.Lock()
        # The variables the graph reads (through nested calls too), found on first need.
        self._reads: tuple[Any, ...] | None = None
        # The backward function of eager calls, built on the first gradient (_gradients).
        self._backward: Any = None
        # (number of captures, their arrays) once all captured values were eager tensors
        # (immutable): saves a locked snapshot of the captures per eager call. Captures
        # only ever grow, so an equal count means the same captures.
        self._capture_arrays: tuple[int, list[Any]] | None = None

    @property
    def inputs(self) -> list[Tensor]:
        """Placeholders for the tensor arguments, then for the captured values."""
        return list(self.graph.inputs)

    @property
    def outputs(self) -> list[Tensor]:
        """The flat output tensors of the function graph."""
        return list(self.graph.outputs)

    @property
    def captured_inputs(self) -> list[Any]:
        """The outside values bound to the captures at every call."""
        return self.graph.captured_inputs

    @property
    def name(self) -> str:
        """The traced function's name."""
        return self.graph.name

    def __repr__(self) -> str:
        return f"<sf.ConcreteFunction {self.graph.name!r} inputs={len(self.graph.inputs)}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        binder = self._binder
        if binder is not None:
            try:
                flat, args, kwargs = binder(args, kwargs)
            except TypeError as err:
                msg = (
                    f"ConcreteFunction {self.name!r} was traced for arguments structured as "
                    f"{_describe_key(self._arg_key)}; {err}"
                )
                raise TypeError(msg) from None
            if flat is not None:  # an input_signature function: checked against its specs
                return self._call_flat(flat)
        leaves: list[Any] = []
        key = _arg_structure(args, kwargs, leaves)
        if _shape_free(key) != _shape_free(self._arg_key):
            msg = (
                f"ConcreteFunction {self.name!r} was traced for arguments structured as "
                f"{_describe_key(self._arg_key)}, got {_describe_key(key)}"
            )
            raise TypeError(msg)
        for leaf, ph in zip(leaves, self.graph.inputs, strict=False):
            dtype, shape = _leaf_spec(leaf)
            if not TensorSpec(ph.shape, ph.dtype).is_compatible_with(dtype, shape):
                msg = (
                    f"ConcreteFunction {self.name!r}: argument of dtype {dtype.name} and "
                    f"shape {shape} does not match input {ph.name!r} ({ph.dtype.name}, "
                    f"shape {ph.shape})"
                )
                raise ValueError(msg)
        return self._call_flat(leaves)

    def _call_flat(self, leaves: list[Any]) -> Any:
        frame = state_get(_roots[0])
        if frame[EAGER]:
            if self.graph._control_captures:
                raise _eager_call_with_control_captures(self)
            arrays = [_eager_array(x) for x in leaves]
            cached = self._capture_arrays
            if cached is not None and cached[0] == len(self.graph._captures):
                arrays += cached[1]
            else:
                captured = self.graph.captured_inputs
                arrays.extend(_eager_array(v) for v in captured)
                if all(type(v) is EagerTensor for v in captured):
                    self._capture_arrays = (len(captured), arrays[len(leaves) :])
            if not frame[TAPES] or frame[PAUSED]:
                outputs: Sequence[Any] = [wrap(np.asarray(v)) for v in self._run(arrays)]
            else:
                # The call is one op on the tape. Its gradient calls the trace's backward
                # function, or replays the graph with the random values this run draws.
                draws = DrawLog()
                token = DRAW_LOG.set(draws)
                try:
                    outputs = [wrap(np.asarray(v)) for v in self._run(arrays)]
                finally:
                    DRAW_LOG.reset(token)
                hook = record_hook[0]
                if hook is not None:
                    inputs: list[Any] = [x if type(x) is EagerTensor else wrap(a) for x, a in zip(
                        [*leaves, *self.graph.captured_inputs], arrays, strict=True)]  # fmt: skip
                    opdef = STATEFUL_CALL if self.graph.control_outputs else CALL
                    attrs = {"f": self, "draws": draws} if draws else {"f": self}
                    hook(frame, opdef, tuple(inputs), tuple(outputs), attrs)
        else:
            graph = frame[GRAPH] if frame[GRAPH] is not None else get_default_graph()
            inputs = [graph_tensor(frame, graph, x, None) for x in leaves]
            inputs.extend(_bind_capture(frame, graph, v) for v in self.graph.captured_inputs)
            opdef = STATEFUL_CALL if self.graph.control_outputs else CALL
            result = apply(opdef, tuple(inputs), {"f": self}, _op_name(self.graph.name))
            if isinstance(result, Operation):
                outputs = ()
            elif isinstance(result, tuple):
                outputs = result
            else:
                outputs = (result,)
            if self.graph._control_captures:
                call = result if isinstance(result, Operation) else outputs[0]._op
                add_control_captures(call, (self.graph,))
        return _fill_outputs(self._out_template, outputs)

    def _replay(self, inputs: Sequence[Any]) -> list[Any]:
        """Re-run the function graph op by op in the calling context (for gradients).

        Eagerly this computes values; while building a graph it inlines the ops. Writes
        to variables are not repeated: their outputs become reads of the variable.
        """
        values: dict[int, Any] = {
            id(ph): x for ph, x in zip(self.graph.inputs, inputs, strict=True)
        }
        for op in self.graph.get_operations():
            if op._type in _NOT_REPLAYED:
                continue
            if op._type in _WRITES:
                results: Any = apply(REGISTRY["ReadVariableOp"], (), {"var": op._attrs["var"]})
            else:
                args = tuple(values[id(t)] for t in op._inputs)
                results = apply(REGISTRY[op._type], args, op._attrs)
            if len(op._outputs) == 1:
                values[id(op._outputs[0])] = results
            elif op._outputs:
                for t, r in zip(op._outputs, results, strict=True):
                    values[id(t)] = r
        return [values[id(t)] for t in self.graph.outputs]

    def _run(self, arrays: list[np.ndarray[Any, Any]]) -> list[np.ndarray[Any, Any]]:
        """Execute the function graph on input arrays; return the output arrays."""
        plan = self._plan
        if plan is None:
            with self._lock:
                if self._plan is None:
                    targets: tuple[Tensor | Operation, ...] = (
                        *self.graph.outputs,
                        *self.graph.control_outputs,
                    )
                    self._plan = compile_plan(self.graph, targets, tuple(self.graph.inputs))
                plan = self._plan
        values = execute(plan, arrays)
        n = len(self.graph.outputs)
        return [values[s] for s in plan.fetch_slots[:n]]


_NOT_REPLAYED: Final = frozenset({"Placeholder", "NoOp", "VarHandleOp"})
_WRITES: Final = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})


def _eager_call_with_control_captures(fn: ConcreteFunction) -> GraphMismatchError:
    dep = fn.graph._control_captures[0]
    msg = (
        f"ConcreteFunction {fn.name!r} must run after {dep.name!r} of {dep.graph!r} (a "
        f"control_dependencies() in its body), which cannot run eagerly; call it while "
        f"building {dep.graph!r}"
    )
    return GraphMismatchError(msg)


def _op_name(function_name: str) -> str:
    """A valid op name for calls of ``function_name`` ("<lambda>" -> "lambda")."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", function_name).strip("_-")
    return cleaned or "function"


def _eager_array(value: Any) -> np.ndarray[Any, Any]:
    if type(value) is EagerTensor:
        return value._value
    return to_array(value)


def _bind_capture(frame: Frame, graph: Graph, value: Any) -> Tensor:
    """A captured value as an input of a call op built in ``graph``."""
    if isinstance(value, EagerTensor) and not graph.building_function:
        # A plain graph cannot take eager values; the value is fixed, so embed it.
        return constant(value.numpy(), name="captured")  # type: ignore[no-any-return]
    return graph_tensor(frame, graph, value, None)


def _shape_free(key: Any) -> Any:
    """A key with leaf shapes dropped (a concrete function accepts compatible shapes)."""
    if isinstance(key, tuple) and key and key[0] == _LEAF:
        return (_LEAF, key[1])
    if isinstance(key, tuple):
        return tuple(_shape_free(k) for k in key)
    return key


def _describe_key(key: Any) -> str:
    """Bound-argument keys as a call: ``(Tensor(float32, shape=(None,)), 3.0, scale=2.0)``."""
    if key and key[0] == "signature":
        return f"input_signature {list(key[1])!r}"
    args, kwargs = key
    parts = [_describe_part(k) for k in args]
    parts.extend(f"{name}={_describe_part(k)}" for name, k in kwargs)
    return f"({', '.join(parts)})"


def _describe_part(k: Any) -> str:
    """One argument's key in words."""
    tag = k[0]
    if tag == _LEAF:
        return f"Tensor({k[1].name}, shape={k[2]})"
    if tag == "py":
        if len(k) == 4:
            return f"{k[1].__name__}({k[2]!r}, {k[3]!r})"
        return repr(k[2]) if k[1] in _ATOMS or k[1] is float else f"{k[1].__name__}({k[2]!r})"
    if tag == "ref":
        return repr(k[1])
    if isinstance(tag, type) and issubclass(tag, Mapping):
        body = ", ".join(f"{_describe_part(kk)}: {_describe_part(v)}" for kk, v in k[1])
        return f"{tag.__name__}({{{body}}})"
    body = ", ".join(_describe_part(v) for v in k[1])
    return f"{tag.__name__}([{body}])"
