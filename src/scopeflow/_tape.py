"""Automatic differentiation: ``GradientTape`` and symbolic ``gradients``.

A tape is a scope: while it is open, every op run or built in a context that can see it
(the task that entered it, and tasks or threads spawned from there) is offered to it, and
the tape keeps the ops connected to what it watches. ``gradient`` walks those records
backwards, calling each op type's gradient function; gradient functions are built from
ordinary ops, so the same walk computes eager values or adds symbolic ops to the graph
being built. ``sf.gradients`` runs the same walk over a graph's ops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Final, final

import numpy as np

from ._concrete import ConcreteFunction
from ._context import (
    EAGER,
    GRAPH,
    LOG,
    PAUSED,
    SCOPES,
    TAPES,
    Frame,
    Scope,
    _roots,
    state_get,
)
from ._copying import refuse_copying
from ._graph import Operation, Tensor, get_default_graph
from ._ops import _core
from ._ops._grad_util import GradRecord, ones_like, register_gradient
from ._ops._math import add
from ._ops._registry import REGISTRY, OpDef
from ._tensor import EagerTensor
from ._variables import Variable

__all__ = ["GradientTape", "gradients"]

_READ: Final = "ReadVariableOp"
# Ops that run function graphs (calls, branches, loops): the variables those graphs read
# connect the op to a tape even when none of its inputs is watched.
_CALLS: Final = frozenset(
    {"PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While"}
)


@final
class _Record(tuple[OpDef, tuple[Any, ...], tuple[Any, ...], dict[str, Any]]):
    """One op on a tape, ``(opdef, inputs, outputs, attrs)``: what its gradient needs.

    A tuple with named fields rather than a slots class: a tape records one per op, and
    ``tuple.__new__`` builds it in a fraction of the time an ``__init__`` takes.
    """

    __slots__ = ()

    opdef = property(itemgetter(0))
    inputs = property(itemgetter(1))
    outputs = property(itemgetter(2))
    attrs = property(itemgetter(3))


def _record_of(
    opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...], attrs: dict[str, Any]
) -> _Record:
    return tuple.__new__(_Record, (opdef, inputs, outputs, attrs))


@final
class _VariableGrads:
    """A gradient function's result that also carries gradients for variables it read."""

    __slots__ = ("inputs", "variables")

    def __init__(self, inputs: Sequence[Any], variables: list[tuple[Variable, Any]]) -> None:
        self.inputs = inputs
        self.variables = variables


def _differentiable(x: Any) -> bool:
    return x is not None and x.dtype.kind in "fc"


@refuse_copying(
    "a tape holds the operations recorded in its block, and a lock",
    "Open a new sf.GradientTape(persistent=True) to compute several gradients.",
)
@final
class GradientTape(Scope):
    """Record operations to differentiate them.

    Args:
        persistent: allow several ``gradient`` calls (a non-persistent tape allows one).
        watch_accessed_variables: watch trainable variables read while recording.

    Example:
        >>> import scopeflow as sf
        >>> x = sf.constant(3.0)
        >>> with sf.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x + x
        >>> float(tape.gradient(y, x))
        7.0
    """

    __slots__ = (
        "__weakref__",
        "_lock",
        "_persistent",
        "_records",
        "_tracked",
        "_used",
        "_watch_accessed",
        "_watched_vars",
    )

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        super().__init__()
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._lock = threading.Lock()
        self._records: list[_Record] = []
        # id -> object, for every tensor the tape follows; holding the objects keeps ids
        # unique while the tape lives.
        self._tracked: dict[int, Any] = {}
        self._watched_vars: dict[int, Variable] = {}
        self._used = False

    def __enter__(self) -> GradientTape:
        cur = state_get(_roots[0])
        if self in cur[TAPES]:
            msg = "This GradientTape is already recording here; it cannot be entered twice"
            raise RuntimeError(msg)
        self._push(
            (
                cur, self, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], (*cur[TAPES], self),
                cur[PAUSED], None,
            )
        )  # fmt: skip
        return self

    def __repr__(self) -> str:
        return f"<sf.GradientTape persistent={self._persistent} records={len(self._records)}>"

    # -- watching ------------------------------------------------------------------------

    def watch(self, tensor: Any) -> None:
        """Follow ``tensor`` (or variables, or nested lists/tuples/dicts of them)."""
        if type(tensor) is EagerTensor:
            self._tracked[id(tensor)] = tensor  # the common case; a dict store is atomic
            return
        for leaf in _leaves(tensor):
            if isinstance(leaf, Variable):
                with self._lock:
                    self._watched_vars[id(leaf)] = leaf
            elif isinstance(leaf, (EagerTensor, Tensor)):
                with self._lock:
                    self._tracked[id(leaf)] = leaf
            else:
                msg = f"GradientTape.watch() takes tensors or variables, got {leaf!r}"
                raise TypeError(msg)

    def watched_variables(self) -> tuple[Variable, ...]:
        """The variables watched so far (explicitly, or read while recording)."""
        with self._lock:
            return tuple(self._watched_vars.values())

    def stop_recording(self) -> Scope:
        """A scope in which this tape (only) does not record.

        Raises:
            RuntimeError: on entry, if the tape is not recording in this context.
        """
        return _PauseTape(self)

    # -- recording (called for every op while the tape is visible) -----------------------

    def _offer(self, opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...],
               attrs: dict[str, Any]) -> None:  # fmt: skip
        kind = opdef.type
        tracked = self._tracked
        if kind != _READ and kind not in _CALLS:
            # The common case, checked without the lock (dict reads are atomic): is any
            # input something this tape follows?
            if not opdef.differentiable:
                return
            for x in inputs:
                if id(x) in tracked:
                    break
            else:
                return
            # No lock: list.append and dict stores are atomic, and records from several
            # threads only need each op after its inputs, which running them guarantees.
            self._records.append(_record_of(opdef, inputs, outputs, attrs))
            for out in outputs:
                tracked[id(out)] = out
            return
        with self._lock:
            if kind == _READ:
                var = attrs["var"]
                if id(var) not in self._watched_vars:
                    if not (self._watch_accessed and var.trainable):
                        return
                    self._watched_vars[id(var)] = var
            elif kind in _CALLS:
                connected = any(id(x) in tracked for x in inputs)
                for var in _attr_variables(attrs):
                    if id(var) in self._watched_vars or (self._watch_accessed and var.trainable):
                        self._watched_vars[id(var)] = var
                        connected = True
                if not connected:
                    return
            self._records.append(_record_of(opdef, inputs, outputs, attrs))
            for out in outputs:
                tracked[id(out)] = out

    # -- differentiating -----------------------------------------------------------------

    def gradient(self, target: Any, sources: Any, output_gradients: Any = None) -> Any:
        """d(target)/d(sources), in the structure of ``sources``.

        Args:
            target: a tensor, or a list/tuple/dict of tensors (their sum is differentiated).
            sources: a tensor or variable, or a nested list/tuple/dict of them.
            output_gradients: gradients of ``target`` (same structure); ones by default.

        Returns:
            Gradients shaped like the sources; None for a source the target does not
            depend on (or an integer one).

        Raises:
            RuntimeError: a non-persistent tape was already used once.
        """
        if self._used and not self._persistent:
            msg = (
                "A non-persistent GradientTape can only compute gradients once; create it "
                "with GradientTape(persistent=True) to call gradient() several times"
            )
            raise RuntimeError(msg)
        self._used = True
        targets = [target] if isinstance(target, (EagerTensor, Tensor)) else list(_leaves(target))
        if output_gradients is None:
            seeds: list[Any] = [None] * len(targets)
        else:
            seeds = list(_leaves_like(output_gradients, target))
            if len(seeds) != len(targets):
                msg = (
                    f"output_gradients has {len(seeds)} tensors but target has "
                    f"{len(targets)}; give one gradient per target tensor"
                )
                raise ValueError(msg)
        with self._lock:
            records = list(self._records)
        if self in state_get(_roots[0])[TAPES]:
            # The tape does not record its own gradient computation (an outer tape does).
            with _PauseTape(self):
                grads, var_grads = backprop(records, targets, seeds)
        else:
            grads, var_grads = backprop(records, targets, seeds)
        if not self._persistent:
            self._records = []
            self._tracked = {}
        if type(sources) is EagerTensor or type(sources) is Tensor:
            return grads.get(id(sources))
        return _rebuild(sources, grads, var_grads)


@final
class _PauseTape(Scope):
    __slots__ = ("_tape",)

    def __init__(self, tape: GradientTape) -> None:
        super().__init__()
        self._tape = tape

    def __enter__(self) -> None:
        cur = state_get(_roots[0])
        tapes = cur[TAPES]
        if self._tape not in tapes or cur[PAUSED]:
            msg = (
                "GradientTape.stop_recording() was entered while the tape is not recording "
                "here; enter it inside the tape's `with` block"
            )
            raise RuntimeError(msg)
        kept = tuple(t for t in tapes if t is not self._tape)
        self._push(
            (cur, self, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], kept, cur[PAUSED], None)
        )

    def __repr__(self) -> str:
        return "GradientTape.stop_recording()"


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _leaves_like(value: Any, structure: Any) -> Iterable[Any]:
    """The leaves of ``value`` laid out like ``structure`` (a seed per target tensor)."""
    if isinstance(structure, Mapping):
        for key, sub in structure.items():
            yield from _leaves_like(value[key], sub)
    elif isinstance(structure, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(structure):
            msg = (
                f"output gradients must have the structure of the targets: expected "
                f"{len(structure)} items, got {value!r}"
            )
            raise ValueError(msg)
        for v, sub in zip(value, structure, strict=True):
            yield from _leaves_like(v, sub)
    else:
        yield value


def _rebuild(sources: Any, grads: dict[int, Any], var_grads: dict[int, Any]) -> Any:
    if isinstance(sources, Mapping):
        return {k: _rebuild(v, grads, var_grads) for k, v in sources.items()}
    if isinstance(sources, (list, tuple)):
        items = [_rebuild(v, grads, var_grads) for v in sources]
        return items if isinstance(sources, list) else type(sources)(items)
    if isinstance(sources, Variable):
        return var_grads.get(id(sources))
    if isinstance(sources, (EagerTensor, Tensor)):
        return grads.get(id(sources))
    msg = f"gradient() sources must be tensors or variables, got {sources!r}"
    raise TypeError(msg)


def _accumulate(store: dict[int, Any], key: int, grad: Any) -> None:
    old = store.get(key)
    store[key] = grad if old is None else add(old, grad)


def backprop(
    records: Sequence[_Record], targets: Sequence[Any], seeds: Sequence[Any]
) -> tuple[dict[int, Any], dict[int, Any]]:
    """Propagate gradients from ``targets`` back through ``records`` (in run order).

    Returns:
        (gradient by tensor id, gradient by variable id).
    """
    grads: dict[int, Any] = {}
    var_grads: dict[int, Any] = {}
    for t, seed in zip(targets, seeds, strict=True):
        if not _differentiable(t):
            continue
        if seed is None:
            seed = ones_like(t.read_value() if isinstance(t, Variable) else t)
        elif not isinstance(seed, (EagerTensor, Tensor)):
            # Plain values become tensors of the target's dtype, so gradients that pass
            # the seed straight through still return tensors.
            seed = _core.convert_to_tensor(np.asarray(seed).astype(t.dtype))
        # d(v)/d(v) for a variable target is its seed.
        _accumulate(var_grads if isinstance(t, Variable) else grads, id(t), seed)
    # This loop is most of a tape step (SPEC section 11): single-output records, the
    # common case, skip building lists.
    for rec in reversed(records):
        outputs = rec.outputs
        if len(outputs) == 1:
            dy = grads.get(id(outputs[0]))
            if dy is None:
                continue
            dys: Sequence[Any] = (dy,)
        else:
            maybe = [grads.get(id(o)) for o in outputs]
            if all(d is None for d in maybe):
                continue
            dys = [d if d is not None else _zeros(o) for d, o in zip(maybe, outputs, strict=True)]
        opdef = rec.opdef
        if opdef.type == _READ:
            _accumulate(var_grads, id(rec.attrs["var"]), dys[0])
            continue
        fn = opdef.grad
        if fn is None:
            msg = f"No gradient is defined for op type {opdef.type!r}"
            raise LookupError(msg)
        result = fn(rec, *dys)
        if type(result) is _VariableGrads:
            for var, g in result.variables:
                if g is not None:
                    _accumulate(var_grads, id(var), g)
            result = result.inputs
        for x, g in zip(rec.inputs, result, strict=False):
            if g is not None and x.dtype.kind in "fc":
                key = id(x)
                old = grads.get(key)
                grads[key] = g if old is None else add(old, g)
    return grads, var_grads


def _zeros(like: Any) -> Any:
    return _core.apply(REGISTRY["ZerosLike"], (like,), {})


# -- the recording hook --------------------------------------------------------------


def _record(frame: Frame, opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...],
            attrs: dict[str, Any]) -> None:  # fmt: skip
    for tape in frame[TAPES]:
        tape._offer(opdef, inputs, outputs, attrs)


_core.record_hook[0] = _record

# -- functions: variables they read, and the gradient of a call ----------------------


def variables_read(concrete: Any) -> tuple[Variable, ...]:
    """The variables a concrete function reads, including through nested calls."""
    cached: tuple[Variable, ...] | None = concrete._reads
    if cached is not None:
        return cached
    found: dict[int, Variable] = {}
    for op in concrete.graph.get_operations():
        if op.type == _READ:
            found[id(op._attrs["var"])] = op._attrs["var"]
        elif op.type in _CALLS:
            for var in _attr_variables(op._attrs):
                found[id(var)] = var
    result = tuple(found.values())
    concrete._reads = result
    return result


def _attr_variables(attrs: dict[str, Any]) -> list[Variable]:
    """The variables read by the function graphs an op runs (found in its attrs)."""
    found: dict[int, Variable] = {}
    for value in attrs.values():
        if isinstance(value, ConcreteFunction):
            for var in variables_read(value):
                found[id(var)] = var
    return list(found.values())


def replay_gradients(
    replay: Callable[[list[Any]], Sequence[Any]],
    inputs: list[Any],
    variables: list[Variable],
    dys: Sequence[Any],
) -> tuple[list[Any], list[Any]]:
    """Gradients of ``replay(inputs)`` (output gradients ``dys``) with respect to the
    inputs and the variables, by running ``replay`` again on a fresh tape.

    This is how ops that run function graphs (calls, branches, loops) are differentiated:
    eagerly the replay computes values, in a graph it inlines the function's ops.
    """
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([x for x in inputs if _differentiable(x)])
        tape.watch(variables)
        outputs = replay(inputs)
    kept = [(o, d) for o, d in zip(outputs, dys, strict=True) if _differentiable(o)]
    input_grads, var_grads = tape.gradient(
        [o for o, _ in kept], [inputs, variables], output_gradients=[d for _, d in kept]
    )
    return input_grads, var_grads


def _call_grad(op: GradRecord, *dys: Any) -> _VariableGrads:
    """Differentiate a function call by replaying its graph."""
    concrete = op.attrs["f"]
    variables = [v for v in variables_read(concrete) if v.dtype.kind in "fc"]
    input_grads, var_grads = replay_gradients(concrete._replay, list(op.inputs), variables, dys)
    return _VariableGrads(input_grads, list(zip(variables, var_grads, strict=True)))


for _call_type in ("PartitionedCall", "StatefulPartitionedCall"):
    register_gradient(_call_type)(_call_grad)


# -- symbolic gradients for graphs ---------------------------------------------------


def gradients(ys: Any, xs: Any, grad_ys: Any = None) -> list[Any]:
    """Symbolic gradients of ``sum(ys)`` with respect to each of ``xs`` (graph mode).

    Adds gradient ops to the default graph; a session (or the enclosing function) runs
    them. Unconnected (or integer) sources give None.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     x = sf.placeholder(sf.float32, shape=())
        ...     (dx,) = sf.gradients(x * x, [x])
        >>> float(sf.Session(g).run(dx, {x: 3.0}))
        6.0
    """
    if state_get(_roots[0])[EAGER]:
        msg = (
            "sf.gradients() builds symbolic gradients and needs graph mode; in eager code "
            "use sf.GradientTape"
        )
        raise RuntimeError(msg)
    y_list = list(_leaves(ys))
    x_list = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    seeds = list(_leaves_like(grad_ys, ys)) if grad_ys is not None else [None] * len(y_list)
    if len(seeds) != len(y_list):
        msg = f"grad_ys has {len(seeds)} tensors but ys has {len(y_list)}"
        raise ValueError(msg)
    graph = get_default_graph()
    for t in y_list:
        if not isinstance(t, Tensor) or t.graph is not graph:
            msg = f"sf.gradients(): {t!r} is not a tensor of the default graph {graph!r}"
            raise ValueError(msg)
    records = _graph_records(y_list, x_list)
    grads, var_grads = backprop(records, y_list, seeds)
    return [var_grads.get(id(x)) if isinstance(x, Variable) else grads.get(id(x)) for x in x_list]


def _graph_records(ys: list[Tensor], xs: list[Any]) -> list[_Record]:
    """Records for the ops between ``xs`` and ``ys``, in creation (topological) order."""
    ancestors: dict[int, Operation] = {}
    stack = [t._op for t in ys]
    while stack:
        op = stack.pop()
        if id(op) in ancestors:
            continue
        ancestors[id(op)] = op
        stack.extend(t._op for t in op._inputs)
    var_ids = {id(x) for x in xs if isinstance(x, Variable)}
    reached = {id(x) for x in xs if isinstance(x, Tensor)}
    records = []
    for op in sorted(ancestors.values(), key=lambda o: o._id):
        opdef = REGISTRY[op._type]
        if op._type == _READ:
            hit = id(op._attrs["var"]) in var_ids
        elif op._type in _CALLS:
            hit = any(id(t) in reached for t in op._inputs) or any(
                id(v) in var_ids for v in _attr_variables(op._attrs)
            )
        else:
            hit = opdef.differentiable and any(id(t) in reached for t in op._inputs)
        if hit:
            records.append(_record_of(opdef, op._inputs, op._outputs, op._attrs))
            reached.update(id(t) for t in op._outputs)
    return records
