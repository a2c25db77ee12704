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
from collections.abc import Container, Sequence
from operator import itemgetter
from typing import Any, Final, final

import numpy as np

from ._concrete import ConcreteFunction
from ._context import EAGER, PAUSED, TAPES, state_get
from ._graph import Tensor
from ._ops import _core
from ._ops._grad_util import ones_like
from ._ops._math import add
from ._ops._registry import REGISTRY, OpDef
from ._quiet import QUIET, quiet_reset, quiet_set
from ._tensor import EagerTensor, wrap
from ._variables import Variable

__all__ = [
    "CALLS",
    "READ",
    "SOURCE_VARIABLES",
    "Record",
    "VariableGrads",
    "as_record",
    "attr_variables",
    "backprop",
    "backprop_arrays",
    "differentiable",
    "record_of",
    "tensor_of",
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
        "StatelessWhile",
        "RunTimeVJP",
        "StatefulRunTimeVJP",
    }
)


RecordTuple = tuple[OpDef, tuple[Any, ...], tuple[Any, ...], dict[str, Any]]


@final
class Record(RecordTuple):
    """One op on a tape, ``(opdef, inputs, outputs, attrs)``: what its gradient needs.

    A tuple with named fields rather than a slots class: ``tuple.__new__`` builds it in a
    fraction of the time an ``__init__`` takes. Tapes keep plain tuples (cheaper still);
    the walks hand gradient functions a Record (:func:`as_record`).
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


def as_record(rec: RecordTuple) -> Record:
    """``rec`` (a record, or the plain tuple a tape keeps) as a :class:`Record`."""
    return rec if type(rec) is Record else tuple.__new__(Record, rec)


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
    fn = attrs.get("f")
    if type(fn) is ConcreteFunction:
        # A call's attrs ({"f": function}, with the logs of an eager call's record): its
        # variables, already without repeats.
        return list(variables_read(fn))
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


def _no_gradient(opdef: OpDef, rec: RecordTuple) -> LookupError:
    outputs = rec[2]
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
    records: Sequence[RecordTuple], targets: Sequence[Any], seeds: Sequence[Any]
) -> tuple[dict[int, Any], dict[int, Any]]:
    """Propagate gradients from ``targets`` back through ``records`` (in run order).

    Returns:
        (gradient by tensor id, gradient by variable id). An eager walk that no tape
        records keeps NumPy arrays there: read the gradients with :func:`tensor_of`.

    Raises:
        LookupError: an op on a path from a target to a recorded input has no gradient.
    """
    frame = state_get()
    if frame[EAGER] and (not frame[TAPES] or frame[PAUSED]):
        return backprop_arrays(records, targets, seeds)
    grads: dict[int, Any] = {}
    var_grads: dict[int, Any] = {}
    for t, seed in zip(targets, _seeds(targets, seeds)):  # noqa: B905
        if seed is not None:
            # d(v)/d(v) for a variable target is its seed.
            _accumulate(var_grads if isinstance(t, Variable) else grads, id(t), seed)
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
        result = fn(as_record(rec), *dys)
        if type(result) is VariableGrads:
            for var, g in result.variables:
                if g is not None:
                    _accumulate(var_grads, id(var), g)
            result = result.inputs
        # Position by position: an op that takes one tensor twice (x * x, f(x, x))
        # gets the gradients of both uses added here.
        for x, g in zip(rec[1], result):  # noqa: B905
            if g is not None and x.dtype.kind in "fc":
                _accumulate(grads, id(x), g)
    return grads, var_grads


def _seeds(targets: Sequence[Any], seeds: Sequence[Any]) -> list[Any]:
    """The gradient each target starts with (None for targets that take none)."""
    out: list[Any] = []
    for t, seed in zip(targets, seeds):  # noqa: B905
        if t is None or t.dtype.kind not in "fc":
            seed = None
        elif seed is None:
            seed = ones_like(t.read_value() if isinstance(t, Variable) else t)
        elif not isinstance(seed, (EagerTensor, Tensor)):
            # Plain values become tensors of the target's dtype, so gradients that pass
            # the seed straight through still return tensors.
            seed = _core.convert_to_tensor(np.asarray(seed).astype(t.dtype))
        out.append(seed)
    return out


# -- the eager walk that no tape records -----------------------------------------------
# Such a walk computes values only, so it runs on NumPy arrays: ops with an ``np_grad``
# (``_ops._np_grad``) skip the op machinery (conversion, rule, wrapping, the offer to
# tapes); the others run their op-level gradient on tensors made for the call.


def tensor_of(value: Any) -> Any:
    """A gradient as :func:`backprop` returns it (maybe a NumPy array), as a tensor."""
    if type(value) is _Given:
        value = value.value
    if type(value) is np.ndarray:
        return wrap(value)
    if isinstance(value, np.generic):
        return wrap(np.asarray(value))
    return value


def _array_of(value: Any) -> Any:
    """A tensor's value for the array walk: 0-d ones as NumPy scalars (``_np_grad``)."""
    if type(value) is EagerTensor:
        v = value._value
        return v[()] if v.ndim == 0 else v
    return value


@final
class _Given:
    """A gradient in the array walk that may not fit its tensor: not an array of the
    tensor's dtype and shape (a seed or an op-level gradient of another dtype or shape,
    say), or the tensor is not an eager one. ``np_grad`` functions never see one.

    Every other value the walk keeps for a tensor fits it (the ``np_grad`` contract, and
    :func:`_fitted` where values come from elsewhere), so the walk checks a gradient's
    dtype and shape only where it comes from outside (~0.1 µs less per op).
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _fitted(g: Any, x: Any) -> Any:
    """``g`` as the walk keeps it for tensor ``x``: as is if it fits, else boxed."""
    if type(x) is EagerTensor and type(g) in _ARRAY_TYPES:
        v = x._value
        if g.dtype == v.dtype and g.shape == v.shape:
            return g
    return _Given(g)


def _sum_arrays(old: Any, new: Any, x: Any = None) -> Any:
    """``old + new`` in the array walk: NumPy for arrays of one shape and dtype, else the
    Add op (which broadcasts, or raises, as the op-level walk does). For a tensor ``x``
    (None: a variable, whose gradients are kept as they are) the sum is fitted to it."""
    boxed = False
    if type(old) is _Given:
        old = old.value
        boxed = True
    if type(new) is _Given:
        new = new.value
        boxed = True
    if (
        isinstance(old, _ARRAYS)
        and isinstance(new, _ARRAYS)
        and old.shape == new.shape
        and old.dtype == new.dtype
    ):
        total = old + new  # type: ignore[operator]  # np.add; scalar math on NumPy scalars
        if not boxed:
            return total  # both fit x: so does their sum
    else:
        total = _array_of(add(tensor_of(old), tensor_of(new)))
    return total if x is None else _fitted(total, x)


_ARRAYS: Final = (np.ndarray, np.generic)
# The NumPy scalar types of the differentiable dtypes: two of one type have one dtype.
_NP_SCALARS: Final = frozenset(
    {np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128}
)
# The types of the gradients the array walk computes: arrays, and NumPy scalars of the
# differentiable dtypes (one set lookup where ``isinstance(dy, _ARRAYS)`` is two tests).
_ARRAY_TYPES: Final = frozenset({np.ndarray, *_NP_SCALARS, np.clongdouble})
# dtype -> the NumPy scalar 1 of it: the seed of a scalar target (most losses).
_ONES: dict[np.dtype[Any], Any] = {}


def _ones(value: np.ndarray[Any, Any]) -> Any:
    """Ones shaped like ``value`` (a NumPy scalar for a 0-d ``value``)."""
    dtype = value.dtype
    if value.ndim == 0:
        one = _ONES.get(dtype)
        if one is None:
            one = _ONES[dtype] = np.ones((), dtype)[()]  # immutable: safe to share
        return one
    ones = np.empty(value.shape, dtype)
    ones.fill(1)  # np.ones is several times slower on small arrays
    return ones


def backprop_arrays(
    records: Sequence[RecordTuple],
    targets: Sequence[Any],
    seeds: Sequence[Any],
    want: Container[int] | None = None,
) -> tuple[dict[int, Any], dict[int, Any]]:
    """:func:`backprop` for an eager walk that no tape records: gradients are NumPy
    arrays (a tape step's gradient: 6.7 µs on tensors, ~2 µs on arrays).

    ``want``, if given, holds the ids of every tensor whose gradient is read: the
    sources, and the outputs of the records (which pass gradients on). Ops with an
    ``np_grad`` then skip the gradients of other inputs (constants they were given).
    """
    grads: dict[int, Any] = {}
    var_grads: dict[int, Any] = {}
    if len(targets) == 1 and seeds[0] is None and type(targets[0]) is EagerTensor:
        # One eager target, seeded with ones: the usual loss.
        t = targets[0]
        v = t._value
        one = None if v.ndim else _ONES.get(v.dtype)  # _ones' cache, looked up inline
        if one is not None:
            grads[id(t)] = one
        elif v.dtype.kind in "fc":
            grads[id(t)] = _ones(v)
    else:
        for t, seed in zip(targets, _seeds(targets, seeds)):  # noqa: B905
            if seed is not None:
                if isinstance(t, Variable):
                    _accumulate_array(var_grads, id(t), seed, None)
                else:
                    _accumulate_array(grads, id(t), seed, t)
    # The kernels' error state, set once for the walk; the op-level gradients run
    # outside it, as they do in ``backprop``.
    token = quiet_set(QUIET)
    try:
        for rec in reversed(records):
            opdef, inputs, outputs, attrs = rec
            if len(outputs) == 1:  # the common case: no lists
                out = outputs[0]
                dy = grads.get(id(out))
                if dy is None:
                    continue
                fast = opdef.np_grad
                if fast is not None and type(dy) is not _Given:
                    # The np_grad contract (``_ops._np_grad``): an eager op (dy fits its
                    # output, so it is one: see _Given); its results fit the inputs.
                    for x, g in zip(inputs, fast(rec, dy, want)):  # noqa: B905
                        if g is not None:
                            key = id(x)
                            old = grads.get(key)
                            if old is None:
                                grads[key] = g
                            elif type(old) is type(g) and type(g) in _NP_SCALARS:
                                grads[key] = old + g  # _sum_arrays' scalar case, inline
                            else:
                                grads[key] = _sum_arrays(old, g, x)
                    continue
                if opdef.grad is None and opdef.type == READ:
                    key = id(attrs["var"])
                    if type(dy) is not _Given and key not in var_grads:
                        var_grads[key] = dy  # _accumulate_array's common case, inline
                    else:
                        _accumulate_array(var_grads, key, dy, None)
                    continue
                dys: Sequence[Any] = (tensor_of(dy),)
            else:
                maybe = [grads.get(id(o)) for o in outputs]
                if all(d is None for d in maybe):
                    continue
                dys = [
                    tensor_of(d) if d is not None else _zeros(o)
                    for d, o in zip(maybe, outputs)  # noqa: B905
                ]
            fn = opdef.grad
            if fn is None:
                if opdef.type == READ:
                    _accumulate_array(var_grads, id(attrs["var"]), dys[0], None)
                    continue
                raise _no_gradient(opdef, rec)
            quiet_reset(token)
            try:
                result = fn(as_record(rec), *dys)
            finally:
                token = quiet_set(QUIET)
            if type(result) is VariableGrads:
                for var, g in result.variables:
                    if g is not None:
                        _accumulate_array(var_grads, id(var), g, None)
                result = result.inputs
            for x, g in zip(inputs, result):  # noqa: B905
                if g is not None and x.dtype.kind in "fc":
                    _accumulate_array(grads, id(x), g, x)
    finally:
        quiet_reset(token)
    return grads, var_grads


def _accumulate_array(store: dict[int, Any], key: int, grad: Any, x: Any) -> None:
    """Add ``grad`` (from outside the np_grad functions) to ``store[key]``: the gradient
    of tensor ``x`` (fitted to it, see _Given) or, with ``x`` None, of a variable."""
    grad = _array_of(grad)
    if type(grad) is _Given:
        grad = grad.value
    if x is not None:
        grad = _fitted(grad, x)
    old = store.get(key)
    store[key] = grad if old is None else _sum_arrays(old, grad, x)


def _zeros(like: Any) -> Any:
    return _core.apply(REGISTRY["ZerosLike"], (like,), {})
