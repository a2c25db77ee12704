"""Concrete functions: one trace of a function graph, and how it is called.

A :class:`ConcreteFunction` pairs a finished :class:`FuncGraph` with the structure of its
arguments and outputs. Called eagerly it executes the graph through a cached plan; called
while a graph is built it adds one call op (``PartitionedCall``, or
``StatefulPartitionedCall`` when the function has side effects), which sessions and
enclosing functions run. How call arguments are keyed and checked is in ``_call_keys``.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, final

import numpy as np

from ._call_keys import (
    TensorSpec as TensorSpec,
    _arg_structure,
    _describe_key,
    _leaf_spec,
    _shape_free,
    cast_call,
    flat_call_arguments,
)
from ._context import EAGER, GRAPH, PAUSED, TAPES, Frame, _roots, state_get
from ._copying import refuse_copying
from ._execution import compile_plan, execute
from ._func_graph import FuncGraph, add_control_captures
from ._graph import Graph, Operation, Tensor, get_default_graph
from ._nest import fill, flatten
from ._ops._core import apply, constant, graph_tensor, record_hook
from ._ops._registry import REGISTRY, Spec, register_op
from ._ops._seeds import DRAW_LOG, DrawLog
from ._read_log import CALL_READS, READ_LOG, ReadLog, recording_kernel
from ._tensor import EagerTensor, to_array, wrap
from .errors import GraphMismatchError

__all__ = ["ConcreteFunction", "TensorSpec"]


# -- output structures -----------------------------------------------------------------


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
    return concrete._kernel(*arrays)


def _call_bind(attrs: dict[str, Any]) -> Any:
    fn: ConcreteFunction = attrs["f"]
    if fn._keeps_reads:
        # A gradient in a graph replays a call of it when the graph runs, with its reads.
        return recording_kernel(attrs, fn._kernel)
    return fn._kernel


CALL = register_op(
    "PartitionedCall", infer=_call_rule, kernel=_call_kernel, same_dtype=False, bind=_call_bind
)
STATEFUL_CALL = register_op(
    "StatefulPartitionedCall", infer=_call_rule, kernel=_call_kernel, same_dtype=False,
    stateful=True, bind=_call_bind,
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
        "_keeps_reads",
        "_lock",
        "_out_slots",
        "_out_template",
        "_plan",
        "_reads",
        "_replay_fn",
        "_stores_reads",
        "_written",
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
        self._out_slots: tuple[Any, ...] = ()  # the plan's slots of the outputs
        # Whether a run keeps the reads of calls for gradients in the graph (_read_log).
        self._stores_reads = False
        self._lock = threading.Lock()
        # The variables the graph reads (through nested calls too), found on first need.
        self._reads: tuple[Any, ...] | None = None
        # The backward function of eager calls, built on the first gradient (_gradients).
        self._backward: Any = None
        # Set once a gradient in a graph replays a call of it when the graph runs: the
        # kernels of its call ops compiled from then on keep their reads (_read_log).
        self._keeps_reads = False
        # The function replaying this one (_replay_function): None until built, False
        # where there is none.
        self._replay_fn: Any = None
        # The ids of the variables it writes, found on first need (_writes_variables).
        self._written: frozenset[int] | None = None
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
        bound, bound_kw = args, kwargs
        if binder is not None:
            try:
                flat, bound, bound_kw = binder(args, kwargs)
            except TypeError as err:
                flat = flat_call_arguments(self.graph, args, kwargs)
                if flat is not None:
                    return self._call_flat(flat)
                msg = (
                    f"ConcreteFunction {self.name!r} was traced for arguments structured as "
                    f"{_describe_key(self._arg_key)}; {err}"
                )
                raise TypeError(msg) from None
            if flat is not None:  # an input_signature function: checked against its specs
                return self._call_flat(flat)
        leaves: list[Any] = []
        key = _arg_structure(bound, bound_kw, leaves)
        if _shape_free(key) != _shape_free(self._arg_key):
            cast = cast_call(self._binder, self._arg_key, args, kwargs)
            if cast is not None:
                key, leaves = cast
        if _shape_free(key) != _shape_free(self._arg_key):
            flat = flat_call_arguments(self.graph, args, kwargs)
            if flat is not None:
                return self._call_flat(flat)
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

    def _call_flat(self, leaves: Sequence[Any]) -> Any:
        frame = state_get(_roots[0])
        if frame[EAGER]:
            return self._call_eager(frame, leaves)
        return self._call_in_graph(frame, leaves)

    def _call_eager(self, frame: Frame, leaves: Sequence[Any]) -> Any:
        """Run the trace on eager arguments (a tuple or list); the outputs, structured."""
        graph = self.graph
        if graph._control_captures:
            raise _eager_call_with_control_captures(self)
        # Inlined _eager_array: saves a call per argument on every warm call.
        arrays = [x._value if type(x) is EagerTensor else to_array(x) for x in leaves]
        cached = self._capture_arrays
        if cached is not None and cached[0] == len(graph._captures):
            if cached[1]:
                arrays += cached[1]
        else:
            captured = graph.captured_inputs
            arrays.extend(_eager_array(v) for v in captured)
            if all(type(v) is EagerTensor for v in captured):
                self._capture_arrays = (len(captured), arrays[len(leaves) :])
        template = self._out_template
        if not frame[TAPES] or frame[PAUSED]:
            # Every value a plan returns is already a plain array: wrapped as it is.
            if type(template) is int:  # one output tensor, the common case: no lists
                return wrap(self._run(arrays)[template])
            return _fill_outputs(template, [wrap(v) for v in self._run(arrays)])
        # The call is one op on the tape. Its gradient calls the trace's backward
        # function, or replays the graph with the random values this run draws; either
        # way with the values its variable reads return now (see _read_log).
        draws = DrawLog()
        reads = ReadLog(READ_LOG.get())
        token = DRAW_LOG.set(draws)
        read_token = READ_LOG.set(reads)
        try:
            outputs = [wrap(v) for v in self._run(arrays)]
        finally:
            READ_LOG.reset(read_token)
            DRAW_LOG.reset(token)
        hook = record_hook[0]
        if hook is not None:
            inputs: list[Any] = [x if type(x) is EagerTensor else wrap(a) for x, a in zip(
                [*leaves, *graph.captured_inputs], arrays, strict=True)]  # fmt: skip
            opdef = STATEFUL_CALL if graph.control_outputs else CALL
            attrs: dict[str, Any] = {"f": self}
            if draws:
                attrs["draws"] = draws
            if reads:
                attrs["reads"] = reads
            hook(frame, opdef, tuple(inputs), tuple(outputs), attrs)
        return _fill_outputs(template, outputs)

    def _call_in_graph(self, frame: Frame, leaves: Sequence[Any]) -> Any:
        """Add a call op of the trace to the graph being built; its outputs, structured."""
        graph = frame[GRAPH] if frame[GRAPH] is not None else get_default_graph()
        inputs = [graph_tensor(frame, graph, x, None) for x in leaves]
        inputs.extend(_bind_capture(frame, graph, v) for v in self.graph.captured_inputs)
        opdef = STATEFUL_CALL if self.graph.control_outputs else CALL
        result = apply(opdef, tuple(inputs), {"f": self}, _op_name(self.graph.name))
        outputs: tuple[Any, ...]
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

        Eagerly this computes values; while building a graph it inlines the ops. Side
        effects are not repeated (a gradient must not write or print again): writes to
        variables become reads of the variable, and prints are skipped.

        Reads return what they returned in the call when a read log is set (see
        ``_read_log``; a write's read, the value it wrote).

        Calls of functions are replayed the same way, in place of the call op. Emitted
        as a call op, a call would run the callee's side effects again and its forward
        twice (once as the call, once more as the inline replay its own gradient makes).
        Calls that stay calls: into a graph, those of functions with checks, as calls
        of their replay (checks kept, writes as reads, see ``_replay_function``); and
        those of functions that draw random values where no draw log serves the draws.
        """
        values: dict[int, Any] = {
            id(ph): x for ph, x in zip(self.graph.inputs, inputs, strict=True)
        }
        eager = state_get(_roots[0])[EAGER]
        for op in self.graph.get_operations():
            if op._type in _NOT_REPLAYED:
                continue
            if op._type in _WRITES:
                # A read under the write's attrs: a read log serves it the value written.
                results: Any = apply(REGISTRY["ReadVariableOp"], (), op._attrs)
            elif op._type in _SIDE_EFFECTS_ONLY and not op._outputs:
                continue
            elif op._type in _CALL_TYPES:
                callee: ConcreteFunction = op._attrs["f"]
                args = tuple(values[id(t)] for t in op._inputs)
                # Eagerly a check replays as it does at the top level (values only).
                if _replayable(callee, checks=eager):
                    outputs = callee._replay(list(args))
                    for t, r in zip(op._outputs, outputs, strict=True):
                        values[id(t)] = r
                    continue
                replayer = _replay_function(callee)
                if replayer is not None:
                    opdef = STATEFUL_CALL if replayer.graph.control_outputs else CALL
                    results = apply(opdef, args, {"f": replayer})
                else:
                    results = apply(REGISTRY[op._type], args, op._attrs)
            elif op._type in REPLAY_RULES:
                # A cond: its taken branch replayed (a kernel run would write again).
                if not op._outputs:
                    continue  # only side effects, which a replay does not repeat
                outputs = REPLAY_RULES[op._type][0](op, [values[id(t)] for t in op._inputs])
                for t, r in zip(op._outputs, outputs, strict=True):
                    values[id(t)] = r
                continue
            else:
                args = tuple(values[id(t)] for t in op._inputs)
                results = apply(REGISTRY[op._type], args, op._attrs)
            if len(op._outputs) == 1:
                values[id(op._outputs[0])] = results
            elif op._outputs:
                for t, r in zip(op._outputs, results, strict=True):
                    values[id(t)] = r
        return [values[id(t)] for t in self.graph.outputs]

    def _kernel(self, *arrays: np.ndarray[Any, Any]) -> Any:
        """The kernel of a call op of this function, as run plans call it."""
        outputs = self._run(list(arrays))
        # Kernels return a lone array for one output, a tuple for several, None for none.
        if len(outputs) == 1:
            return outputs[0]
        return tuple(outputs) if outputs else None

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
                    plan = compile_plan(self.graph, targets, tuple(self.graph.inputs))
                    self._out_slots = plan.fetch_slots[: len(self.graph.outputs)]
                    self._stores_reads = self.graph._replays_reads
                    self._plan = plan  # published last: a reader of _plan finds _out_slots
                plan = self._plan
        if self._stores_reads and CALL_READS.get() is None:
            token = CALL_READS.set({})
            try:
                values = execute(plan, arrays)
            finally:
                CALL_READS.reset(token)
        else:
            values = execute(plan, arrays)
        return [values[s] for s in self._out_slots]


_NOT_REPLAYED: Final = frozenset({"Placeholder", "NoOp", "VarHandleOp"})
_WRITES: Final = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})
_CALL_TYPES: Final = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


_SIDE_EFFECTS_ONLY: Final = frozenset({"PrintV2"})

# Ops that run function graphs and replay them (set by ``_control_flow``, which imports
# this module): op type -> (the op replayed on its input values, giving its outputs; the
# functions it runs, which must be replayable for the op to be).
REPLAY_RULES: dict[
    str,
    tuple[Callable[[Operation, list[Any]], list[Any]], Callable[[Operation], list[Any]]],
] = {}
_REPLAYED_STATEFUL: Final = frozenset({"ReadVariableOp", *_WRITES, *_SIDE_EFFECTS_ONLY})
# Checks: a replay runs them again, on the values they checked in the call.
_CHECKS: Final = frozenset({"Assert", "CheckNumerics"})


def _replayable(fn: ConcreteFunction, checks: bool = False, draws: bool = True) -> bool:
    """Whether a call of ``fn`` may be replayed op by op in place of the call: its stateful
    ops (through nested calls) are reads, writes and prints, which a replay handles (see
    ``_replay``), and it has no control dependency on an outside op. ``checks``: checks
    are allowed too. ``draws``: so are random ops while a draw log is set (an eager
    call's gradient), which serves each replayed random op the values the call drew;
    without one they would draw anew."""
    if fn.graph._control_captures:
        return False
    for op in fn.graph.control_outputs:
        if op._type in _REPLAYED_STATEFUL or (checks and op._type in _CHECKS):
            continue
        if draws and "rng" in op._attrs and DRAW_LOG.get() is not None:  # _ops._random
            continue
        if op._type in _CALL_TYPES and _replayable(op._attrs["f"], checks, draws):
            continue
        rule = REPLAY_RULES.get(op._type)
        if rule is not None and all(_replayable(f, checks, draws) for f in rule[1](op)):
            continue
        return False
    return True


# Set by ``_gradients`` (which traces functions): the trace of ``fn._replay``, or None.
TRACE_REPLAY: list[Callable[[ConcreteFunction], ConcreteFunction | None]] = []


def _replay_function(fn: ConcreteFunction) -> ConcreteFunction | None:
    """A function that replays ``fn`` (see ``_replay``), for calls a replay keeps as calls:
    those of functions with checks, whose checks and reads it runs while their writes
    become reads. None for functions that draw random values or depend on outside ops
    (such a call stays a call of ``fn``). Traced once per function."""
    built = fn._replay_fn
    if built is None:
        made: Any = False
        if _replayable(fn, checks=True, draws=False):
            made = TRACE_REPLAY[0](fn) or False
        with fn._lock:
            if fn._replay_fn is None:
                fn._replay_fn = made
            built = fn._replay_fn
    return built or None


def _writes_variables(fn: ConcreteFunction, among: set[int] | None = None) -> bool:
    """Whether ``fn`` writes variables (through nested calls, conds and loops too); with
    ``among``, variables of those ids."""
    written = fn._written
    if written is None:
        # Found once per function (its graph is final): gradients ask again for every
        # cond, loop and call in the graph (sf.gradients over a chain of 400 conds that
        # read a variable: 0.36 s without this, 0.27 s with it, 0.14 s with _written_after).
        found: set[int] = set()
        for op in fn.graph.control_outputs:
            kind = op._type
            if kind in _WRITES:
                found.add(id(op._attrs["var"]))
            elif kind in _CALL_TYPES:
                found.update(_written_ids(op._attrs["f"]))
            else:
                rule = REPLAY_RULES.get(kind)
                if rule is not None:
                    for f in rule[1](op):
                        found.update(_written_ids(f))
        # Racing threads store equal sets: no lock needed.
        written = fn._written = frozenset(found)
    return bool(written) if among is None else not written.isdisjoint(among)


def _written_ids(fn: ConcreteFunction) -> frozenset[int]:
    """The ids of the variables ``fn`` writes (see ``_writes_variables``)."""
    if fn._written is None:
        _writes_variables(fn)
    return fn._written  # type: ignore[return-value]


def _op_written_ids(op: Operation) -> frozenset[int]:
    """The ids of the variables ``op`` writes (through the functions it runs)."""
    kind = op._type
    if kind in _WRITES:
        return frozenset((id(op._attrs["var"]),))
    if kind in _CALL_TYPES:
        return _written_ids(op._attrs["f"])
    rule = REPLAY_RULES.get(kind)
    if rule is None:
        return frozenset()
    return frozenset().union(*(_written_ids(f) for f in rule[1](op)))


# graph -> (how many of its ops were scanned, (op id, ids of the variables it writes) of
# each of those that write): ops are only ever added, so each op is scanned once. Asked
# for every call, cond and loop a gradient differentiates: scanning the later ops each
# time made sf.gradients quadratic (a chain of 400 conds reading a variable: 0.27 s, not
# 0.14 s as before conds were asked).
_GRAPH_WRITES: weakref.WeakKeyDictionary[Any, tuple[int, tuple[tuple[int, frozenset[int]], ...]]]
_GRAPH_WRITES = weakref.WeakKeyDictionary()
_GRAPH_WRITES_LOCK = threading.Lock()


def _written_after(op: Operation, among: set[int]) -> bool:
    """Whether an op made after ``op`` in its graph writes a variable of ids ``among``."""
    graph = op.graph
    ops = graph.get_operations()
    with _GRAPH_WRITES_LOCK:
        scanned, writes = _GRAPH_WRITES.get(graph, (0, ()))
    if scanned < len(ops):
        found = [(o._id, ids) for o in ops[scanned:] if (ids := _op_written_ids(o))]
        writes = (*writes, *found)
        with _GRAPH_WRITES_LOCK:
            if _GRAPH_WRITES.get(graph, (0,))[0] < len(ops):
                _GRAPH_WRITES[graph] = (len(ops), writes)
    after = op._id
    return any(i > after and not ids.isdisjoint(among) for i, ids in writes)


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
