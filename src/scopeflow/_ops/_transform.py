"""Ops that rearrange or widen a tensor: tile, split, pad and one_hot.

Sizes these ops need to know the number of outputs (split sizes) must be known while the
graph is built: Python values, or tensors whose value folds (``_static``). ``tile``'s
multiples and ``one_hot``'s depth may be tensors known only at run time, like
``reshape``'s shape, and so may ``pad``'s paddings (``DynamicPad``, in ``_runtime_axes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .._tensor import as_dtype, to_array
from ._array import as_int, as_int_tuple, is_tensor_like, normalize_axis
from ._core import apply
from ._registry import Spec, register_op
from ._shape import check_shape_vector, runtime_dims
from ._static import PartialShape, is_symbolic, pack_shape, partial_shape, static_int, static_value

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["one_hot", "pad", "split", "tile"]

_FLOAT32: Final = np.dtype(np.float32)


def _known(value: Any, what: str) -> Any:
    """``value`` with tensors replaced by their value known while building the graph."""
    if not is_tensor_like(value):
        return value
    known = static_value(value)
    if known is None:
        msg = (
            f"{what} must be known while building the graph (Python ints or a constant), "
            f"got {value!r}"
        )
        raise TypeError(msg)
    return known


# -- tile ------------------------------------------------------------------------------------


def _tile_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), multiples = specs
    check_shape_vector(multiples, "multiples")
    hint: PartialShape | None = attrs["multiples"]
    length = multiples[1][0] if multiples[1] is not None else None
    if hint is not None:
        length = len(hint)
        if any(m is not None and m < 0 for m in hint):
            msg = f"multiples {list(hint)} has a negative entry"
            raise ValueError(msg)
    if shape is not None and length is not None and length != len(shape):
        msg = f"multiples has {length} entries but the input has rank {len(shape)}"
        raise ValueError(msg)
    if shape is None:
        return ((dtype, None if length is None else (None,) * length),)
    ms = hint if hint is not None else (None,) * len(shape)
    out = tuple(None if d is None or m is None else d * m for d, m in zip(shape, ms, strict=True))
    return ((dtype, out),)


def _tile_kernel(attrs: dict[str, Any], x: NDArray[Any], multiples: NDArray[Any]) -> Any:
    reps = runtime_dims(multiples, "multiples")
    if len(reps) != x.ndim:
        msg = f"multiples {list(reps)} has {len(reps)} entries but the input has rank {x.ndim}"
        raise ValueError(msg)
    return np.tile(x, reps)


TILE = register_op("Tile", infer=_tile_rule, kernel=_tile_kernel, same_dtype=False)


def tile(input: Any, multiples: Any, name: str | None = None) -> Any:  # noqa: A002 - TensorFlow's argument name
    """``input`` repeated ``multiples[i]`` times along each dimension ``i``.

    Args:
        input: the tensor.
        multiples: one non-negative int per dimension of ``input``: a list, or a 1-D
            int tensor (``sf.stack([sf.shape(x)[0], 1])``).
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.tile([[1, 2]], [2, 2]).numpy()
        array([[1, 2, 1, 2],
               [1, 2, 1, 2]], dtype=int32)
    """
    multiples = pack_shape(multiples)
    hint: PartialShape | None
    if is_symbolic(multiples):
        known = static_value(multiples)
        hint = partial_shape(multiples) if known is None else tuple(int(m) for m in known)
    else:
        hint = as_int_tuple(multiples, "tile(): multiples")
        multiples = np.asarray(hint, np.int32)
    return apply(TILE, (input, multiples), {"multiples": hint}, name)


# -- split -----------------------------------------------------------------------------------


def _split_sizes(dim: int | None, attrs: dict[str, Any]) -> list[int | None]:
    """The size of each piece along the axis (None where only the run time knows)."""
    sizes: tuple[int, ...] | None = attrs["sizes"]
    if sizes is None:
        num: int = attrs["num"]
        if dim is None:
            return [None] * num
        if dim % num:
            # The second sentence is TensorFlow's, which ported tests match.
            msg = (
                f"dimension {attrs['axis']} of size {dim} cannot be split into {num} equal "
                f"parts: Number of ways to split should evenly divide the split dimension, "
                f"but got split_dim {attrs['axis']} (size = {dim}) and num_split {num}"
            )
            raise ValueError(msg)
        return [dim // num] * num
    if -1 not in sizes:
        if dim is not None and sum(sizes) != dim:
            msg = f"sizes {list(sizes)} add up to {sum(sizes)}, not the size {dim} of the axis"
            raise ValueError(msg)
        return list(sizes)
    rest = sum(s for s in sizes if s != -1)
    if dim is None:
        return [None if s == -1 else s for s in sizes]
    if rest > dim:
        msg = f"sizes {list(sizes)} add up to more than the size {dim} of the axis"
        raise ValueError(msg)
    return [dim - rest if s == -1 else s for s in sizes]


def _split_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    ((dtype, shape),) = specs
    if shape is None:
        unknown: tuple[Spec, ...] = ((dtype, None),) * attrs["num"]
        return unknown
    axis = normalize_axis(attrs["axis"], len(shape))
    sizes = _split_sizes(shape[axis], attrs)
    return tuple((dtype, (*shape[:axis], s, *shape[axis + 1 :])) for s in sizes)


def _split_kernel(attrs: dict[str, Any], x: NDArray[Any]) -> Any:
    axis = normalize_axis(attrs["axis"], x.ndim)
    sizes = _split_sizes(x.shape[axis], attrs)
    bounds = np.cumsum([s or 0 for s in sizes])[:-1]
    pieces = np.split(x, bounds, axis=axis)
    # One output is returned bare, as for every single-output kernel.
    return pieces[0] if len(pieces) == 1 else tuple(pieces)


SPLIT = register_op("Split", infer=_split_rule, kernel=_split_kernel)


def split(
    value: Any, num_or_size_splits: Any, axis: Any = 0, num: Any = None, name: str = "split"
) -> list[Any]:
    """Cut ``value`` along ``axis`` into a list of tensors.

    Args:
        value: the tensor.
        num_or_size_splits: an int ``n`` (``n`` equal pieces; the size must divide), or a
            list of sizes, one of which may be ``-1`` (the rest of the axis).
        axis: the dimension to cut; negative counts from the end.
        num: the number of pieces, when it cannot be read from ``num_or_size_splits``.
        name: the op name in graph mode.

    Raises:
        ValueError: the sizes do not fit the axis (at run time ``InvalidArgumentError``).

    Example:
        >>> import scopeflow as sf
        >>> [t.shape for t in sf.split(sf.zeros([2, 6]), [1, -1, 2], axis=1)]
        [(2, 1), (2, 3), (2, 2)]
    """
    spec = _known(num_or_size_splits, "split(): num_or_size_splits")
    ax = static_int(axis, "split(): axis")
    sizes: tuple[int, ...] | None = None
    if np.ndim(spec) == 0:
        count = as_int(spec if not isinstance(spec, np.ndarray) else spec[()], "split(): num")
        if count < 1:
            msg = f"split(): num_or_size_splits must be at least 1, got {count}"
            raise ValueError(msg)
    else:
        sizes = as_int_tuple(spec, "split(): num_or_size_splits")
        if not sizes or any(s < -1 for s in sizes) or sizes.count(-1) > 1:
            msg = (
                f"split(): sizes {list(sizes)} are invalid: give one or more sizes >= 0, "
                f"at most one of them -1"
            )
            raise ValueError(msg)
        count = len(sizes)
    if num is not None and as_int(num, "split(): num") != count:
        msg = f"split(): num={num} but num_or_size_splits makes {count} pieces"
        raise ValueError(msg)
    out = apply(SPLIT, (value,), {"axis": ax, "num": count, "sizes": sizes}, name)
    return list(out) if isinstance(out, tuple) else [out]


# -- pad -------------------------------------------------------------------------------------

_PAD_MODES: Final = ("CONSTANT", "REFLECT", "SYMMETRIC")


def _pad_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    dtype, shape = specs[0]
    if len(specs) > 2:
        msg = f"the op takes at most one fill value input, got {len(specs) - 1}"
        raise ValueError(msg)
    if len(specs) == 2 and specs[1][0] != dtype:
        msg = f"constant_values has dtype {specs[1][0].name}, the input {dtype.name}"
        raise TypeError(msg)
    if len(specs) == 2 and specs[1][1] not in (None, ()):
        msg = f"constant_values must be a scalar, got shape {specs[1][1]}"
        raise ValueError(msg)
    paddings: tuple[tuple[int, int], ...] = attrs["paddings"]
    if shape is None:
        return ((dtype, (None,) * len(paddings)),)
    if len(paddings) != len(shape):
        msg = f"paddings has {len(paddings)} rows but the input has rank {len(shape)}"
        raise ValueError(msg)
    mode: str = attrs["mode"]
    limit = 1 if mode == "REFLECT" else 0
    for i, (d, (a, b)) in enumerate(zip(shape, paddings, strict=True)):
        if mode != "CONSTANT" and d is not None and max(a, b) > d - limit:
            most = "less than" if mode == "REFLECT" else "at most"
            msg = f"{mode} padding of dimension {i} must be {most} its size {d}, got {(a, b)}"
            raise ValueError(msg)
    out = tuple(None if d is None else d + a + b for d, (a, b) in zip(shape, paddings, strict=True))
    return ((dtype, out),)


def _pad_kernel(attrs: dict[str, Any], x: NDArray[Any], *c: NDArray[Any]) -> Any:
    mode: str = attrs["mode"]
    pads = attrs["paddings"]
    if c and c[0].ndim:  # NumPy would read a pair as (before, after) values
        msg = f"constant_values must be a scalar, got shape {c[0].shape}"
        raise ValueError(msg)
    if not pads:  # a scalar: nothing to pad (NumPy rejects an empty pad_width)
        return x
    if mode == "CONSTANT":
        value = c[0] if c else attrs["constant_values"]
        return np.pad(x, pads, mode="constant", constant_values=value)
    _pad_rule(((x.dtype, x.shape),), attrs)  # sizes the graph did not know
    return np.pad(x, pads, mode="reflect" if mode == "REFLECT" else "symmetric")


PAD = register_op("Pad", infer=_pad_rule, kernel=_pad_kernel, same_dtype=False)


def _lists_symbolic(value: Any) -> bool:
    """Whether a (nested) list or tuple holds a graph tensor."""
    if isinstance(value, (list, tuple)):
        return any(_lists_symbolic(v) for v in value)
    return is_symbolic(value)


def pad(
    tensor: Any,
    paddings: Any,
    mode: str = "CONSTANT",
    constant_values: Any = 0,
    name: str | None = None,
) -> Any:
    """``tensor`` padded with ``paddings[i] = [before, after]`` values on dimension ``i``.

    Args:
        tensor: the tensor.
        paddings: a ``[rank, 2]`` list of non-negative ints, or an int tensor (in a graph,
            possibly known only at run time).
        mode: ``"CONSTANT"`` (fill with ``constant_values``), ``"REFLECT"`` (mirror
            without the edge; padding < size) or ``"SYMMETRIC"`` (mirror with the edge;
            padding <= size); case-insensitive.
        constant_values: the scalar fill value (a tensor gets a gradient too).
        name: the op name in graph mode.

    Example:
        >>> import scopeflow as sf
        >>> sf.pad([[1, 2, 3]], [[0, 0], [2, 1]], mode="REFLECT").numpy()
        array([[3, 2, 1, 2, 3, 2]], dtype=int32)
    """
    if not isinstance(mode, str) or mode.upper() not in _PAD_MODES:
        msg = f"pad(): mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}"
        raise ValueError(msg)
    mode = mode.upper()
    attrs: dict[str, Any] = {"mode": mode, "constant_values": None}
    if not is_symbolic(paddings) and _lists_symbolic(paddings):
        from ._core import convert_to_tensor  # imported here: rarely needed

        paddings = convert_to_tensor(paddings)  # [[0, 0], [n, 1]] packed, as in TensorFlow
    # Paddings known only at run time: the op takes them as an input (_runtime_axes).
    runtime = is_symbolic(paddings) and static_value(paddings) is None
    if not runtime:
        rows = np.asarray(_known(paddings, "pad(): paddings"))
        if rows.dtype.kind not in "iu" or rows.ndim != 2 or rows.shape[1] != 2 or (rows < 0).any():
            msg = (
                f"pad(): paddings must be a [rank, 2] list of ints, and they must be "
                f"non-negative; got {paddings!r}"
            )
            raise ValueError(msg)
        attrs["paddings"] = tuple((int(a), int(b)) for a, b in rows)
    inputs: tuple[Any, ...] = (tensor,)
    if mode == "CONSTANT" and is_tensor_like(constant_values):
        inputs = (tensor, constant_values)
    elif mode == "CONSTANT":
        c = np.asarray(constant_values)
        if c.ndim != 0 or c.dtype.kind not in "biuf":
            msg = f"pad(): constant_values must be a number, got {constant_values!r}"
            raise ValueError(msg)
        attrs["constant_values"] = c
    if runtime:
        from ._runtime_axes import DYNAMIC_PAD  # imported here: it builds on this module

        return apply(DYNAMIC_PAD, (inputs[0], paddings, *inputs[1:]), attrs, name)
    return apply(PAD, inputs, attrs, name)


# -- one_hot ---------------------------------------------------------------------------------


def _one_hot_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (idt, shape), (on_dt, on_shape), (off_dt, off_shape), *depth_spec = specs
    if depth_spec:  # a depth tensor only the run time knows
        ddt, dshape = depth_spec[0]
        if ddt.kind not in "iu" or dshape not in (None, ()):
            msg = f"depth must be a scalar int tensor, got {ddt.name} of shape {dshape}"
            raise TypeError(msg)
    if idt.kind not in "iu":
        msg = f"indices must be integers, got dtype {idt.name}"
        raise TypeError(msg)
    if on_dt != off_dt:
        msg = f"on_value ({on_dt.name}) and off_value ({off_dt.name}) must have one dtype"
        raise TypeError(msg)
    if on_shape not in (None, ()) or off_shape not in (None, ()):
        msg = f"on_value and off_value must be scalars, got shapes {on_shape} and {off_shape}"
        raise ValueError(msg)
    if shape is None:
        return ((on_dt, None),)
    axis: int = attrs["axis"]
    if not -1 <= axis <= len(shape):
        msg = f"axis {axis} is out of range for indices of rank {len(shape)} (-1 <= axis <= rank)"
        raise ValueError(msg)
    at = len(shape) if axis == -1 else axis
    return ((on_dt, (*shape[:at], attrs["depth"], *shape[at:])),)


def _one_hot_kernel(attrs: dict[str, Any], idx: Any, on: Any, off: Any, *dyn: Any) -> Any:
    depth = attrs["depth"] if not dyn else int(dyn[0])
    if depth < 0:
        msg = f"depth must be >= 0, got {depth}"
        raise ValueError(msg)
    hot = idx[..., None] == np.arange(depth)
    out = np.where(hot, on, off)
    axis = attrs["axis"]
    return out if axis == -1 else np.moveaxis(out, -1, axis)


ONE_HOT = register_op("OneHot", infer=_one_hot_rule, kernel=_one_hot_kernel, same_dtype=False)


def _one_hot_value(value: Any, dtype: np.dtype[Any] | None) -> Any:
    """``value`` as a tensor or array with a dtype, trying ``dtype`` for Python values."""
    if is_tensor_like(value) or isinstance(value, (np.ndarray, np.generic)):
        return value if is_tensor_like(value) else np.asarray(value)
    if dtype is not None:
        try:
            return to_array(value, dtype)
        except (TypeError, ValueError):
            pass  # the mismatch is reported with the dtype the value has
    return to_array(value)


def one_hot(
    indices: Any,
    depth: Any,
    on_value: Any = None,
    off_value: Any = None,
    axis: Any = None,
    dtype: Any = None,
    name: str | None = None,
) -> Any:
    """A new dimension of size ``depth`` at ``axis`` (last by default) that holds
    ``on_value`` at each index and ``off_value`` elsewhere.

    Indices outside ``[0, depth)`` give a row of ``off_value``. The dtype is ``dtype``,
    else that of ``on_value``, else of ``off_value`` (Python ints are int32, floats
    float32), else float32; given values must all have it (``TypeError`` otherwise). The
    defaults are 1 and 0. ``depth`` may be a scalar int tensor known only at run time
    (``sf.shape(logits)[-1]`` with unknown sizes); the new dimension is then None.
    Tensor ``on_value``/``off_value`` get gradients; ``indices`` has none.

    Example:
        >>> import scopeflow as sf
        >>> sf.one_hot([0, 2, 5], 3).numpy()
        array([[1., 0., 0.],
               [0., 0., 1.],
               [0., 0., 0.]], dtype=float32)
    """
    # A depth known while building is an attr; otherwise (a placeholder, the size of a
    # dimension only the run time knows) it is a fourth input and the new dimension's
    # static size is None.
    dyn_depth = is_symbolic(depth) and static_value(depth) is None
    n = None if dyn_depth else static_int(depth, "one_hot(): depth")
    if n is not None and n < 0:
        msg = f"one_hot(): depth must be >= 0, got {n}"
        raise ValueError(msg)
    ax = -1 if axis is None else static_int(axis, "one_hot(): axis")
    wanted = None if dtype is None else as_dtype(dtype)
    # TensorFlow's rules: each given value becomes a tensor (a Python value takes
    # ``dtype`` when it can, else its own default: 5 is int32, 5.0 float32); the output
    # dtype is ``dtype``, else on_value's, else off_value's, else float32; every given
    # value must have it.
    given = {
        what: _one_hot_value(v, wanted)
        for what, v in (("on_value", on_value), ("off_value", off_value))
        if v is not None
    }
    dt = wanted or next((v.dtype for v in given.values()), _FLOAT32)
    if dt.kind not in "biufc":
        msg = f"one_hot(): dtype must be numeric or bool, got {dt.name}"
        raise TypeError(msg)
    for what, v in given.items():
        if v.dtype != dt:
            source = "the dtype argument" if wanted is not None else "on_value"
            msg = (
                f"one_hot(): {what} has dtype {v.dtype.name}, but the output is {dt.name} "
                f"(set by {source}); pass values of one dtype"
            )
            raise TypeError(msg)
    values = [
        given.get(what, np.asarray(default, dt))
        for what, default in (("on_value", 1), ("off_value", 0))
    ]
    inputs = (indices, *values, depth) if dyn_depth else (indices, *values)
    return apply(ONE_HOT, inputs, {"depth": n, "axis": ax}, name)
