"""Eager tensors and conversion of Python and NumPy values.

An :class:`EagerTensor` wraps a NumPy array that nobody else holds: it is created from a
kernel's fresh result or from a private copy, and :meth:`EagerTensor.numpy` hands out
read-only views, so an eager tensor never changes after it is made.
"""

from __future__ import annotations

from typing import Any, Final, final

import numpy as np

from ._graph import Shape, Tensor, escaped_from
from ._operation import _no_public_constructor
from ._tensor_ops import TensorOperators

__all__ = [
    "PY_SCALARS",
    "EagerTensor",
    "as_dtype",
    "check_tensor_dtype",
    "scalar_array",
    "shared_scalar",
    "to_array",
    "wrap",
]

# Default dtypes for Python values, as in TensorFlow: float32 and int32.
_PY_DEFAULTS: Final = {
    float: np.dtype(np.float32),
    int: np.dtype(np.int32),
    bool: np.dtype(np.bool_),
}


@final
class EagerTensor(TensorOperators):
    """A concrete value computed eagerly: immutable, backed by NumPy.

    Example:
        >>> import scopeflow as sf
        >>> t = sf.constant([1.0, 2.0]) * 3
        >>> t.numpy(), t.shape, t.dtype
        (array([3., 6.], dtype=float32), (2,), dtype('float32'))
    """

    __slots__ = ("__weakref__", "_value")

    _value: np.ndarray[Any, Any]

    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_public_constructor(
            EagerTensor, "call sf.constant(value) or any op while executing eagerly"
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype."""
        dtype: np.dtype[Any] = self._value.dtype
        return dtype

    @property
    def shape(self) -> Shape:
        """The shape, fully known."""
        return self._value.shape  # type: ignore[no-any-return]

    @property
    def ndim(self) -> int:
        """The rank."""
        return self._value.ndim

    def numpy(self) -> np.ndarray[Any, Any]:
        """The value as a read-only NumPy array (a view: copy it to modify it)."""
        view = self._value.view()
        view.flags.writeable = False
        return view

    def tolist(self) -> Any:
        """The value as a (nested) Python list, or a Python scalar for a 0-d tensor.

        Example:
            >>> import scopeflow as sf
            >>> sf.constant([[1, 2], [3, 4]]).tolist()
            [[1, 2], [3, 4]]
        """
        return self._value.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        if dtype is not None and np.dtype(dtype) != self._value.dtype:
            if copy is False:
                msg = (
                    f"Cannot view a {self._value.dtype.name} tensor as {np.dtype(dtype).name} "
                    f"without a copy (copy=False)"
                )
                raise ValueError(msg)
            return self._value.astype(dtype)
        if copy:
            return self._value.copy()
        return self.numpy()

    def item(self) -> Any:
        """The value of a one-element tensor as a Python scalar."""
        return self._value.item()

    def __bool__(self) -> bool:
        return bool(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __complex__(self) -> complex:
        return complex(self._value)

    def __index__(self) -> int:
        if self._value.dtype.kind not in "iu":
            msg = f"Only integer tensors can be used as an index, not {self._value.dtype}"
            raise TypeError(msg)
        return int(self._value)

    def __len__(self) -> int:
        if self._value.ndim == 0:
            msg = "len() of a scalar tensor"
            raise TypeError(msg)
        return len(self._value)

    def __iter__(self) -> Any:
        for row in self._value:
            yield wrap(np.asarray(row))

    def _elementwise_equality(self) -> bool:
        return True

    def __hash__(self) -> int:
        msg = (
            "EagerTensor is unhashable: == compares it element-wise. Use tensor.ref() as "
            "the dict key or set member (ref.deref() gives the tensor back)"
        )
        raise TypeError(msg)

    # Eager tensors are immutable values: a copy may be the tensor itself, and a pickle
    # holds the array (unpickling always gives an eager tensor, in any context).
    def __copy__(self) -> EagerTensor:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> EagerTensor:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle, (self._value,))

    def __repr__(self) -> str:
        body = np.array2string(self._value, separator=", ")
        return f"<sf.EagerTensor shape={self.shape} dtype={self.dtype.name} numpy={body}>"


def wrap(array: np.ndarray[Any, Any]) -> EagerTensor:
    """Wrap a fresh array that no one else references (kernel outputs)."""
    t = object.__new__(EagerTensor)
    t._value = array
    return t


def _unpickle(array: Any) -> EagerTensor:
    """An eager tensor from a pickled array (see ``EagerTensor.__reduce__``)."""
    if not isinstance(array, np.ndarray):
        msg = f"A pickled EagerTensor holds a NumPy array, got {type(array).__name__}"
        raise TypeError(msg)
    _check_numeric(array.dtype, "unpickle")
    arr = np.array(array, copy=True)
    arr.flags.writeable = False
    return wrap(arr)


_NUMERIC_KINDS: Final = "biufc"
# Float dtypes: the largest magnitude a Python float converts to without overflowing, and
# the largest Python int they hold exactly (a float64 mantissa has 53 bits).
_FLOAT_RANGE: Final = {
    np.dtype(np.float16): float(np.finfo(np.float16).max),
    np.dtype(np.float32): float(np.finfo(np.float32).max),
    np.dtype(np.float64): float("inf"),
}
_EXACT_INTS: Final = {
    np.dtype(np.float16): 2**11,
    np.dtype(np.float32): 2**24,
    np.dtype(np.float64): 2**53,
}


def _check_numeric(dtype: np.dtype[Any], what: str) -> None:
    if dtype.kind not in _NUMERIC_KINDS:
        kind = "object" if dtype.kind == "O" else f"non-numeric ({dtype})"
        msg = (
            f"Cannot {what} a NumPy value of {kind} dtype as a tensor: tensors hold "
            f"numbers or booleans. Convert it to a numeric array first"
        )
        if dtype.kind == "O":
            msg += (
                " (an object array often comes from np.asarray() of a list of symbolic "
                "tensors or other Python objects)"
            )
        raise TypeError(msg)


def check_tensor_dtype(dtype: np.dtype[Any]) -> None:
    """``TypeError`` unless ``dtype`` is one a tensor can hold (numbers or bool)."""
    if dtype.kind not in _NUMERIC_KINDS:
        msg = (
            f"dtype {dtype} is not a tensor dtype: tensors hold numbers or booleans; pass a "
            f"NumPy dtype such as sf.float32, sf.int32 or sf.bool_"
        )
        raise TypeError(msg)


def as_dtype(dtype: Any) -> np.dtype[Any]:
    """``dtype`` as a NumPy dtype; ``TypeError`` for anything that is not one."""
    try:
        result: np.dtype[Any] = np.dtype(dtype)
    except TypeError:
        msg = f"{dtype!r} is not a dtype; pass a NumPy dtype such as sf.float32"
        raise TypeError(msg) from None
    return result


def scalar_array(value: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any] | None:
    """A Python float or int as a 0-d array of ``dtype`` if it converts without a
    question (exactly, or for a float within the dtype's range); None otherwise.

    The scalar operand of ``x + 1.0`` / ``x * 2`` (SPEC section 11 allows it 1.3x the cost
    of two tensors) takes this path; :func:`to_array`'s checked path costs 10x more.
    """
    kind = type(value)
    if kind is float:
        limit = _FLOAT_RANGE.get(dtype)
        if limit is not None and -limit <= value <= limit:
            return np.array(value, dtype=dtype)
    elif kind is int:
        if dtype.kind in "iu":
            try:
                return np.array(value, dtype=dtype)
            except OverflowError:
                return None  # the checked path explains it
        limit = _EXACT_INTS.get(dtype)
        if limit is not None and -limit <= value <= limit:
            return np.array(value, dtype=dtype)
    return None


def to_array(value: Any, dtype: np.dtype[Any] | None = None) -> np.ndarray[Any, Any]:
    """A private NumPy array holding ``value`` (Python number, nested list, array).

    Python values take ``dtype`` if given, else TensorFlow's defaults (float32, int32);
    NumPy arrays keep their dtype unless ``dtype`` is given.

    Raises:
        TypeError: a graph tensor, an object NumPy cannot convert, a non-numeric array,
            or a lossy cast.
    """
    if dtype is not None:
        arr = scalar_array(value, dtype)
        if arr is not None:
            return arr
    if isinstance(value, Tensor):
        escaped = escaped_from(value)
        if escaped is not None:
            raise TypeError(escaped)
        msg = (
            f"Graph tensor {value.name!r} of {value.graph!r} cannot be used outside its "
            f"graph, here in eager code. It probably leaked out of an init_scope() or a "
            f"traced function: return it from the function, or run its graph in a Session"
        )
        raise TypeError(msg)
    if isinstance(value, EagerTensor):
        arr = value._value
        if dtype is not None and arr.dtype != dtype:
            msg = f"Expected a tensor of dtype {dtype.name}, got one of dtype {arr.dtype.name}"
            raise TypeError(msg)
        return arr
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype.kind not in _NUMERIC_KINDS:
            _check_numeric(value.dtype, "use")
        if dtype is None or value.dtype == dtype:
            return np.array(value, copy=True)
        return _cast_checked(np.asarray(value), dtype)
    if dtype is None:
        default = _PY_DEFAULTS.get(type(value))
        if default is not None:
            try:
                return np.array(value, dtype=default)
            except OverflowError:
                pass
            # As in TensorFlow, a Python int beyond int32 is an int64.
            try:
                return np.array(value, dtype=np.int64)
            except OverflowError:
                msg = f"{value!r} does not fit in int64"
                raise TypeError(msg) from None
        try:
            arr = np.array(value)
        except (ValueError, TypeError) as e:
            msg = f"Cannot convert {value!r} to a tensor: {e}"
            raise TypeError(msg) from None
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype == np.int64 and (
            arr.size == 0 or (arr.min() >= _INT32_MIN and arr.max() <= _INT32_MAX)
        ):
            arr = arr.astype(np.int32)  # TensorFlow's default; an int beyond it stays int64
        elif arr.dtype.kind not in "biufc":
            msg = (
                f"Cannot convert {value!r} to a tensor: its NumPy dtype {arr.dtype} is not "
                f"numeric or boolean"
            )
            raise TypeError(msg)
        return arr
    try:
        arr = np.array(value)
    except (ValueError, TypeError) as e:
        msg = f"Cannot convert {value!r} to a tensor of dtype {dtype.name}: {e}"
        raise TypeError(msg) from None
    return _cast_checked(arr, dtype)


_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1


def _cast_checked(arr: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """``arr`` as ``dtype``, refusing casts that change values (1.5 -> int, 2**40 -> int32)."""
    if arr.dtype.kind not in "biufc":
        msg = f"Cannot convert a value of NumPy dtype {arr.dtype} to a {dtype.name} tensor"
        raise TypeError(msg)
    if arr.dtype.kind == "c" and dtype.kind != "c":
        msg = f"Cannot convert a complex value to a {dtype.name} tensor"
        raise TypeError(msg)
    with np.errstate(all="ignore"):
        out = arr.astype(dtype)
        # A real value made complex comes back through its real part (casting complex to
        # real would warn, and the imaginary part is zero anyway).
        back = out.real if dtype.kind == "c" and arr.dtype.kind != "c" else out
        lossy = arr.size and not np.array_equal(
            back.astype(arr.dtype), arr, equal_nan=arr.dtype.kind in "fc"
        )
    if lossy and not (arr.dtype.kind == "f" and dtype.kind == "f"):
        msg = (
            f"Cannot convert {arr.tolist()!r} to a {dtype.name} tensor without changing its "
            f"value; cast it explicitly with sf.cast()"
        )
        raise TypeError(msg)
    return out


# -- Python scalars shared as op inputs ----------------------------------------------------

PY_SCALARS: Final = frozenset((float, int, bool))
"""The Python scalar types with a fast conversion (``type(x) in PY_SCALARS``)."""

# Shared read-only 0-d arrays for repeated (scalar, dtype) pairs: a lookup is about half
# the cost of np.array(). Only non-zero values are cached (0.0 == -0.0 would share a key;
# NaN never converts here). Races between threads only store equal arrays twice; the size
# bound keeps a loop over many distinct scalars from growing it.
_SCALAR_CACHE: dict[tuple[type, float | int | bool, np.dtype[Any]], np.ndarray[Any, Any]] = {}
_SCALAR_CACHE_SIZE: Final = 1024


def shared_scalar(value: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any] | None:
    """:func:`scalar_array`, read-only and cached: the array may be shared, so use it only
    where values are never written (op inputs, constants' values)."""
    key = (type(value), value, dtype)
    arr = _SCALAR_CACHE.get(key)
    if arr is not None:
        return arr
    arr = scalar_array(value, dtype)
    if arr is None:
        return None
    # A view of an array over an immutable bytes object: no array of the chain (the
    # value, its .base) can be made writeable again, so no holder of a shared array (a
    # Const's value attr) can write it for all the others. About 70 ns more than a
    # read-only view of the array, on a cache miss only.
    arr = np.frombuffer(arr.tobytes(), arr.dtype).reshape(())
    if value:
        if len(_SCALAR_CACHE) >= _SCALAR_CACHE_SIZE:
            _SCALAR_CACHE.clear()
        _SCALAR_CACHE[key] = arr
    return arr
