"""Symbolic ``sf.gradients``, and the gradients of ops that run other code.

``gradients`` walks the ops of a graph between the sources and the targets with the same
backward pass a tape uses. Ops that run function graphs are differentiated by replaying
the graph on a fresh tape (:func:`~scopeflow._replay_grad.replay_gradients`): a call op inlines
the function's ops while a graph is built, so its gradient is made of ordinary ops. A
loop cannot be inlined (it runs a number of times known only at run time), so its
gradient is a ``RunTimeVJP`` op (``StatefulRunTimeVJP`` when the loop reads variables)
whose kernel replays the loop eagerly on a tape when it runs. That op is differentiable
in turn: its gradient is another such op for the function it computes, which gives
derivatives of any order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from ._backprop import (
    CALLS,
    READ,
    SOURCE_VARIABLES,
    Record,
    VariableGrads,
    attr_variables,
    backprop,
    differentiable,
    record_of,
    variables_read,
)
from ._concrete import (
    _CALL_TYPES,
    REPLAY_RULES,
    TRACE_REPLAY,
    ConcreteFunction,
    TensorSpec,
    _op_name,
    _replayable,
    _writes_variables,
    _written_after,
    _written_ids,
)
from ._context import EAGER, _roots, eager_mode, state_get
from ._function import function
from ._grad_structure import _leaves, _leaves_like, unconnected_is_zero
from ._graph import Operation, Tensor, get_default_graph
from ._ops._core import apply
from ._ops._grad_util import GradRecord, register_gradient, zeros_like
from ._ops._registry import REGISTRY, Spec, register_op
from ._ops._seeds import DRAW_LOG
from ._read_log import CALL_READS, READ_LOG
from ._replay_grad import replay_gradients
from ._tape import no_tapes
from ._tensor import EagerTensor, wrap
from ._variables import Variable
from .errors import InvalidArgumentError

__all__ = ["grad_at_run_time", "gradients", "needs_its_reads", "run_time_vjp"]


# -- function calls ------------------------------------------------------------------


def _call_grad(op: GradRecord, *dys: Any) -> VariableGrads:
    """Differentiate a function call: eagerly by calling its backward function, else (and
    for calls that drew random values) by replaying its graph."""
    concrete = op.attrs["f"]
    draws = op.attrs.get("draws")
    reads = op.attrs.get("reads")
    # The backward function or the replay must see the values the call's reads returned
    # (set by an eager call; else those of the log already set, if any).
    read_token = READ_LOG.set(reads.replayer()) if reads is not None else None
    try:
        eager = state_get(_roots[0])[EAGER]
        if draws is None and eager:
            result = _call_backward(concrete, op.inputs, dys, op.attrs.get("needed"))
            if result is not None:
                return result
        variables = [v for v in variables_read(concrete) if v.dtype.kind in "fc"]
        if (
            not eager
            and reads is None
            and _replayable(concrete, checks=True, draws=False)
            and needs_its_reads(op, [concrete])
        ):
            return grad_at_run_time(op, [concrete], concrete._replay, variables, dys, "call_grad")
        # The replay must see the random values the call drew (set by an eager call).
        token = DRAW_LOG.set(draws.replayer()) if draws is not None else None
        try:
            input_grads, var_grads = replay_gradients(
                concrete._replay, list(op.inputs), variables, dys
            )
        finally:
            if token is not None:
                DRAW_LOG.reset(token)
    finally:
        if read_token is not None:
            READ_LOG.reset(read_token)
    return VariableGrads(input_grads, list(zip(variables, var_grads, strict=True)))


def needs_its_reads(op: GradRecord, functions: Sequence[ConcreteFunction]) -> bool:
    """Whether a gradient built into a graph must replay ``op`` (a call, cond or loop
    running ``functions``) with the values its reads returned: it writes variables, or an
    op made after it in its graph writes a variable it reads (its gradient's reads, made
    later still, would see those writes)."""
    if any(_writes_variables(f) for f in functions):
        return True
    read = {id(v) for f in functions for v in variables_read(f)}
    if not read or not op.outputs:
        return False
    made = op.outputs[0].op
    return _written_after(made, read)


def grad_at_run_time(
    op: GradRecord,
    functions: Sequence[ConcreteFunction],
    replay: Replay,
    variables: list[Variable],
    dys: Sequence[Any],
    name: str,
) -> VariableGrads:
    """The gradient, built into a graph, of ``op`` (a call, cond or loop running
    ``functions``) whose reads ``needs_its_reads``.

    Replayed into the graph as ops, its reads would run after the op and see what was
    written. Instead one op replays ``op`` (``replay``, eagerly) when the graph runs, after
    ``op``, with the values its reads returned in that run (its kernel keeps them, see
    ``_read_log.CALL_READS``, in every run of this graph and of the graphs around it).
    """
    for f in functions:
        # Kernels of the ops running ``f`` compiled from now on keep their reads.
        f._keeps_reads = True
    graph: Any = get_default_graph()
    while graph is not None:
        graph._replays_reads = True
        graph = getattr(graph, "outer_graph", None) if graph.building_function else None
    made = op.outputs[0].op if op.outputs else None
    deps = [made] if made is not None and made.graph is get_default_graph() else []
    with get_default_graph().control_dependencies(deps):
        return run_time_vjp(replay, list(op.inputs), dys, variables, name, reads_of=op.attrs)


# The backward function of a trace: ``(backward ConcreteFunction, indices of the forward
# outputs it takes gradients for, variables it returns gradients for)``, or _UNSUPPORTED.
_Backward = tuple[ConcreteFunction, list[int], list[Variable]]
_UNSUPPORTED: Final = "unsupported"


def _call_backward(
    concrete: ConcreteFunction,
    inputs: Sequence[Any],
    dys: Sequence[Any],
    needed: tuple[bool, ...] | None,
) -> VariableGrads | None:
    """The gradient of an eager call of ``concrete`` as one call of its backward function.

    Replaying the forward graph op by op on a tape costs every op's eager overhead twice
    (forward and backward); the backward function, traced once per forward trace, runs
    both as one compiled plan (a traced MLP's input gradient: about 11x NumPy before,
    under 3x after). A tape that sees this call records it as one call op, whose own
    gradient is that function's backward function: higher orders work the same way.

    Returns None where the replay must be used instead: the backward graph could not be
    built (``_UNSUPPORTED``, kept so the trace is not retried on every call), or the values
    are not eager tensors of the traced dtypes.
    """
    # One backward function per forward trace and set of differentiated inputs
    # (``needed``, from the tape: None for all) and variables (the tape's sources).
    source_vars = SOURCE_VARIABLES.get()
    if source_vars is None:
        var_needed = None
    elif not source_vars:  # no variable asked for (an input's gradient): no scan
        var_needed = (False,) * len(variables_read(concrete))
    else:
        var_needed = tuple(id(v) in source_vars for v in variables_read(concrete))
    key = (needed, var_needed)
    cache: dict[Any, _Backward | str] | None = concrete._backward
    backward = None if cache is None else cache.get(key)
    if backward is None:
        built = _build_backward(concrete, needed, var_needed)
        # Published only once built (a failed or cancelled build leaves nothing behind);
        # racing builders each build one, and every caller uses the first published.
        with concrete._lock:
            if concrete._backward is None:
                concrete._backward = {}
            backward = concrete._backward.setdefault(key, built)
    if isinstance(backward, str):  # _UNSUPPORTED
        return None
    fn, kept, variables = backward
    leaves = [*inputs, *[dys[i] for i in kept]]
    for leaf, ph in zip(leaves, fn.graph.inputs, strict=True):
        if type(leaf) is not EagerTensor or leaf._value.dtype != ph._dtype:
            return None
    try:
        input_grads, var_grads = fn._call_flat(leaves)
    except InvalidArgumentError:
        # A backward graph traced for unknown sizes that these values break: the replay
        # works op by op on the real values (and raises the real error, if there is one).
        return None
    return VariableGrads(input_grads, list(zip(variables, var_grads, strict=True)))


def _build_backward(
    concrete: ConcreteFunction,
    needed: tuple[bool, ...] | None,
    var_needed: tuple[bool, ...] | None,
) -> _Backward | str:
    """Trace the backward function of ``concrete``: forward ops and their gradient ops,
    built symbolically (as ``sf.gradients`` does) into one function graph."""
    fg = concrete.graph
    if _repeated_replay(concrete):
        return _UNSUPPORTED
    kept = [i for i, t in enumerate(fg.outputs) if t.dtype.kind in "fc"]
    read = variables_read(concrete)
    variables = [
        v
        for i, v in enumerate(read)
        if v.dtype.kind in "fc" and (var_needed is None or var_needed[i])
    ]
    n_outputs = len(fg.outputs)

    def backward(xs: list[Any], given: list[Any]) -> Any:
        dys: list[Any] = [None] * n_outputs
        for i, dy in zip(kept, given, strict=True):
            dys[i] = dy
        input_grads, var_grads = replay_gradients(
            concrete._replay, list(xs), variables, dys, needed
        )
        if needed is not None:
            # Not returned, so the plan of the backward function never computes them.
            input_grads = [g if n else None for g, n in zip(input_grads, needed, strict=True)]
        return list(input_grads), list(var_grads)

    in_specs = [TensorSpec(ph.shape, ph.dtype) for ph in fg.inputs]
    dy_specs = [TensorSpec(fg.outputs[i].shape, fg.outputs[i].dtype) for i in kept]
    traced = function(backward, name=f"{_op_name(concrete.name)}_backward")
    try:
        # Traced out of sight of the caller's tapes, which see only the call.
        with no_tapes():
            fn: ConcreteFunction = traced.get_concrete_function(in_specs, dy_specs)
    except (TypeError, ValueError, LookupError, NotImplementedError):
        # Something the symbolic gradient cannot express; the eager replay raises the
        # same error if (and only when) the path is really differentiated.
        return _UNSUPPORTED
    _drop_unused_reads(fn.graph, keep_repeated=bool(_written_ids(concrete)))
    return fn, kept, variables


def _repeated_replay(concrete: ConcreteFunction) -> bool:
    """Whether ``concrete`` runs one op whose gradient replays it again (a cond, a loop, or
    a call of a function with checks, which stays a call in a replay built into a graph)
    and whose functions read variables, more than once (a nested function with one, called
    twice).

    In the backward function such an op's gradient replays it once more after the forward
    replay, the last run first, and a read log serves each read op's values in the order
    the forward read them: the gradient of the last run would see the first run's values.
    The eager replay, which differentiates every run in order, is used instead. Only
    where those reads may differ between runs: the call writes a variable they read.
    """
    written = _written_ids(concrete)
    if not written:
        return False
    counts: dict[int, int] = {}

    def walk(fn: ConcreteFunction) -> bool:
        for op in fn.graph.get_operations():
            if op._type in _CALL_TYPES:
                callee: ConcreteFunction = op._attrs["f"]
                functions = [] if _replayable(callee, draws=False) else [callee]
                inner = [callee]
            else:
                rule = REPLAY_RULES.get(op._type)
                if rule is None:
                    continue
                functions = inner = rule[1](op)
            if any(id(v) in written for f in functions for v in variables_read(f)):
                # By function: two calls of one function run the same read ops.
                key = id(functions[0])
                seen = counts[key] = counts.get(key, 0) + 1
                if seen > 1:
                    return True
            if any(walk(f) for f in inner):
                return True
        return False

    return walk(concrete)


def _drop_unused_reads(graph: Any, keep_repeated: bool) -> None:
    """Let the plan of a backward graph skip the variable reads nothing uses.

    Stateful ops run on every call, so a read the replay made for a forward value the
    gradient does not need (the bias of an output layer, say) would run for nothing.
    Where reads are the graph's only stateful ops, their order in the chain of stateful
    ops means nothing (no write comes between them): the chain's control edges between
    reads are dropped, and so are the unused reads from the ops run on every call. A
    graph with any other stateful op is left as it is, and so is one where an op of the
    forward read more than once (a nested function called twice) if the forward writes
    (``keep_repeated``): a read log serves that op's values in the order the call read
    them, to every one of its reads (_read_log); without writes they are all equal.
    """
    reads = graph.control_outputs
    if not reads or any(op._type != READ for op in reads):
        return
    if keep_repeated and len({id(op._attrs) for op in reads}) != len(reads):
        return
    for op in reads:
        if op._control_inputs:
            op._control_inputs = tuple(c for c in op._control_inputs if c._type != READ)
    # The ops the outputs need (data and control edges): a read outside it is unused.
    needed: set[int] = set()
    stack = [t._op for t in graph.outputs]
    while stack:
        op = stack.pop()
        if id(op) not in needed:
            needed.add(id(op))
            stack.extend(t._op for t in op._inputs)
            stack.extend(op._control_inputs)
    graph.control_outputs = [op for op in reads if id(op) in needed]


def _trace_replay(concrete: ConcreteFunction) -> ConcreteFunction | None:
    """Trace ``concrete._replay`` as a function (see ``_concrete._replay_function``)."""
    specs = [TensorSpec(ph.shape, ph.dtype) for ph in concrete.graph.inputs]

    def replay(*xs: Any) -> list[Any]:
        return concrete._replay(list(xs))

    traced = function(replay, name=f"{_op_name(concrete.name)}_replay")
    try:
        # Traced on its own, out of sight of the caller's tapes and graph.
        with no_tapes():
            fn: ConcreteFunction = traced.get_concrete_function(*specs)
    except (TypeError, ValueError, LookupError, NotImplementedError):
        return None
    return fn


TRACE_REPLAY.append(_trace_replay)

for _call_type in ("PartitionedCall", "StatefulPartitionedCall"):
    register_gradient(_call_type)(_call_grad)


# -- gradients computed at run time --------------------------------------------------

Replay = Callable[[list[Any]], Sequence[Any]]


def _vjp(
    fn: Replay, inputs: list[Any], dys: Sequence[Any], slots: list[int], variables: list[Variable]
) -> list[Any]:
    """The gradients of ``fn`` at ``inputs`` for output gradients ``dys``: one per input in
    ``slots``, then one per variable, zeros where ``fn`` does not depend on it."""
    g_in, g_vars = replay_gradients(fn, inputs, variables, dys)
    out = [zeros_like(inputs[i]) if g_in[i] is None else g_in[i] for i in slots]
    out += [
        wrap(np.zeros(v.shape, v.dtype)) if g is None else g
        for v, g in zip(variables, g_vars, strict=True)
    ]
    return out


def _vjp_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return tuple(attrs["specs"])


def _vjp_kernel(attrs: dict[str, Any], *arrays: Any) -> Any:
    n = attrs["n_inputs"]
    # The gradient of a call replays it with the values its reads returned in this run.
    token = None
    reads_of = attrs.get("reads_of")
    if reads_of is not None:
        store = CALL_READS.get()
        entry = None if store is None else store.get(id(reads_of))
        if entry is not None:
            token = READ_LOG.set(entry[1].replayer())
    try:
        # The caller's tapes must not see the replay, and a pause of theirs must not stop
        # the private tapes that differentiate it.
        with eager_mode(), no_tapes():
            given = [wrap(np.asarray(a)) for a in arrays]
            grads = _vjp(attrs["fn"], given[:n], given[n:], attrs["slots"], attrs["variables"])
            out = [g.numpy() for g in grads]
    finally:
        if token is not None:
            READ_LOG.reset(token)
    return out[0] if len(out) == 1 else tuple(out)


RUN_TIME_VJP = register_op("RunTimeVJP", infer=_vjp_rule, kernel=_vjp_kernel, same_dtype=False)
# The same op when the function reads variables: stateful, so that in a function graph
# it runs in program order with the writes to those variables.
STATEFUL_RUN_TIME_VJP = register_op(
    "StatefulRunTimeVJP", infer=_vjp_rule, kernel=_vjp_kernel, same_dtype=False, stateful=True
)


def run_time_vjp(
    fn: Replay,
    inputs: list[Any],
    dys: Sequence[Any],
    variables: Sequence[Variable],
    name: str,
    reads_of: dict[str, Any] | None = None,
) -> VariableGrads:
    """The gradient of ``fn`` (an eager function of tensors, which may read
    ``variables``) at ``inputs``, as one op that computes it when it runs.

    Eagerly the op runs at once; in a graph it runs with the graph. Either way it is
    recorded like any op, so it can be differentiated again. ``reads_of``: the attrs of
    a call op whose reads, kept in the same run, ``fn`` replays (see ``_read_log``).
    """
    slots = [i for i, x in enumerate(inputs) if differentiable(x)]
    float_vars = [v for v in variables if v.dtype.kind in "fc"]
    if not slots and not float_vars:
        return VariableGrads([None] * len(inputs), [])
    specs: list[Spec] = [(inputs[i].dtype, inputs[i].shape) for i in slots]
    specs += [(v.dtype, v.shape) for v in float_vars]
    attrs = {
        "fn": fn,
        "n_inputs": len(inputs),
        "slots": slots,
        "variables": float_vars,
        "specs": specs,
    }
    if reads_of is not None:
        attrs["reads_of"] = reads_of
    opdef = STATEFUL_RUN_TIME_VJP if float_vars else RUN_TIME_VJP
    result = apply(opdef, (*inputs, *dys), attrs, name)
    results = list(result) if isinstance(result, tuple) else [result]
    input_grads: list[Any] = [None] * len(inputs)
    for slot, g in zip(slots, results, strict=False):
        input_grads[slot] = g
    return VariableGrads(input_grads, list(zip(float_vars, results[len(slots) :], strict=True)))


@register_gradient("RunTimeVJP")
@register_gradient("StatefulRunTimeVJP")
def _run_time_vjp_grad(op: GradRecord, *ddys: Any) -> VariableGrads:
    """The gradient of a gradient: a ``RunTimeVJP`` of the function the op computes."""
    attrs = op.attrs
    fn, n, slots, variables = attrs["fn"], attrs["n_inputs"], attrs["slots"], attrs["variables"]

    def vjp_of_fn(given: list[Any]) -> list[Any]:
        return _vjp(fn, given[:n], given[n:], slots, variables)

    return run_time_vjp(
        vjp_of_fn, list(op.inputs), ddys, variables, "vjp_grad", attrs.get("reads_of")
    )


# -- symbolic gradients for graphs ---------------------------------------------------


def gradients(
    ys: Any,
    xs: Any,
    grad_ys: Any = None,
    name: str | None = "gradients",
    gate_gradients: bool = False,
    aggregation_method: Any = None,
    stop_gradients: Any = None,
    unconnected_gradients: Any = "none",
) -> list[Any]:
    """Symbolic gradients of ``sum(ys)`` with respect to each of ``xs`` (graph mode).

    Adds gradient ops to the default graph; a session (or the enclosing function) runs
    them. Unconnected (or integer) sources give None, or zeros with
    ``unconnected_gradients="zero"``. TensorFlow's ``name``, ``gate_gradients`` and
    ``aggregation_method`` are accepted and ignored (they only shape TensorFlow's
    graph); ``stop_gradients`` is not implemented and raises ``NotImplementedError``
    (wrap those tensors in ``sf.stop_gradient`` instead).

    Raises:
        RuntimeError: called while executing eagerly.
        TypeError: a source is not a tensor or variable.
        ValueError: a target is not a tensor of the default graph.
        LookupError: an op on a path from a target to a source has no gradient.
        NotImplementedError: ``stop_gradients`` was given.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     x = sf.placeholder(sf.float32, shape=())
        ...     (dx,) = sf.gradients(x * x, [x])
        >>> float(sf.Session(g).run(dx, {x: 3.0}))
        6.0
    """
    del name, gate_gradients, aggregation_method  # TensorFlow graph-layout knobs
    if stop_gradients is not None:
        msg = (
            "sf.gradients(): stop_gradients is not supported; wrap those tensors in "
            "sf.stop_gradient() where they are computed"
        )
        raise NotImplementedError(msg)
    zero = unconnected_gradients != "none" and unconnected_is_zero(
        unconnected_gradients, "sf.gradients()"
    )
    if state_get(_roots[0])[EAGER]:
        msg = (
            "sf.gradients() builds symbolic gradients and needs graph mode; in eager code "
            "use sf.GradientTape"
        )
        raise RuntimeError(msg)
    y_list = list(_leaves(ys))
    x_list = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    for x in x_list:
        if not isinstance(x, (Tensor, Variable)):
            msg = (
                f"sf.gradients(): xs must be graph tensors or variables, got {x!r}; "
                f"differentiate eager values with sf.GradientTape"
            )
            raise TypeError(msg)
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
    out = [var_grads.get(id(x)) if isinstance(x, Variable) else grads.get(id(x)) for x in x_list]
    if zero:
        out = [zeros_like(x) if g is None else g for x, g in zip(x_list, out, strict=True)]
    return out


def _graph_records(ys: list[Tensor], xs: list[Any]) -> list[Record]:
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
        if op._type == READ:
            hit = id(op._attrs["var"]) in var_ids
        elif op._type in CALLS:
            hit = any(id(t) in reached for t in op._inputs) or any(
                id(v) in var_ids for v in attr_variables(op._attrs)
            )
        else:
            hit = opdef.differentiable and any(id(t) in reached for t in op._inputs)
        if hit:
            records.append(record_of(opdef, op._inputs, op._outputs, op._attrs))
            reached.update(id(t) for t in op._outputs)
    return records
