"""``sf.train.Checkpoint``: save and restore variables by object path, in safetensors files.

Format (version 1): one safetensors file. Each variable is a tensor whose key is its object
path from the checkpoint's root: ``model/dense/w`` for ``Checkpoint(model=m)`` and
``m.dense.w``; an optimizer's step counter is ``optimizer/iterations`` and its slots are
``optimizer/slots/<variable path>/<slot>``; ``save_counter`` counts ``save`` calls. The
file's metadata holds ``{"format": "scopeflow.checkpoint", "version": "1"}``. No pickle and
no code: data only.

Writes go to a temporary file in the same directory that is then renamed over the target,
so a crash never leaves a torn checkpoint and a reader sees either the old file or the new
one. Restores are all or nothing: every entry is read and checked (path, shape, dtype)
before any variable changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, final

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from ._init_scope import init_scope
from ._module import walk_attributes
from ._optimizers import Optimizer
from ._scopes import name_scope
from ._variables import Variable

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointLoadStatus",
    "arrays_from_bytes",
    "read_arrays",
]

FORMAT: Final = "scopeflow.checkpoint"
FORMAT_VERSION: Final = "1"
_SLOTS: Final = "slots"


@final
class CheckpointLoadStatus:
    """What ``restore`` returns. A restore is complete or raises, so the assertions pass.

    Kept for TensorFlow-style code: ``ckpt.restore(path).assert_consumed()``.
    """

    __slots__ = ("path", "restored")

    def __init__(self, path: str, restored: tuple[str, ...]) -> None:
        self.path = path
        self.restored = restored

    def assert_consumed(self) -> CheckpointLoadStatus:
        """No-op: every entry of the file matched a variable (else restore raised)."""
        return self

    def assert_existing_objects_matched(self) -> CheckpointLoadStatus:
        """No-op: every variable got a value (else restore raised)."""
        return self

    def expect_partial(self) -> CheckpointLoadStatus:
        """No-op; pass ``restore(path, expect_partial=True)`` to allow extra entries."""
        return self

    def __repr__(self) -> str:
        return f"<CheckpointLoadStatus {self.path!r}: {len(self.restored)} variables>"


@final
class Checkpoint:
    """Groups objects (modules, optimizers, variables) to save and restore together.

    Args:
        **objects: the objects to track, by name; the names start the object paths.

    Example:
        >>> import os, tempfile
        >>> import scopeflow as sf
        >>> model = sf.Module(name="model")
        >>> model.w = sf.Variable([1.0, 2.0], name="w")
        >>> ckpt = sf.train.Checkpoint(model=model)
        >>> path = ckpt.write(os.path.join(tempfile.mkdtemp(), "weights.safetensors"))
        >>> _ = model.w.assign([0.0, 0.0])
        >>> ckpt.restore(path).assert_consumed()
        <CheckpointLoadStatus '...weights.safetensors': 1 variables>
        >>> model.w.numpy()
        array([1., 2.], dtype=float32)
    """

    def __init__(self, **objects: Any) -> None:
        for name, obj in objects.items():
            if name == "save_counter":
                msg = "Checkpoint(save_counter=...) is reserved for the checkpoint's own counter"
                raise ValueError(msg)
            if not _trackable(obj):
                msg = (
                    f"Checkpoint({name}=...) takes modules, optimizers, variables or "
                    f"lists/dicts of them, got {obj!r}"
                )
                raise TypeError(msg)
        self._objects = dict(objects)
        self._lock = threading.Lock()
        self._save_counter: Variable | None = None

    @property
    def save_counter(self) -> Variable:
        """How many times :meth:`save` ran (an int64 variable, made on first use)."""
        with self._lock:
            if self._save_counter is None:
                with init_scope(), name_scope(None):
                    self._save_counter = Variable(np.int64(0), name="save_counter", trainable=False)
            return self._save_counter

    # -- the object graph ----------------------------------------------------------------

    def _sf_children(self) -> dict[str, Any]:
        children = dict(sorted(self._objects.items()))
        if self._save_counter is not None:
            children["save_counter"] = self._save_counter
        return children

    def _entries(self) -> dict[str, Variable]:
        """Every variable to save, by object path, optimizer slots included."""
        paths: dict[str, Variable] = {}
        where: dict[int, str] = {}
        optimizers: list[tuple[str, Optimizer]] = []
        for path, obj in walk_attributes(self):
            key = "/".join(path)
            if isinstance(obj, Variable):
                paths[key] = obj
                where[id(obj)] = key
            elif isinstance(obj, Optimizer):
                optimizers.append((key, obj))
        for key, opt in optimizers:
            for var, slot, slot_var in opt._sf_slot_entries():
                var_path = where.get(id(var))
                if var_path is None:
                    msg = (
                        f"Optimizer {key!r} has a {slot!r} slot for {var.name!r}, which this "
                        f"checkpoint does not reach: add the model to the checkpoint too"
                    )
                    raise ValueError(msg)
                paths[f"{key}/{_SLOTS}/{var_path}/{slot}"] = slot_var
        return paths

    # -- saving --------------------------------------------------------------------------

    def write(self, path: str | os.PathLike[str]) -> str:
        """Write every variable to ``path`` (atomically); returns the path written."""
        target = os.fspath(path)
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        for key, var in self._entries().items():
            arrays[key] = _value_of(var, key)
        header = _header(arrays, target)
        _atomic_write(target, header, *arrays.values())
        return target

    def save(self, file_prefix: str | os.PathLike[str]) -> str:
        """Increment ``save_counter`` and write to ``f"{file_prefix}-{counter}"``."""
        counter = self.save_counter
        n = int(counter.assign_add(1).numpy())
        try:
            return self.write(f"{os.fspath(file_prefix)}-{n}")
        except BaseException:
            counter.assign_sub(1)  # a failed save does not use up a number
            raise

    # -- restoring -----------------------------------------------------------------------

    def read(
        self, path: str | os.PathLike[str], *, expect_partial: bool = False
    ) -> CheckpointLoadStatus:
        """Restore every variable from ``path``; see :meth:`restore`."""
        return self.restore(path, expect_partial=expect_partial)

    def restore(
        self, path: str | os.PathLike[str], *, expect_partial: bool = False
    ) -> CheckpointLoadStatus:
        """Set every tracked variable to its value in the file at ``path``.

        All or nothing: the whole file is read and every entry checked before any
        variable changes. Optimizer slots and counters that do not exist yet are created
        (as the first ``apply_gradients`` would) when the file has values for them.

        Args:
            path: a file written by :meth:`write` or :meth:`save`.
            expect_partial: allow entries in the file that no tracked object has (e.g.
                restore only the model from a training checkpoint).

        Raises:
            ValueError: the file is missing, unreadable or not a scopeflow checkpoint, a
                tracked variable has no entry, an entry has no variable, or an entry's
                shape or dtype differs from its variable's. Nothing was changed.
        """
        source = os.fspath(path)
        arrays = read_arrays(source, FORMAT)
        self._create_missing_state(arrays)
        entries = self._entries()
        for key, var in entries.items():
            if key not in arrays:
                msg = f"Checkpoint {source!r} has no entry for {key!r} ({var.name!r})"
                raise ValueError(msg)
            arr = arrays[key]
            if arr.dtype != var.dtype or arr.shape != var.shape:
                msg = (
                    f"Checkpoint {source!r} entry {key!r} has dtype {arr.dtype.name} and "
                    f"shape {arr.shape}, but the variable {var.name!r} has dtype "
                    f"{var.dtype.name} and shape {var.shape}"
                )
                raise ValueError(msg)
        if not expect_partial:
            extra = [k for k in arrays if k not in entries]
            if extra:
                msg = (
                    f"Checkpoint {source!r} entry {extra[0]!r} matches no tracked object; "
                    f"pass expect_partial=True to restore only what matches"
                )
                raise ValueError(msg)
        for key, var in entries.items():
            var.assign(arrays[key])
        return CheckpointLoadStatus(source, tuple(entries))

    def _create_missing_state(self, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        """Create the counters and slots the file has values for, checked first."""
        if "save_counter" in arrays:
            _ = self.save_counter
        plans: list[tuple[Optimizer, list[Variable]]] = []
        where: dict[str, Variable] = {}
        optimizers: list[tuple[str, Optimizer]] = []
        for p, obj in walk_attributes(self):
            if isinstance(obj, Variable):
                where["/".join(p)] = obj
            elif isinstance(obj, Optimizer):
                optimizers.append(("/".join(p), obj))
        for key, opt in optimizers:
            prefix = f"{key}/{_SLOTS}/"
            # In the walk's order, so slots are created in the same order every time.
            needs = [
                var
                for var_path, var in where.items()
                if any(f"{prefix}{var_path}/{slot}" in arrays for slot in opt._slot_names)
            ]
            if needs or f"{key}/iterations" in arrays:
                plans.append((opt, needs))
        for opt, needs in plans:
            opt.build(needs)


def _trackable(obj: Any) -> bool:
    if isinstance(obj, (Variable, Optimizer, Checkpoint)) or hasattr(obj, "_sf_children"):
        return True
    from ._module import Module

    if isinstance(obj, Module):
        return True
    if isinstance(obj, dict):
        return all(_trackable(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_trackable(v) for v in obj)
    return False


def _value_of(var: Variable, key: str) -> np.ndarray[Any, Any]:
    if var.graph is not None:
        msg = (
            f"Cannot checkpoint graph variable {var.name!r} ({key!r}): its value lives in a "
            f"Session. Checkpoints save eager variables (made in eager code or lifted out "
            f"of traced functions)"
        )
        raise TypeError(msg)
    value = var.numpy()
    return value if value.flags.c_contiguous else value.copy(order="C")


# safetensors' dtype codes, for the header written below.
_SAFETENSORS_DTYPES: Final = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "uint16": "U16", "int16": "I16",
    "float16": "F16", "uint32": "U32", "int32": "I32", "float32": "F32", "uint64": "U64",
    "int64": "I64", "float64": "F64",
}  # fmt: skip


def _header(arrays: dict[str, np.ndarray[Any, Any]], target: str) -> bytes:
    """The safetensors header for ``arrays``, whose data follows it in the given order.

    Writing the header and then each array's buffer straight to the file (rather than
    through ``safetensors.numpy.save``, which first joins everything into one bytes
    object) saves a full copy of the checkpoint; the file is the same format.
    """
    entries: dict[str, Any] = {"__metadata__": {"format": FORMAT, "version": FORMAT_VERSION}}
    offset = 0
    for key, arr in arrays.items():
        code = _SAFETENSORS_DTYPES.get(arr.dtype.name)
        if code is None:
            msg = (
                f"Cannot write checkpoint {target!r}: entry {key!r} has dtype "
                f"{arr.dtype.name}, which safetensors cannot store"
            )
            raise ValueError(msg)
        entries[key] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
    header = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    header += b" " * (-len(header) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(header)) + header


def _atomic_write(target: str, header: bytes, *arrays: np.ndarray[Any, Any]) -> None:
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            for arr in arrays:
                if arr.dtype.byteorder == ">":  # safetensors data is little-endian
                    arr = arr.astype(arr.dtype.newbyteorder("<"))
                f.write(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_arrays(source: str, fmt: str) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of the safetensors file ``source``, whose metadata must name ``fmt``.

    The file is read once (a writer renaming a new file over it meanwhile is harmless);
    every failure is a ``ValueError`` naming the file.
    """
    try:
        data = Path(source).read_bytes()
    except OSError as err:
        msg = f"Cannot read {source!r}: {err.strerror or err}"
        raise ValueError(msg) from None
    return arrays_from_bytes(data, source, fmt)


def arrays_from_bytes(data: bytes, source: str, fmt: str) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of safetensors ``data`` read from ``source``; see :func:`read_arrays`."""
    metadata = _metadata(data, source)
    if metadata.get("format") != fmt:
        msg = f"{source!r} is not a {fmt} file (its metadata names {metadata.get('format')!r})"
        raise ValueError(msg)
    if metadata.get("version") != FORMAT_VERSION:
        msg = (
            f"{source!r} has {fmt} version {metadata.get('version')!r}; this scopeflow "
            f"reads version {FORMAT_VERSION}"
        )
        raise ValueError(msg)
    try:
        arrays = safetensors.numpy.load(data)
    except (SafetensorError, ValueError, TypeError) as err:
        msg = f"Cannot read {source!r}: {err}"
        raise ValueError(msg) from None
    return dict(arrays)


def _metadata(data: bytes, source: str) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors header, validated before anything else."""
    if len(data) < 8:
        msg = f"Cannot read {source!r}: {len(data)} bytes is too short for a safetensors file"
        raise ValueError(msg)
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        msg = f"Cannot read {source!r}: the file is truncated (header of {size} bytes)"
        raise ValueError(msg)
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"Cannot read {source!r}: its header is not valid JSON ({err})"
        raise ValueError(msg) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        msg = f"{source!r} has no scopeflow metadata: it is not a scopeflow file"
        raise ValueError(msg)
    return metadata


def iter_paths(ckpt: Checkpoint) -> Iterator[str]:
    """The object paths ``ckpt`` saves, in order (for tools and docs)."""
    yield from ckpt._entries()
