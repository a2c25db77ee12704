"""Traced functions: ``sf.function`` turns a Python function into cached function graphs.

Each call computes a cache key from its arguments (tensor dtypes and shapes, Python values
by value, nested structures by structure) and from the calling context (eager or graph
caller, the caller's graph, device). A miss traces: the Python function runs once in a new
:class:`FuncGraph` entered as the default graph (so ``init_scope`` escapes it), with
placeholders for the tensor arguments. A hit executes the graph: eagerly through a cached
plan, or, while a graph is being built, as one call op in that graph.

Concurrent first calls with one key trace once; the other callers wait for that trace
(threads block, async tasks wait on their own event loop; see ``_tracing``). The traces a
graph's calls made are kept on that graph, so they die with it; a method's traces are kept
per instance, by identity, for as long as the instance lives.
"""

from __future__ import annotations

import functools
import inspect
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any, final

from ._call_keys import (
    _LEAF,
    TensorSpec,
    UnkeyableArgumentError,
    _arg_structure,
    _flatten,
    _leaf_spec,
    _rebuild,
    _WeakId,
)
from ._concrete import ConcreteFunction, _flatten_outputs
from ._context import DEVICE, EAGER, GRAPH, SCOPES, Frame, _roots, state_get
from ._copying import refuse_copying
from ._func_graph import TRACES, FuncGraph
from ._graph import Graph, get_default_graph
from ._ops._core import graph_tensor, placeholder
from ._retracing import RetraceDetector, RetracingWarning, message
from ._scopes import device as device_scope
from ._signature import CallKeys, bound_method_signature
from ._tensor import EagerTensor
from ._tracing import Lifecycle, Pending, Retrace

__all__ = ["Function", "function"]

# -- Function --------------------------------------------------------------------------


@final
class _Cache:
    """The traces of one function for one kind of caller, and the traces in progress.

    Guarded by the function's lock (reads of ``traces`` need none: a dict lookup is atomic).
    """

    __slots__ = ("pending", "traces")

    def __init__(self) -> None:
        self.traces: dict[Any, ConcreteFunction] = {}
        self.pending: dict[Any, Pending] = {}


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
            msg = (
                f"sf.function() needs a callable, got {python_function!r}, which is not a "
                f"callable object"
            )
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
        self._eager_cache = _Cache()
        self._life = Lifecycle()
        # Per instance, for a method: id(instance) -> (weak reference to it, its Function).
        # By identity, never by __eq__/__hash__; the weak reference's callback drops the
        # entry when the instance dies (before its id can be reused).
        self._bound: dict[int, tuple[weakref.ref[Any], Function]] = {}
        self._keys = CallKeys(python_function, input_signature, self._name, self)
        self._retraces = RetraceDetector()
        # How many positional arguments __call__'s warm path takes (-1: none): calls
        # that bind as passed (Binder's simple case), without an input_signature.
        binder = self._keys.binder
        simple = input_signature is None and binder._simple and not self._is_async
        self._warm_arity = binder._n_pos if simple else -1
        # The same for an input_signature function called with one argument per spec.
        specs = input_signature is not None and not self._is_async
        self._warm_signature = len(input_signature) if specs else -1  # type: ignore[arg-type]
        functools.update_wrapper(self, python_function)

    def __repr__(self) -> str:
        return f"<sf.function {self._name!r}>"

    @property
    def trace_count(self) -> int:
        """How many times the Python function has been traced.

        On a method, ``instance.method.trace_count`` counts that instance's traces and
        ``Class.method.trace_count`` the traces of every instance alive now (a dead
        instance's traces are freed with it, and stop counting).

        Example:
            >>> import scopeflow as sf
            >>> class Scale:
            ...     def __init__(self, k):
            ...         self.k = k
            ...     @sf.function
            ...     def apply(self, x):
            ...         return x * self.k
            >>> a, b = Scale(2.0), Scale(3.0)
            >>> _ = a.apply(sf.constant(1.0)), b.apply(sf.constant(1.0))
            >>> a.apply.trace_count, Scale.apply.trace_count
            (1, 2)
        """
        with self._lock:  # a consistent view of the instances while another one binds
            bound = [entry[1] for entry in self._bound.values()]
        return self._life.count + sum(function.trace_count for function in bound)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        entry = self._bound.get(id(instance))
        if entry is not None and entry[0]() is instance:
            return entry[1]
        return self._bind(instance)

    def _bind(self, instance: Any) -> Function:
        """The Function of ``instance``'s method, made once per instance even from threads."""
        key = id(instance)
        bound_functions = self._bound

        def forget(ref: weakref.ref[Any]) -> None:
            # Runs when the instance dies, possibly in another thread or inside the lock
            # below (a collection can start anywhere), so it takes no lock: it removes only
            # its own entry, and no new instance can have this id before it has run.
            entry = bound_functions.get(key)
            if entry is not None and entry[0] is ref:
                bound_functions.pop(key, None)

        try:
            ref = weakref.ref(instance, forget)
        except TypeError:
            msg = (
                f"sf.function method {self._name!r} needs weak-referenceable instances (each "
                f"instance keeps its own traces for as long as it lives); "
                f"{type(instance).__name__} is not: add '__weakref__' to its __slots__"
            )
            raise TypeError(msg) from None
        with self._lock:
            entry = bound_functions.get(key)
            if entry is not None and entry[0]() is instance:
                return entry[1]
            bound = Function(_method(self.python_function, ref, self._is_async),
                             self.input_signature, self._name)  # fmt: skip
            bound_functions[key] = (ref, bound)
        return bound

    # -- keys ----------------------------------------------------------------------------

    def _key(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        frame: Frame,
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
            return self._eager_cache.traces
        cache: _Cache | None = graph._function_caches.get(self)
        return None if cache is None else cache.traces

    def _retrace_check(self, call: int, cache: _Cache, key: Any) -> None:
        """Count a cache miss of a call; warn once if the function keeps retracing."""
        due = self._retraces.missed(call, id(cache), key)
        if due is not None:
            text = message(self._keys.binder, due[0], due[1], key)
            # stacklevel: _retrace_check < _lookup < _concrete < __call__ < the caller.
            warnings.warn(text, RetracingWarning, stacklevel=5)

    def _cache_for(self, frame: Frame) -> _Cache:
        if frame[EAGER]:
            return self._eager_cache
        graph = frame[GRAPH] if frame[GRAPH] is not None else get_default_graph()
        # Kept on the graph, not here: a trace refers to the graph it was made from
        # (outer_graph, captures), so a cache here keyed by the graph would keep it alive.
        caches = graph._function_caches
        cache: _Cache | None = caches.get(self)
        if cache is None:
            cache = caches.setdefault(self, _Cache())  # atomic: every racer gets one cache
        return cache

    # -- calling -------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == self._warm_arity and not kwargs:
            # The warm eager call on positional eager tensors: the key that _key builds,
            # built inline, and the hit run directly. Saves about 1 µs per call
            # (bench_functions); anything else, or a miss, takes the general path.
            frame = state_get(_roots[0])
            if frame[EAGER]:
                structure = []
                for arg in args:
                    if type(arg) is not EagerTensor:
                        break
                    array = arg._value
                    structure.append((_LEAF, array.dtype, array.shape))
                else:
                    key = (frame[EAGER], frame[SCOPES][DEVICE], (tuple(structure), ()), ())
                    hit = self._eager_cache.traces.get(key)
                    if hit is not None:
                        next(self._retraces.calls)
                        return hit._call_eager(frame, args)
        elif len(args) == self._warm_signature and not kwargs:
            # The same for an input_signature function (a served model): one trace per
            # caller's device; the arguments are checked against the specs as _key does.
            frame = state_get(_roots[0])
            if frame[EAGER]:
                keys = self._keys
                sig_key = (frame[EAGER], frame[SCOPES][DEVICE], keys.signature_key, ())
                hit = self._eager_cache.traces.get(sig_key)
                if hit is not None:
                    leaves = keys.bind_specs(args, kwargs, False)
                    next(self._retraces.calls)
                    return hit._call_eager(frame, leaves)
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

    def _claim(self, cache: _Cache, key: Any) -> tuple[ConcreteFunction | None, Pending, bool]:
        """(cached trace, pending trace, whether the caller must trace) under the lock."""
        with self._lock:
            hit = cache.traces.get(key)
            if hit is not None:
                return hit, None, False  # type: ignore[return-value]
            pending = cache.pending.get(key)
            if pending is not None:
                return None, pending, False
            pending = cache.pending[key] = Pending()
            return None, pending, True

    def _finish(
        self, cache: _Cache, key: Any, pending: Pending, concrete: ConcreteFunction | None
    ) -> None:
        """Publish the trace (None: it failed) and wake the callers waiting for it."""
        with self._lock:
            if concrete is not None:
                cache.traces[key] = concrete
            del cache.pending[key]
        pending.set()

    def _lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool) -> Any:
        """(cache, key, tensor leaves, objects to keep alive, call to trace, cached trace)."""
        frame = state_get(_roots[0])
        key, leaves, keep, call = self._key(args, kwargs, frame, for_concrete)
        cache = self._cache_for(frame)
        hit = cache.traces.get(key)
        if hit is None and key[3]:
            # Remember where traces keyed on these objects go, to evict them when one dies.
            graph = None if frame[EAGER] else frame[GRAPH] or get_default_graph()
            self._keys.note(key[3], graph)
        if not for_concrete and frame[EAGER]:
            # As in TensorFlow, only eager calls count towards the retracing warning: a
            # call while building a graph (another function's trace) traces as often as
            # that graph is built, which the caller's own count already covers.
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
            self._check_not_recursive()  # waiting for our own trace would never end
            pending.wait()  # then hit, or claim the trace if that one failed

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
                    # Also when the tracer is cancelled: a waiter then claims the trace.
                    self._finish(cache, key, pending, concrete)
                return concrete, leaves
            self._check_not_recursive()
            await pending.wait_async()

    # -- tracing -------------------------------------------------------------------------

    def _check_not_recursive(self) -> None:
        """Refuse a call made while this context traces this function (from its body,
        also through ``init_scope``), whether it would trace or wait for a trace."""
        if any(g._traced_by is self._life for g in TRACES.get()):
            msg = (
                f"{self._name} called itself while being traced; recursion in a traced "
                f"function is not supported (use sf.while_loop, or recurse in Python "
                f"outside sf.function)"
            )
            raise RuntimeError(msg)

    def _begin_trace(self) -> tuple[FuncGraph, str]:
        self._check_not_recursive()
        frame = state_get(_roots[0])
        fg = FuncGraph(self._name, outer_graph=get_default_graph())
        self._life.begin(fg)
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
        while True:
            fg, device = self._begin_trace()
            concrete = None
            try:
                token = TRACES.set((*TRACES.get(), fg))
                try:
                    with fg.as_default(), device_scope(device or None):
                        args, kwargs = self._placeholders(fg, call)
                        result = self.python_function(*args, **kwargs)
                        concrete = self._end_trace(fg, result, key, keep)
                finally:
                    TRACES.reset(token)
                return concrete
            except BaseException as err:
                retrace = Retrace.of(err, fg)
                if retrace is None:
                    raise  # a failure, or an enclosing trace is redone and this one with it
                wait = retrace.wait
            finally:
                self._life.end(fg, concrete is not None)
            self._life.restarted()
            if wait is not None:
                wait.wait()

    async def _trace_async(
        self, call: tuple[Any, Any], key: Any, keep: list[Any]
    ) -> ConcreteFunction:
        while True:
            fg, device = self._begin_trace()
            concrete = None
            try:
                token = TRACES.set((*TRACES.get(), fg))
                try:
                    async with fg.as_default(), device_scope(device or None):
                        args, kwargs = self._placeholders(fg, call)
                        result = await self.python_function(*args, **kwargs)
                        concrete = self._end_trace(fg, result, key, keep)
                finally:
                    TRACES.reset(token)
                return concrete
            except BaseException as err:
                retrace = Retrace.of(err, fg)
                if retrace is None:
                    raise
                wait = retrace.wait
            finally:
                self._life.end(fg, concrete is not None)
            self._life.restarted()
            if wait is not None:
                await wait.wait_async()


def _method(fn: Callable[..., Any], ref: weakref.ref[Any], is_async: bool) -> Callable[..., Any]:
    """``fn`` with its first argument bound to the instance behind ``ref``.

    A weak reference: the instance's Function lives as long as the instance, and must not
    keep it alive itself.
    """
    if is_async:

        @functools.wraps(fn)
        async def amethod(*args: Any, **kwargs: Any) -> Any:
            return await fn(_instance(ref, fn), *args, **kwargs)

        amethod.__signature__ = bound_method_signature(fn)  # type: ignore[attr-defined]
        return amethod

    @functools.wraps(fn)
    def method(*args: Any, **kwargs: Any) -> Any:
        return fn(_instance(ref, fn), *args, **kwargs)

    # Calls bind to the method's parameters after ``self`` (see _signature).
    method.__signature__ = bound_method_signature(fn)  # type: ignore[attr-defined]
    return method


def _instance(ref: weakref.ref[Any], fn: Callable[..., Any]) -> Any:
    """The instance behind ``ref``; an error, never ``None``, once it has been freed.

    A method looked up on a temporary (``Model().f(x)``) is bound weakly, and the
    temporary dies before the call runs.
    """
    instance = ref()
    if instance is None:
        msg = (
            f"the instance of sf.function method {getattr(fn, '__qualname__', fn)!r} was "
            f"freed before the method ran (it is bound weakly): keep a reference to the "
            f"instance while calling it (m = Model(); m.f(x), not Model().f(x))"
        )
        raise ReferenceError(msg)
    return instance


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
    ``sf.function(fn)``; on methods each instance (by identity, weak-referenceable) gets
    its own traces; on an ``async def`` it returns an async callable whose trace may await.

    Concurrent first calls with one signature trace once; the others wait (threads block,
    tasks wait on their own event loop). Variables may be created only by the first trace
    that completes: a trace that fails or is cancelled leaves nothing behind, and a trace
    that would create variables while another is creating them is redone after it.

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
