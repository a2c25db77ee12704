"""``sf.Module``: a named container of variables and submodules.

A module opens a name scope named after it once, at construction (made unique in graph
mode), and keeps it: variables created in ``__init__`` carry it, and methods re-enter it
exactly with ``with self.name_scope:``. Its variables and submodules are found by walking
its attributes, so a model needs no registration calls; checkpoints and exported models
use the same walk to name every variable by its object path (``model/dense/w``).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._context import Scope
from ._scopes import name_scope
from ._variables import Variable

__all__ = ["Module", "walk_attributes"]

_M = TypeVar("_M", bound="Module")
_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Attributes the module machinery itself keeps; never part of the walked structure.
_OWN = frozenset(
    {"_sf_name", "_sf_scope_name", "_sf_name_scope", "_sf_init_scope", "_sf_init_depth"}
)


def _snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class Module:
    """A named container of variables and submodules (the base of models and layers).

    Subclasses call ``super().__init__(name=...)`` first; every variable created in the
    rest of their ``__init__`` is named under the module's scope. ``variables``,
    ``trainable_variables`` and ``submodules`` walk the attributes (sorted by name;
    lists, tuples and dicts are searched too), each object once, cycles allowed.

    Args:
        name: the module's name, a Python identifier; by default the class name in
            snake case (``Dense`` -> ``dense``).

    Example:
        >>> import scopeflow as sf
        >>> class Dense(sf.Module):
        ...     def __init__(self, n_in, n_out, name=None):
        ...         super().__init__(name=name)
        ...         self.w = sf.Variable(sf.ones((n_in, n_out)), name="w")
        ...         self.b = sf.Variable(sf.zeros((n_out,)), name="b")
        ...     def __call__(self, x):
        ...         with self.name_scope:
        ...             return x @ self.w + self.b
        >>> layer = Dense(2, 3)
        >>> [v.name for v in layer.variables]
        ['dense/b:0', 'dense/w:0']
        >>> layer(sf.ones((1, 2))).numpy()
        array([[2., 2., 2.]], dtype=float32)
    """

    _sf_name: str
    _sf_scope_name: str
    _sf_name_scope: name_scope
    _sf_init_scope: Scope | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The resolved __init__, not only one defined on ``cls``: an __init__ inherited
        # from a mixin that is not a Module must close the scope too.
        init = cls.__init__
        if init is not Module.__init__ and not getattr(init, "_sf_wraps_module_init", False):
            cls.__init__ = _closing_init_scope(init)  # type: ignore[method-assign]

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            name = _snake_case(type(self).__name__)
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            msg = (
                f"{name!r} is not a valid module name: use a Python identifier (letters, "
                f"digits and underscores, not starting with a digit)"
            )
            raise ValueError(msg)
        if "_sf_name" in self.__dict__:
            return  # a second Module.__init__ (diamond inheritance): keep the first scope
        self._sf_name = name
        with name_scope(name) as scope_name:
            pass
        self._sf_scope_name = scope_name
        self._sf_name_scope = name_scope(scope_name)
        # Variables made in the rest of the subclass's __init__ go under the module's
        # scope: it stays open until the outermost __init__ returns. Only a wrapped
        # __init__ (see _closing_init_scope) closes it, so without one (a plain Module(),
        # or Module.__init__ called directly) the scope is not opened at all.
        if "_sf_init_depth" not in self.__dict__:
            self._sf_init_scope = None
        else:
            scope = name_scope(scope_name)
            scope.__enter__()
            self._sf_init_scope = scope

    @property
    def name(self) -> str:
        """The name given at construction (without the enclosing scopes)."""
        return self._sf_name

    @property
    def name_scope(self) -> name_scope:
        """The module's scope, re-entered exactly: ``with self.name_scope: ...``."""
        return self._sf_name_scope

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable of this module and its submodules, each once, in TensorFlow's
        order: the module's own (attributes sorted by name), then each submodule's."""
        return tuple(flatten_module(self, Variable))

    @property
    def trainable_variables(self) -> tuple[Variable, ...]:
        """The variables created with ``trainable=True``."""
        return tuple(v for v in self.variables if v.trainable)

    @property
    def non_trainable_variables(self) -> tuple[Variable, ...]:
        """The variables created with ``trainable=False`` (counters, statistics)."""
        return tuple(v for v in self.variables if not v.trainable)

    @property
    def submodules(self) -> tuple[Module, ...]:
        """Every module reachable from this one (not itself), each once, in the order of
        :attr:`variables`."""
        return tuple(flatten_module(self, Module))

    @staticmethod
    def with_name_scope(
        method: Callable[Concatenate[_M, _P], _R],
    ) -> Callable[Concatenate[_M, _P], _R]:
        """Decorate a method so that it runs inside its module's ``name_scope``.

        Example:
            >>> import scopeflow as sf
            >>> class Scale(sf.Module):
            ...     @sf.Module.with_name_scope
            ...     def __call__(self, x):
            ...         return sf.get_name_scope()
            >>> Scale(name="scale")(1.0)
            'scale'
        """

        @functools.wraps(method)
        def method_with_name_scope(self: _M, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with self.name_scope:
                return method(self, *args, **kwargs)

        return method_with_name_scope

    def __getstate__(self) -> dict[str, Any]:
        # The scope object may be entered right now (it holds that task's frames): a
        # copy or a pickle gets a fresh one for the same scope name instead.
        state = dict(self.__dict__)
        for key in ("_sf_name_scope", "_sf_init_scope", "_sf_init_depth"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        scope_name = state.get("_sf_scope_name")
        if scope_name is not None:
            self._sf_name_scope = name_scope(scope_name)
        self._sf_init_scope = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._sf_scope_name[:-1]!r}>"


def _closing_init_scope(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a subclass ``__init__`` so that the outermost one closes the module's scope."""

    @functools.wraps(init)
    def wrapped(self: Module, *args: Any, **kwargs: Any) -> None:
        outermost = "_sf_init_depth" not in self.__dict__
        if outermost:
            self.__dict__["_sf_init_depth"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                del self.__dict__["_sf_init_depth"]
                scope = self.__dict__.get("_sf_init_scope")
                if scope is not None:
                    self._sf_init_scope = None
                    scope.__exit__(None, None, None)
        if "_sf_name" not in self.__dict__:
            msg = (
                f"{type(self).__name__}.__init__ did not call super().__init__(); a "
                f"sf.Module subclass must, before creating variables"
            )
            raise TypeError(msg)

    wrapped._sf_wraps_module_init = True  # type: ignore[attr-defined]
    return wrapped


def walk_attributes(root: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, object) for every variable and tracked object reachable from ``root``.

    Depth first. A module's attributes are visited in sorted order; an object with a
    ``_sf_children()`` method (optimizers, checkpoints) gives its own named children;
    list and tuple items go by index, dict items by sorted key (insertion order when keys
    don't sort). Each object is yielded once, at the first path that reaches it; cycles
    are cut.
    """
    seen: set[int] = set()
    stack: list[tuple[tuple[str, ...], Any]] = [((), root)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if path and (isinstance(obj, (Variable, Module)) or _has_children(obj)):
            yield path, obj
        children: list[tuple[str, Any]]
        if _has_children(obj):
            children = list(obj._sf_children().items())
        elif isinstance(obj, Module):
            # list() copies in one step: another thread setting an attribute meanwhile
            # cannot break the iteration.
            items = [(k, v) for k, v in list(vars(obj).items()) if k not in _OWN]
            children = sorted(items, key=lambda kv: kv[0])
        elif isinstance(obj, Mapping):
            pairs = list(obj.items())
            with contextlib.suppress(TypeError):  # keys that don't sort keep their order
                pairs = sorted(pairs, key=lambda kv: kv[0])
            children = [(str(k), v) for k, v in pairs]
        elif isinstance(obj, (list, tuple)):
            children = [(str(i), v) for i, v in enumerate(list(obj))]
        else:
            continue
        for name, child in reversed(children):
            if id(child) not in seen and _may_hold_state(child):
                stack.append(((*path, name), child))


def flatten_module(root: Module, kind: type[_T]) -> list[_T]:
    """The objects of ``kind`` reachable from ``root``, as ``tf.Module`` lists them.

    A module's own attributes come first, sorted by name, with lists, tuples and dicts
    expanded (dict keys sorted); then each submodule found among them, in that order, is
    walked the same way. Only modules are walked into: an optimizer or a checkpoint held as
    an attribute is not a module, so its variables are not the module's; a loaded saved
    model's variables are (in their saved order, where the model is held). Each object is
    listed once; cycles are cut. (Checkpoint paths use :func:`walk_attributes` instead.)
    """
    seen: set[int] = {id(root)}
    found: list[_T] = []
    pending: list[Iterator[Module]] = [iter((root,))]
    while pending:
        module = next(pending[-1], None)
        if module is None:
            pending.pop()
            continue
        submodules: list[Module] = []
        items = [(k, v) for k, v in list(vars(module).items()) if k not in _OWN]
        for _, value in sorted(items, key=lambda kv: kv[0]):
            for leaf in _leaves(value, seen):
                if isinstance(leaf, kind):
                    found.append(leaf)
                if isinstance(leaf, Module):
                    submodules.append(leaf)
        pending.append(iter(submodules))
    return found


def _leaves(value: Any, seen: set[int]) -> Iterator[Any]:
    """Variables and modules in ``value`` (lists, tuples and dicts expanded), not seen yet."""
    stack = [value]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (Variable, Module)):
            yield obj
        elif isinstance(obj, Mapping):
            pairs = list(obj.items())
            with contextlib.suppress(TypeError):  # keys that don't sort keep their order
                pairs = sorted(pairs, key=lambda kv: kv[0])
            stack.extend(v for _, v in reversed(pairs))
        elif isinstance(obj, (list, tuple)):
            stack.extend(reversed(list(obj)))
        elif callable(getattr(type(obj), "_sf_module_variables", None)):
            # A loaded saved model: its variables are the holding module's.
            stack.extend(reversed(obj._sf_module_variables()))


def _has_children(obj: Any) -> bool:
    # Looked up on the type: an instance's __getattr__ (a lazy proxy, a mock) never runs,
    # and a class (``self.optimizer_cls = sf.optimizers.Adam``) is not mistaken for one.
    return callable(getattr(type(obj), "_sf_children", None))


def _may_hold_state(obj: Any) -> bool:
    return isinstance(obj, (Variable, Module, Mapping, list, tuple)) or _has_children(obj)
