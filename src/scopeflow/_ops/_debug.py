"""Side-effect ops for looking at values: ``print``, assertions and ``check_numerics``.

All of them are stateful: inside a traced function they run on every call, in program
order with the function's other side effects; in a plain graph they run when fetched (or
when an op that depends on them through ``control_dependencies`` runs). Eagerly they act
at once. Failed checks raise :class:`~scopeflow.errors.InvalidArgumentError` when they
run, with the first ``summarize`` elements of the values in the message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np

from .._context import EAGER, _roots, state_get
from .._graph import Operation, Tensor
from .._tensor import EagerTensor
from ..errors import InvalidArgumentError
from ._core import apply, convert_to_tensor
from ._grad_util import GradRecord, register_gradient
from ._registry import Spec, broadcast_shapes, check_same_dtype, register_op

__all__ = [
    "assert_equal",
    "assert_greater",
    "assert_less",
    "assert_non_negative",
    "check_numerics",
    "print_",
]


def _format(value: np.ndarray[Any, Any], summarize: int | None) -> str:
    """A value as TensorFlow prints it: ``[1 2 3 ... 8 9 10]`` (no commas)."""
    if summarize is None or summarize < 0:
        return np.array2string(value, threshold=sys.maxsize, separator=" ")
    return np.array2string(value, threshold=0, edgeitems=max(summarize, 1), separator=" ")


def _first(value: np.ndarray[Any, Any], summarize: int | None) -> str:
    """The first ``summarize`` elements of ``value`` (flattened)."""
    flat = value.reshape(-1)
    if summarize is not None and 0 <= summarize < flat.size:
        return f"{np.array2string(flat[:summarize], separator=' ')[:-1]} ...]"
    return np.array2string(flat, threshold=sys.maxsize, separator=" ")


# -- print -------------------------------------------------------------------------------

_TENSOR: Final = object()  # marks where an input's value goes in a print template
_TEXT: Final = object()  # marks text printed as it is, also inside containers


def _is_tensor_like(value: Any) -> bool:
    return isinstance(value, (Tensor, EagerTensor, np.ndarray)) or hasattr(value, "__sf_tensor__")


def _template(value: Any, inputs: list[Any]) -> Any:
    """What to print for ``value``: text, or a slot of ``inputs`` (nested in containers)."""
    if isinstance(value, str):
        return value
    if _is_tensor_like(value):
        inputs.append(value)
        return (_TENSOR, len(inputs) - 1)
    if isinstance(value, Mapping):
        return (dict, [(repr(k), _template(v, inputs)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value), [_template(v, inputs) for v in value])
    return (_TEXT, str(value))


def _render(template: Any, values: tuple[Any, ...], summarize: int | None, top: bool) -> str:
    if isinstance(template, str):
        return template if top else repr(template)
    kind, body = template
    if kind is _TENSOR:
        return _format(values[body], summarize)
    if kind is _TEXT:
        return body  # type: ignore[no-any-return]
    if kind is dict:
        items = ", ".join(f"{k}: {_render(v, values, summarize, False)}" for k, v in body)
        return "{" + items + "}"
    inner = ", ".join(_render(v, values, summarize, False) for v in body)
    return f"({inner})" if kind is tuple else f"[{inner}]"


def _print_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    return ()


def _print_kernel(attrs: dict[str, Any], *values: np.ndarray[Any, Any]) -> None:
    summarize = attrs["summarize"]
    parts = [_render(t, values, summarize, True) for t in attrs["template"]]
    # sys.stdout is looked up when the op runs, so redirections made meanwhile apply.
    stream = attrs["output_stream"] or sys.stdout
    # One write per print keeps lines from concurrent runs whole.
    stream.write(attrs["sep"].join(parts) + attrs["end"])


PRINT = register_op(
    "PrintV2", infer=_print_rule, kernel=_print_kernel, same_dtype=False, differentiable=False,
    stateful=True,
)  # fmt: skip


def print_(
    *inputs: Any,
    output_stream: Any = None,
    sep: str = " ",
    end: str = "\n",
    summarize: int | None = 3,
    name: str | None = None,
) -> Operation | None:
    """Print ``inputs`` when the op runs (eagerly: now).

    Strings print as they are; tensors, variables and arrays print their values, showing
    the first and last ``summarize`` elements of each dimension (all with ``None`` or
    -1); lists, tuples and dicts of them print with their structure. In a traced
    function the print runs on every call, in program order with the function's other
    side effects; in a plain graph, fetch the returned op or depend on it.

    Args:
        *inputs: what to print.
        output_stream: an object with a ``write`` method; by default ``sys.stdout`` as it
            is when the op runs.
        sep: printed between inputs.
        end: printed after the last input.
        summarize: how many leading and trailing elements per dimension to show.
        name: the op name in graph mode.

    Returns:
        The print op in graph mode, None eagerly.

    Example:
        >>> import scopeflow as sf
        >>> sf.print("x:", sf.constant([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
        x: [0 1 2 ... 7 8 9]
    """
    if output_stream is not None and not callable(getattr(output_stream, "write", None)):
        msg = (
            f"print(): output_stream must have a write() method (like sys.stdout or an "
            f"open text file), got {output_stream!r}"
        )
        raise TypeError(msg)
    if not isinstance(sep, str) or not isinstance(end, str):
        msg = f"print(): sep and end must be strings, got sep={sep!r} and end={end!r}"
        raise TypeError(msg)
    summarize = _check_summarize(summarize, "print()")
    tensors: list[Any] = []
    template = [_template(x, tensors) for x in inputs]
    attrs = {"template": template, "output_stream": output_stream, "sep": sep, "end": end,
             "summarize": summarize}  # fmt: skip
    return apply(PRINT, tuple(tensors), attrs, name)  # type: ignore[no-any-return]


def _check_summarize(summarize: Any, what: str) -> int | None:
    if summarize is None:
        return None
    if isinstance(summarize, bool) or not isinstance(summarize, (int, np.integer)):
        msg = f"{what}: summarize must be an int or None, got {summarize!r}"
        raise TypeError(msg)
    return int(summarize)


# -- assertions ----------------------------------------------------------------------------

_COMPARE: Final[dict[str, tuple[str, Callable[[Any, Any], Any]]]] = {
    "equal": ("==", np.equal),
    "less": ("<", np.less),
    "greater": (">", np.greater),
    "non_negative": (">=", np.greater_equal),
}


def _assert_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    if len(specs) == 2:
        (dx, sx), (dy, sy) = specs
        check_same_dtype(dx, dy)
        broadcast_shapes(sx, sy)
    kinds = "biufc" if attrs["cmp"] == "equal" else "iuf"
    for dtype, _ in specs:
        if dtype.kind not in kinds:
            msg = f"{attrs['what']}() does not compare values of dtype {dtype.name}"
            raise TypeError(msg)
    return ()


def _assert_kernel(attrs: dict[str, Any], x: np.ndarray[Any, Any], y: Any = None) -> None:
    symbol, compare = _COMPARE[attrs["cmp"]]
    other = np.zeros((), x.dtype) if y is None else y
    try:
        held = compare(x, other)
    except ValueError:
        msg = (
            f"{attrs['what']}(): x of shape {x.shape} and y of shape {np.shape(other)} "
            f"cannot be broadcast together"
        )
        raise InvalidArgumentError(msg) from None
    if bool(np.all(held)):
        return
    summarize = attrs["summarize"]
    x_label, y_label = attrs["names"]
    failing = np.argwhere(np.broadcast_to(~held, np.broadcast(x, other).shape))
    shown = failing if summarize is None or summarize < 0 else failing[:summarize]
    lines = [
        f"{attrs['message']}Condition x {symbol} {'0' if y is None else 'y'} did not hold "
        f"for {len(failing)} of {held.size} elements.",
        f"Indices of the first failures: {shown.tolist()}",
        f"First {summarize} elements of x{x_label}: {_first(x, summarize)}"
        if summarize is not None and summarize >= 0 else f"x{x_label}: {_first(x, summarize)}",
    ]  # fmt: skip
    if y is not None:
        lines.append(
            f"First {summarize} elements of y{y_label}: {_first(y, summarize)}"
            if summarize is not None and summarize >= 0 else f"y{y_label}: {_first(y, summarize)}"
        )  # fmt: skip
    raise InvalidArgumentError("\n".join(lines))


ASSERT = register_op(
    "Assert", infer=_assert_rule, kernel=_assert_kernel, same_dtype=True, differentiable=False,
    stateful=True,
)  # fmt: skip


def _label(x: Any) -> str:
    return f" ({x.name!r})" if isinstance(x, Tensor) else ""


def _assert(what: str, cmp: str, x: Any, y: Any, message: Any, summarize: Any,
            name: str | None) -> Operation | None:  # fmt: skip
    if message is not None and not isinstance(message, str):
        msg = f"{what}(): message must be a string, got {message!r}"
        raise TypeError(msg)
    summarize = _check_summarize(summarize, f"{what}()")
    x = convert_to_tensor(x)
    inputs: tuple[Any, ...] = (x,)
    if cmp != "non_negative":
        y = y if isinstance(y, (Tensor, EagerTensor)) else convert_to_tensor(y, x.dtype)
        inputs = (x, y)
    attrs = {
        "what": what, "cmp": cmp, "message": f"{message}: " if message else "",
        "summarize": summarize, "names": (_label(x), _label(y)),
    }  # fmt: skip
    if state_get(_roots[0])[EAGER]:
        arrays = [t.numpy() if isinstance(t, EagerTensor) else np.asarray(t) for t in inputs]
        try:
            _assert_rule(tuple((a.dtype, a.shape) for a in arrays), attrs)
        except ValueError as err:
            msg = f"{what}(): {err}"
            raise ValueError(msg) from None
        _assert_kernel(attrs, *arrays)
        return None
    op = apply(ASSERT, inputs, attrs, name or what)
    if all(isinstance(t, Tensor) and t.op.type == "Const" for t in inputs):
        # Constant inputs: a check that can never pass fails now, as in TensorFlow.
        _assert_kernel(attrs, *[t.op._attrs["value"] for t in inputs])
    return op  # type: ignore[no-any-return]


def assert_equal(
    x: Any, y: Any, message: str | None = None, summarize: int | None = 3, name: str | None = None
) -> Operation | None:
    """Check that ``x == y`` element-wise (with broadcasting).

    Eagerly it raises at once; in a graph it returns an op that raises when it runs.

    Args:
        x: a tensor.
        y: a tensor (or value) of the same dtype, broadcastable with ``x``.
        message: put before the error message.
        summarize: how many elements of each value the error shows (None: all).
        name: the op name in graph mode.

    Returns:
        The assert op in graph mode (for ``control_dependencies``), None eagerly.

    Raises:
        InvalidArgumentError: when it runs and some element differs.
        TypeError: ``x`` and ``y`` have different dtypes.
        ValueError: their shapes cannot broadcast.

    Example:
        >>> import scopeflow as sf
        >>> try:
        ...     sf.debugging.assert_equal(sf.constant([1, 2]), 2)
        ... except sf.errors.InvalidArgumentError as err:
        ...     print(err)
        Condition x == y did not hold for 1 of 2 elements.
        Indices of the first failures: [[0]]
        First 3 elements of x: [1 2]
        First 3 elements of y: [2]
    """
    return _assert("assert_equal", "equal", x, y, message, summarize, name)


def assert_less(
    x: Any, y: Any, message: str | None = None, summarize: int | None = 3, name: str | None = None
) -> Operation | None:
    """Check that ``x < y`` element-wise; arguments as in :func:`assert_equal`.

    Example:
        >>> import scopeflow as sf
        >>> sf.debugging.assert_less(sf.constant([1.0, 2.0]), 3.0) is None
        True
    """
    return _assert("assert_less", "less", x, y, message, summarize, name)


def assert_greater(
    x: Any, y: Any, message: str | None = None, summarize: int | None = 3, name: str | None = None
) -> Operation | None:
    """Check that ``x > y`` element-wise; arguments as in :func:`assert_equal`.

    Example:
        >>> import scopeflow as sf
        >>> sf.debugging.assert_greater(sf.constant([4, 5]), 3) is None
        True
    """
    return _assert("assert_greater", "greater", x, y, message, summarize, name)


def assert_non_negative(
    x: Any, message: str | None = None, summarize: int | None = 3, name: str | None = None
) -> Operation | None:
    """Check that ``x >= 0`` element-wise; arguments as in :func:`assert_equal`.

    Example:
        >>> import scopeflow as sf
        >>> sf.debugging.assert_non_negative(sf.constant([0.0, 1.5])) is None
        True
    """
    return _assert("assert_non_negative", "non_negative", x, None, message, summarize, name)


# -- check_numerics --------------------------------------------------------------------------


def _numerics_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, _),) = specs
    if dtype.kind not in "fc":
        msg = f"check_numerics() needs a floating-point tensor, got dtype {dtype.name}"
        raise TypeError(msg)
    return specs


def _numerics_kernel(attrs: dict[str, Any], x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    finite = np.isfinite(x)
    if not finite.all():
        nan = np.isnan(x)
        kinds = " and ".join(
            k for k, hit in (("NaN", nan.any()), ("Inf", (~finite & ~nan).any())) if hit
        )
        first = np.argwhere(~finite)[:3].tolist()
        msg = (
            f"{attrs['message']} : Tensor had {kinds} values (first at indices {first}; "
            f"first 3 elements: {_first(x, 3)})"
        )
        raise InvalidArgumentError(msg)
    return x


CHECK_NUMERICS = register_op(
    "CheckNumerics", infer=_numerics_rule, kernel=_numerics_kernel, stateful=True
)


def check_numerics(tensor: Any, message: str, name: str | None = None) -> Any:
    """``tensor`` itself, after checking that it holds no NaN or infinity.

    Its gradient is checked the same way.

    Args:
        tensor: a floating-point tensor.
        message: the start of the error message.
        name: the op name in graph mode.

    Raises:
        InvalidArgumentError: when it runs and ``tensor`` has a NaN or an infinity.

    Example:
        >>> import scopeflow as sf
        >>> sf.debugging.check_numerics(sf.constant([1.0]), "x").numpy()
        array([1.], dtype=float32)
    """
    if not isinstance(message, str):
        msg = f"check_numerics(): message must be a string, got {message!r}"
        raise TypeError(msg)
    if state_get(_roots[0])[EAGER]:
        # Check before the op runs, so the error reads as it does from a graph.
        value = convert_to_tensor(tensor)
        _numerics_rule(((value.dtype, value.shape),), {})
        _numerics_kernel({"message": message}, value.numpy())
        tensor = value
    return apply(CHECK_NUMERICS, (tensor,), {"message": message}, name)


@register_gradient("CheckNumerics")
def _check_numerics_grad(op: GradRecord, dy: Any) -> tuple[Any]:
    message = f"NaN or Inf values in the gradient. {op.attrs['message']}"
    return (check_numerics(dy, message),)
