"""Traced functions: ``sf.function`` turns a Python function into cached function graphs.

Each call computes a cache key from its arguments (tensor dtypes and shapes, Python values
by value, nested structures by structure) and from the calling context (eager or graph
caller, the caller's graph, device). A miss traces: the Python function runs once in a new
:class:`FuncGraph` entered as the default graph (so ``init_scope`` escapes it), with
placeholders for the tensor arguments. A hit executes the graph: eagerly through a cached
plan, or, while a graph is being built, as one call op in that graph.

Concurrent first calls with one key trace once; the other callers wait for that trace
(threads block, async tasks wait without blocking their event loop).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, final

import anyio
import anyio.to_thread
import numpy as np

from ._context import _STATE, DEVICE, EAGER, GRAPH, PAUSED, SCOPES, TAPES, _roots
from ._execution import compile_plan, execute
from ._func_graph import FuncGraph
from ._graph import Graph, Operation, Shape, Tensor, get_default_graph
from ._ops._core import apply, constant, graph_tensor, placeholder, record_hook
from ._ops._registry import REGISTRY, Spec, register_op
from ._scopes import DeviceScope
from ._tensor import EagerTensor, as_dtype, to_array, wrap

__all__ = ["ConcreteFunction", "Function", "TensorSpec", "function"]


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
            None if shape is None else tuple(None if d is None else int(d) for d in shape)
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


def _flatten(value: Any, leaves: list[Any], keep_alive: list[Any]) -> Any:
    """The cache-key structure of ``value``; tensor leaves are appended to ``leaves``."""
    if _is_tensor_leaf(value):
        leaves.append(value)
        dtype, shape = _leaf_spec(value)
        return (_LEAF, dtype, shape)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_flatten(v, leaves, keep_alive) for v in value))
    if isinstance(value, Mapping):
        return (type(value), tuple((k, _flatten(v, leaves, keep_alive)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        keep_alive.append(value)  # its id stays unique while the trace is cached
        return ("id", id(value))
    return ("py", type(value), value)


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
    """An output template: ints index ``leaves``; None and ops stay as they are."""
    if value is None or isinstance(value, Operation):
        return ("const", None)
    if isinstance(value, (list, tuple)):
        return (type(value), [_flatten_outputs(v, leaves) for v in value])
    if isinstance(value, Mapping):
        return (type(value), [(k, _flatten_outputs(v, leaves)) for k, v in value.items()])
    leaves.append(value)
    return len(leaves) - 1


def _fill_outputs(template: Any, values: Sequence[Any]) -> Any:
    if isinstance(template, int):
        return values[template]
    kind, items = template
    if kind == "const":
        return items
    if issubclass(kind, Mapping):
        built = {k: _fill_outputs(v, values) for k, v in items}
        return built if kind is dict else kind(built)
    seq = [_fill_outputs(v, values) for v in items]
    if kind is list:
        return seq
    return kind(*seq) if hasattr(kind, "_fields") else kind(seq)


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
        "_keep_alive",
        "_lock",
        "_n_args",
        "_out_template",
        "_plan",
        "_reads",
        "graph",
    )

    def __init__(
        self, graph: FuncGraph, arg_key: Any, n_args: int, out_template: Any, keep_alive: list[Any]
    ) -> None:
        self.graph = graph
        self._arg_key = arg_key
        self._n_args = n_args
        self._out_template = out_template
        self._keep_alive = keep_alive
        self._plan: Any = None
        self._lock = threading.Lock()
        # The variables the graph reads (through nested calls too), found on first need.
        self._reads: tuple[Any, ...] | None = None

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
        leaves: list[Any] = []
        key = _flatten((args, kwargs), leaves, [])
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
        frame = _STATE.get(_roots[0])
        if frame[EAGER]:
            arrays = [_eager_array(x) for x in leaves]
            arrays.extend(_eager_array(v) for v in self.graph.captured_inputs)
            outputs: Sequence[Any] = [wrap(np.asarray(v)) for v in self._run(arrays)]
            if frame[TAPES] and not frame[PAUSED]:
                # The call is one op on the tape; its gradient replays the graph.
                hook = record_hook[0]
                if hook is not None:
                    inputs: list[Any] = [x if type(x) is EagerTensor else wrap(a) for x, a in zip(
                        [*leaves, *self.graph.captured_inputs], arrays, strict=True)]  # fmt: skip
                    opdef = STATEFUL_CALL if self.graph.control_outputs else CALL
                    hook(frame, opdef, tuple(inputs), tuple(outputs), {"f": self})
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


def _op_name(function_name: str) -> str:
    """A valid op name for calls of ``function_name`` ("<lambda>" -> "lambda")."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", function_name).strip("_-")
    return cleaned or "function"


def _eager_array(value: Any) -> np.ndarray[Any, Any]:
    if type(value) is EagerTensor:
        return value._value
    return to_array(value)


def _bind_capture(frame: tuple[Any, ...], graph: Graph, value: Any) -> Tensor:
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
    def walk(k: Any) -> str:
        if isinstance(k, tuple) and k and k[0] == _LEAF:
            return f"Tensor({k[1].name}, {k[2]})"
        if isinstance(k, tuple) and len(k) == 3 and k[0] == "py":
            return repr(k[2])
        if isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], type):
            return f"{k[0].__name__}({', '.join(walk(x) for x in k[1])})"
        if isinstance(k, tuple) and len(k) == 2 and not isinstance(k[0], str):
            return f"{k[0]!r}={walk(k[1])}"
        return repr(k)

    return walk(key)


# -- Function --------------------------------------------------------------------------


# The functions being traced in this context, to report recursion instead of tracing
# forever (each nested call is a new trace in a new function graph).
_TRACING: contextvars.ContextVar[tuple[Function, ...]] = contextvars.ContextVar(
    "scopeflow_tracing", default=()
)


@final
class _Pending:
    """A trace in progress; later callers with the same key wait on ``done``."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


@final
class Function:
    """A Python function traced into function graphs; see :func:`function`."""

    def __init__(
        self,
        python_function: Callable[..., Any],
        input_signature: Sequence[TensorSpec] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(python_function):
            msg = f"sf.function() needs a callable, got {python_function!r}"
            raise TypeError(msg)
        if input_signature is not None:
            input_signature = tuple(input_signature)
            bad = [s for s in input_signature if not isinstance(s, TensorSpec)]
            if bad:
                msg = f"input_signature must be a sequence of sf.TensorSpec, got {bad[0]!r}"
                raise TypeError(msg)
        self.python_function = python_function
        self.input_signature = input_signature
        self._name: str = name or str(getattr(python_function, "__name__", "function"))
        self._is_async = inspect.iscoroutinefunction(python_function)
        self._lock = threading.Lock()
        self._eager_cache: dict[Any, ConcreteFunction] = {}
        self._graph_caches: weakref.WeakKeyDictionary[Graph, dict[Any, ConcreteFunction]] = (
            weakref.WeakKeyDictionary()
        )
        self._pending: dict[Any, _Pending] = {}
        self._trace_started = False
        self._trace_count = 0
        self._bound: weakref.WeakKeyDictionary[Any, Function] = weakref.WeakKeyDictionary()
        functools.update_wrapper(self, python_function)

    def __repr__(self) -> str:
        return f"<sf.function {self._name!r}>"

    @property
    def trace_count(self) -> int:
        """How many times the Python function has been traced."""
        return self._trace_count

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        try:
            bound = self._bound.get(instance)
        except TypeError:
            msg = (
                f"sf.function method {self._name!r} needs instances that are hashable and "
                f"weak-referenceable (each instance keeps its own traces); "
                f"{type(instance).__name__} is not"
            )
            raise TypeError(msg) from None
        if bound is None:
            ref = weakref.ref(instance)
            fn = self.python_function

            @functools.wraps(fn)
            def method(*args: Any, **kwargs: Any) -> Any:
                return fn(ref(), *args, **kwargs)

            if self._is_async:

                @functools.wraps(fn)
                async def amethod(*args: Any, **kwargs: Any) -> Any:
                    return await fn(ref(), *args, **kwargs)

                method = amethod
            bound = Function(method, self.input_signature, self._name)
            self._bound[instance] = bound
        return bound

    # -- keys ----------------------------------------------------------------------------

    def _key(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        frame: tuple[Any, ...],
        for_concrete: bool = False,
    ) -> tuple[Any, list[Any], list[Any], tuple[Any, Any]]:
        """(cache key, tensor leaves, objects to keep alive, (args, kwargs) to trace)."""
        keep: list[Any] = []
        if self.input_signature is not None:
            args, kwargs = self._apply_signature(args, kwargs, for_concrete)
        leaves: list[Any] = []
        structure = _flatten((args, kwargs), leaves, keep)
        call: tuple[Any, Any] = (args, kwargs)
        if self.input_signature is not None:
            # One trace serves every compatible call: placeholders take the spec shapes.
            structure = ("signature", self.input_signature)
            call = (self.input_signature, {})
        device = frame[SCOPES][DEVICE]
        return (frame[EAGER], device, structure), leaves, keep, call

    def _apply_signature(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        sig = self.input_signature
        assert sig is not None
        if kwargs:
            msg = f"{self._name}() has an input_signature; pass its arguments by position"
            raise TypeError(msg)
        if for_concrete and not args:
            return tuple(sig), {}
        if len(args) != len(sig):
            msg = (
                f"{self._name}() takes {len(sig)} tensor arguments by its input_signature, "
                f"got {len(args)}"
            )
            raise TypeError(msg)
        converted = []
        for i, (arg, spec) in enumerate(zip(args, sig, strict=True)):
            if isinstance(arg, TensorSpec):
                value: Any = arg
            elif isinstance(arg, (Tensor, EagerTensor)) or hasattr(arg, "__sf_tensor__"):
                value = arg.__sf_tensor__() if hasattr(arg, "__sf_tensor__") else arg
            else:
                try:
                    value = wrap(to_array(arg, spec.dtype))
                except TypeError as err:
                    msg = f"{self._name}() argument {i}: {err}"
                    raise TypeError(msg) from None
            dtype, shape = _leaf_spec(value)
            if not spec.is_compatible_with(dtype, shape):
                msg = (
                    f"{self._name}() argument {i} (dtype {dtype.name}, shape {shape}) does "
                    f"not match its input_signature entry {spec!r}"
                )
                error = TypeError if dtype != spec.dtype else ValueError
                raise error(msg)
            converted.append(value)
        return tuple(converted), {}

    def _cache_for(self, frame: tuple[Any, ...]) -> dict[Any, ConcreteFunction]:
        if frame[EAGER]:
            return self._eager_cache
        graph = frame[GRAPH] if frame[GRAPH] is not None else get_default_graph()
        cache = self._graph_caches.get(graph)
        if cache is None:
            with self._lock:
                cache = self._graph_caches.setdefault(graph, {})
        return cache

    # -- calling -------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._is_async:
            return self._acall(args, kwargs)
        concrete, leaves = self._concrete(args, kwargs)
        return concrete._call_flat(leaves)

    async def _acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        concrete, leaves = await self._aconcrete(args, kwargs)
        return concrete._call_flat(leaves)

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        """The trace for these arguments (tensors, arrays or TensorSpecs), made if needed.

        With an ``input_signature``, no arguments are needed.
        """
        if self._is_async:
            msg = f"{self._name} is async: use `await f.aget_concrete_function(...)`"
            raise TypeError(msg)
        return self._concrete(args, kwargs, for_concrete=True)[0]

    async def aget_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        """:meth:`get_concrete_function` for an ``async def`` function."""
        return (await self._aconcrete(args, kwargs, for_concrete=True))[0]

    def _claim(
        self, cache: dict[Any, ConcreteFunction], key: Any
    ) -> tuple[ConcreteFunction | None, _Pending, bool]:
        """(cached trace, pending trace, whether the caller must trace) under the lock."""
        with self._lock:
            hit = cache.get(key)
            if hit is not None:
                return hit, None, False  # type: ignore[return-value]
            full_key = (id(cache), key)
            pending = self._pending.get(full_key)
            if pending is not None:
                return None, pending, False
            pending = self._pending[full_key] = _Pending()
            return None, pending, True

    def _finish(
        self,
        cache: dict[Any, ConcreteFunction],
        key: Any,
        pending: _Pending,
        concrete: ConcreteFunction | None,
    ) -> None:
        with self._lock:
            if concrete is not None:
                cache[key] = concrete
            del self._pending[(id(cache), key)]
        pending.done.set()

    def _concrete(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool = False
    ) -> tuple[ConcreteFunction, list[Any]]:
        frame = _STATE.get(_roots[0])
        key, leaves, keep, call = self._key(args, kwargs, frame, for_concrete)
        cache = self._cache_for(frame)
        hit = cache.get(key)
        if hit is not None:
            return hit, leaves
        while True:
            hit, pending, mine = self._claim(cache, key)
            if hit is not None:
                return hit, leaves
            if mine:
                concrete = None
                try:
                    concrete = self._trace_sync(call, key, keep)
                finally:
                    self._finish(cache, key, pending, concrete)
                return concrete, leaves
            pending.done.wait()

    async def _aconcrete(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool = False
    ) -> tuple[ConcreteFunction, list[Any]]:
        frame = _STATE.get(_roots[0])
        key, leaves, keep, call = self._key(args, kwargs, frame, for_concrete)
        cache = self._cache_for(frame)
        hit = cache.get(key)
        if hit is not None:
            return hit, leaves
        while True:
            hit, pending, mine = self._claim(cache, key)
            if hit is not None:
                return hit, leaves
            if mine:
                concrete = None
                try:
                    concrete = await self._trace_async(call, key, keep)
                finally:
                    self._finish(cache, key, pending, concrete)
                return concrete, leaves
            if not pending.done.is_set():
                # Wait in a worker thread so this event loop keeps running the tracer.
                await anyio.to_thread.run_sync(pending.done.wait, abandon_on_cancel=True)

    # -- tracing -------------------------------------------------------------------------

    def _begin_trace(self, call: tuple[Any, Any]) -> tuple[FuncGraph, list[Any], Any]:
        if self in _TRACING.get():
            msg = (
                f"{self._name} called itself while being traced; recursion in a traced "
                f"function is not supported (use sf.while_loop, or recurse in Python "
                f"outside sf.function)"
            )
            raise RuntimeError(msg)
        frame = _STATE.get(_roots[0])
        with self._lock:
            first = not self._trace_started
            self._trace_started = True
            self._trace_count += 1
        fg = FuncGraph(self._name, outer_graph=get_default_graph())
        fg._allow_variables = first
        return fg, [], frame[SCOPES][DEVICE]

    def _placeholders(self, fg: FuncGraph, call: tuple[Any, Any]) -> tuple[Any, Any]:
        phs = []
        for label, leaf in _named_leaves(self.python_function, call):
            dtype, shape = _leaf_spec(leaf)
            if isinstance(leaf, TensorSpec) and leaf.name:
                label = leaf.name
            phs.append(placeholder(dtype, shape, name=label))
        fg.inputs.extend(phs)
        args, kwargs = _rebuild(call, iter(phs))
        return args, kwargs

    def _end_trace(
        self, fg: FuncGraph, result: Any, key: Any, keep: list[Any], n_args: int
    ) -> ConcreteFunction:
        leaves: list[Any] = []
        template = _flatten_outputs(result, leaves)
        outputs = []
        for value in leaves:
            t = graph_tensor(_STATE.get(_roots[0]), fg, value, None)
            outputs.append(t)
        fg.outputs = outputs
        fg._seal(self._name)
        return ConcreteFunction(fg, key[2], n_args, template, keep)

    def _trace_sync(self, call: tuple[Any, Any], key: Any, keep: list[Any]) -> ConcreteFunction:
        fg, _, device = self._begin_trace(call)
        token = _TRACING.set((*_TRACING.get(), self))
        try:
            with fg.as_default(), DeviceScope(device or None):
                args, kwargs = self._placeholders(fg, call)
                result = self.python_function(*args, **kwargs)
                return self._end_trace(fg, result, key, keep, len(fg.inputs))
        finally:
            _TRACING.reset(token)

    async def _trace_async(
        self, call: tuple[Any, Any], key: Any, keep: list[Any]
    ) -> ConcreteFunction:
        fg, _, device = self._begin_trace(call)
        token = _TRACING.set((*_TRACING.get(), self))
        try:
            async with fg.as_default(), DeviceScope(device or None):
                args, kwargs = self._placeholders(fg, call)
                result = await self.python_function(*args, **kwargs)
                return self._end_trace(fg, result, key, keep, len(fg.inputs))
        finally:
            _TRACING.reset(token)


def _named_leaves(fn: Callable[..., Any], call: tuple[Any, Any]) -> list[tuple[str, Any]]:
    """The tensor leaves of ``call`` with placeholder names taken from the parameters."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    args, kwargs = call
    named: list[tuple[str, Any]] = []
    for i, arg in enumerate(args):
        base = params[i] if i < len(params) else f"arg_{i}"
        _collect(arg, base.lstrip("_-") or "arg", named)
    for key, arg in kwargs.items():
        _collect(arg, str(key).lstrip("_-") or "arg", named)
    return named


def _collect(value: Any, base: str, out: list[tuple[str, Any]]) -> None:
    leaves: list[Any] = []
    _flatten(value, leaves, [])
    if len(leaves) == 1 and leaves[0] is value:
        out.append((base, value))
    else:
        out.extend((f"{base}_{j}", leaf) for j, leaf in enumerate(leaves))


def function(
    func: Callable[..., Any] | None = None,
    *,
    input_signature: Sequence[TensorSpec] | None = None,
    name: str | None = None,
) -> Any:
    """Trace ``func`` into function graphs and run those instead of the Python code.

    Works as ``@sf.function``, ``@sf.function(input_signature=[...])`` or
    ``sf.function(fn)``; on methods each instance gets its own traces; on an ``async def``
    it returns an async callable whose trace may await.

    Example:
        >>> import scopeflow as sf
        >>> @sf.function
        ... def scale(x, factor=2.0):
        ...     return x * factor
        >>> scale(sf.constant([1.0, 2.0])).numpy()
        array([2., 4.], dtype=float32)
        >>> scale.trace_count
        1
    """
    if func is None:
        return lambda f: Function(f, input_signature, name)
    return Function(func, input_signature, name)
