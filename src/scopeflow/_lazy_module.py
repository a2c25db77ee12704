"""A stand-in for a submodule that is imported on first use.

``scopeflow.saved_model`` and ``scopeflow.train`` pull in json, hashlib, tempfile and the
safetensors machinery (about 30 ms of import time, bench_import) that ``import scopeflow``
and eager code do not need. The package binds each name to a :class:`LazySubmodule`
instead; the first attribute read through it imports the real module, which the import
system then binds on the package in its place.

Why not PEP 562's module ``__getattr__``: a package whose namespace holds ``__getattr__``
is never specialised by CPython's attribute-lookup cache, so every ``sf.X`` in user code
costs 20-30 ns more (``sf.executing_eagerly()`` 3.0 x a bare ``ContextVar.get()`` with it,
1.8 x without, bench_scopes).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["LazySubmodule", "lazy_submodule"]

# What ModuleType.__init__ stores besides the name: the real module's values are read
# instead (its docstring, and __spec__ and __loader__ for tools such as pydoc and mock).
_REAL_ONLY = ("__doc__", "__loader__", "__package__", "__spec__")


def lazy_submodule(name: str) -> types.ModuleType:
    """The module ``name`` if it is imported already (``importlib.reload`` of the
    package), else a stand-in that imports it on first use."""
    module = sys.modules.get(name)
    return module if module is not None else LazySubmodule(name)


def _doc(self: LazySubmodule) -> str | None:
    return importlib.import_module(self.__name__).__doc__


class LazySubmodule(types.ModuleType):
    # The module named ``name``, imported when one of its attributes is first read. The
    # stand-in holds only that name: every other attribute (even __doc__, __spec__ and
    # __loader__) is read from the real module, and attribute writes and deletions go to
    # it, so code that holds the stand-in (``from scopeflow import train`` before the
    # first use, ``mock.patch.object(sf.saved_model, "load")``) acts on the real module.
    # The import lock serialises concurrent first uses: every thread gets the one module.

    # A data descriptor: found before the instance dict and the class's own docstring.
    __doc__ = property(_doc)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        namespace = self.__dict__
        for key in _REAL_ONLY:
            namespace.pop(key, None)

    def __getattr__(self, attr: str) -> Any:
        # Only reached for what the stand-in lacks: everything but its name.
        return getattr(importlib.import_module(self.__name__), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(importlib.import_module(self.__name__), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(importlib.import_module(self.__name__), attr)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))

    def __repr__(self) -> str:
        return f"<module {self.__name__!r} (imported on first use)>"
