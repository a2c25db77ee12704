"""Exported models: traced functions and variables that run without the Python classes.

Names: :func:`save`, :func:`load`. A saved model is a directory holding
``saved_model.json`` (the function graphs, as versioned JSON validated before anything is
built), ``variables.safetensors`` and ``constants.safetensors`` (the arrays); no pickle and
no code. ``docs/saved_model_format.md`` documents the format.

Example:
    >>> import os, tempfile
    >>> import scopeflow as sf
    >>> class Scale(sf.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = sf.Variable(2.0, name="w")
    ...     @sf.function(input_signature=[sf.TensorSpec((None,), sf.float32, name="x")])
    ...     def __call__(self, x):
    ...         return x * self.w
    >>> path = os.path.join(tempfile.mkdtemp(), "scale")
    >>> sf.saved_model.save(Scale(), path)
    >>> loaded = sf.saved_model.load(path)
    >>> loaded.signatures["__call__"](x=[1.0, 2.0])["output_0"].numpy()
    array([2., 4.], dtype=float32)
    >>> loaded([3.0]).numpy()  # traced methods return what the function returned
    array([6.], dtype=float32)
"""

from __future__ import annotations

import os
from typing import Any

from ._saved_model_load import load as _load
from ._saved_model_objects import (
    LoadedFunction as LoadedFunction,
    LoadedMethod as LoadedMethod,
    LoadedModel as LoadedModel,
)
from ._saved_model_save import save as _save

__all__ = ["LoadedFunction", "LoadedMethod", "LoadedModel", "load", "save"]

for _cls in (LoadedFunction, LoadedMethod, LoadedModel):
    _cls.__module__ = __name__
del _cls


def save(obj: Any, path: str | os.PathLike[str], signatures: Any = None) -> None:
    """Export ``obj``'s traced functions and its variables to the directory ``path``.

    Args:
        obj: an :class:`sf.Module`; every variable reachable from it is saved by its
            object path (as in checkpoints), and every ``sf.function`` attribute with an
            ``input_signature`` or with traces is saved as a method of the loaded object.
        path: the directory to write. It is written next to its final place and renamed
            into place; an existing saved model there is replaced, any other existing
            path is refused (``FileExistsError``).
        signatures: an ``sf.function`` (with an ``input_signature`` or exactly one
            trace) or a ``ConcreteFunction``, saved as ``"serving_default"``; or a dict of
            them by name. By default, every ``sf.function`` attribute with an
            ``input_signature`` or exactly one trace, named by the attribute.

    Raises:
        ValueError: a function uses an op, attribute, capture or variable the format
            cannot express (the message names the function, op and attribute), holds
            Python code (a custom gradient), or a method has traces made with different
            Python argument values, which a loaded method could not tell apart; nothing
            was written.
        TypeError: ``obj`` or ``signatures`` are not what is described above, or a
            variable lives in a graph (its value is in a Session).
        RuntimeError: called while building a graph or tracing a function.
    """
    _save(obj, path, signatures)


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a saved model; its functions run without the classes that defined them.

    The variables are created under ``sf.init_scope()``: eager variables when loading
    from eager code or inside a traced function (they are lifted out of it); graph
    variables of the default graph when loading while building a graph (run
    ``sf.global_variables_initializer()`` in the Session). Nothing else is run.

    Returns:
        A :class:`LoadedModel` with ``.signatures`` (called with keyword arguments only,
        as in TensorFlow), ``.variables``, ``.trainable_variables`` and the saved traced
        methods as attributes.

    Raises:
        ValueError: the directory is missing, unreadable, holds something other than
            a regular file in place of one of its files (a FIFO, a device), is corrupted
            (each file carries a SHA-256 digest), or any entry is invalid; the message
            names the file and the entry. Nothing was created.
    """
    return _load(path)
