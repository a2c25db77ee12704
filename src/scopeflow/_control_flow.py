"""Control flow: ``cond`` and ``while_loop``.

Eagerly both are Python control flow. While a graph is built, each branch, loop condition
and loop body is built once into its own *control-flow graph* (a function graph that
captures the outside values it uses), and one ``If`` or ``While`` op runs them: only the
taken branch runs, and the body runs once per iteration. A control-flow graph is the
control-flow scope of the ops in it; ``control_dependencies(None)`` and ``init_scope``
leave it, so what they create runs once, unconditionally, in the enclosing graph.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeGuard

import numpy as np

from ._concrete import ConcreteFunction, _fill_outputs, _flatten_outputs
from ._context import EAGER, _roots, state_get
from ._control_flow_graph import (
    ControlFlowGraph as ControlFlowGraph,
    _build,
    _check_pred,
    _merge_shapes,
    _op_scope,
    _squeezed,
    _structure,
    _StructureMismatchError,
)
from ._func_graph import add_control_captures
from ._graph import Tensor, get_default_graph
from ._loop_shapes import (
    check_body,
    check_entry,
    check_run_shapes,
    fits,
    flat_invariants,
    var_names,
)
from ._nest import fill, flatten
from ._ops._core import apply, constant, convert_to_tensor
from ._ops._custom_grad import stop_gradient
from ._ops._math import less, logical_and
from ._ops._registry import Spec, register_op
from ._ops._shape import reshape
from ._read_log import recording_kernel
from ._tensor import EagerTensor

__all__ = ["cond", "while_loop"]

_BOOL: Final = np.dtype(np.bool_)


# -- cond ------------------------------------------------------------------------------


def _if_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    then: ConcreteFunction = attrs["then"]
    other: ConcreteFunction = attrs["else"]
    return tuple(
        (a._dtype, _merge_shapes(a._shape, b._shape))
        for a, b in zip(then.graph.outputs, other.graph.outputs, strict=True)
    )


def _if_kernel(attrs: dict[str, Any], pred: np.ndarray[Any, Any], *captures: Any) -> Any:
    n_then = attrs["n_then"]
    if bool(pred):
        outputs = attrs["then"]._run(list(captures[:n_then]))
    else:
        outputs = attrs["else"]._run(list(captures[n_then:]))
    if len(outputs) == 1:
        return outputs[0]
    return tuple(outputs) if outputs else None


def _if_bind(attrs: dict[str, Any]) -> Callable[..., Any]:
    kernel = functools.partial(_if_kernel, attrs)
    if attrs["then"]._keeps_reads or attrs["else"]._keeps_reads:
        # A gradient in a graph replays this cond when the graph runs, with its reads.
        return recording_kernel(attrs, kernel)
    return kernel


IF = register_op(
    "If", infer=_if_rule, kernel=_if_kernel, same_dtype=False, stateful=True, bind=_if_bind
)
STATELESS_IF = register_op(
    "StatelessIf", infer=_if_rule, kernel=_if_kernel, same_dtype=False, bind=_if_bind
)


def _eager_bool(value: Any, what: str) -> bool:
    t = _squeezed(value if isinstance(value, EagerTensor) else convert_to_tensor(value))
    _check_pred(t, what)
    return bool(t)


def cond(
    pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any], name: str | None = None
) -> Any:
    """``true_fn()`` if ``pred`` else ``false_fn()``.

    Eagerly this is an ``if``. In a graph both branches are built (each once) and only
    the taken one runs; their results must have the same structure and dtypes.

    Example:
        >>> import scopeflow as sf
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     p = sf.placeholder(sf.bool_, shape=())
        ...     r = sf.cond(p, lambda: sf.constant(1.0), lambda: sf.constant(2.0))
        >>> float(sf.Session(g).run(r, {p: False}))
        2.0
    """
    if not callable(true_fn) or not callable(false_fn):
        msg = "cond() takes two callables, true_fn and false_fn, that build each branch"
        raise TypeError(msg)
    if state_get(_roots[0])[EAGER]:
        return true_fn() if _eager_bool(pred, "cond() pred") else false_fn()
    label = name or "cond"
    outer = get_default_graph()
    pred_t = _squeezed(convert_to_tensor(pred))
    _check_pred(pred_t, "cond() pred")
    with _op_scope(label) as scope:
        then, then_template, _ = _build(
            outer, true_fn, f"{label}_true", f"cond true branch {label!r}", (), scope
        )
        other, other_template, _ = _build(
            outer, false_fn, f"{label}_false", f"cond false branch {label!r}", (), scope
        )
    if _structure(then_template) != _structure(other_template):
        msg = (
            f"cond {label!r}: true_fn and false_fn must return the same structure; got "
            f"{_structure(then_template)} and {_structure(other_template)}"
        )
        raise _StructureMismatchError(msg)
    for a, b in zip(then.graph.outputs, other.graph.outputs, strict=True):
        if a.dtype != b.dtype:
            msg = (
                f"cond {label!r}: the branches return different dtypes for one output "
                f"({a.dtype.name} from true_fn, {b.dtype.name} from false_fn)"
            )
            raise TypeError(msg)
    captures = [*then.captured_inputs, *other.captured_inputs]
    stateful = then.graph.control_outputs or other.graph.control_outputs
    attrs = {"then": then, "else": other, "n_then": len(then.captured_inputs)}
    result = apply(IF if stateful else STATELESS_IF, (pred_t, *captures), attrs, scope or label)
    if isinstance(result, tuple):
        outputs = list(result)
    else:
        outputs = [result] if then.graph.outputs else []
    add_control_captures(outputs[0]._op if outputs else result, (then.graph, other.graph))
    return _fill_outputs(then_template, outputs)


# -- while_loop ------------------------------------------------------------------------


def _while_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    # The outputs claim the shape invariants: the initial values (zero iterations) and
    # every body output fit them, and the kernel checks that at run time.
    invariants = attrs.get("invariants")
    if invariants is None:  # a While op built without them: its inputs' shapes
        return tuple(specs[: attrs["n_vars"]])
    return tuple((dtype, inv) for (dtype, _), inv in zip(specs, invariants, strict=False))


def _run_loop(attrs: dict[str, Any], values: list[Any], caps: Sequence[Any]) -> list[Any]:
    n_vars, n_cond = attrs["n_vars"], attrs["n_cond"]
    cond_caps, body_caps = list(caps[:n_cond]), list(caps[n_cond:])
    limit = attrs["max"]
    checked = attrs.get("checked")
    if checked:
        check_run_shapes(attrs, values, "on entry")
    i = 0
    while (limit is None or i < limit) and bool(attrs["cond"]._run(values + cond_caps)[0]):
        values = attrs["body"]._run(values + body_caps)[:n_vars]
        i += 1
        if checked:
            check_run_shapes(attrs, values, f"after iteration {i}")
    return values


def _while_kernel(attrs: dict[str, Any], *arrays: Any) -> Any:
    n = attrs["n_vars"]
    values = _run_loop(attrs, list(arrays[:n]), arrays[n:])
    return values[0] if n == 1 else tuple(values)


def _while_bind(attrs: dict[str, Any]) -> Callable[..., Any]:
    kernel = functools.partial(_while_kernel, attrs)
    if attrs["body"]._keeps_reads or attrs["cond"]._keeps_reads:
        # A gradient in a graph replays this loop when the graph runs, with its reads.
        return recording_kernel(attrs, kernel)
    return kernel


WHILE = register_op(
    "While",
    infer=_while_rule,
    kernel=_while_kernel,
    same_dtype=False,
    stateful=True,
    bind=_while_bind,
)
# A loop whose condition and body run no stateful op, as in TensorFlow: like
# StatelessIf, it is not ordered with the function's stateful ops, and runs only if used.
STATELESS_WHILE = register_op(
    "StatelessWhile", infer=_while_rule, kernel=_while_kernel, same_dtype=False, bind=_while_bind
)


def _leaf_list(loop_vars: Any) -> tuple[list[Any], Any]:
    leaves: list[Any] = []
    template = _flatten_outputs(list(loop_vars), leaves)
    return leaves, template


def while_loop(
    cond: Callable[..., Any],
    body: Callable[..., Any],
    loop_vars: Sequence[Any],
    maximum_iterations: int | None = None,
    name: str | None = None,
    *,
    shape_invariants: Sequence[Any] | None = None,
    parallel_iterations: int = 10,
    back_prop: bool = True,
    swap_memory: bool = False,
) -> Any:
    """Repeat ``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)`` holds.

    Eagerly this is a ``while`` loop. In a graph the condition and body are built once
    and run once per iteration. The body must return values of the same structure and
    dtypes as ``loop_vars``, and shapes within the shape invariants: by default each
    loop variable's initial static shape. ``shape_invariants`` (the structure of
    ``loop_vars``, one shape per tensor: a tuple with None for a dimension that may
    change, or None for an unknown rank) relaxes them. The loop's outputs have the
    invariant shapes, and values that break an invariant at run time raise
    :class:`~scopeflow.errors.InvalidArgumentError`.

    ``maximum_iterations`` bounds the number of iterations: a Python int, an eager or
    constant integer scalar, or (in a graph) an integer scalar tensor known only at run
    time, for which the loop counts its iterations in an extra loop variable; a variable
    is read when the loop starts. ``loop_vars`` may be a list, a tuple or a namedtuple,
    and the result is of the same kind.

    TensorFlow's keywords ``parallel_iterations`` and ``swap_memory`` are accepted and
    ignored (iterations run one after another on NumPy); ``back_prop=False`` stops
    gradients at the loop's outputs, as TensorFlow 2 does (prefer ``sf.stop_gradient``).

    Example:
        >>> import scopeflow as sf
        >>> i, total = sf.while_loop(lambda i, t: i < 4, lambda i, t: (i + 1, t + i), [0, 0])
        >>> int(i), int(total)
        (4, 6)
        >>> g = sf.Graph()
        >>> with g.as_default():
        ...     _, v = sf.while_loop(
        ...         lambda i, v: i < 3,
        ...         lambda i, v: (i + 1, sf.concat([v, v], 0)),
        ...         [0, sf.constant([1.0])],
        ...         shape_invariants=[(), (None,)],
        ...     )
        >>> v.shape, sf.Session(g).run(v).shape
        ((None,), (8,))
    """
    del parallel_iterations, swap_memory  # scheduling hints with nothing to schedule
    if not back_prop:
        out = while_loop(cond, body, loop_vars, maximum_iterations, name,
                         shape_invariants=shape_invariants)  # fmt: skip
        leaves: list[Any] = []
        template = flatten(out, leaves)
        stopped = [stop_gradient(x) if isinstance(x, (Tensor, EagerTensor)) else x for x in leaves]
        return fill(template, stopped)
    if not callable(cond) or not callable(body):
        msg = "while_loop() takes callables cond and body"
        raise TypeError(msg)
    if not isinstance(loop_vars, (list, tuple)) or not loop_vars:
        msg = f"while_loop() loop_vars must be a non-empty list or tuple, got {loop_vars!r}"
        raise TypeError(msg)
    if isinstance(maximum_iterations, (list, tuple)):
        msg = (
            f"while_loop() maximum_iterations must be an integer, got {maximum_iterations!r}; "
            f"pass shape invariants by keyword: while_loop(cond, body, loop_vars, "
            f"shape_invariants=[...])"
        )
        raise TypeError(msg)
    read = getattr(maximum_iterations, "__sf_tensor__", None)
    if read is not None and not isinstance(maximum_iterations, (Tensor, EagerTensor)):
        # A variable: its value when the loop runs (in a graph), as in TensorFlow.
        maximum_iterations = read()
    if _is_run_time_bound(maximum_iterations):
        return _counted_while_loop(cond, body, loop_vars, maximum_iterations, name,
                                   shape_invariants)  # fmt: skip
    if maximum_iterations is not None:
        maximum_iterations = _iteration_bound(maximum_iterations)
        if maximum_iterations < 0:
            msg = f"while_loop() maximum_iterations must be >= 0, got {maximum_iterations}"
            raise ValueError(msg)
    label = name or "while"
    leaves, template = _leaf_list(loop_vars)
    names = var_names(leaves)
    given = None
    if shape_invariants is not None:  # checked before any op is built for loop_vars
        given = flat_invariants(template, shape_invariants, names, label)
    tensors = [convert_to_tensor(x) for x in leaves]
    if given is None:
        invariants = [t.shape for t in tensors]
    else:
        check_entry(tensors, given, names, label)
        invariants = given
    where = f"while_loop {label!r}"
    relaxed = shape_invariants is not None

    def unflatten(values: Sequence[Any]) -> list[Any]:
        return _fill_outputs(template, list(values))  # type: ignore[no-any-return]

    def flatten_body(result: Any) -> list[Any]:
        if not isinstance(result, (list, tuple)):
            result = [result]
        out: list[Any] = []
        got = _flatten_outputs(list(result), out)
        if _structure(got) != _structure(template):
            msg = (
                f"while_loop {label!r}: body must return the structure of loop_vars "
                f"({_structure(template)}), got {_structure(got)}"
            )
            raise ValueError(msg)
        return out

    if state_get(_roots[0])[EAGER]:
        values = tensors
        i = 0
        while (maximum_iterations is None or i < maximum_iterations) and _eager_bool(
            cond(*unflatten(values)), f"while_loop {label!r} cond"
        ):
            new = [convert_to_tensor(x) for x in flatten_body(body(*unflatten(values)))]
            check_body(values, new, invariants, names, where, relaxed)
            values = new
            i += 1
        return _like(loop_vars, unflatten(values))
    with _op_scope(label) as scope:
        return _graph_while(cond, body, loop_vars, maximum_iterations, label, scope, tensors,
                            invariants, names, where, relaxed, unflatten, flatten_body)  # fmt: skip


def _graph_while(
    cond: Callable[..., Any],
    body: Callable[..., Any],
    loop_vars: Any,
    maximum_iterations: int | None,
    label: str,
    scope: str,
    tensors: list[Tensor],
    invariants: list[Any],
    names: Sequence[str],
    where: str,
    relaxed: bool,
    unflatten: Callable[[Sequence[Any]], list[Any]],
    flatten_body: Callable[[Any], list[Any]],
) -> Any:
    """``while_loop`` in a graph: its condition and body built under ``scope``."""
    outer = get_default_graph()
    specs = [(t.dtype, inv) for t, inv in zip(tensors, invariants, strict=True)]
    cond_fn, _, _ = _build(
        outer,
        lambda *a: _squeezed(cond(*unflatten(a))),
        f"{label}_cond",
        f"while_loop condition {label!r}",
        specs,
        scope,
    )
    (pred,) = cond_fn.graph.outputs if len(cond_fn.graph.outputs) == 1 else (None,)
    if pred is None:
        msg = f"while_loop {label!r}: cond must return one bool scalar"
        raise ValueError(msg)
    _check_pred(pred, f"while_loop {label!r} cond")
    body_fn, _, _ = _build(
        outer,
        lambda *a: flatten_body(body(*unflatten(a))),
        f"{label}_body",
        f"while_loop body {label!r}",
        specs,
        scope,
    )
    check_body(tensors, body_fn.graph.outputs, invariants, names, where, relaxed)
    # Run-time checks only where a value could break its invariant: an initial value
    # whose static shape is less specific, or a body output that is (static inference
    # already guarantees the rest).
    checked = tuple(
        (i, inv)
        for i, (t, out, inv) in enumerate(
            zip(tensors, body_fn.graph.outputs, invariants, strict=True)
        )
        if inv is not None and not (fits(t.shape, inv) and fits(out.shape, inv))
    )
    attrs = {
        "cond": cond_fn,
        "body": body_fn,
        "n_vars": len(tensors),
        "n_cond": len(cond_fn.captured_inputs),
        "max": maximum_iterations,
        "invariants": tuple(invariants),
        "checked": checked,
        "label": label,
        "names": tuple(names),
    }
    inputs = (*tensors, *cond_fn.captured_inputs, *body_fn.captured_inputs)
    stateful = cond_fn.graph.control_outputs or body_fn.graph.control_outputs
    result = apply(WHILE if stateful else STATELESS_WHILE, inputs, attrs, scope or label)
    outputs = list(result) if isinstance(result, tuple) else [result]
    add_control_captures(outputs[0]._op, (cond_fn.graph, body_fn.graph))
    return _like(loop_vars, unflatten(outputs))


def _like(loop_vars: Sequence[Any], values: list[Any]) -> Any:
    """``values`` in the container of ``loop_vars``: a list, a tuple or a namedtuple."""
    kind = type(loop_vars)
    return kind(*values) if hasattr(kind, "_fields") else kind(values)  # type: ignore[call-arg]


def _is_run_time_bound(value: Any) -> TypeGuard[Tensor]:
    """Whether ``maximum_iterations`` is a graph tensor known only when the loop runs."""
    return (
        isinstance(value, Tensor) and value.op.type != "Const" and not state_get(_roots[0])[EAGER]
    )


def _counted_while_loop(
    cond: Callable[..., Any],
    body: Callable[..., Any],
    loop_vars: Sequence[Any],
    bound: Tensor,
    name: str | None,
    shape_invariants: Sequence[Any] | None,
) -> Any:
    """``while_loop`` bounded by a graph tensor: as TensorFlow does, a counter loop
    variable ``i`` is added and the condition becomes ``i < bound and cond(...)`` (the
    user's condition is still evaluated once more after the last iteration). The counter
    comes last, so messages number the user's loop variables as ``loop_vars`` does."""
    label = name or "while"
    if bound.dtype.kind not in "iu":
        msg = (
            f"while_loop {label!r}: maximum_iterations must be an integer tensor, got "
            f"{bound.name!r} of dtype {bound.dtype.name}"
        )
        raise TypeError(msg)
    if bound.shape is not None and bound.shape != ():  # unknown rank: checked when run
        msg = (
            f"while_loop {label!r}: maximum_iterations must be a scalar, got {bound.name!r} "
            f"of shape {bound.shape}"
        )
        raise ValueError(msg)
    if not isinstance(loop_vars, (list, tuple)) or not loop_vars:
        msg = f"while_loop() loop_vars must be a non-empty list or tuple, got {loop_vars!r}"
        raise TypeError(msg)
    if bound.shape is None:  # a run-time error naming the bound if it is not a scalar
        bound = reshape(bound, (), name=f"{label}_maximum_iterations")
    n_vars = len(loop_vars)
    invariants = None
    if shape_invariants is not None:
        # Checked against the caller's loop_vars before the counter joins them.
        leaves, template = _leaf_list(loop_vars)
        flat_invariants(template, shape_invariants, var_names(leaves), label)
        invariants = [*shape_invariants, ()]
    one = np.ones((), bound.dtype)

    def counted_cond(*values: Any) -> Any:
        return logical_and(less(values[-1], bound), cond(*values[:-1]))

    def counted_body(*values: Any) -> list[Any]:
        result = body(*values[:-1])
        if not isinstance(result, (list, tuple)):
            result = [result]
        if len(result) != n_vars:
            msg = (
                f"while_loop {label!r}: body must return {n_vars} loop variables, as "
                f"loop_vars has, got {len(result)}"
            )
            raise ValueError(msg)
        return [*result, values[-1] + one]

    start = constant(0, dtype=bound.dtype)
    out = while_loop(
        counted_cond, counted_body, [*loop_vars, start], name=name,
        shape_invariants=invariants,
    )  # fmt: skip
    return _like(loop_vars, out[:-1])


def _iteration_bound(value: Any) -> int:
    """``maximum_iterations`` as a Python int: an int or an eager integer scalar."""
    if isinstance(value, Tensor) and value.op.type == "Const":
        value = value.op._attrs["value"]  # a constant bound is known at build time
    if isinstance(value, Tensor):
        msg = (
            f"while_loop() maximum_iterations: the graph tensor {value.name!r} belongs to "
            f"a graph, but the loop runs eagerly; pass a Python int or an eager tensor"
        )
        raise TypeError(msg)
    if isinstance(value, EagerTensor):
        value = value.numpy()
    if isinstance(value, bool) or getattr(value, "ndim", 0) != 0:
        msg = f"while_loop() maximum_iterations must be an integer scalar, got {value!r}"
        raise TypeError(msg)
    try:
        return operator.index(value)
    except TypeError:
        msg = f"while_loop() maximum_iterations must be an integer, got {value!r}"
        raise TypeError(msg) from None


# The gradients and replays of If and While (imported last: that module imports this one).
from . import _control_flow_grad as _control_flow_grad  # noqa: E402
