"""The backward walk shared by tapes and ``sf.gradients``, and what it walks over.

A :class:`Record` is one op as differentiation needs it (its definition, input and output
tensors, attrs). :func:`backprop` walks records from the last to the first, calling each
op type's gradient function and adding up the gradients of every tensor and variable.
Gradient functions are built from ordinary ops, so the walk computes values eagerly and
adds symbolic ops while a graph is built; a tape that records the walk can differentiate
it again (higher-order derivatives).
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final, final

import numpy as np

from ._concrete import ConcreteFunction
from ._context import EAGER, PAUSED, TAPES, _roots, state_get
from ._graph import Tensor
from ._ops import _core
from ._ops._grad_util import ones_like
from ._ops._math import add
from ._ops._registry import REGISTRY, OpDef
from ._tensor import EagerTensor, wrap
from ._variables import Variable

__all__ = [
    "CALLS",
    "READ",
    "SOURCE_VARIABLES",
    "Record",
    "VariableGrads",
    "attr_variables",
    "backprop",
    "differentiable",
    "record_of",
    "variables_read",
]

READ: Final = "ReadVariableOp"

# Set by GradientTape.gradient (on tapes that recorded function calls) to the ids of the
# variables among its sources: a call's backward function then computes gradients for
# those variables only (None: for all, as sf.gradients needs). Per task and thread.
SOURCE_VARIABLES: contextvars.ContextVar[frozenset[int] | None] = contextvars.ContextVar(
    "scopeflow_source_variables", default=None
)
# Ops whose result depends on variables named in their attrs (the function graphs they
# run, or a list of variables): those variables connect the op to a tape even when none
# of its inputs is watched.
CALLS: Final = frozenset(
    {
        "PartitionedCall",
        "StatefulPartitionedCall",
        "If",
        "StatelessIf",
        "While",
        "RunTimeVJP",
        "StatefulRunTimeVJP",
    }
)


@final
class Record(tuple[OpDef, tuple[Any, ...], tuple[Any, ...], dict[str, Any]]):
    """One op on a tape, ``(opdef, inputs, outputs, attrs)``: what its gradient needs.

    A tuple with named fields rather than a slots class: a tape records one per op, and
    ``tuple.__new__`` builds it in a fraction of the time an ``__init__`` takes.
    """

    __slots__ = ()

    opdef = property(itemgetter(0))
    inputs = property(itemgetter(1))
    outputs = property(itemgetter(2))
    attrs = property(itemgetter(3))


def record_of(
    opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...], attrs: dict[str, Any]
) -> Record:
    """A :class:`Record` (built without a Python-level ``__init__``)."""
    return tuple.__new__(Record, (opdef, inputs, outputs, attrs))


@final
class VariableGrads:
    """A gradient function's result that also carries gradients for variables it read."""

    __slots__ = ("inputs", "variables")

    def __init__(self, inputs: Sequence[Any], variables: list[tuple[Variable, Any]]) -> None:
        self.inputs = inputs
        self.variables = variables


def differentiable(x: Any) -> bool:
    """Whether ``x`` (a tensor or variable, or None) can carry a gradient."""
    return x is not None and x.dtype.kind in "fc"


def variables_read(concrete: Any) -> tuple[Variable, ...]:
    """The variables a concrete function reads, including through nested calls."""
    cached: tuple[Variable, ...] | None = concrete._reads
    if cached is not None:
        return cached
    found: dict[int, Variable] = {}
    for op in concrete.graph.get_operations():
        if op.type == READ:
            found[id(op._attrs["var"])] = op._attrs["var"]
        elif op.type in CALLS:
            for var in attr_variables(op._attrs):
                found[id(var)] = var
    result = tuple(found.values())
    concrete._reads = result
    return result


def attr_variables(attrs: dict[str, Any]) -> list[Variable]:
    """The variables an op of :data:`CALLS` reads through its attrs."""
    found: dict[int, Variable] = {}
    for key, value in attrs.items():
        if isinstance(value, ConcreteFunction):
            for var in variables_read(value):
                found[id(var)] = var
        elif key == "variables":
            for var in value:
                found[id(var)] = var
    return list(found.values())


def _accumulate(store: dict[int, Any], key: int, grad: Any) -> None:
    old = store.get(key)
    store[key] = grad if old is None else add(old, grad)


def _no_gradient(opdef: OpDef, rec: Record) -> LookupError:
    outputs = rec.outputs
    where = ""
    if outputs and hasattr(outputs[0], "op"):
        where = f" (op {outputs[0].op.name!r})"
    msg = (
        f"No gradient is defined for op type {opdef.type!r}{where}, which lies on a path "
        f"from the target to a source: that path cannot be differentiated. Compute the "
        f"value without this op, or keep it off the path to the sources"
    )
    return LookupError(msg)


def backprop(
    records: Sequence[Record], targets: Sequence[Any], seeds: Sequence[Any]
) -> tuple[dict[int, Any], dict[int, Any]]:
    """Propagate gradients from ``targets`` back through ``records`` (in run order).

    Returns:
        (gradient by tensor id, gradient by variable id).

    Raises:
        LookupError: an op on a path from a target to a recorded input has no gradient.
    """
    grads: dict[int, Any] = {}
    var_grads: dict[int, Any] = {}
    # This function is most of a tape step (SPEC section 11): it avoids helper calls,
    # and zip's ``strict=`` (parsing the keyword costs more than the loop on 3.11).
    for i, t in enumerate(targets):
        if t is None or t.dtype.kind not in "fc":
            continue
        seed = seeds[i]
        if seed is None:
            seed = ones_like(t.read_value() if isinstance(t, Variable) else t)
        elif not isinstance(seed, (EagerTensor, Tensor)):
            # Plain values become tensors of the target's dtype, so gradients that pass
            # the seed straight through still return tensors.
            seed = _core.convert_to_tensor(np.asarray(seed).astype(t.dtype))
        # d(v)/d(v) for a variable target is its seed.
        _accumulate(var_grads if isinstance(t, Variable) else grads, id(t), seed)
    frame = state_get(_roots[0])
    quiet = frame[EAGER] and (not frame[TAPES] or frame[PAUSED])
    for rec in reversed(records):
        outputs = rec[2]
        if len(outputs) == 1:  # the common case: no lists
            dy = grads.get(id(outputs[0]))
            if dy is None:
                continue
            dys: Sequence[Any] = (dy,)
        else:
            maybe = [grads.get(id(o)) for o in outputs]
            if all(d is None for d in maybe):
                continue
            dys = [d if d is not None else _zeros(o) for d, o in zip(maybe, outputs)]  # noqa: B905
        opdef = rec[0]
        fn = opdef.grad
        if fn is None:
            if opdef.type == READ:
                _accumulate(var_grads, id(rec[3]["var"]), dys[0])
                continue
            raise _no_gradient(opdef, rec)
        result = fn(rec, *dys)
        if type(result) is VariableGrads:
            for var, g in result.variables:
                if g is not None:
                    _accumulate(var_grads, id(var), g)
            result = result.inputs
        # Position by position: an op that takes one tensor twice (x * x, f(x, x))
        # gets the gradients of both uses added here.
        for x, g in zip(rec[1], result):  # noqa: B905
            if g is not None and x.dtype.kind in "fc":
                key = id(x)
                old = grads.get(key)
                if old is None:
                    grads[key] = g
                elif (
                    quiet
                    and type(old) is EagerTensor
                    and type(g) is EagerTensor
                    and old._value.shape == g._value.shape
                    and old._value.dtype is g._value.dtype
                ):
                    # No tape sees this sum: add the arrays without the op machinery
                    # (NumPy returns a scalar, not an array, for 0-d operands).
                    total = np.add(old._value, g._value)
                    grads[key] = wrap(total if type(total) is np.ndarray else np.asarray(total))
                else:
                    grads[key] = add(old, g)
    return grads, var_grads


def _zeros(like: Any) -> Any:
    return _core.apply(REGISTRY["ZerosLike"], (like,), {})
