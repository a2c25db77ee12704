"""What ``sf.saved_model.load`` returns: the loaded model, its functions and its objects.

:class:`LoadedModel` has the saved signatures (``.signatures``), the traced methods as
attributes, the variables (``.variables``, ``.trainable_variables``) and, as in
TensorFlow, the saved object structure: ``loaded.hidden.w`` is the variable saved at the
object path ``hidden/w`` (list items by index: ``loaded.layers[0].w``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, final

import numpy as np

from ._call_keys import TensorSpec, _leaf_spec
from ._concrete import ConcreteFunction
from ._graph import Tensor
from ._nest import flatten
from ._saved_model_format import Document
from ._tensor import EagerTensor, to_array
from ._variables import Variable

__all__ = ["LoadedFunction", "LoadedMethod", "LoadedModel"]

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@final
class LoadedFunction:
    """A function of a loaded model: call it eagerly, while building a graph (one call
    op) or inside a traced function; gradients flow through it.

    Each argument is a tensor, a variable, an array or a Python value of the input's dtype
    and shape. A signature takes its arguments by input name only (``input_names``) and
    returns a dict, as in TensorFlow: the function's own dict of outputs, or else its
    outputs in order as ``output_0``, ``output_1``, ...; a method's trace takes them by
    position or by name and returns what the traced function returned.

    Attributes:
        name: the signature or method name.
        input_names: the names of the inputs, in order.
        concrete: the :class:`ConcreteFunction` it calls.
    """

    __slots__ = ("as_dict", "concrete", "input_names", "name")

    def __init__(
        self,
        name: str,
        concrete: ConcreteFunction,
        input_names: list[str],
        *,
        as_dict: bool = False,
    ) -> None:
        self.name = name
        self.concrete = concrete
        self.input_names = tuple(input_names)
        self.as_dict = as_dict

    @property
    def input_signature(self) -> tuple[TensorSpec, ...]:
        """One named :class:`TensorSpec` per input."""
        return tuple(
            TensorSpec(ph.shape, ph.dtype, name)
            for ph, name in zip(self.concrete.graph.inputs, self.input_names, strict=False)
        )

    def __repr__(self) -> str:
        args = ", ".join(
            f"{s.name}: {s.dtype.name}{list(s.shape) if s.shape is not None else ''}"
            for s in self.input_signature
        )
        return f"<sf.saved_model function {self.name}({args})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and self.as_dict:
            # As in TensorFlow: a signature is a serving contract keyed by input name, so a
            # caller never depends on the order the inputs happened to be traced in.
            names = ", ".join(f"{n}=..." for n in self.input_names)
            msg = (
                f"signature {self.name!r} takes its inputs by keyword only, got {len(args)} "
                f"positional argument(s); call it as signatures[{self.name!r}]({names})"
            )
            raise TypeError(msg)
        result = self.concrete._call_flat(self._bind(args, kwargs))
        if not self.as_dict or (type(result) is dict and all(isinstance(k, str) for k in result)):
            return result
        leaves: list[Any] = []
        flatten(result, leaves, _is_none)
        return {f"output_{i}": leaf for i, leaf in enumerate(leaves)}

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        names = self.input_names
        if len(args) > len(names):
            msg = (
                f"{self.name}() takes {len(names)} arguments ({', '.join(names)}), got {len(args)}"
            )
            raise TypeError(msg)
        given: list[Any] = list(args) + [_MISSING] * (len(names) - len(args))
        for key, value in kwargs.items():
            if key not in names:
                msg = (
                    f"{self.name}() got an unexpected argument {key!r}; its inputs are "
                    f"{', '.join(names)}"
                )
                raise TypeError(msg)
            i = names.index(key)
            if given[i] is not _MISSING:
                msg = f"{self.name}() got argument {key!r} twice"
                raise TypeError(msg)
            given[i] = value
        missing = [n for n, v in zip(names, given, strict=True) if v is _MISSING]
        if missing:
            msg = f"{self.name}() is missing the argument(s) {', '.join(missing)}"
            raise TypeError(msg)
        leaves = []
        for name, value, spec in zip(names, given, self.input_signature, strict=True):
            if hasattr(value, "__sf_tensor__"):
                value = value.__sf_tensor__()
            elif not isinstance(value, (Tensor, EagerTensor)):
                value = to_array(value, spec.dtype if not isinstance(value, np.ndarray) else None)
            dtype, shape = _leaf_spec(value)
            if not spec.is_compatible_with(dtype, shape):
                msg = (
                    f"{self.name}() argument {name!r} (dtype {dtype.name}, shape {shape}) does "
                    f"not match the input {spec!r}"
                )
                raise (TypeError if dtype != spec.dtype else ValueError)(msg)
            leaves.append(value)
        return leaves


_MISSING: Final = object()


def _is_none(value: Any) -> bool:
    return value is None


@final
class LoadedMethod:
    """A traced method of a loaded model: calls the first of its traces that fits."""

    __slots__ = ("name", "traces")

    def __init__(self, name: str, traces: list[LoadedFunction]) -> None:
        self.name = name
        self.traces = tuple(traces)

    def __repr__(self) -> str:
        return f"<sf.saved_model method {self.name} ({len(self.traces)} traces)>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        errors = []
        for trace in self.traces:
            try:
                leaves = trace._bind(args, kwargs)
            except (TypeError, ValueError) as err:
                errors.append(str(err))
                continue
            return trace.concrete._call_flat(leaves)
        if len(errors) == 1:
            raise TypeError(errors[0])
        msg = f"{self.name}(): no saved trace fits these arguments: " + "; ".join(errors)
        raise TypeError(msg)


@final
class _Node:
    """An object of the saved structure: its children by attribute or by item."""

    __slots__ = ("_children",)

    def __init__(self) -> None:
        self._children: dict[str, Any] = {}

    def _add(self, parts: list[str], var: Variable) -> None:
        node = self
        for part in parts[:-1]:
            child = node._children.get(part)
            if not isinstance(child, _Node):
                child = node._children[part] = _Node()
            node = child
        node._children.setdefault(parts[-1], var)

    def __getattr__(self, name: str) -> Any:
        try:
            # Not self._children: on a copy being made it is unset, and reading it here
            # would call __getattr__ again, forever.
            children = object.__getattribute__(self, "_children")
        except AttributeError:
            raise AttributeError(name) from None
        try:
            return children[name]
        except KeyError:
            msg = f"the saved object has no attribute {name!r}; it has {sorted(self._children)}"
            raise AttributeError(msg) from None

    def __getitem__(self, key: int | str) -> Any:
        try:
            return self._children[str(key)]
        except KeyError:
            msg = f"the saved object has no item {key!r}; it has {sorted(self._children)}"
            raise KeyError(msg) from None

    def __dir__(self) -> list[str]:
        return sorted(self._children)

    def __repr__(self) -> str:
        return f"<sf.saved_model object: {', '.join(sorted(self._children))}>"


@final
class LoadedModel:
    """What :func:`sf.saved_model.load` returns.

    Attributes:
        signatures: the exported signatures by name (read-only mapping of
            :class:`LoadedFunction`).
        path: the directory it was loaded from.

    Traced methods are attributes (``loaded.predict(x)``); ``variables`` and
    ``trainable_variables`` are the model's variables in the saved order; the saved
    objects are attributes too (``loaded.dense.w``, ``loaded.layers[0].w``).
    """

    def __init__(
        self,
        path: str,
        document: Document,
        built: dict[str, ConcreteFunction],
        variables: dict[str, Variable],
    ) -> None:
        self.path = path
        self.signatures: Mapping[str, LoadedFunction] = MappingProxyType(
            {
                name: LoadedFunction(name, built[fname], input_names, as_dict=True)
                for name, (fname, input_names) in document.signatures.items()
            }
        )
        self._variables = variables
        self._call: LoadedMethod | None = None
        taken = {"path", "signatures", "variables", "trainable_variables"}
        for name, traces in document.methods.items():
            method = LoadedMethod(name, [LoadedFunction(name, built[f], n) for f, n in traces])
            if name == "__call__":
                self._call = method
            else:
                setattr(self, name, method)
                taken.add(name)
        root = _Node()
        for path, var in variables.items():
            root._add(path.split("/"), var)
        for name, child in root._children.items():
            if name not in taken and _IDENTIFIER.fullmatch(name):
                setattr(self, name, child)

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable of the model, in the saved order."""
        return tuple(self._variables.values())

    @property
    def trainable_variables(self) -> tuple[Variable, ...]:
        """The variables saved as trainable."""
        return tuple(v for v in self._variables.values() if v.trainable)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the saved ``__call__`` method (if the model was callable when saved)."""
        if self._call is None:
            msg = f"{self!r} has no saved __call__ method; use .signatures or a method"
            raise TypeError(msg)
        return self._call(*args, **kwargs)

    def _sf_module_variables(self) -> tuple[Variable, ...]:
        # A module holding a loaded model (a backbone to fine-tune) lists these among its
        # variables and trainable_variables (see flatten_module).
        return self.variables

    def _sf_children(self) -> dict[str, Any]:
        # Checkpoints of a loaded model use the saved object paths.
        return dict(self._variables)

    def __repr__(self) -> str:
        return f"<sf.saved_model.LoadedModel {self.path!r}: signatures {sorted(self.signatures)}>"
