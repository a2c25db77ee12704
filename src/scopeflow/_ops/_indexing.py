"""Indexing with tensors: gather, boolean_mask and ``x[key]`` whose key holds tensors.

``x[key]`` with only Python ints, slices, ``...`` and ``None`` (and scalar eager ints)
stays the static ``GetItem`` op of ``_array``. A key holding a graph tensor, an int array
or a bool mask builds ``TensorGetItem``: the tensors become inputs of the op, so the same
key works eagerly, in graphs and in traced functions. The semantics are one rule, the
same in every mode:

- a scalar int tensor indexes one dimension and removes it, like an int;
- a slice may have scalar int tensors as bounds;
- at most one int tensor of rank >= 1 replaces the dimension it indexes by its own
  dimensions, in place (like ``gather`` on that axis; negative indices count from the end);
- at most one bool tensor of rank k selects along the k dimensions it covers, which become
  one dimension of unknown size (like ``boolean_mask``).

Unlike NumPy, an int next to an int array never moves the array's dimensions to the front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, final

import numpy as np

from .._graph import Tensor
from .._tensor import EagerTensor
from . import _array
from ._array import as_int, is_tensor_like, normalize_axis
from ._core import apply
from ._registry import Spec, register_op
from ._static import is_symbolic, static_int

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["boolean_mask", "gather", "getitem"]

_BOOL: Final = np.dtype(np.bool_)


# -- gather ----------------------------------------------------------------------------------


def _gather_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), (idt, ishape) = specs
    if idt.kind not in "iu":
        # The wording after the comma is TensorFlow's, which ported tests match.
        msg = (
            f"indices must be integers, got dtype {idt.name}, which is not in the list of "
            f"allowed values: int16, int32, int64 (or another integer dtype)"
        )
        raise TypeError(msg)
    batch: int = attrs["batch_dims"]
    if shape is None or ishape is None:
        return ((dtype, None),)
    axis = attrs["axis"]
    if not -len(shape) <= axis < len(shape):
        need = axis + 1 if axis >= 0 else -axis
        msg = (
            f"axis {axis} is out of range for rank {len(shape)} (params): Shape must be at "
            f"least rank {need} but is rank {len(shape)}"
        )
        raise ValueError(msg)
    axis = normalize_axis(axis, len(shape))
    if batch > min(axis, len(ishape)):
        msg = (
            f"batch_dims={batch} must be at most the axis ({axis}) and the rank of the "
            f"indices ({len(ishape)})"
        )
        raise ValueError(msg)
    for i in range(batch):
        if None not in (shape[i], ishape[i]) and shape[i] != ishape[i]:
            msg = f"batch dimension {i} differs: {shape[i]} in params, {ishape[i]} in indices"
            raise ValueError(msg)
    return ((dtype, (*shape[:axis], *ishape[batch:], *shape[axis + 1 :])),)


def _check_indices(idx: NDArray[Any], size: int) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        where = tuple(int(i) for i in np.argwhere((idx < 0) | (idx >= size))[0])
        bad = idx[where]
        # TensorFlow's wording (``indices[0,1] = 7 is not in [0, 3)``) names the position.
        msg = (
            f"index {bad} is out of range [0, {size}): "
            f"indices[{','.join(map(str, where))}] = {bad} is not in [0, {size})"
        )
        raise IndexError(msg)


def _batched(params: NDArray[Any], idx: NDArray[Any], batch: int) -> tuple[Any, Any, int]:
    """Params and indices with their ``batch`` leading dimensions merged into one."""
    lead = params.shape[:batch]
    if idx.shape[:batch] != lead:
        msg = f"the batch dimensions differ: {lead} in params, {idx.shape[:batch]} in indices"
        raise ValueError(msg)
    count = int(np.prod(lead, dtype=np.int64))
    return (
        params.reshape(count, *params.shape[batch:]),
        idx.reshape(count, *idx.shape[batch:]),
        count,
    )


def _gather_kernel(attrs: dict[str, Any], params: NDArray[Any], idx: NDArray[Any]) -> Any:
    axis = normalize_axis(attrs["axis"], params.ndim)
    batch: int = attrs["batch_dims"]
    _check_indices(idx, params.shape[axis])
    if not batch:
        return np.take(params, idx, axis=axis)
    p, i, count = _batched(params, idx, batch)
    parts = [np.take(p[b], i[b], axis=axis - batch) for b in range(count)]
    out_shape = (*params.shape[:axis], *idx.shape[batch:], *params.shape[axis + 1 :])
    if not parts:
        return np.zeros(out_shape, params.dtype)
    return np.stack(parts).reshape(out_shape)


GATHER = register_op("Gather", infer=_gather_rule, kernel=_gather_kernel, same_dtype=False)


def gather(
    params: Any,
    indices: Any,
    axis: Any = None,
    batch_dims: Any = 0,
    name: str | None = None,
    *,
    validate_indices: Any = None,
) -> Any:
    """Slices of ``params`` along ``axis`` at ``indices``.

    The result has shape ``params.shape[:axis] + indices.shape[batch_dims:] +
    params.shape[axis + 1:]``. With ``batch_dims = b``, the first ``b`` dimensions of
    ``params`` and ``indices`` are batch dimensions, matched one to one. The gradient with
    respect to ``params`` adds up repeated indices; ``indices`` has none.

    Args:
        params: the tensor to take slices from.
        indices: an int32 or int64 tensor of positions along ``axis``.
        axis: the dimension of ``params`` to index; None means ``batch_dims``, as in
            TensorFlow (so 0 without batch dimensions). In a graph it may be a scalar
            int tensor known only at run time.
        batch_dims: how many leading dimensions are batch dimensions.
        name: the op name in graph mode.
        validate_indices: accepted for TensorFlow compatibility (TensorFlow deprecated
            it); indices are always checked.

    Raises:
        TypeError: ``indices`` are not integers.
        sf.errors.InvalidArgumentError: an index is outside ``[0, params.shape[axis])``
            when the op runs.

    Example:
        >>> import scopeflow as sf
        >>> sf.gather([[1, 2], [3, 4], [5, 6]], [2, 0]).numpy()
        array([[5, 6],
               [1, 2]], dtype=int32)
    """
    del validate_indices  # always validated; kept so TensorFlow-style calls work
    # None is 0, as in TensorFlow.
    batch = 0 if batch_dims is None else static_int(batch_dims, "gather(): batch_dims")
    if batch:
        shape = getattr(indices, "shape", None)
        if shape is None and not is_tensor_like(indices):
            shape = np.shape(indices)
        if shape is None and batch < 0:
            msg = "gather(): a negative batch_dims needs indices of known rank"
            raise ValueError(msg)
        if shape is not None:
            rank = len(shape)
            if not -rank <= batch <= rank:
                msg = (
                    f"gather(): Expected batch_dims in the range [{-rank}, {rank}], but got "
                    f"{batch_dims} (indices have rank {rank})"
                )
                raise ValueError(msg)
            if batch < 0:
                batch += rank
    if is_symbolic(axis):
        from . import _runtime_axes  # imported here: it builds on this module

        _, tensor = _runtime_axes.runtime_axis(axis, None, None, "")
        if tensor is not None:
            attrs = {"batch_dims": batch}
            return apply(_runtime_axes.DYNAMIC_GATHER, (params, indices, tensor), attrs, name)
    ax = batch if axis is None else static_int(axis, "gather(): axis")
    return apply(GATHER, (params, indices), {"axis": ax, "batch_dims": batch}, name)


# -- boolean_mask ----------------------------------------------------------------------------


def _mask_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    (dtype, shape), (mdt, mshape) = specs
    if mdt != _BOOL:
        msg = f"the mask must be a bool tensor, got dtype {mdt.name}"
        raise TypeError(msg)
    if mshape is None:
        msg = "the mask must have a rank known while building the graph"
        raise ValueError(msg)
    if not mshape:
        msg = "the mask cannot be a scalar"
        raise ValueError(msg)
    if shape is None:
        return ((dtype, None),)
    axis: int = attrs["axis"]
    if axis < 0 or axis + len(mshape) > len(shape):
        msg = f"a mask of rank {len(mshape)} at axis {axis} does not fit a rank-{len(shape)} tensor"
        raise ValueError(msg)
    for i, m in enumerate(mshape):
        d = shape[axis + i]
        if None not in (d, m) and d != m:
            msg = f"the mask's shape {mshape} does not match the shape {shape} at axis {axis}"
            raise ValueError(msg)
    return ((dtype, (*shape[:axis], None, *shape[axis + len(mshape) :])),)


def _mask_key(axis: int, mask: NDArray[Any], x: NDArray[Any]) -> tuple[Any, ...]:
    span = x.shape[axis : axis + mask.ndim]
    if span != mask.shape:
        msg = f"the mask's shape {mask.shape} does not match the shape {x.shape} at axis {axis}"
        raise ValueError(msg)
    return (*(slice(None),) * axis, mask)


BOOLEAN_MASK = register_op(
    "BooleanMask", infer=_mask_rule, same_dtype=False,
    kernel=lambda attrs, x, mask: x[_mask_key(attrs["axis"], mask, x)],
)  # fmt: skip


def boolean_mask(tensor: Any, mask: Any, axis: Any = None, name: str = "boolean_mask") -> Any:
    """The slices of ``tensor`` where the bool ``mask`` is true.

    ``mask`` (of rank k, known while building) covers dimensions ``axis`` to ``axis + k``
    of ``tensor`` (``axis`` defaults to 0); they become one dimension with an entry per
    true element, in row-major order. The gradient scatters back into ``tensor``.

    Example:
        >>> import scopeflow as sf
        >>> sf.boolean_mask([[1, 2], [3, 4], [5, 6]], [True, False, True]).numpy()
        array([[1, 2],
               [5, 6]], dtype=int32)
    """
    ax = 0 if axis is None else static_int(axis, "boolean_mask(): axis")
    if ax < 0:
        shape = getattr(tensor, "shape", np.shape(tensor))
        if shape is None:
            msg = "boolean_mask(): a negative axis needs a tensor of known rank"
            raise ValueError(msg)
        ax += len(shape)
    if not is_tensor_like(mask):
        mask = np.asarray(mask)
        if mask.dtype != _BOOL:
            msg = f"boolean_mask(): the mask must be bools, got {mask.dtype.name} values"
            raise TypeError(msg)
    return apply(BOOLEAN_MASK, (tensor, mask), {"axis": ax}, name)


# -- x[key] with tensors in the key ------------------------------------------------------------


@final
class Slot:
    """Marks where input ``index`` (1-based after ``x``) goes in a tensor getitem key."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<input {self.index}>"


def _is_tensor_part(part: Any) -> bool:
    kind = type(part)
    if kind is Tensor:
        return True
    if kind is EagerTensor:
        # A scalar eager int is an int (the static op); arrays and bools are not.
        return part.ndim != 0 or part.dtype.kind not in "iu"
    if kind is np.ndarray:
        return part.ndim != 0 or part.dtype.kind not in "iu"
    if kind is slice:
        return any(type(b) is Tensor for b in (part.start, part.stop, part.step))
    return hasattr(part, "__sf_tensor__") and not hasattr(part, "__index__")


def _template(parts: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[Any]]:
    """The key with each tensor replaced by a ``Slot``, and the tensors in slot order."""
    inputs: list[Any] = []

    def slot(value: Any) -> Slot:
        inputs.append(value)
        return Slot(len(inputs))

    out: list[Any] = []
    for part in parts:
        if type(part) is slice:
            bounds = [
                slot(b) if type(b) is Tensor else None if b is None else as_int(b, "a slice bound")
                for b in (part.start, part.stop, part.step)
            ]
            if bounds[2] == 0:
                msg = "slice step cannot be zero"
                raise ValueError(msg)
            out.append(slice(*bounds))
        elif part is None or part is Ellipsis:
            out.append(part)
        elif _is_tensor_part(part):
            out.append(slot(part))
        else:
            out.append(as_int(part, "an index"))
    if out.count(Ellipsis) > 1:
        msg = f"an index can have only one ellipsis (...), got {parts!r}"
        raise ValueError(msg)
    return tuple(out), inputs


def _consumed(part: Any, specs: tuple[Spec, ...]) -> int | None:
    """How many input dimensions a key part indexes (None: unknown)."""
    if part is None or part is Ellipsis:
        return 0
    if type(part) is Slot:
        dtype, shape = specs[part.index]
        if shape is None:
            return None
        if dtype == _BOOL:
            return len(shape)
    return 1


def _check_slots(key: tuple[Any, ...], specs: tuple[Spec, ...]) -> None:
    arrays = 0
    for part in key:
        bounds = (part.start, part.stop, part.step) if type(part) is slice else (part,)
        for b in bounds:
            if type(b) is not Slot:
                continue
            dtype, shape = specs[b.index]
            scalar = shape == ()
            if dtype.kind not in "iub" or (dtype == _BOOL and (scalar or type(part) is slice)):
                what = "a slice bound" if type(part) is slice else "an index"
                msg = f"{what} must be an int tensor or a bool mask, got {dtype.name} {shape}"
                raise TypeError(msg)
            if type(part) is slice and shape not in (None, ()):
                msg = f"a slice bound must be a scalar, got shape {shape}"
                raise ValueError(msg)
            if type(part) is not slice and not scalar:
                arrays += 1
    if arrays > 1:
        msg = "index with at most one tensor of rank >= 1 (use sf.gather for several axes)"
        raise TypeError(msg)


def _tensor_getitem_rule(specs: tuple[Spec, ...], attrs: dict[str, Any]) -> tuple[Spec, ...]:
    key: tuple[Any, ...] = attrs["key"]
    _check_slots(key, specs)
    dtype, shape = specs[0]
    counts = [_consumed(p, specs) for p in key]
    if shape is None or None in counts:
        return ((dtype, None),)
    rank = len(shape)
    used = sum(c for c in counts if c is not None)
    if used > rank:
        msg = f"too many indices: the key indexes {used} dimensions of a rank-{rank} tensor"
        raise ValueError(msg)
    out: list[int | None] = []
    dim = 0
    for part, count in zip(key, counts, strict=True):
        if part is None:
            out.append(1)
        elif part is Ellipsis:
            out.extend(shape[dim : dim + rank - used])
            dim += rank - used
        elif type(part) is slice:
            size = shape[dim]
            static = all(type(b) is not Slot for b in (part.start, part.stop, part.step))
            out.append(len(range(*part.indices(size))) if static and size is not None else None)
            dim += 1
        elif type(part) is Slot:
            idt, ishape = specs[part.index]
            out.extend((None,) if idt == _BOOL else ishape or ())
            dim += count or 0
        else:
            size = shape[dim]
            if size is not None and not -size <= part < size:
                msg = f"index {part} is out of bounds for dimension {dim} of size {size}"
                raise ValueError(msg)
            dim += 1
    out.extend(shape[dim:])
    return ((dtype, tuple(out)),)


def resolve_key(key: tuple[Any, ...], x: NDArray[Any], slots: tuple[Any, ...]) -> tuple[Any, Any]:
    """The basic-indexing key (array slots as ``:``) and ``(position, array)`` of the array
    index in the basic result (None if there is none), from the runtime ``slots``."""

    def value(b: Any) -> Any:
        return int(slots[b.index - 1]) if type(b) is Slot else b

    basic: list[Any] = []
    advanced: tuple[int, Any] | None = None
    out_dim = 0
    arrays = [p for p in key if type(p) is Slot and slots[p.index - 1].ndim]
    used = sum(1 for p in key if p is not None and p is not Ellipsis) + sum(
        slots[p.index - 1].ndim - 1 for p in arrays if slots[p.index - 1].dtype == _BOOL
    )
    for part in key:
        if type(part) is slice:
            basic.append(slice(value(part.start), value(part.stop), value(part.step)))
            out_dim += 1
        elif type(part) is Slot:
            arr = slots[part.index - 1]
            if arr.dtype == _BOOL and arr.ndim == 0:
                msg = "a scalar bool cannot be an index; use sf.where or sf.cond"
                raise TypeError(msg)
            if arr.ndim == 0:
                basic.append(int(arr))
                continue
            if advanced is not None:
                msg = "index with at most one tensor of rank >= 1 (use sf.gather for several axes)"
                raise TypeError(msg)
            advanced = (out_dim, arr)
            basic.extend([slice(None)] * (arr.ndim if arr.dtype == _BOOL else 1))
            out_dim += arr.ndim if arr.dtype == _BOOL else 1
        elif part is None:
            basic.append(None)
            out_dim += 1
        elif part is Ellipsis:
            basic.append(Ellipsis)
            out_dim += x.ndim - used
        else:
            basic.append(part)
    if Ellipsis not in basic:
        # A trailing ``...`` changes nothing but makes NumPy return a view even when
        # every dimension gets an int (the gradient writes through it).
        basic.append(Ellipsis)
    return tuple(basic), advanced


def _tensor_getitem_kernel(attrs: dict[str, Any], x: NDArray[Any], *slots: NDArray[Any]) -> Any:
    basic, advanced = resolve_key(attrs["key"], x, slots)
    y = x[basic]
    if advanced is None:
        return y
    pos, arr = advanced
    if arr.dtype == _BOOL:
        return y[_mask_key(pos, arr, y)]
    size = y.shape[pos]
    if arr.size and (arr.min() < -size or arr.max() >= size):
        bad = arr[(arr < -size) | (arr >= size)].reshape(-1)[0]
        msg = f"index {bad} is out of bounds for a dimension of size {size}"
        raise IndexError(msg)
    return np.take(y, arr, axis=pos)


TENSOR_GETITEM = register_op(
    "TensorGetItem", infer=_tensor_getitem_rule, kernel=_tensor_getitem_kernel, same_dtype=False
)


def getitem(x: Any, key: Any, name: str | None = None) -> Any:
    """``x[key]``: ints, slices, ``...``, ``None``, and tensors (see the module docstring).

    Example:
        >>> import scopeflow as sf
        >>> t = sf.constant([[1, 2], [3, 4], [5, 6]])
        >>> t[sf.constant([2, 0])].numpy(), t[t[:, 0] > 2].numpy()
        (array([[5, 6],
               [1, 2]], dtype=int32), array([[3, 4],
               [5, 6]], dtype=int32))
    """
    try:
        # The static op first: keys of Python values are the common case, and they pay
        # nothing for the tensor check below.
        return _array.getitem(x, key, name)
    except TypeError:
        parts = key if type(key) is tuple else (key,)
        if not any(_is_tensor_part(p) for p in parts):
            raise
    template, inputs = _template(parts)
    return apply(TENSOR_GETITEM, (x, *inputs), {"key": template}, name)
