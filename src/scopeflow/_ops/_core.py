"""Running an op in the calling context, and the ops every graph needs.

:func:`apply` is the one entry point for all ops: in eager mode it converts the inputs to
arrays, validates them with the op's rule and runs its kernel; in graph mode it converts
the inputs to tensors of the default graph and adds an operation with the calling task's
name scope, control dependencies, device and control-flow scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, cast

import numpy as np

from .._context import EAGER, GRAPH, PAUSED, TAPES, Frame, state_get
from .._graph import Graph, Operation, Shape, Tensor, global_default_graph
from .._quiet import QUIET, quiet_reset, quiet_set
from .._scopes import control_dependencies
from .._shapes import as_static_shape
from .._tensor import (
    PY_SCALARS,
    EagerTensor,
    as_dtype,
    check_tensor_dtype,
    shared_scalar,
    to_array,
    wrap,
)
from ..errors import InvalidArgumentError
from ._registry import OpDef, Spec, register_op

__all__ = [
    "apply",
    "EAGER_READS",
    "constant",
    "convert_to_tensor",
    "group",
    "identity",
    "offer_read",
    "no_op",
    "placeholder",
    "record_hook",
]

NO_ATTRS: Final[dict[str, Any]] = {}
_new: Final = object.__new__

# Set by the autodiff module: called as hook(frame, opdef, inputs, outputs, attrs) for
# every op run or built while a tape is active and not paused (inputs are tensors). The
# hook offers the op to each entry of ``frame[TAPES]`` (``entry._offer(opdef, inputs,
# outputs, attrs)``); the eager paths run that loop themselves, which saves a Python
# call per recorded op (~0.1 µs of a tape step's 11 µs).
record_hook: list[Callable[..., None] | None] = [None]

# Tensor-like types (variables) whose objects the eager fast paths read themselves:
# ``type -> (peek, opdef)``. ``peek(obj, frame)`` gives the object's value as an eager
# tensor without recording anything (None where the general path must resolve it);
# ``offer_read`` then records the read as ``opdef`` with attrs ``{"var": obj}``, as
# resolving the object does. Filled by the modules that define the types
# (``_variables``), which import this one.
EAGER_READS: dict[type, tuple[Callable[[Any, Frame], Any], OpDef]] = {}


def offer_read(frame: Frame, opdef: OpDef, obj: Any, tensor: EagerTensor) -> None:
    """Offer the read of ``obj`` (see ``EAGER_READS``) to the tapes of ``frame``."""
    if frame[TAPES] and not frame[PAUSED]:
        attrs = {"var": obj}
        for entry in frame[TAPES]:
            entry._offer(opdef, (), (tensor,), attrs)


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"{value.name!r} ({value.dtype.name}, shape {value.shape})"
    if isinstance(value, EagerTensor):
        return f"eager ({value.dtype.name}, shape {value.shape})"
    return repr(value)


def _dtype_hint(inputs: tuple[Any, ...]) -> np.dtype[Any] | None:
    for x in inputs:
        if isinstance(x, (Tensor, EagerTensor)) or hasattr(x, "__sf_tensor__"):
            return x.dtype  # type: ignore[no-any-return]
    return None


def _resolve(x: Any) -> Any:
    """Tensor-like objects (variables) turn into tensors through ``__sf_tensor__``."""
    hook = getattr(x, "__sf_tensor__", None)
    return hook() if hook is not None else x


def _fail(opdef: OpDef, name: str | None, inputs: tuple[Any, ...], err: Exception) -> Exception:
    label = opdef.type if name is None else f"{opdef.type} {name!r}"
    described = ", ".join(_describe(x) for x in inputs)
    # A scope description (``_introspect``) stays last, after the op's inputs.
    text, sep, scopes = str(err).partition("\nscopes of this context:")
    msg = f"{label}: {text} (inputs: {described}){sep}{scopes}"
    return type(err)(msg) if isinstance(err, (TypeError, ValueError)) else err


def apply(
    opdef: OpDef, inputs: tuple[Any, ...], attrs: dict[str, Any], name: str | None = None
) -> Any:
    """Run or build ``opdef`` on ``inputs`` in the calling context.

    Returns:
        The single output tensor, a tuple for several outputs, and for ops without
        outputs the Operation (graph mode) or None (eager).
    """
    frame = state_get()
    if frame[EAGER]:
        return _apply_eager(frame, opdef, inputs, attrs, name)
    graph = frame[GRAPH]
    if graph is None:
        graph = global_default_graph()
    return _apply_graph(frame, graph, opdef, inputs, attrs, name)


def _holds_tensors(value: list[Any] | tuple[Any, ...]) -> bool:
    """Whether a (nested) list or tuple contains tensors or variables."""
    for x in value:
        if isinstance(x, (EagerTensor, Tensor)) or hasattr(x, "__sf_tensor__"):
            return True
        if isinstance(x, (list, tuple)) and _holds_tensors(x):
            return True
    return False


def _pack(value: list[Any] | tuple[Any, ...]) -> Any:
    """A list or tuple holding tensors as one tensor, built by a differentiable Stack op.

    TensorFlow packs such lists too (``reduce_sum([a, b])``). Converting the values to an
    array instead would hide the tensors from tapes and ``sf.gradients`` (a silent None
    gradient), and is impossible for symbolic tensors.
    """
    from ._array import stack  # imported here: _array builds on this module

    return stack(list(value))


def _eager_inputs(opdef: OpDef, inputs: tuple[Any, ...], frame: Frame) -> list[Any]:
    """Each input as an EagerTensor (tensors, resolved variables) or a fresh array."""
    hint = None
    hinted = False  # the hint is looked for at the first input that needs it
    out: list[Any] = []
    for x in inputs:
        if type(x) is not EagerTensor:
            reader = EAGER_READS.get(type(x))
            if reader is not None:  # a variable: read without getattr and the op machinery
                read = reader[0](x, frame)
                if read is not None:
                    offer_read(frame, reader[1], x, read)
                    out.append(read)
                    continue
            if not hinted:
                hint = _dtype_hint(inputs) if opdef.same_dtype else None
                hinted = True
            if hint is not None and type(x) in PY_SCALARS:
                arr = shared_scalar(x, hint)  # skips _resolve and the general checks
                if arr is not None:
                    out.append(arr)
                    continue
            x = _resolve(x)
            if type(x) is not EagerTensor:
                if isinstance(x, (list, tuple)) and _holds_tensors(x):
                    x = _pack(x)
                else:
                    x = to_array(x, hint if not isinstance(x, np.ndarray) else None)
        out.append(x)
    return out


def _apply_eager(
    frame: Frame, opdef: OpDef, inputs: tuple[Any, ...], attrs: dict[str, Any], name: str | None
) -> Any:
    try:
        # One loop, not two list comprehensions (each a function call on 3.11: ~0.3 µs
        # per op, bench_functions' MLP); _eager_inputs only for inputs that need it.
        arrays = []
        in_specs = []
        tensors_only = True
        for x in inputs:
            if type(x) is not EagerTensor:
                tensors_only = False
                break
            a = x._value
            arrays.append(a)
            in_specs.append((a.dtype, a.shape))
        if tensors_only:
            resolved: Any = inputs
        else:
            resolved = _eager_inputs(opdef, inputs, frame)
            arrays = []
            in_specs = []
            for x in resolved:
                a = x._value if type(x) is EagerTensor else x
                arrays.append(a)
                in_specs.append((a.dtype, a.shape))
        specs = opdef.infer(tuple(in_specs), attrs)
    except (TypeError, ValueError) as err:
        raise _fail(opdef, name, inputs, err) from None
    token = quiet_set(QUIET)
    try:
        result = opdef.kernel(attrs, *arrays)
    except (ValueError, IndexError, TypeError) as err:
        msg = f"{opdef.type}: {err}"
        raise InvalidArgumentError(msg) from None
    finally:
        quiet_reset(token)
    if len(specs) == 1:
        # _as_outputs for one output, written out (most ops: ~0.3 µs each).
        arr = result if type(result) is np.ndarray else np.asarray(result)
        dtype = specs[0][0]
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
        out = _new(EagerTensor)  # wrap(), written out
        out._value = arr
        outputs: tuple[EagerTensor, ...] = (out,)
    else:
        outputs = _as_outputs(opdef, result, specs)
    if frame[TAPES] and not frame[PAUSED]:
        if tensors_only:
            tensors = resolved if type(resolved) is tuple else tuple(resolved)
        else:
            tensors = tuple([x if type(x) is EagerTensor else wrap(x) for x in resolved])
        for entry in frame[TAPES]:  # the recording hook's loop, written out
            entry._offer(opdef, tensors, outputs, attrs)
    if len(outputs) == 1:
        return outputs[0]
    if not outputs:
        return None
    return outputs


def _as_outputs(opdef: OpDef, result: Any, specs: tuple[Spec, ...]) -> tuple[EagerTensor, ...]:
    if len(specs) == 0:
        return ()
    results = (result,) if len(specs) == 1 else tuple(result)
    out = []
    for value, (dtype, _) in zip(results, specs, strict=True):
        arr = np.asarray(value)
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
        # A result may view an input (reshape, transpose): inputs never change, so the
        # new tensor can share their buffer.
        out.append(wrap(arr))
    return tuple(out)


def graph_tensor(frame: Frame, graph: Graph, x: Any, dtype: np.dtype[Any] | None) -> Tensor:
    """``x`` as a tensor of ``graph``: its own tensors pass, values become constants."""
    if type(x) is Tensor:
        if x._graph is graph:
            return x
        return graph._foreign_input(x)
    if dtype is not None and type(x) in PY_SCALARS:
        arr = shared_scalar(x, dtype)  # skips _resolve and the general checks
        if arr is not None:
            return _make_const(frame, graph, arr, None)
    x = _resolve(x)
    if type(x) is Tensor:
        if x._graph is graph:
            return x
        return graph._foreign_input(x)
    if type(x) is EagerTensor:
        return graph._eager_input(x)
    if isinstance(x, Operation):
        msg = f"Operation {x.name!r} has no value to use as an input; use one of its outputs"
        raise TypeError(msg)
    if isinstance(x, (list, tuple)) and _holds_tensors(x):
        return graph_tensor(frame, graph, _pack(x), dtype)
    arr = to_array(x, dtype if not isinstance(x, np.ndarray) else None)
    return _make_const(frame, graph, arr, None)


def _apply_graph(
    frame: Frame,
    graph: Graph,
    opdef: OpDef,
    inputs: tuple[Any, ...],
    attrs: dict[str, Any],
    name: str | None,
) -> Any:
    try:
        hint = None
        tensors = []
        for x in inputs:
            # Inputs that already are tensors of this graph are the common case.
            if type(x) is Tensor and x._graph is graph:
                tensors.append(x)
            else:
                if hint is None and opdef.same_dtype:
                    hint = _dtype_hint(inputs)
                tensors.append(graph_tensor(frame, graph, x, hint))
        specs = opdef.infer(tuple([(t._dtype, t._shape) for t in tensors]), attrs)
    except (TypeError, ValueError) as err:
        raise _fail(opdef, name, inputs, err) from None
    op = graph._create_op(opdef.type, tuple(tensors), attrs, specs, name, frame, opdef.stateful)
    if frame[TAPES] and not frame[PAUSED]:
        hook = record_hook[0]
        if hook is not None:
            hook(frame, opdef, op._inputs, op._outputs, attrs)
    outs = op._outs  # the tensor itself for one output, else a tuple
    if type(outs) is Tensor or outs:
        return outs
    return op


# -- constants, placeholders, identity -------------------------------------------------


def _no_inputs(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ((attrs["dtype"], attrs["shape"]),)


def _const_kernel(attrs: dict[str, Any]) -> np.ndarray[Any, Any]:
    return attrs["value"]  # type: ignore[no-any-return]


def _placeholder_kernel(attrs: dict[str, Any]) -> np.ndarray[Any, Any]:
    msg = f"Placeholder {attrs['name']!r} must be fed a value (pass it in feed_dict)"
    raise InvalidArgumentError(msg)


CONST = register_op("Const", infer=_no_inputs, kernel=_const_kernel, differentiable=False)
PLACEHOLDER = register_op(
    "Placeholder", infer=_no_inputs, kernel=_placeholder_kernel, differentiable=False
)


def _make_const(frame: Frame, graph: Graph, arr: np.ndarray[Any, Any], name: str | None) -> Tensor:
    if arr.flags.writeable:  # shared scalar arrays already are read-only
        arr.flags.writeable = False
    attrs = {"value": arr, "dtype": arr.dtype, "shape": arr.shape}
    op = graph._create_op("Const", (), attrs, ((arr.dtype, arr.shape),), name, frame)
    return op._outs  # type: ignore[return-value]  # one output: the tensor itself


def constant(
    value: Any, dtype: Any = None, shape: Iterable[int] | None = None, name: str | None = None
) -> Any:
    """A tensor holding ``value``: eager when executing eagerly, else a ``Const`` op.

    Args:
        value: a Python number, nested list, NumPy array or eager tensor.
        dtype: the dtype; by default NumPy arrays keep theirs, Python floats are float32
            and ints int32.
        shape: reshape (or broadcast a scalar) to this shape.
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.constant(1.5, shape=(2,)).numpy()
        array([1.5, 1.5], dtype=float32)
    """
    dt = None
    if dtype is not None:
        dt = as_dtype(dtype)
        check_tensor_dtype(dt)
    arr = to_array(value, dt)
    if arr is getattr(value, "_value", None):
        arr = arr.copy()
    if shape is not None:
        target = cast("tuple[int, ...]", as_static_shape(shape, "constant()", allow_unknown=False))
        if arr.size == 1:
            arr = np.full(target, arr.reshape(()), dtype=arr.dtype)
        elif int(np.prod(target)) == arr.size:
            arr = arr.reshape(target)
        else:
            msg = (
                f"constant(): a value of shape {arr.shape} ({arr.size} elements) cannot be "
                f"reshaped to {target}"
            )
            raise ValueError(msg)
    frame = state_get()
    if frame[EAGER]:
        return wrap(arr)
    graph = frame[GRAPH]
    if graph is None:
        graph = global_default_graph()
    return _make_const(frame, graph, arr, name)


def convert_to_tensor(
    value: Any, dtype: Any = None, dtype_hint: Any = None, name: str | None = None
) -> Any:
    """``value`` as a tensor of the calling context (tensors of that context pass through).

    Args:
        value: a tensor, variable, NumPy array, Python number or nested list.
        dtype: the required dtype: a tensor of another dtype is a ``TypeError``, a Python
            value is converted to it.
        dtype_hint: the dtype for Python values when ``dtype`` is None and the value can
            take it; unlike ``dtype`` it never fails (tensors keep their dtype, and a value
            the hint cannot hold exactly falls back to the default conversion).
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.convert_to_tensor([1, 2]).dtype
        dtype('int32')
    """
    dt = None
    if dtype is not None:
        dt = as_dtype(dtype)
        check_tensor_dtype(dt)
    value = _resolve(value)
    if (
        dtype_hint is not None
        and dt is None
        and not isinstance(value, _KEEPS_DTYPE)
        and not (isinstance(value, (list, tuple)) and _holds_tensors(value))  # packed
    ):
        value = _hinted(value, dtype_hint)
    frame = state_get()
    if frame[EAGER]:
        if type(value) is EagerTensor:
            if dt is not None and value.dtype != dt:
                msg = f"convert_to_tensor(): tensor has dtype {value.dtype.name}, not {dt.name}"
                raise TypeError(msg)
            return value
        if isinstance(value, (list, tuple)) and _holds_tensors(value):
            return _checked_dtype(_pack(value), dt)
        return wrap(to_array(value, dt))
    graph = frame[GRAPH]
    if graph is None:
        graph = global_default_graph()
    if type(value) is Tensor:
        t = graph_tensor(frame, graph, value, dt)
        if dt is not None and t.dtype != dt:
            msg = f"convert_to_tensor(): tensor {t.name!r} has dtype {t.dtype.name}, not {dt.name}"
            raise TypeError(msg)
        return t
    if type(value) is EagerTensor:
        return graph._eager_input(value)
    if isinstance(value, (list, tuple)) and _holds_tensors(value):
        return _checked_dtype(graph_tensor(frame, graph, value, dt), dt)
    return _make_const(frame, graph, to_array(value, dt), name)


def _checked_dtype(t: Any, dtype: np.dtype[Any] | None) -> Any:
    if dtype is not None and t.dtype != dtype:
        msg = (
            f"convert_to_tensor(): the packed tensors have dtype {t.dtype.name}, not "
            f"{dtype.name}; cast them with sf.cast() first"
        )
        raise TypeError(msg)
    return t


# Values that carry their own dtype, which a hint never overrides.
_KEEPS_DTYPE: Final = (Tensor, EagerTensor, np.ndarray, np.generic)


def _hinted(value: Any, dtype_hint: Any) -> Any:
    """``value`` as an array of ``dtype_hint`` if it converts without loss, else as is."""
    hint = as_dtype(dtype_hint)
    check_tensor_dtype(hint)
    try:
        return to_array(value, hint)
    except (TypeError, ValueError):
        return value


def placeholder(
    dtype: Any, shape: Iterable[int | None] | None = None, name: str | None = None
) -> Tensor:
    """A graph input to be fed at run time (graph mode only).

    Args:
        dtype: the dtype of the fed value.
        shape: the static shape; ``None`` entries (or ``shape=None``) are unknown.
        name: the op name.

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default():
        ...     x = sf.placeholder(sf.float32, shape=(None, 3), name="x")
        >>> x.name, x.shape
        ('x:0', (None, 3))
    """
    dt = as_dtype(dtype)
    check_tensor_dtype(dt)
    frame = state_get()
    if frame[EAGER]:
        msg = (
            "placeholder() is not compatible with eager execution: call it inside "
            "`with graph.as_default():`, or pass values directly to eager ops"
        )
        raise RuntimeError(msg)
    static: Shape | None = None
    if shape is not None:
        static = as_static_shape(shape, "placeholder()", allow_unknown=True)
    graph = frame[GRAPH]
    if graph is None:
        graph = global_default_graph()
    attrs = {"dtype": dt, "shape": static, "name": name}
    op = graph._create_op("Placeholder", (), attrs, ((dt, static),), name or "Placeholder", frame)
    attrs["name"] = op.name
    out: Tensor = op._outputs[0]
    return out


def _identity_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return specs


IDENTITY = register_op("Identity", infer=_identity_rule, kernel=lambda attrs, x: x)


def identity(input: Any, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's name
    """A tensor with the same value as ``input`` (a new op in graph mode).

    Example:
        >>> import scopeflow as sf
        >>> sf.identity([1.0]).numpy()
        array([1.], dtype=float32)
    """
    return apply(IDENTITY, (input,), NO_ATTRS, name)


def _no_outputs(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ()


NO_OP = register_op("NoOp", infer=_no_outputs, kernel=lambda attrs, *xs: None, differentiable=False)


def no_op(name: str | None = None) -> Operation | None:
    """An op that does nothing: a target for control dependencies (None when eager)."""
    return apply(NO_OP, (), NO_ATTRS, name)  # type: ignore[no-any-return]


def group(*inputs: Any, name: str | None = None) -> Operation | None:
    """An op that runs after all ``inputs`` (ops or tensors) and has no output.

    Example:
        >>> import scopeflow as sf
        >>> with sf.Graph().as_default():
        ...     a, b = sf.constant(1.0), sf.constant(2.0)
        ...     g = sf.group(a, b)
        >>> [op.name for op in g.control_inputs]
        ['Const', 'Const_1']
    """
    frame = state_get()
    if frame[EAGER]:
        return None
    deps: list[Operation] = []
    for x in inputs:
        if isinstance(x, (list, tuple)):
            deps.extend(y.op if isinstance(y, Tensor) else y for y in x)
        else:
            deps.append(x.op if isinstance(x, Tensor) else x)
    with control_dependencies(deps):
        return no_op(name=name or "group_deps")
