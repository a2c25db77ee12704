"""Gradients and gradient replays of the control-flow ops ``If`` and ``While``.

A gradient of an ``If`` is a ``cond`` of its branches' gradients; a gradient of a
``While`` replays the loop on a tape when the gradient op runs. When a gradient replays
a traced function that contains one of these ops, the op is replayed too (writes to
variables as reads, prints skipped) rather than run again: ``REPLAY_RULES``.
Imported by ``_control_flow`` once its ops are registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._backprop import (
    VariableGrads as _VariableGrads,
    differentiable as _differentiable,
    variables_read,
)
from ._concrete import REPLAY_RULES, ConcreteFunction, _replayable
from ._context import EAGER, _roots, state_get
from ._control_flow import cond, while_loop
from ._gradients import grad_at_run_time, needs_its_reads, run_time_vjp
from ._graph import get_default_graph
from ._ops._core import graph_tensor
from ._ops._grad_util import GradRecord, register_gradient, zeros_like
from ._replay_grad import replay_gradients

__all__: list[str] = []


def _local(x: Any) -> Any:
    """``x`` as a tensor of the graph being built (capturing it), or as it is eagerly."""
    frame = state_get(_roots[0])
    if frame[EAGER]:
        return x
    return graph_tensor(frame, get_default_graph(), x, None)


@register_gradient("If")
@register_gradient("StatelessIf")
def _if_grad(op: GradRecord, *dys: Any) -> _VariableGrads:
    """A cond of the branches' gradients: each branch replays itself on a tape."""
    pred, *captures = op.inputs
    then, other = op.attrs["then"], op.attrs["else"]
    n_then = op.attrs["n_then"]
    slots = [i for i, x in enumerate(captures) if _differentiable(x)]
    variables = list({id(v): v for f in (then, other) for v in variables_read(f)}.values())
    variables = [v for v in variables if v.dtype.kind in "fc"]

    def branch_grads(branch: ConcreteFunction, lo: int, hi: int) -> list[Any]:
        # In a graph, take the inputs into this branch's graph first, so the tape follows
        # the tensors the replayed ops really consume.
        inputs = [_local(x) for x in captures[lo:hi]]
        g_in, g_vars = replay_gradients(branch._replay, inputs, variables, dys)
        full: list[Any] = [None] * len(captures)
        full[lo:hi] = g_in
        grads = [full[i] if full[i] is not None else zeros_like(captures[i]) for i in slots]
        grads += [
            g if g is not None else zeros_like(v.read_value())
            for v, g in zip(variables, g_vars, strict=True)
        ]
        return grads

    n = len(captures)
    if not slots and not variables:
        return _VariableGrads([None] * len(op.inputs), [])
    if (
        not state_get(_roots[0])[EAGER]
        and all(_replayable(f, checks=True, draws=False) for f in (then, other))
        and needs_its_reads(op, [then, other])
    ):
        # Replayed into the graph, the branch's reads would see what it wrote. (Branches
        # that draw are replayed into the graph, which refuses them when it is built.)
        attrs = op.attrs
        return grad_at_run_time(
            op,
            [then, other],
            lambda given: _if_replay_attrs(attrs, given),
            variables,
            dys,
            "cond_grad",
        )
    result = cond(
        pred,
        lambda: branch_grads(then, 0, n_then),
        lambda: branch_grads(other, n_then, n),
        name="cond_grad",
    )
    input_grads: list[Any] = [None] * len(op.inputs)
    for slot, g in zip(slots, result, strict=False):
        input_grads[slot + 1] = g
    var_grads = list(zip(variables, result[len(slots) :], strict=True))
    return _VariableGrads(input_grads, var_grads)


def _if_replay(op: Any, args: list[Any]) -> list[Any]:
    """An ``If`` op replayed for a gradient: a cond of its branches' replays, so the
    taken branch's writes become reads and its prints are skipped (see
    ``ConcreteFunction._replay``); running the op again would repeat them."""
    return _if_replay_attrs(op._attrs, args)


def _if_replay_attrs(attrs: dict[str, Any], args: list[Any]) -> list[Any]:
    """``_if_replay`` of an op with attributes ``attrs``."""
    pred, *captures = args
    then, other, n = attrs["then"], attrs["else"], attrs["n_then"]
    result = cond(
        pred,
        lambda: then._replay([_local(x) for x in captures[:n]]),
        lambda: other._replay([_local(x) for x in captures[n:]]),
        name="cond_replay",
    )
    return list(result)


def _if_functions(op: Any) -> list[Any]:
    return [op._attrs["then"], op._attrs["else"]]


REPLAY_RULES["If"] = REPLAY_RULES["StatelessIf"] = (_if_replay, _if_functions)


def _while_replay(op: Any, args: list[Any]) -> list[Any]:
    """A ``While`` op replayed for a gradient: eagerly its loop replayed op by op, in a
    graph a loop of its condition's and body's replays (writes as reads, prints skipped);
    running the op again would repeat them."""
    attrs = op._attrs
    if state_get(_roots[0])[EAGER]:
        return _loop_replay(attrs)(args)
    cond_fn, body_fn = attrs["cond"], attrs["body"]
    n, n_cond = attrs["n_vars"], attrs["n_cond"]
    cond_caps, body_caps = args[n:][:n_cond], args[n:][n_cond:]
    result = while_loop(
        lambda *a: cond_fn._replay([*a, *[_local(x) for x in cond_caps]])[0],
        lambda *a: body_fn._replay([*a, *[_local(x) for x in body_caps]])[:n],
        list(args[:n]),
        maximum_iterations=attrs["max"],
        name="while_replay",
        shape_invariants=list(attrs["invariants"]),
    )
    return list(result)


def _while_functions(op: Any) -> list[Any]:
    return [op._attrs["cond"], op._attrs["body"]]


REPLAY_RULES["While"] = REPLAY_RULES["StatelessWhile"] = (_while_replay, _while_functions)


def _loop_replay(attrs: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    """The loop of a ``While`` op as an eager function of its inputs, replaying the
    condition and body graphs op by op (so a tape can follow it)."""
    cond_fn, body_fn = attrs["cond"], attrs["body"]
    n, n_cond, limit = attrs["n_vars"], attrs["n_cond"], attrs["max"]

    def run_loop(given: list[Any]) -> list[Any]:
        values, caps = given[:n], given[n:]
        cond_caps, body_caps = caps[:n_cond], caps[n_cond:]
        i = 0
        while (limit is None or i < limit) and bool(cond_fn._replay(values + cond_caps)[0]):
            values = body_fn._replay(values + body_caps)[:n]
            i += 1
        return values

    return run_loop


@register_gradient("While")
@register_gradient("StatelessWhile")
def _while_grad(op: GradRecord, *dys: Any) -> _VariableGrads:
    """The loop runs again, eagerly on a tape, when the gradient op runs."""
    functions = [op.attrs["cond"], op.attrs["body"]]
    variables = list({id(v): v for f in functions for v in variables_read(f)}.values())
    if needs_its_reads(op, functions):
        # With the values the loop's reads returned when it ran (it wrote since).
        return grad_at_run_time(op, functions, _loop_replay(op.attrs), variables, dys, "while_grad")
    return run_time_vjp(_loop_replay(op.attrs), list(op.inputs), dys, variables, "while_grad")
