"""Controlling gradients: ``stop_gradient`` and ``custom_gradient``.

A custom-gradient call runs the user's function with every tape paused (only a watcher
that notes which variables it reads is active), then adds one ``CustomGradient`` op whose
outputs are the function's results and whose gradient is the user's ``grad_fn``. The op's
inputs are the function's arguments, reads of the variables it used, its results, and
(inside function graphs) the values ``grad_fn`` closes over, so the gradient never flows
through the function's own ops.

Where the gradient is computed decides how ``grad_fn`` runs. Eagerly, and in plain graphs
(``sf.gradients`` builds in the same graph), it is called when the gradient is needed.
Inside a function graph (``sf.function``, ``cond`` and ``while_loop`` bodies) the gradient
may be computed later, by replaying the graph eagerly or inlining it in another graph,
where the symbolic tensors ``grad_fn`` closes over do not exist; so there ``grad_fn`` is
traced once, when the op is made, into a small function graph of its own, and the tensors
it captures become inputs of the op, bound to their replayed values.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, final

from .._concrete import CALL, STATEFUL_CALL, ConcreteFunction
from .._context import (
    EAGER,
    GRAPH,
    LOG,
    PAUSED,
    SCOPES,
    TAPES,
    Scope,
    _roots,
    state_get,
)
from .._func_graph import FuncGraph
from .._graph import get_default_graph
from .._nest import fill, flatten
from .._tape import GradientTape
from ._core import NO_ATTRS, apply, convert_to_tensor, graph_tensor, placeholder
from ._grad_util import GradRecord, register_gradient
from ._registry import Spec, register_op

__all__ = ["custom_gradient", "stop_gradient"]


def _identity_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return specs


# Not differentiable: tapes and sf.gradients never follow a path through it.
STOP_GRADIENT = register_op(
    "StopGradient", infer=_identity_rule, kernel=lambda attrs, x: x, differentiable=False
)


def stop_gradient(input: Any, name: str | None = None) -> Any:  # noqa: A002 (TF's name)
    """``input`` unchanged, but gradients do not flow back through it.

    Example:
        >>> import scopeflow as sf
        >>> x = sf.constant(3.0)
        >>> with sf.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * sf.stop_gradient(x)
        >>> float(tape.gradient(y, x))
        3.0
    """
    return apply(STOP_GRADIENT, (input,), NO_ATTRS, name)


# -- custom_gradient -------------------------------------------------------------------------


@final
class _WatchVariables(Scope):
    """Run a body with only ``tape`` recording (outer tapes hidden, the tape not), or,
    with None, with no tape recording but those the body opens itself."""

    __slots__ = ("_tape",)

    def __init__(self, tape: GradientTape | None) -> None:
        super().__init__()
        self._tape = tape

    def __enter__(self) -> None:
        cur = state_get(_roots[0])
        tapes = () if self._tape is None else (self._tape,)
        self._push((cur, self, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], tapes,
                    False, None))  # fmt: skip

    def __repr__(self) -> str:
        return "custom_gradient variable watcher"


def _cg_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    start = attrs["n_x"] + attrs["n_v"]
    return specs[start : start + attrs["n_y"]]


def _cg_kernel(attrs: dict[str, Any], *values: Any) -> Any:
    start = attrs["n_x"] + attrs["n_v"]
    outputs = values[start : start + attrs["n_y"]]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


CUSTOM_GRADIENT = register_op("CustomGradient", infer=_cg_rule, kernel=_cg_kernel, same_dtype=False)

_NOT_TENSOR: Final = (str, bytes, type(None))


def custom_gradient(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``f`` to define its gradient yourself.

    ``f(*args, **kwargs)`` returns ``(outputs, grad_fn)``: ``outputs`` a tensor or a
    list/tuple of tensors, and ``grad_fn(*upstream)`` (one upstream gradient per output)
    returns one gradient (or None) per positional argument of ``f``. If ``f`` reads
    trainable variables that are not arguments, ``grad_fn`` must take a ``variables``
    keyword argument (the list of those variables) and return ``(argument gradients,
    variable gradients)``. The gradient is used by ``GradientTape`` (eagerly and in
    traced functions) and ``sf.gradients``; ``grad_fn`` built from differentiable ops
    gives higher-order gradients. Keyword arguments of ``f`` get no gradient.

    Raises:
        TypeError: (at call) ``f`` does not return ``(outputs, grad_fn)``, or it reads
            variables and ``grad_fn`` takes no ``variables`` argument.
        ValueError: (when differentiating) ``grad_fn`` returns the wrong number of
            gradients.

    Example:
        >>> import scopeflow as sf
        >>> @sf.custom_gradient
        ... def clip_grad(x):
        ...     def grad(dy):
        ...         return sf.minimum(sf.maximum(dy, -1.0), 1.0)
        ...     return sf.identity(x), grad
        >>> x = sf.constant(2.0)
        >>> with sf.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = clip_grad(x) * 10.0
        >>> float(tape.gradient(y, x))
        1.0
    """
    if not callable(f):
        msg = f"custom_gradient() decorates a function, got {f!r}"
        raise TypeError(msg)
    return _CustomGradientFunction(f)


@final
class _CustomGradientFunction:
    """What ``@custom_gradient`` returns: callable, and a method when put in a class
    (the instance is bound, not treated as a tensor argument)."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self._f = f
        self._name = getattr(f, "__name__", "custom_gradient")
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self._f, self._name, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        bound = functools.partial(self._f, instance)
        name = self._name

        @functools.wraps(self._f)
        def method(*args: Any, **kwargs: Any) -> Any:
            return _call(bound, name, args, kwargs)

        return method


def _call(f: Callable[..., Any], fname: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    frame = state_get(_roots[0])
    if frame[EAGER] and (not frame[TAPES] or frame[PAUSED]):
        # No tape can see the result: there is nothing to record.
        result, grad_fn = _checked(f(*args, **kwargs), fname)
        return result
    watcher = GradientTape()
    with _WatchVariables(watcher):
        result, grad_fn = _checked(f(*args, **kwargs), fname)
    arg_leaves: list[Any] = []
    flatten(args, arg_leaves)
    xs = [_input(x, fname) for x in arg_leaves]
    variables = [v for v in watcher.watched_variables()
                 if not any(v is a for a in arg_leaves)]  # fmt: skip
    if variables and not _takes_variables(grad_fn):
        msg = (
            f"custom_gradient {fname!r} reads the variables {[v.name for v in variables]} "
            f"that are not arguments, so its grad_fn must accept a keyword argument "
            f"'variables' and return (input gradients, variable gradients)"
        )
        raise TypeError(msg)
    out_leaves: list[Any] = []
    template = flatten(result, out_leaves)
    ys = [convert_to_tensor(y) for y in out_leaves]
    reads = [v.read_value() for v in variables]
    attrs: dict[str, Any] = {
        "grad_fn": grad_fn, "fname": fname, "variables": variables, "n_x": len(xs),
        "n_v": len(reads), "n_y": len(ys), "grad_graph": None,
    }  # fmt: skip
    captures: list[Any] = []
    if not frame[EAGER]:
        graph = get_default_graph()
        if graph.building_function:
            try:
                attrs["grad_graph"], captures = _trace_grad(graph, attrs, ys)
            except Exception as err:  # raised again when the gradient is asked for
                # Like an eager grad_fn, a broken one only fails code that differentiates.
                attrs["grad_error"] = err
    outputs = apply(CUSTOM_GRADIENT, (*xs, *reads, *ys, *captures), attrs, _op_name(fname))
    outs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    return fill(template, outs)


def _op_name(fname: str) -> str:
    """The op name for a function named ``fname``: ``_call`` or ``<lambda>`` are not valid
    op names (a name at the root may not start with ``_``), so they are cleaned up."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", fname).lstrip("_-.")
    return cleaned or "CustomGradient"


def _checked(result: Any, fname: str) -> tuple[Any, Callable[..., Any]]:
    if not (isinstance(result, (tuple, list)) and len(result) == 2 and callable(result[1])):
        msg = (
            f"custom_gradient {fname!r} must return a pair (outputs, grad_fn) with a "
            f"callable grad_fn, got {result!r}"
        )
        raise TypeError(msg)
    return result[0], result[1]


def _input(x: Any, fname: str) -> Any:
    if isinstance(x, _NOT_TENSOR):
        msg = (
            f"custom_gradient {fname!r}: positional argument {x!r} is not a tensor; pass "
            f"non-tensor options as keyword arguments"
        )
        raise TypeError(msg)
    return convert_to_tensor(x)


def _takes_variables(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True  # a builtin or C callable: let the call itself decide
    return any(p.name == "variables" or p.kind is p.VAR_KEYWORD for p in params)


def _user_grads(attrs: dict[str, Any], dys: Sequence[Any]) -> list[Any]:
    """Call ``grad_fn``; return one gradient (or None) per argument, then per variable."""
    grad_fn, fname, variables = attrs["grad_fn"], attrs["fname"], attrs["variables"]
    if variables:
        pair = grad_fn(*dys, variables=variables)
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            msg = (
                f"custom_gradient {fname!r}: a grad_fn called with variables= must return "
                f"(input gradients, variable gradients), got {pair!r}"
            )
            raise TypeError(msg)
        input_grads, var_grads = pair[0], list(pair[1])
        if len(var_grads) != len(variables):
            msg = (
                f"custom_gradient {fname!r}: grad_fn returned {len(var_grads)} variable "
                f"gradients for {len(variables)} variables"
            )
            raise ValueError(msg)
    else:
        input_grads, var_grads = grad_fn(*dys), []
    flat: list[Any] = []
    flatten(input_grads, flat)
    if len(flat) != attrs["n_x"]:
        msg = (
            f"custom_gradient {fname!r}: grad_fn returned {len(flat)} gradients, but the "
            f"function has {attrs['n_x']} positional tensor arguments; return one "
            f"gradient (or None) per argument"
        )
        raise ValueError(msg)
    return [None if g is None else convert_to_tensor(g) for g in (*flat, *var_grads)]


def _trace_grad(
    graph: Any, attrs: dict[str, Any], ys: list[Any]
) -> tuple[tuple[ConcreteFunction, tuple[bool, ...]], list[Any]]:
    """Trace ``grad_fn`` into a function graph nested in ``graph`` (see the module doc).

    Returns:
        ((the traced gradient, which gradients are not None), the values it captures).
    """
    gg = FuncGraph(f"{attrs['fname']}_grad", outer_graph=graph)
    # Outer tapes are hidden, not paused: a tape grad_fn opens itself records (TensorFlow
    # runs grad_fn while differentiating, where new tapes record).
    with gg.as_default(), _WatchVariables(None):
        dys = [placeholder(y.dtype, y.shape, name="upstream") for y in ys]
        gg.inputs.extend(dys)
        grads = _user_grads(attrs, dys)
        frame = state_get(_roots[0])
        gg.outputs = [graph_tensor(frame, gg, g, None) for g in grads if g is not None]
    gg.finalize()
    present = tuple(g is not None for g in grads)
    return (ConcreteFunction(gg, None, None, []), present), list(gg.captured_inputs)


@register_gradient("CustomGradient")
def _custom_gradient_grad(op: GradRecord, *dys: Any) -> list[Any]:
    attrs = op.attrs
    error = attrs.get("grad_error")
    if error is not None:
        raise error
    traced = attrs["grad_graph"]
    if traced is None:
        grads = _user_grads(attrs, dys)
    else:
        concrete, present = traced
        start = attrs["n_x"] + attrs["n_v"] + attrs["n_y"]
        call = STATEFUL_CALL if concrete.graph.control_outputs else CALL
        result = apply(call, (*dys, *op.inputs[start:]), {"f": concrete}) if any(present) else ()
        values = iter(result if isinstance(result, tuple) else (result,))
        grads = [next(values) if p else None for p in present]
    for g, x in zip(grads, op.inputs, strict=False):
        if g is not None and g.dtype != x.dtype and x.dtype.kind in "fc":
            msg = (
                f"custom_gradient {attrs['fname']!r}: grad_fn returned a {g.dtype.name} "
                f"gradient for a {x.dtype.name} input; cast it to {x.dtype.name}"
            )
            raise TypeError(msg)
    # Results and captured values get no gradient: it flows only as grad_fn says.
    return grads
