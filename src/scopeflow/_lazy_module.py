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
import types
from typing import Any

__all__ = ["LazySubmodule"]


class LazySubmodule(types.ModuleType):
    """The module named ``name``, imported when one of its attributes is first read.

    The import lock serialises concurrent first uses: every thread gets the one module.
    """

    def __getattr__(self, attr: str) -> Any:
        # Only reached for what the stand-in lacks: everything but its name and docstring.
        return getattr(importlib.import_module(self.__name__), attr)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))

    def __repr__(self) -> str:
        return f"<module {self.__name__!r} (imported on first use)>"
