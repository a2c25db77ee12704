"""Writing an exported model: function graphs to JSON, arrays to safetensors.

:func:`save` picks the functions to export (signatures and traced methods), encodes each
function graph op by op with the attribute codec (nested function graphs of calls,
branches and loops included), validates the document with the loader's own checker, and
writes the directory atomically. Anything the format cannot express raises a
``ValueError`` naming the function, the op and the attribute, before any file is written.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import math
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from ._checkpoint import _value_of
from ._concrete import ConcreteFunction
from ._context import EAGER, _roots, state_get
from ._function import Function
from ._graph import Operation, Tensor
from ._module import walk_attributes
from ._ops._registry import REGISTRY
from ._saved_model_format import (
    CONSTANTS_FILE,
    CONSTANTS_FORMAT,
    DOCUMENT,
    FORMAT,
    OLD_PREFIX,
    OP_TAGS,
    RANDOM_OPS,
    RANDOM_RUNTIME_ATTRS,
    RESERVED_ATTRIBUTES,
    VARIABLE_NAME,
    VARIABLES_FILE,
    VARIABLES_FORMAT,
    VERSION,
    canonical,
    digest,
    document_digest,
    to_storage,
)
from ._saved_model_markers import MARKER_NAMES, MARKERS, Slot
from ._saved_model_objects import LoadedFunction, LoadedMethod, LoadedModel
from ._saved_model_schema import check_document
from ._tensor import EagerTensor
from ._variables import Variable

__all__ = ["save"]

_DEFAULT_SIGNATURE = "serving_default"


class _Unsupported(Exception):
    """A value the attribute codec cannot encode (turned into a ValueError with context)."""


class _Encoder:
    """Encodes function graphs (each once, nested ones on first reference) and collects
    the constant arrays they use."""

    def __init__(self, var_paths: dict[int, str]) -> None:
        self.var_paths = var_paths
        self.functions: dict[str, Any] = {}
        self.names: dict[int, str] = {}  # id(ConcreteFunction) -> its name in the document
        self.keep: list[Any] = []  # keeps ids unique while encoding
        self.constants: dict[int, str] = {}  # id(array) -> key
        self.arrays: dict[str, np.ndarray[Any, Any]] = {}
        self.depth = 0
        self.tags: frozenset[str] = frozenset()  # the op-specific tags of the attribute

    def constant(self, arr: np.ndarray[Any, Any]) -> str:
        key = self.constants.get(id(arr))
        if key is None:
            key = self.constants[id(arr)] = f"c{len(self.arrays)}"
            self.keep.append(arr)
            self.arrays[key] = arr
        return key

    def value(self, v: Any, outer: Any) -> Any:
        """The JSON encoding of one attribute value (see docs/saved_model_format.md)."""
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, np.integer)) and not isinstance(v, np.bool_):
            return int(v)
        if isinstance(v, (float, np.floating)):
            f = float(v)
            return f if math.isfinite(f) else {"float": repr(f)}
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, np.dtype):
            return {"dtype": v.name}
        if isinstance(v, np.ndarray):
            return {"array": self.constant(v)}
        if isinstance(v, tuple):
            return {"tuple": [self.value(x, outer) for x in v]}
        if isinstance(v, list):
            return [self.value(x, outer) for x in v]
        if isinstance(v, slice):
            return {"slice": [self.value(p, outer) for p in (v.start, v.stop, v.step)]}
        if v is Ellipsis:
            return {"ellipsis": None}
        if isinstance(v, Variable):
            path = self.var_paths.get(id(v))
            if path is None:
                msg = (
                    f"it uses variable {v.name!r}, which is not reachable from the saved "
                    f"object; assign it to an attribute of the module"
                )
                raise _Unsupported(msg)
            return {"variable": path}
        if isinstance(v, ConcreteFunction):
            return {"function": self.function(v, outer)}
        if "slot" in self.tags and isinstance(v, Slot):
            return {"slot": v.index}
        marker = MARKER_NAMES.get(id(v))
        if "marker" in self.tags and marker is not None and MARKERS[marker] is v:
            return {"marker": marker}
        if callable(v) and not isinstance(v, type):
            msg = (
                f"it holds the Python function {v!r:.80}, and a saved model holds no code "
                f"(a custom gradient cannot be exported; save a function without it)"
            )
            raise _Unsupported(msg)
        msg = f"the value {v!r:.80} of type {type(v).__name__} has no encoding"
        raise _Unsupported(msg)

    def function(self, cf: ConcreteFunction, referrer: Any = None) -> str:
        """Encode ``cf`` (once) and return its name in the document."""
        hit = self.names.get(id(cf))
        if hit is not None:
            return hit
        graph = cf.graph
        base = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in graph.name) or "fn"
        name = f"{base}_{len(self.names)}"
        self.names[id(cf)] = name
        self.keep.append(cf)
        self.depth += 1
        try:
            self.functions[name] = self._graph(cf, name, referrer)
        finally:
            self.depth -= 1
        return name

    def _graph(self, cf: ConcreteFunction, name: str, referrer: Any) -> dict[str, Any]:
        graph = cf.graph
        label = getattr(graph, "scope_label", None)
        if self.depth > 32:
            msg = f"Cannot save function {graph.name!r}: functions are nested too deeply"
            raise ValueError(msg)
        captures = []
        outer_name = None
        for outer_value, ph in graph.captures:
            if isinstance(outer_value, EagerTensor):
                arr = outer_value.numpy()
                captures.append(
                    {"placeholder": ph.name, "constant": self.constant(arr), "tensor": None}
                )
            elif (
                isinstance(outer_value, Tensor)
                and referrer is not None
                and outer_value.graph is referrer[0]
            ):
                outer_name = referrer[1]
                captures.append(
                    {"placeholder": ph.name, "constant": None, "tensor": outer_value.name}
                )
            else:
                msg = (
                    f"Cannot save function {graph.name!r}: it captures {outer_value!r}, which "
                    f"is neither an eager value nor a tensor of the function that uses it. "
                    f"Trace the function in eager code before saving"
                )
                raise ValueError(msg)
        if label is not None and outer_name is None and referrer is not None:
            outer_name = referrer[1]
        ops = []
        for op in graph.get_operations():
            ops.append(self._op(op, graph, name))
        n_args = len(graph.inputs) - len(captures)
        return {
            "outer": outer_name,
            "label": label,
            "inputs": [t.name for t in graph.inputs[:n_args]],
            "captures": captures,
            "ops": ops,
            "outputs": [t.name for t in graph.outputs],
            "control_outputs": [op.name for op in graph.control_outputs],
            "structure": _structure(cf._out_template, graph.name),
        }

    def _op(self, op: Operation, graph: Any, fname: str) -> dict[str, Any]:
        if op.type not in REGISTRY:
            msg = (
                f"Cannot save function {graph.name!r}: op {op.name!r} has unregistered type "
                f"{op.type!r}"
            )
            raise ValueError(msg)
        for t in op._inputs:
            if t._graph is not graph:
                msg = (
                    f"Cannot save function {graph.name!r}: op {op.name!r} reads {t.name!r} of "
                    f"another graph"
                )
                raise ValueError(msg)
        for c in op._control_inputs:
            if c._graph is not graph:
                msg = (
                    f"Cannot save function {graph.name!r}: op {op.name!r} has a control input "
                    f"{c.name!r} from another graph"
                )
                raise ValueError(msg)
        if op.type in _RUN_TIME_GRADIENTS:
            msg = (
                f"Cannot save op {op.name!r} ({op.type}) of function {graph.name!r}: it "
                f"computes a gradient when the function runs, by replaying Python code (the "
                f"gradient of a while_loop, or of a call or cond that writes variables), and "
                f"a saved model holds no code; take the gradient outside the saved function"
            )
            raise ValueError(msg)
        attrs = {}
        for key, value in op._attrs.items():
            if op.type in RANDOM_OPS and key in RANDOM_RUNTIME_ATTRS:
                continue  # the loader rebuilds the draw source from the "seed" attribute
            if not isinstance(key, str):
                msg = (
                    f"Cannot save op {op.name!r} of function {graph.name!r}: attribute key "
                    f"{key!r} is not a string"
                )
                raise ValueError(msg)
            self.tags = OP_TAGS.get((op.type, key), frozenset())
            try:
                attrs[key] = self.value(value, (graph, fname))
            except _Unsupported as err:
                msg = (
                    f"Cannot save op {op.name!r} ({op.type}) of function {graph.name!r}: "
                    f"attribute {key!r}: {err}"
                )
                raise ValueError(msg) from None
        return {
            "name": op.name,
            "type": op.type,
            "inputs": [t.name for t in op._inputs],
            "control_inputs": [c.name for c in op._control_inputs],
            "attrs": attrs,
            "outputs": [
                [t._dtype.name, None if t._shape is None else list(t._shape)] for t in op._outputs
            ],
        }


# Gradient ops whose kernel replays Python code when they run (_gradients.run_time_vjp).
_RUN_TIME_GRADIENTS: Final = frozenset({"RunTimeVJP", "StatefulRunTimeVJP"})


def _structure(template: Any, fname: str) -> Any:
    """The JSON form of an output template (see ``_nest.flatten``)."""
    if isinstance(template, int):
        return {"leaf": template}
    kind, items = template
    if kind == "const":
        return {"none": None}
    if kind == "defaultdict":
        kind, _, items = items
    if isinstance(kind, type) and issubclass(kind, Mapping):
        pairs = []
        for k, v in items:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                msg = (
                    f"Cannot save function {fname!r}: its output dict has a key {k!r} that is "
                    f"not a string or int"
                )
                raise ValueError(msg)
            pairs.append([k, _structure(v, fname)])
        return {"dict": pairs}
    tag = "list" if kind is list else "tuple"
    return {tag: [_structure(v, fname) for v in items]}


# -- choosing what to export -----------------------------------------------------------


def _concretes(fn: Any, what: str) -> list[ConcreteFunction]:
    if isinstance(fn, ConcreteFunction):
        return [fn]
    if isinstance(fn, Function):
        if fn.input_signature is not None:
            return [fn.get_concrete_function()]
        return list(fn._eager_cache.traces.values())  # the traces made from eager code
    if isinstance(fn, LoadedFunction):
        return [fn.concrete]
    if isinstance(fn, LoadedMethod):
        return [trace.concrete for trace in fn.traces]
    msg = f"{what} must be an sf.function or a ConcreteFunction, got {fn!r}"
    raise TypeError(msg)


def _signatures(
    obj: Any, signatures: Any, functions: dict[str, Any]
) -> dict[str, ConcreteFunction]:
    if signatures is None and isinstance(obj, LoadedModel):
        return {name: fn.concrete for name, fn in obj.signatures.items()}  # re-exported as is
    if signatures is None:
        found = {}
        for name, fn in functions.items():
            traces = _concretes(fn, name)
            if getattr(fn, "input_signature", None) is not None or len(traces) == 1:
                found[name] = traces[0]
        return found
    if isinstance(signatures, (Function, ConcreteFunction, LoadedFunction)):
        signatures = {_DEFAULT_SIGNATURE: signatures}
    if not isinstance(signatures, Mapping):
        msg = (
            f"signatures must be an sf.function, a ConcreteFunction or a dict of them, got "
            f"{signatures!r}"
        )
        raise TypeError(msg)
    out = {}
    for name, fn in signatures.items():
        if not isinstance(name, str):
            msg = f"signature names must be strings, got {name!r}"
            raise TypeError(msg)
        traces = _concretes(fn, f"signatures[{name!r}]")
        if len(traces) != 1:
            msg = (
                f"signatures[{name!r}]: {fn!r} has {len(traces)} traces; give it an "
                f"input_signature or pass one ConcreteFunction (f.get_concrete_function(...))"
            )
            raise ValueError(msg)
        out[name] = traces[0]
    return out


def _function_attributes(obj: Any) -> dict[str, Any]:
    """The sf.function attributes of ``obj`` (bound to it), by name."""
    found = {}
    for name in sorted(dir(obj)):
        if (name.startswith("_") and name != "__call__") or name in RESERVED_ATTRIBUTES:
            continue
        try:
            static = inspect.getattr_static(obj, name)
        except AttributeError:
            continue
        if isinstance(static, Function):
            found[name] = getattr(obj, name)
        elif isinstance(static, LoadedMethod):  # re-exporting a loaded model
            found[name] = static
    if isinstance(obj, LoadedModel) and obj._call is not None:
        found["__call__"] = obj._call
    return found


def _python_values(key: Any) -> list[Any]:
    """The Python values a trace's argument key holds (``("py", type, value)`` leaves)."""
    found: list[Any] = []
    stack = [key]
    while stack:
        v = stack.pop()
        if isinstance(v, tuple):
            if len(v) == 3 and v[0] == "py":
                found.append(v[2])
            else:
                stack.extend(v)
    return found


def _check_dispatch(name: str, traces: list[ConcreteFunction]) -> None:
    """Refuse traces a loaded method could not tell apart by their Python arguments.

    A loaded method takes tensors only and calls the first trace they fit: traces made
    with different Python values (``training=True`` / ``False``) would be picked by the
    tensors' shapes alone, silently running the wrong graph.
    """
    seen = {repr(_python_values(cf._arg_key)) for cf in traces}
    if len(seen) > 1:
        msg = (
            f"Cannot save method {name!r}: its traces were made with different Python "
            f"arguments ({', '.join(sorted(seen))}), which a loaded method cannot tell "
            f"apart (it takes tensors only). Trace it with tensors (sf.constant) instead of "
            f"Python values, or give it an input_signature"
        )
        raise ValueError(msg)


def _entry(enc: _Encoder, cf: ConcreteFunction) -> dict[str, Any]:
    name = enc.function(cf)
    n_args = len(cf.graph.inputs) - len(cf.graph.captures)
    return {"function": name, "input_names": [t.op.name for t in cf.graph.inputs[:n_args]]}


def save(obj: Any, path: str | os.PathLike[str], signatures: Any = None) -> None:
    """Export ``obj``'s traced functions and variables to the directory ``path``."""
    if not state_get(_roots[0])[EAGER]:
        msg = (
            "sf.saved_model.save() must be called from eager code, not while building a graph "
            "or tracing a function"
        )
        raise RuntimeError(msg)
    if not hasattr(obj, "_sf_children") and not _is_module(obj):
        msg = f"sf.saved_model.save() takes an sf.Module (or a checkpointable object), got {obj!r}"
        raise TypeError(msg)
    target = os.fspath(path)
    variables: list[tuple[str, Variable]] = []
    var_paths: dict[int, str] = {}
    for p, v in walk_attributes(obj):
        if isinstance(v, Variable):
            key = "/".join(p)
            variables.append((key, v))
            var_paths[id(v)] = key
    functions = _function_attributes(obj)
    chosen = _signatures(obj, signatures, functions)
    enc = _Encoder(var_paths)
    sigs = {name: _entry(enc, cf) for name, cf in chosen.items()}
    methods = {}
    for name, fn in functions.items():
        traces = _concretes(fn, name)
        _check_dispatch(name, traces)
        if traces:
            methods[name] = [_entry(enc, cf) for cf in traces]
    for key, v in variables:
        if not VARIABLE_NAME.fullmatch(v._name):
            msg = (
                f"Cannot save variable {v._name!r} (at {key!r}): a saved variable's name uses "
                f"letters, digits and . _ - / > only; create it with such a name"
            )
            raise ValueError(msg)
    var_arrays = {key: to_storage(_value_of(v, key)) for key, v in variables}
    const_arrays = {key: to_storage(arr) for key, arr in enc.arrays.items()}
    var_bytes = _encode_arrays(var_arrays, VARIABLES_FORMAT, target)
    const_bytes = _encode_arrays(const_arrays, CONSTANTS_FORMAT, target)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "integrity": {"variables": digest(var_bytes), "constants": digest(const_bytes)},
        "variables": [
            {
                "path": key,
                "name": v._name,
                "dtype": v.dtype.name,
                "shape": list(v.shape),
                "trainable": v.trainable,
            }
            for key, v in variables
        ],
        "constants": {
            key: {"dtype": arr.dtype.name, "shape": list(arr.shape)}
            for key, arr in enc.arrays.items()
        },
        "functions": enc.functions,
        "signatures": sigs,
        "methods": methods,
    }
    doc["integrity"]["document"] = document_digest(doc)
    # What the loader would reject is never written.
    check_document(
        doc,
        os.path.join(target, DOCUMENT),
        {k: (a.dtype, a.shape) for k, a in var_arrays.items()},
        {k: (a.dtype, a.shape) for k, a in const_arrays.items()},
        REGISTRY.__contains__,
    )
    _write_directory(
        target, {DOCUMENT: canonical(doc), VARIABLES_FILE: var_bytes, CONSTANTS_FILE: const_bytes}
    )


def _is_module(obj: Any) -> bool:
    from ._module import Module

    return isinstance(obj, Module)


def _encode_arrays(arrays: dict[str, np.ndarray[Any, Any]], fmt: str, target: str) -> bytes:
    # Imported here: ``import scopeflow`` does not load the safetensors extension.
    import safetensors.numpy
    from safetensors import SafetensorError

    try:
        return safetensors.numpy.save(arrays, metadata={"format": fmt, "version": "1"})
    except SafetensorError as err:
        msg = f"Cannot write saved model {target!r}: {err}"
        raise ValueError(msg) from None


_WRITE_LOCK = threading.Lock()


def _write_directory(target: str, files: dict[str, bytes]) -> None:
    """Write ``files`` into a new directory, then rename it to ``target``.

    An existing saved model at ``target`` is replaced; any other existing path is refused.
    Concurrent saves each land whole, the last one renamed wins: threads of one process
    take turns (saves are rare, and one lock keeps two threads from moving each other's
    directories aside mid-rename); other processes' saves are retried around.
    """
    with _WRITE_LOCK:
        _write_directory_locked(target, files)


def _write_directory_locked(target: str, files: dict[str, bytes]) -> None:
    refusal = (
        f"Cannot save to {target!r}: it exists and is not a saved model directory; "
        f"remove it or choose another path"
    )
    if not _replaceable(target):
        raise FileExistsError(refusal)
    parent = os.path.dirname(os.path.abspath(target))
    tmp = tempfile.mkdtemp(prefix=".tmp-saved-model-", dir=parent)
    olds: list[str] = []
    try:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for attempt in range(_RENAME_ATTEMPTS):
            if os.path.lexists(target):
                if not _replaceable(target):
                    raise FileExistsError(refusal)
                olds.append(tempfile.mkdtemp(prefix=OLD_PREFIX, dir=parent))
                with contextlib.suppress(FileNotFoundError):  # another save moved it first
                    os.rename(target, os.path.join(olds[-1], "model"))
            try:
                os.rename(tmp, target)
                break
            except OSError as err:
                # Another save renamed its directory into place meanwhile: move it aside too.
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if attempt == _RENAME_ATTEMPTS - 1:
                    msg = f"Cannot save to {target!r}: other saves kept replacing it"
                    raise FileExistsError(msg) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for old in olds:  # put back what this save moved aside, if nothing took its place
            if not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    os.rename(os.path.join(old, "model"), target)
        raise
    finally:
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)


_RENAME_ATTEMPTS = 20


def _replaceable(target: str) -> bool:
    """Whether ``target`` is absent (maybe moved away by a concurrent save just now) or a
    saved model directory."""
    try:
        # One lstat decides: a file or a symlink is never replaced, even if a concurrent
        # save moves the directory away and back between two checks.
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            return False
        names = set(os.listdir(target))
    except FileNotFoundError:
        return True
    return not names or (DOCUMENT in names and names <= {DOCUMENT, VARIABLES_FILE, CONSTANTS_FILE})
