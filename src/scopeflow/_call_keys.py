"""How calls of traced functions are keyed: argument structures, specs and descriptions.

A call's bound arguments become a hashable key (:func:`_arg_structure`): tensors by dtype
and shape, Python values by type and value, containers by structure, objects compared by
identity by a weak reference (:class:`_WeakId`). :class:`TensorSpec` describes a tensor
argument; :func:`_describe_key` puts a key into words for error messages.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, final

import numpy as np

from ._graph import Shape, Tensor
from ._shapes import as_static_shape
from ._tensor import EagerTensor, as_dtype, to_array, wrap

__all__ = ["TensorSpec", "UnkeyableArgumentError"]


@final
class TensorSpec:
    """The dtype and (partially known) shape of a tensor argument.

    Example:
        >>> import scopeflow as sf
        >>> spec = sf.TensorSpec((None, 3), sf.float32)
        >>> spec.shape, spec.dtype
        ((None, 3), dtype('float32'))
    """

    __slots__ = ("dtype", "name", "shape")

    def __init__(
        self, shape: Sequence[int | None] | None, dtype: Any = np.float32, name: str | None = None
    ) -> None:
        self.shape: Shape | None = (
            None if shape is None else as_static_shape(shape, "TensorSpec()", allow_unknown=True)
        )
        self.dtype = as_dtype(dtype)
        self.name = name

    def is_compatible_with(self, dtype: np.dtype[Any], shape: Shape | None) -> bool:
        """Whether a value of ``dtype`` and ``shape`` fits this spec."""
        if dtype != self.dtype:
            return False
        mine = self.shape
        if mine is None or shape is None or mine == shape:
            return True
        if len(shape) != len(mine):
            return False
        # Indexing, not all() over a zip(strict=True): 0.24 µs a call instead of 0.69 µs
        # (every input_signature call checks each argument).
        for i, a in enumerate(mine):
            if a is not None:
                b = shape[i]
                if b is not None and a != b:
                    return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and (self.shape, self.dtype, self.name) == (
            other.shape,
            other.dtype,
            other.name,
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.name))

    def __repr__(self) -> str:
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.name}, name={self.name!r})"


# -- argument and output structures ----------------------------------------------------

_LEAF: Final = "T"


def _is_tensor_leaf(value: Any) -> bool:
    return isinstance(value, (EagerTensor, Tensor, np.ndarray, TensorSpec))


def _leaf_spec(value: Any) -> tuple[np.dtype[Any], Shape | None]:
    if isinstance(value, TensorSpec):
        return value.dtype, value.shape
    if isinstance(value, np.ndarray):
        return value.dtype, value.shape
    return value.dtype, value.shape


def _flatten(
    value: Any,
    leaves: list[Any],
    refs: Callable[[Any], _WeakId] | None = None,
    tokens: list[_WeakId] | None = None,
) -> Any:
    """The cache-key structure of ``value``; tensor leaves are appended to ``leaves``.

    Python values key by type and value (so ``1``, ``1.0`` and ``True`` differ, NaN keys
    are stable and ``-0.0`` differs from ``0.0``); containers key by type and contents.
    Objects compared by identity key by a weak reference, made by ``refs`` (a transient
    one when None) and appended to ``tokens``, so the cache never keeps them alive.
    """
    kind = type(value)
    if kind is EagerTensor:  # the warm-call case, first and without a call
        leaves.append(value)
        array = value._value
        return (_LEAF, array.dtype, array.shape)
    if kind in _ATOMS:
        return ("py", kind, value)
    if kind is float:
        return ("py", float, _float_key(value))
    if _is_tensor_leaf(value):
        leaves.append(value)
        dtype, shape = _leaf_spec(value)
        return (_LEAF, dtype, shape)
    if isinstance(value, (list, tuple)):
        return (kind, tuple([_flatten(v, leaves, refs, tokens) for v in value]))
    if isinstance(value, Mapping):
        items = [(_hashable_key(k), _flatten(v, leaves, refs, tokens)) for k, v in value.items()]
        return (kind, tuple(items))
    if isinstance(value, _NUMBERS):
        return _number_key(value)
    try:
        hash(value)
    except TypeError:
        return ("ref", _weak_id(value, refs, tokens, hashable=False))
    if kind.__hash__ is _OBJECT_HASH and kind.__eq__ is _OBJECT_EQ:
        # Compared by identity: a weak key frees the object (and its traces) when it dies.
        try:
            return ("ref", _weak_id(value, refs, tokens, hashable=True))
        except TypeError:
            pass  # not weak-referenceable (a bare object()): keyed, and kept, by value
    return ("py", kind, value)


def cast_call_to_key(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    key: Any,
    given: Callable[[Any], bool],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A bound call with Python numbers (and lists of them) made tensors where ``key``, a
    trace's argument structure, has a tensor, as TensorFlow converts them when a concrete
    function is called; everything else is left as it is.

    Only values the caller passed are converted (``given(position or keyword)``): a
    default is not, as a tensor parameter of a concrete function must be passed.
    """
    arg_keys, kw_keys = key
    if len(args) != len(arg_keys):
        return args, kwargs
    kw_lookup = dict(kw_keys)
    new_args = tuple(
        [
            _cast_to_key(a, k) if given(i) else a
            for i, (a, k) in enumerate(zip(args, arg_keys, strict=True))
        ]
    )
    new_kwargs = {
        name: _cast_to_key(v, kw_lookup[name]) if name in kw_lookup and given(name) else v
        for name, v in kwargs.items()
    }
    return new_args, new_kwargs


def _cast_to_key(value: Any, key: Any) -> Any:
    tag = key[0] if isinstance(key, tuple) and key else None
    if tag == _LEAF:
        if _is_tensor_leaf(value) or not isinstance(
            value, (bool, int, float, complex, np.generic, list, tuple)
        ):
            return value
        try:
            return wrap(to_array(value, key[1]))
        except (TypeError, ValueError, OverflowError):
            return value  # the structure check reports it
    if isinstance(tag, type) and issubclass(tag, (list, tuple)) and type(value) is tag:
        children = key[1]
        if len(value) != len(children):
            return value
        items = [_cast_to_key(v, k) for v, k in zip(value, children, strict=True)]
        return tag(*items) if hasattr(value, "_fields") else tag(items)
    if tag is dict and type(value) is dict:
        lookup = dict(key[1])
        return {
            k: _cast_to_key(v, lookup[hk]) if (hk := _hashable_key(k)) in lookup else v
            for k, v in value.items()
        }
    return value


def _arg_structure(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    leaves: list[Any],
    refs: Callable[[Any], _WeakId] | None = None,
    tokens: list[_WeakId] | None = None,
) -> tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]:
    """The key of bound call arguments: one entry per positional and per keyword argument."""
    return (
        tuple([_flatten(a, leaves, refs, tokens) for a in args]),
        tuple([(k, _flatten(v, leaves, refs, tokens)) for k, v in kwargs.items()]),
    )


class UnkeyableArgumentError(TypeError):
    """An argument that can neither be hashed nor weakly referenced (a ``set``, ...)."""


@final
class _Special:
    """A float key that ``==`` cannot express: NaN (never equal to itself) and ``-0.0``."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


_NAN: Final = _Special("nan")
_NEG_ZERO: Final = _Special("-0.0")
_ATOMS: Final = frozenset({int, bool, str, bytes, type(None)})
_NUMBERS: Final = (float, complex, np.floating, np.complexfloating)
_OBJECT_HASH: Final[Any] = object.__hash__
_OBJECT_EQ: Final[Any] = object.__eq__


def _float_key(x: Any) -> Any:
    if x == x and x != 0:  # the common case first: an ordinary number keys by itself
        return x
    if x != x:
        return _NAN  # every NaN is one key, whatever its payload or sign
    return _NEG_ZERO if math.copysign(1.0, float(x)) < 0 else x


def _number_key(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (complex, np.complexfloating)):
        return ("py", type(value), _float_key(value.real), _float_key(value.imag))
    return ("py", type(value), _float_key(value))


def _hashable_key(value: Any) -> Any:
    """A mapping key as a cache key: ``{1: x}``, ``{True: x}`` and ``{1.0: x}`` differ."""
    if isinstance(value, _NUMBERS):
        return _number_key(value)
    return ("py", type(value), value)


@final
class _WeakId:
    """An identity key that does not keep its object alive.

    Equal to another key for the same live object; once the object is gone it equals
    only itself, so a stale cache entry can never be hit by a newcomer at the same id.
    """

    __slots__ = ("__weakref__", "_hash", "_name", "places", "ref")

    def __init__(self, obj: Any, callback: Callable[[Any], None] | None = None) -> None:
        self.ref = weakref.ref(obj, callback)
        self._hash = id(obj)
        self._name = type(obj).__name__
        # Where traces keyed on it are cached: None for eager callers, else a weak
        # reference to the caller's graph. Replaced whole (a tuple), never mutated.
        self.places: tuple[weakref.ref[Any] | None, ...] = ()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not _WeakId or other._hash != self._hash:
            return False
        obj = self.ref()
        return obj is not None and obj is other.ref()

    def __repr__(self) -> str:
        return f"<{self._name} object at {self._hash:#x}>"


def _weak_id(
    value: Any,
    refs: Callable[[Any], _WeakId] | None,
    tokens: list[_WeakId] | None,
    hashable: bool,
) -> _WeakId:
    try:
        token = refs(value) if refs is not None else _WeakId(value)
    except TypeError:
        if hashable:
            raise
        msg = (
            f"cannot key a trace on {type(value).__name__} {value!r}: it is neither hashable "
            f"nor weak-referenceable; pass a tensor, a hashable value (a tuple or frozenset "
            f"instead of a list or set) or an object that supports weak references"
        )
        raise UnkeyableArgumentError(msg) from None
    if tokens is not None:
        tokens.append(token)
    return token


def _rebuild(value: Any, leaves: Any) -> Any:
    """``value`` with its tensor leaves replaced, in order, from the iterator ``leaves``."""
    if _is_tensor_leaf(value):
        return next(leaves)
    if isinstance(value, (list, tuple)):
        items = [_rebuild(v, leaves) for v in value]
        if isinstance(value, list):
            return items
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, Mapping):
        rebuilt = {k: _rebuild(v, leaves) for k, v in value.items()}
        return rebuilt if type(value) is dict else type(value)(rebuilt)  # type: ignore[call-arg]
    return value


def _shape_free(key: Any) -> Any:
    """A key with leaf shapes dropped (a concrete function accepts compatible shapes)."""
    if isinstance(key, tuple) and key and key[0] == _LEAF:
        return (_LEAF, key[1])
    if isinstance(key, tuple):
        return tuple(_shape_free(k) for k in key)
    return key


def _describe_key(key: Any) -> str:
    """Bound-argument keys as a call: ``(Tensor(float32, shape=(None,)), 3.0, scale=2.0)``."""
    if key and key[0] == "signature":
        return f"input_signature {list(key[1])!r}"
    args, kwargs = key
    parts = [_describe_part(k) for k in args]
    parts.extend(f"{name}={_describe_part(k)}" for name, k in kwargs)
    return f"({', '.join(parts)})"


def _describe_part(k: Any) -> str:
    """One argument's key in words."""
    tag = k[0]
    if tag == _LEAF:
        return f"Tensor({k[1].name}, shape={k[2]})"
    if tag == "py":
        if len(k) == 4:
            return f"{k[1].__name__}({k[2]!r}, {k[3]!r})"
        return repr(k[2]) if k[1] in _ATOMS or k[1] is float else f"{k[1].__name__}({k[2]!r})"
    if tag == "ref":
        return repr(k[1])
    if isinstance(tag, type) and issubclass(tag, Mapping):
        body = ", ".join(f"{_describe_part(kk)}: {_describe_part(v)}" for kk, v in k[1])
        return f"{tag.__name__}({{{body}}})"
    body = ", ".join(_describe_part(v) for v in k[1])
    return f"{tag.__name__}([{body}])"


# -- calls of concrete functions that do not bind as traced --------------------------------


def cast_call(
    binder: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None,
    arg_key: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, list[Any]] | None:
    """(key, tensor leaves) of a concrete function's call with the Python numbers it passes
    converted where the trace (``arg_key``) has tensors, if that makes it match; else None.

    ``binder`` is the concrete function's (see ``CallKeys.concrete_binder``).
    """
    bound, bound_kw = args, kwargs
    marks_args, marks_kw = args, kwargs
    ids: set[int] | None = None
    if binder is not None:
        # Bound twice, the second time with markers in place of the values: a bound
        # place holding a marker was passed by the caller, any other is a default.
        markers = [object() for _ in range(len(args) + len(kwargs))]
        try:
            _, bound, bound_kw = binder(args, kwargs)
            _, marks_args, marks_kw = binder(
                tuple(markers[: len(args)]),
                dict(zip(kwargs, markers[len(args) :], strict=True)),
            )
        except TypeError:
            return None
        ids = {id(m) for m in markers}

    def given(place: int | str) -> bool:
        if ids is None:
            return True
        mark = marks_args[place] if isinstance(place, int) else marks_kw[place]
        return id(mark) in ids

    cast_args, cast_kw = cast_call_to_key(bound, bound_kw, arg_key, given)
    leaves: list[Any] = []
    key = _arg_structure(cast_args, cast_kw, leaves)
    return (key, leaves) if _shape_free(key) == _shape_free(arg_key) else None


def flat_call_arguments(graph: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The call's tensors in input order if it is a flat call of ``graph``'s trace, else None.

    As in TensorFlow, a concrete function also takes its tensor inputs flat: by position,
    then by keyword named after the input (a TensorSpec's name, or the argument's name
    with the leaf's index, as ``mats_0``). Tried only when the call does not bind as the
    traced function's arguments. Every value must be a tensor (or array, or variable)
    that fits its input.
    """
    from ._variables import Variable  # here: only this rare path needs it

    captured = {id(ph) for _, ph in graph.captures}  # a snapshot, taken under its lock
    inputs = [ph for ph in list(graph.inputs) if id(ph) not in captured]
    if len(args) + len(kwargs) != len(inputs):
        return None
    values = list(args)
    for ph in inputs[len(args) :]:
        name = ph.op.name
        if name not in kwargs:
            return None
        values.append(kwargs[name])
    for value, ph in zip(values, inputs, strict=True):
        if not isinstance(value, (EagerTensor, Tensor, Variable, np.ndarray, np.generic)):
            return None
        dtype, shape = _leaf_spec(value)
        if not TensorSpec(ph.shape, ph.dtype).is_compatible_with(dtype, shape):
            return None
    return values
