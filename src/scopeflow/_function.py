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

import functools
import inspect
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any, final

import anyio.to_thread

from ._concrete import (
    ConcreteFunction,
    TensorSpec,
    UnkeyableArgumentError,
    _arg_structure,
    _flatten,
    _flatten_outputs,
    _leaf_spec,
    _rebuild,
    _WeakId,
)
from ._context import DEVICE, EAGER, GRAPH, SCOPES, _roots, state_get
from ._copying import refuse_copying
from ._func_graph import TRACES, FuncGraph
from ._graph import Graph, get_default_graph
from ._ops._core import graph_tensor, placeholder
from ._retracing import RetraceDetector, RetracingWarning, message
from ._scopes import device as device_scope
from ._signature import CallKeys, bound_method_signature

__all__ = ["Function", "function"]

# -- Function --------------------------------------------------------------------------


@final
class _Pending:
    """A trace in progress; later callers with the same key wait on ``done``."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


@refuse_copying(
    "it holds its traces, their function graphs, locks and caches",
    "Share the same Function object (calling it from several tasks or threads is safe), "
    "or apply sf.function to the Python function again.",
)
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
        self._keys = CallKeys(python_function, input_signature, self._name, self)
        self._retraces = RetraceDetector()
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
            method.__signature__ = bound_method_signature(fn)  # type: ignore[attr-defined]
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
        """(cache key, tensor leaves, objects to keep alive, (args, kwargs) to trace).

        The key is (eager caller, device, structure of the bound call, weak identity keys
        in it); nothing in it keeps an argument alive, so the keep-alive list is empty.
        """
        keys = self._keys
        if keys.specs is not None:
            # One trace serves every compatible call: placeholders take the spec shapes.
            leaves = keys.bind_specs(args, kwargs, for_concrete)
            key = (frame[EAGER], frame[SCOPES][DEVICE], keys.signature_key, ())
            return key, leaves, [], (keys.specs, {})
        args, kwargs = keys.binder.bind(args, kwargs)
        leaves = []
        tokens: list[_WeakId] = []
        try:
            structure = _arg_structure(args, kwargs, leaves, keys.ref, tokens)
        except UnkeyableArgumentError as err:
            raise keys.unkeyable(args, kwargs, err) from None
        refs = tuple(tokens) if tokens else ()
        return (frame[EAGER], frame[SCOPES][DEVICE], structure, refs), leaves, [], (args, kwargs)

    def _evict_ref(self, token: _WeakId) -> None:
        """Drop the traces keyed on an argument that has died (see ``_signature._died``).

        Takes no lock: it may run inside a GC pass while this thread holds ``_lock``;
        snapshots and ``pop`` are atomic on dicts.
        """
        for place in token.places:
            graph = None if place is None else place()
            traces = self._traces_for(graph) if place is None or graph is not None else None
            if traces is not None:
                for key in [k for k in list(traces) if token in k[3]]:
                    traces.pop(key, None)

    def _traces_for(self, graph: Graph | None) -> dict[Any, ConcreteFunction] | None:
        """The dict of traces for eager callers (None) or for callers in ``graph``."""
        if graph is None:
            return self._eager_cache
        return self._graph_caches.get(graph)

    def _retrace_check(self, call: int, cache: dict[Any, ConcreteFunction], key: Any) -> None:
        """Count a cache miss of a call; warn once if the function keeps retracing."""
        due = self._retraces.missed(call, id(cache), key)
        if due is not None:
            text = message(self._keys.binder, due[0], due[1], key)
            # stacklevel: _retrace_check < _lookup < _concrete < __call__ < the caller.
            warnings.warn(text, RetracingWarning, stacklevel=5)

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
        concrete = self._concrete(args, kwargs, for_concrete=True)[0]
        concrete._binder = self._keys.concrete_binder()
        return concrete

    async def aget_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        """:meth:`get_concrete_function` for an ``async def`` function."""
        concrete = (await self._aconcrete(args, kwargs, for_concrete=True))[0]
        concrete._binder = self._keys.concrete_binder()
        return concrete

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

    def _lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool) -> Any:
        """(cache, key, tensor leaves, objects to keep alive, call to trace, cached trace)."""
        frame = state_get(_roots[0])
        key, leaves, keep, call = self._key(args, kwargs, frame, for_concrete)
        cache = self._cache_for(frame)
        hit = cache.get(key)
        if hit is None and key[3]:
            # Remember where traces keyed on these objects go, to evict them when one dies.
            graph = None if frame[EAGER] else frame[GRAPH] or get_default_graph()
            self._keys.note(key[3], graph)
        if not for_concrete:
            number = next(self._retraces.calls)
            if hit is None:
                self._retrace_check(number, cache, key)
        return cache, key, leaves, keep, call, hit

    def _concrete(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool = False
    ) -> tuple[ConcreteFunction, list[Any]]:
        cache, key, leaves, keep, call, hit = self._lookup(args, kwargs, for_concrete)
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
        cache, key, leaves, keep, call, hit = self._lookup(args, kwargs, for_concrete)
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

    def _begin_trace(self) -> tuple[FuncGraph, str]:
        if any(g._traced_by is self for g in TRACES.get()):
            msg = (
                f"{self._name} called itself while being traced; recursion in a traced "
                f"function is not supported (use sf.while_loop, or recurse in Python "
                f"outside sf.function)"
            )
            raise RuntimeError(msg)
        frame = state_get(_roots[0])
        with self._lock:
            first = not self._trace_started
            self._trace_started = True
            self._trace_count += 1
        fg = FuncGraph(self._name, outer_graph=get_default_graph())
        fg._allow_variables = first
        fg._traced_by = self
        return fg, frame[SCOPES][DEVICE]

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

    def _end_trace(self, fg: FuncGraph, result: Any, key: Any, keep: list[Any]) -> ConcreteFunction:
        leaves: list[Any] = []
        template = _flatten_outputs(result, leaves)
        outputs = []
        for value in leaves:
            t = graph_tensor(state_get(_roots[0]), fg, value, None)
            outputs.append(t)
        fg.outputs = outputs
        fg._seal(self._name)
        return ConcreteFunction(fg, key[2], template, keep)

    def _trace_sync(self, call: tuple[Any, Any], key: Any, keep: list[Any]) -> ConcreteFunction:
        fg, device = self._begin_trace()
        token = TRACES.set((*TRACES.get(), fg))
        try:
            with fg.as_default(), device_scope(device or None):
                args, kwargs = self._placeholders(fg, call)
                result = self.python_function(*args, **kwargs)
                return self._end_trace(fg, result, key, keep)
        finally:
            TRACES.reset(token)

    async def _trace_async(
        self, call: tuple[Any, Any], key: Any, keep: list[Any]
    ) -> ConcreteFunction:
        fg, device = self._begin_trace()
        token = TRACES.set((*TRACES.get(), fg))
        try:
            async with fg.as_default(), device_scope(device or None):
                args, kwargs = self._placeholders(fg, call)
                result = await self.python_function(*args, **kwargs)
                return self._end_trace(fg, result, key, keep)
        finally:
            TRACES.reset(token)


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
    _flatten(value, leaves)
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
