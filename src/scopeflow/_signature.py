"""Binding a traced function's call arguments to its Python signature, and keying traces.

Every call is bound first, so ``f(x, 3.0)``, ``f(x, scale=3.0)``, ``f(scale=3.0, x=x)`` and
``f(x)`` (with ``scale=3.0`` as the default) become the same canonical call: every
positional parameter by position (defaults applied), keyword-only parameters in signature
order, extra ``**kwargs`` sorted by name. That canonical call is both what the trace runs
and what the cache key is built from, so equal calls share one trace.

Arguments compared by identity (unhashable objects, and objects that keep ``object``'s
``__eq__``/``__hash__``) are keyed by a weak reference: the cache never keeps them alive,
and when one dies the traces keyed on it are evicted. An argument that is neither hashable
nor weak-referenceable (a ``set``) is refused with a ``TypeError``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, final

import numpy as np

from ._call_keys import (
    TensorSpec,
    UnkeyableArgumentError,
    _arg_structure,
    _leaf_spec,
    _WeakId,
)
from ._graph import Tensor
from ._tensor import EagerTensor, to_array, wrap

__all__ = ["Binder", "CallKeys", "bound_method_signature"]

_EMPTY: Final = inspect.Parameter.empty
_TENSOR_KINDS: Final = "biufc"  # the dtype kinds a tensor holds (numbers and bool)
_POSITIONAL: Final = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


class _Evicts(Protocol):
    def _evict_ref(self, token: _WeakId) -> None: ...


def bound_method_signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    """The signature of ``fn`` with its first parameter (``self``) bound, if it has one."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if params and params[0].kind in _POSITIONAL:
        return sig.replace(parameters=params[1:])
    return sig  # def m(*args): self arrives inside *args, the rest still binds the same


@final
class Binder:
    """Binds ``(args, kwargs)`` to a Python signature in canonical form.

    Example:
        >>> def f(x, scale=3.0, *, mode="a"):
        ...     pass
        >>> b = Binder(f, "f")
        >>> b.bind((1,), {}) == b.bind((), {"scale": 3.0, "x": 1})
        True
        >>> b.bind((1,), {})
        ((1, 3.0), {'mode': 'a'})
    """

    __slots__ = (
        "_by_name",
        "_defaults",
        "_kw_defaults",
        "_kwonly",
        "_n_pos",
        "_n_posonly",
        "_n_required",
        "_opaque",
        "_pos",
        "_sig",
        "_simple",
        "_varargs",
        "_varkw",
        "name",
    )

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.name = name
        try:
            sig: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None  # a builtin without a signature: calls are keyed as passed
        self._sig = sig
        self._opaque = sig is None
        params = list(sig.parameters.values()) if sig is not None else []
        kinds = inspect.Parameter
        pos = [p for p in params if p.kind in _POSITIONAL]
        self._pos = tuple(p.name for p in pos)
        self._n_pos = len(pos)
        self._n_posonly = sum(p.kind is kinds.POSITIONAL_ONLY for p in pos)
        self._defaults = tuple(p.default for p in pos)
        self._kwonly = tuple((p.name, p.default) for p in params if p.kind is kinds.KEYWORD_ONLY)
        self._varargs = any(p.kind is kinds.VAR_POSITIONAL for p in params)
        self._varkw = any(p.kind is kinds.VAR_KEYWORD for p in params)
        # The common call passes exactly the positional parameters: nothing to rearrange.
        self._simple = not self._kwonly and not self._opaque
        # Positional calls that leave trailing defaults out just append them.
        self._n_required = next(
            (i for i, d in enumerate(self._defaults) if d is not _EMPTY), self._n_pos
        )
        self._by_name: dict[str, int] | None = None
        if not self._kwonly and not self._varkw and not self._opaque:
            self._by_name = {n: i for i, n in enumerate(self._pos) if i >= self._n_posonly}
        if all(d is not _EMPTY for _, d in self._kwonly):
            self._kw_defaults: dict[str, Any] | None = dict(self._kwonly)
        else:
            self._kw_defaults = None

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The canonical ``(args, kwargs)`` for this call; ``TypeError`` if it cannot bind."""
        if not kwargs and self._simple and len(args) == self._n_pos:
            return args, kwargs
        if self._opaque:
            return args, dict(sorted(kwargs.items()))
        n_pos = self._n_pos
        n_args = len(args)
        if not kwargs and self._n_required <= n_args <= n_pos and self._kw_defaults is not None:
            return args + self._defaults[n_args:], dict(self._kw_defaults)
        if self._by_name is not None and n_args <= n_pos:
            # Only positional-or-keyword parameters: place each keyword by its index.
            values = [*args, *self._defaults[n_args:]]
            by_name = self._by_name
            for name, value in kwargs.items():
                i = by_name.get(name, -1)
                if i < n_args:
                    self._fail(args, kwargs)  # unknown, positional-only, or given twice
                values[i] = value
            for i in range(n_args, self._n_required):
                if self._pos[i] not in kwargs:
                    self._fail(args, kwargs)
            return tuple(values), {}
        if len(args) > n_pos and not self._varargs:
            self._fail(args, kwargs)
        rest = dict(kwargs)
        for i in range(self._n_posonly, min(len(args), n_pos)):
            if self._pos[i] in rest:
                self._fail(args, kwargs)  # multiple values for one argument
        values = list(args[:n_pos])
        for i in range(len(values), n_pos):
            name = self._pos[i]
            if i >= self._n_posonly and name in rest:
                values.append(rest.pop(name))
            elif self._defaults[i] is not _EMPTY:
                values.append(self._defaults[i])
            else:
                self._fail(args, kwargs)
        out: dict[str, Any] = {}
        for name, default in self._kwonly:
            if name in rest:
                out[name] = rest.pop(name)
            elif default is not _EMPTY:
                out[name] = default
            else:
                self._fail(args, kwargs)
        if rest:
            if not self._varkw:
                self._fail(args, kwargs)
            for name in sorted(rest):  # **kwargs order must not split the cache
                out[name] = rest[name]
        return (*values, *args[n_pos:]), out

    def arg_name(self, index: int) -> str:
        """The parameter the ``index``-th canonical positional argument binds to."""
        if index < self._n_pos:
            return self._pos[index]
        return f"*args[{index - self._n_pos}]"

    def _fail(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise the ``TypeError`` Python would, in the order Python checks."""
        msg = f"{self.name}() {self._problem(args, kwargs)}"
        raise TypeError(msg)

    def _problem(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        n_pos, n_posonly, pos = self._n_pos, self._n_posonly, self._pos
        if len(args) > n_pos and not self._varargs:
            n_req = sum(d is _EMPTY for d in self._defaults)
            takes = str(n_pos) if n_req == n_pos else f"from {n_req} to {n_pos}"
            plural = "" if n_pos == 1 and n_req == n_pos else "s"
            verb = "was" if len(args) == 1 else "were"
            return f"takes {takes} positional argument{plural} but {len(args)} {verb} given"
        by_keyword = set(pos[n_posonly:]) | {name for name, _ in self._kwonly}
        if not self._varkw:
            posonly = [k for k in kwargs if k in pos[:n_posonly]]
            if posonly:
                names = ", ".join(map(repr, posonly))
                return f"got some positional-only arguments passed as keyword arguments: {names}"
            for key in kwargs:
                if key not in by_keyword:
                    return f"got an unexpected keyword argument {key!r}"
        for i in range(n_posonly, min(len(args), n_pos)):
            if pos[i] in kwargs:
                return f"got multiple values for argument {pos[i]!r}"
        missing = [
            pos[i]
            for i in range(len(args), n_pos)
            if self._defaults[i] is _EMPTY and not (i >= n_posonly and pos[i] in kwargs)
        ]
        if missing:
            return _missing(missing, "positional")
        missing = [k for k, d in self._kwonly if d is _EMPTY and k not in kwargs]
        if missing:
            return _missing(missing, "keyword-only")
        return f"got arguments that do not match its signature {self._sig}"


def _missing(names: list[str], kind: str) -> str:
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        listed = quoted[0]
    elif len(quoted) == 2:
        listed = f"{quoted[0]} and {quoted[1]}"
    else:
        listed = f"{', '.join(quoted[:-1])}, and {quoted[-1]}"
    plural = "" if len(names) == 1 else "s"
    return f"missing {len(names)} required {kind} argument{plural}: {listed}"


@final
class CallKeys:
    """A function's argument binding and its weak identity keys.

    ``refs`` hands out one :class:`_WeakId` per live object; when the object dies, its
    entry goes and the owning function evicts the traces keyed on it.
    """

    __slots__ = ("__weakref__", "_lock", "_owner", "_refs", "binder", "signature_key", "specs")

    def __init__(
        self,
        fn: Callable[..., Any],
        specs: Sequence[TensorSpec] | None,
        name: str,
        owner: _Evicts,
    ) -> None:
        self.binder = Binder(fn, name)
        self.specs = None if specs is None else tuple(specs)
        self.signature_key = None if specs is None else _SignatureKey(("signature", self.specs))
        self._owner = weakref.ref(owner)
        self._refs: dict[int, _WeakId] = {}
        self._lock = threading.Lock()

    # -- keys ----------------------------------------------------------------------------

    def unkeyable(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], err: UnkeyableArgumentError
    ) -> TypeError:
        """The error for a call with an argument that cannot be keyed, naming it."""
        msg = f"{self.binder.name}() argument {self._culprit(args, kwargs)!r}: {err}"
        return TypeError(msg)

    def _culprit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        for i, arg in enumerate(args):
            try:
                _arg_structure((arg,), {}, [])
            except UnkeyableArgumentError:
                return self.binder.arg_name(i)
        return next(iter(kwargs), "?")

    def ref(self, obj: Any) -> _WeakId:
        """The weak identity key of ``obj`` (``TypeError`` if it has no weak references)."""
        token = self._refs.get(id(obj))
        if token is not None and token.ref() is obj:
            return token
        with self._lock:
            token = self._refs.get(id(obj))
            if token is None or token.ref() is not obj:
                callback = functools.partial(_died, weakref.ref(self), id(obj))
                token = self._refs[id(obj)] = _WeakId(obj, callback)
            return token

    def note(self, tokens: tuple[_WeakId, ...], graph: Any) -> None:
        """Record that traces keyed on ``tokens`` may be cached for ``graph`` (None: eager)."""
        with self._lock:
            for token in tokens:
                if graph is None:
                    if None not in token.places:
                        token.places = (*token.places, None)
                elif not any(p is not None and p() is graph for p in token.places):
                    token.places = (*token.places, weakref.ref(graph))

    # -- input_signature -----------------------------------------------------------------

    def bind_specs(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], for_concrete: bool
    ) -> list[Any]:
        """The tensor arguments of a call to an ``input_signature`` function, checked."""
        specs = self.specs
        assert specs is not None  # only called for functions with a signature
        if for_concrete and not args and not kwargs:
            return list(specs)
        values = self._spec_values(args, kwargs, len(specs))
        converted = []
        # _spec_values gave one value per spec; zip(strict=True) would cost ~0.13 µs more.
        for i, (arg, spec) in enumerate(zip(values, specs, strict=False)):
            # The warm serving calls, an eager tensor or a plain array of the spec's dtype,
            # checked without the general conversions below (an array: about 2 µs less).
            if type(arg) is EagerTensor:
                array = arg._value
                if spec.is_compatible_with(array.dtype, array.shape):
                    converted.append(arg)
                    continue
            elif (
                type(arg) is np.ndarray
                and arg.dtype == spec.dtype
                and arg.dtype.kind in _TENSOR_KINDS
                and spec.is_compatible_with(arg.dtype, arg.shape)
            ):
                converted.append(wrap(np.array(arg, copy=True)))  # what to_array() makes
                continue
            label = f"argument {i}"
            if isinstance(arg, TensorSpec):
                value: Any = arg
            elif isinstance(arg, (Tensor, EagerTensor)):
                value = arg
            # A plain array has no __sf_tensor__: skipping hasattr's failed lookup saves
            # about 0.5 µs per array argument (a served model's request batch).
            elif type(arg) is not np.ndarray and hasattr(arg, "__sf_tensor__"):
                value = arg.__sf_tensor__()
            else:
                try:
                    value = wrap(to_array(arg, spec.dtype))
                except TypeError as err:
                    msg = f"{self.binder.name}() {label}: {err}"
                    raise TypeError(msg) from None
            dtype, shape = _leaf_spec(value)
            if not spec.is_compatible_with(dtype, shape):
                msg = (
                    f"{self.binder.name}() {label} (dtype {dtype.name}, shape {shape}) does "
                    f"not match its input_signature entry {spec!r} for parameter "
                    f"{self.binder.arg_name(i)!r}"
                )
                error = TypeError if dtype != spec.dtype else ValueError
                raise error(msg)
            converted.append(value)
        return converted

    def _spec_values(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], n: int
    ) -> tuple[Any, ...]:
        """The values of the first ``n`` parameters; any other argument is an error."""
        name = self.binder.name
        if len(args) + len(kwargs) > n:
            msg = (
                f"{name}() takes {n} tensor arguments by its input_signature, got "
                f"{len(args) + len(kwargs)}; parameters the signature does not cover keep "
                f"their defaults"
            )
            raise TypeError(msg)
        if not kwargs and len(args) == n:
            return args
        binder = self.binder
        covered = binder._pos[binder._n_posonly : n]
        for key in kwargs:
            if key not in covered or covered.index(key) + binder._n_posonly < len(args):
                problem = binder._problem(args, kwargs)  # not a parameter, or given twice
                if "unexpected" not in problem and "multiple" not in problem:
                    problem = f"argument {key!r} is not covered by its input_signature"
                msg = f"{name}() {problem}"
                raise TypeError(msg)
        values = list(args)
        for i in range(len(args), n):
            param = binder.arg_name(i)
            if param in kwargs:
                values.append(kwargs[param])
            elif i < binder._n_pos and binder._defaults[i] is not _EMPTY:
                # As in TensorFlow, a covered parameter left out takes its default,
                # converted to its spec below.
                values.append(binder._defaults[i])
            else:
                msg = f"{name}() missing the tensor argument {param!r} of its input_signature"
                raise TypeError(msg)
        return tuple(values)

    def concrete_binder(
        self,
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, Any, Any]]:
        """How a concrete function of this function binds its call arguments."""
        if self.specs is not None:
            return lambda args, kwargs: (self.bind_specs(args, kwargs, False), args, kwargs)
        bind = self.binder.bind
        return lambda args, kwargs: (None, *bind(args, kwargs))


class _SignatureKey(tuple):  # type: ignore[type-arg]
    """``("signature", specs)`` with its hash computed once.

    Hashing the specs (a Python ``__hash__`` per spec) on every call of an
    ``input_signature`` function cost about 0.5 µs per spec.
    """

    _hash: int

    def __new__(cls, items: tuple[Any, ...]) -> _SignatureKey:
        key = super().__new__(cls, items)
        key._hash = tuple.__hash__(key)
        return key

    def __hash__(self) -> int:
        return self._hash


def _died(keys_ref: weakref.ref[CallKeys], ident: int, wr: weakref.ref[Any]) -> None:
    """An object keyed by identity died: forget its key and evict its traces.

    Runs wherever the object dies, possibly inside a GC pass while this thread holds a
    lock of the function, so it takes none: the memory at ``ident`` is not reused before
    this callback has run, and dict pops are atomic.
    """
    keys = keys_ref()
    if keys is None:
        return
    token = keys._refs.get(ident)
    if token is None or token.ref is not wr:
        return
    keys._refs.pop(ident, None)
    owner = keys._owner()
    if owner is not None:
        owner._evict_ref(token)
