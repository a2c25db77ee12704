"""``sf.train.Checkpoint``: save and restore variables by object path, in safetensors files.

Format (version 1): one safetensors file. Each variable is a tensor whose key is its object
path from the checkpoint's root: ``model/dense/w`` for ``Checkpoint(model=m)`` and
``m.dense.w``; an optimizer's step counter is ``optimizer/iterations`` and its slots are
``optimizer/slots/<variable path>/<slot>``; ``save_counter`` counts ``save`` calls. The
file's metadata holds ``{"format": "scopeflow.checkpoint", "version": "1"}``. No pickle and
no code: data only. Two objects whose paths read the same (a key containing ``/``, or the
dict keys ``1`` and ``"1"``) are refused rather than one silently dropped.

``save`` also records the file it wrote in ``checkpoint_state.json`` beside it:
``{"format": "scopeflow.checkpoint_state", "version": "1", "latest": "<file name>"}``,
which ``latest_checkpoint`` reads (only a file name in the same directory is accepted).

Writes go to a temporary file in the same directory that is then renamed over the target,
so a crash never leaves a torn checkpoint and a reader sees either the old file or the new
one. Restores are all or nothing: every entry is read and checked (path, shape, dtype),
including those of optimizer slots still to be created, before anything changes; the
values are then written to the variables' storage, which cannot fail. Saving and
restoring hold the step lock of every tracked optimizer, so neither sees half of an eager
training step running in another thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any, Final, final

import numpy as np

from ._checkpoint_files import atomic_write, write_state
from ._context import executing_eagerly
from ._graph import get_default_graph
from ._module import Module, walk_attributes
from ._optimizers import Optimizer
from ._safetensors_io import FORMAT_VERSION, arrays_from_bytes, header_for, read_arrays
from ._variables import Variable, _new_eager

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointLoadStatus",
    "arrays_from_bytes",
    "read_arrays",
]

FORMAT: Final = "scopeflow.checkpoint"
_SLOTS: Final = "slots"
# Checkpoint's own instance attributes: never tracked objects, whatever the constructor got.
_INTERNAL: Final = frozenset({"_objects", "_lock", "_save_lock", "_save_counter"})


@final
class CheckpointLoadStatus:
    """What ``restore`` returns. A restore is complete or raises, so the assertions pass.

    Kept for TensorFlow-style code: ``ckpt.restore(path).assert_consumed()``.
    """

    __slots__ = ("path", "restored")

    def __init__(self, path: str | None, restored: tuple[str, ...]) -> None:
        self.path = path
        self.restored = restored

    def assert_consumed(self) -> CheckpointLoadStatus:
        """Pass: every entry of the file matched a variable (else restore raised).

        Raises:
            AssertionError: nothing was restored (``restore(None)``).
        """
        self._assert_restored()
        return self

    def assert_existing_objects_matched(self) -> CheckpointLoadStatus:
        """Pass: every variable got a value (else restore raised).

        Raises:
            AssertionError: nothing was restored (``restore(None)``).
        """
        self._assert_restored()
        return self

    def _assert_restored(self) -> None:
        if self.path is None:
            msg = (
                "Nothing was restored: restore(None) was called (latest_checkpoint() found "
                "no checkpoint), so every variable keeps its initial value"
            )
            raise AssertionError(msg)

    def expect_partial(self) -> CheckpointLoadStatus:
        """No-op; pass ``restore(path, expect_partial=True)`` to allow extra entries."""
        return self

    def __repr__(self) -> str:
        if self.path is None:
            return "<CheckpointLoadStatus: nothing restored>"
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
            _check_object(name, obj)
        self._objects = dict(objects)
        self._lock = threading.Lock()
        # Held for a whole save (counter step, write, undo on failure), so two threads
        # saving at once get distinct numbers and a failed save undoes only its own step.
        self._save_lock = threading.Lock()
        self._save_counter: Variable | None = None

    # As in TensorFlow, tracked objects are attributes (``ckpt.model``); setting a public
    # one tracks the object (``ckpt.step = sf.Variable(0)``), ``del`` untracks it.
    def __getattr__(self, name: str) -> Any:
        objects = self.__dict__.get("_objects")
        if objects is not None and name in objects:
            return objects[name]
        msg = f"'Checkpoint' object has no attribute {name!r}"
        raise AttributeError(msg)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") and not self._tracks_private(name):
            object.__setattr__(self, name, value)
            return
        if hasattr(type(self), name):
            msg = f"Checkpoint.{name} is a method or property; track the object under another name"
            raise ValueError(msg)
        _check_object(name, value)
        with self._lock:
            # Copy on write: a save walking the old dict meanwhile is not disturbed.
            self._objects = {**self._objects, name: value}

    def __delattr__(self, name: str) -> None:
        if (name.startswith("_") and not self._tracks_private(name)) or hasattr(type(self), name):
            object.__delattr__(self, name)
            return
        with self._lock:
            if name not in self._objects:
                msg = f"'Checkpoint' object has no attribute {name!r}"
                raise AttributeError(msg)
            self._objects = {k: v for k, v in self._objects.items() if k != name}

    def _tracks_private(self, name: str) -> bool:
        # Checkpoint(_x=v) tracks "_x": setting or deleting ckpt._x updates the tracking.
        return name not in _INTERNAL and name in self.__dict__.get("_objects", ())

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._objects})

    # Copied and pickled with what it tracks; the locks are made anew.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_save_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()

    @property
    def save_counter(self) -> Variable:
        """How many times :meth:`save` ran (an int64 variable, made on first use).

        Always an eager variable, whatever the calling context: its value is bookkeeping
        of this Python object, read and written by ``save`` and ``restore`` directly.
        """
        with self._lock:
            if self._save_counter is None:
                self._save_counter = _new_eager(np.array(0, np.int64), "save_counter", False)
            return self._save_counter

    # -- the object graph ----------------------------------------------------------------

    def _sf_children(self) -> dict[str, Any]:
        children = dict(sorted(self._objects.items()))
        if self._save_counter is not None:
            children["save_counter"] = self._save_counter
        return children

    def _walk(self) -> tuple[dict[str, Variable], list[tuple[str, Optimizer]]]:
        """The reachable variables by object path, and the optimizers by path."""
        paths: dict[str, Variable] = {}
        optimizers: list[tuple[str, Optimizer]] = []
        for path, obj in walk_attributes(self):
            key = "/".join(path)
            if isinstance(obj, Variable):
                _add_entry(paths, key, obj)
            elif isinstance(obj, Optimizer):
                optimizers.append((key, obj))
        return paths, optimizers

    def _entries(self) -> dict[str, Variable]:
        """Every variable to save, by object path, optimizer slots included."""
        paths, optimizers = self._walk()
        where = {id(v): k for k, v in paths.items()}
        for key, opt in optimizers:
            for var, slot, slot_var in opt._sf_slot_entries():
                var_path = where.get(id(var))
                if var_path is None:
                    msg = (
                        f"Optimizer {key!r} has a {slot!r} slot for {var.name!r}, which this "
                        f"checkpoint does not reach: add the model to the checkpoint too"
                    )
                    raise ValueError(msg)
                _add_entry(paths, f"{key}/{_SLOTS}/{var_path}/{slot}", slot_var)
        return paths

    # -- saving --------------------------------------------------------------------------

    def write(self, path: str | os.PathLike[str], *, sync: bool = False) -> str:
        """Write every variable to ``path`` (atomically); returns the path written.

        The file is written under a temporary name and renamed over ``path``: readers and
        a crashed process never see a torn checkpoint. ``sync=True`` also flushes the data
        to the disk before the rename, so the checkpoint survives a power loss too, at the
        cost of waiting for the disk (about 2 x the write time for 100 MiB here).
        """
        _refuse_while_tracing("write")
        target = os.fspath(path)
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        # Values are immutable arrays replaced on every update: taking references while
        # no eager optimizer step runs gives a snapshot of one moment, cheaply.
        with self._steps_paused():
            for key, var in self._entries().items():
                arrays[key] = _value_of(var, key)
        header = header_for(arrays, {"format": FORMAT, "version": FORMAT_VERSION}, target)
        atomic_write(target, header, *arrays.values(), sync=sync)
        return target

    def save(self, file_prefix: str | os.PathLike[str], *, sync: bool = False) -> str:
        """Increment ``save_counter`` and write to ``f"{file_prefix}-{counter}"``.

        Missing parent directories are created. Saves of one checkpoint from several
        threads are serialized, each with its own number. ``sync``: as in :meth:`write`.
        """
        _refuse_while_tracing("save")
        prefix = os.fspath(file_prefix)
        counter = self.save_counter
        with self._save_lock:
            # Storage-level updates: the counter is eager and changes now, whatever the
            # calling context (a graph being built, a function being traced).
            n = int(counter._update(np.add, np.array(1, np.int64)))
            try:
                path = self.write(f"{prefix}-{n}", sync=sync)
                write_state(path)
                return path
            except BaseException:
                counter._update(np.subtract, np.array(1, np.int64))  # a failed save uses no number
                raise

    # -- restoring -----------------------------------------------------------------------

    def read(
        self, path: str | os.PathLike[str], *, expect_partial: bool = False
    ) -> CheckpointLoadStatus:
        """Restore every variable from ``path``; see :meth:`restore`."""
        return self.restore(path, expect_partial=expect_partial)

    def restore(
        self, path: str | os.PathLike[str] | None, *, expect_partial: bool = False
    ) -> CheckpointLoadStatus:
        """Set every tracked variable to its value in the file at ``path``.

        All or nothing: the whole file is read and every entry checked (including those
        of optimizer slots and counters that do not exist yet) before anything changes;
        only then are the missing slots and counters created (as the first
        ``apply_gradients`` would) and every variable set. ``restore(None)`` (what
        :func:`latest_checkpoint` gives before the first save) restores nothing and
        returns a status whose assertions fail.

        Args:
            path: a file written by :meth:`write` or :meth:`save`, or None.
            expect_partial: allow entries in the file that no tracked object has (e.g.
                restore only the model from a training checkpoint).

        Raises:
            ValueError: the file is missing, unreadable or not a scopeflow checkpoint, a
                tracked variable has no entry, an entry has no variable, or an entry's
                shape or dtype differs from its variable's. Nothing was changed.
            TypeError: a tracked variable is a graph variable (its value lives in a
                Session). Nothing was changed.
        """
        if path is None:
            return CheckpointLoadStatus(None, ())
        _refuse_while_tracing("restore")
        source = os.fspath(path)
        arrays = read_arrays(source, FORMAT)
        entries = self._entries()
        for key, var in entries.items():
            _check_eager(var, key, "restore into")
        plans, planned = self._plan_missing_state(source, arrays, entries)
        for key, var in entries.items():
            if key not in arrays:
                if key == "save_counter":
                    continue  # written by write(), which counts no save: keep ours
                msg = f"Checkpoint {source!r} has no entry for {key!r} ({var.name!r})"
                raise ValueError(msg)
            _check_entry(source, key, arrays[key], var.dtype, var.shape, var.name)
        for key, (dtype, shape, name) in planned.items():
            if key not in arrays:
                msg = f"Checkpoint {source!r} has no entry for {key!r} ({name!r})"
                raise ValueError(msg)
            _check_entry(source, key, arrays[key], dtype, shape, name)
        if not expect_partial:
            extra = [k for k in arrays if k not in entries and k not in planned]
            if extra:
                msg = (
                    f"Checkpoint {source!r} entry {extra[0]!r} matches no tracked object; "
                    f"pass expect_partial=True to restore only what matches"
                )
                raise ValueError(msg)
        # Everything is checked: create the missing state, then set every value. The
        # writes go to the storage directly (shape and dtype are known to match), so
        # they cannot fail and do not depend on the calling context.
        if "save_counter" in arrays:
            _ = self.save_counter
        with self._steps_paused():  # no eager optimizer step sees half the restore
            for opt, needs in plans:
                opt.build(needs)
            entries = self._entries()
            restored = tuple(k for k in entries if k in arrays)
            for key in restored:
                # The arrays are fresh read-only views of this read: the variables own them.
                entries[key]._update(None, arrays[key], adopt=True)
        return CheckpointLoadStatus(source, restored)

    @contextlib.contextmanager
    def _steps_paused(self) -> Iterator[None]:
        """Hold the step lock of every tracked optimizer (in a fixed order)."""
        _, optimizers = self._walk()
        locks = {id(opt): opt._step_lock for _, opt in optimizers}
        with contextlib.ExitStack() as stack:
            for _, lock in sorted(locks.items()):
                stack.enter_context(lock)
            yield

    def _plan_missing_state(
        self, source: str, arrays: dict[str, np.ndarray[Any, Any]], entries: dict[str, Variable]
    ) -> tuple[
        list[tuple[Optimizer, list[Variable]]],
        dict[str, tuple[np.dtype[Any], tuple[int | None, ...], str]],
    ]:
        """The optimizer slots and counters the file has values for that don't exist.

        Returns the ``build`` calls to make and, by object path, the (dtype, shape, name)
        of every variable they will create, so the file is checked against them first.
        """
        planned: dict[str, tuple[np.dtype[Any], tuple[int | None, ...], str]] = {}
        if "save_counter" in arrays and "save_counter" not in entries:
            planned["save_counter"] = (np.dtype(np.int64), (), "save_counter:0")
        plans: list[tuple[Optimizer, list[Variable]]] = []
        where, optimizers = self._walk()
        for key, opt in optimizers:
            prefix = f"{key}/{_SLOTS}/"
            # In the walk's order, so slots are created in the same order every time.
            needs = [
                var
                for var_path, var in where.items()
                if any(f"{prefix}{var_path}/{slot}" in arrays for slot in opt._slot_names)
            ]
            if not (needs or f"{key}/iterations" in arrays):
                continue
            plans.append((opt, needs))
            if f"{key}/iterations" not in entries:
                planned[f"{key}/iterations"] = (
                    np.dtype(np.int64),
                    (),
                    f"{opt._name}/iterations:0",
                )
            for var_path, var in where.items():
                if not any(v is var for v in needs):
                    continue
                _check_eager(var, var_path, "restore optimizer slots for")
                if not np.issubdtype(var.dtype, np.floating):
                    msg = (
                        f"Checkpoint {source!r} has optimizer slots for {var_path!r} "
                        f"({var.name!r}), whose dtype {var.dtype.name} no optimizer updates"
                    )
                    raise ValueError(msg)
                base = var.name[:-2] if var.name.endswith(":0") else var.name
                for slot in opt._slot_names:
                    slot_key = f"{prefix}{var_path}/{slot}"
                    if slot_key not in entries:
                        planned[slot_key] = (var.dtype, tuple(var.shape), f"{base}/{slot}:0")
        return plans, planned


def _refuse_while_tracing(method: str) -> None:
    if executing_eagerly():
        return
    graph = get_default_graph()
    if graph.building_function:
        msg = (
            f"Checkpoint.{method}() was called while tracing {graph.name!r}: it would run "
            f"once, at trace time, not on every call. Call it outside the traced function"
        )
        raise RuntimeError(msg)


def _check_object(name: str, obj: Any) -> None:
    if name == "save_counter":
        msg = "Checkpoint(save_counter=...) is reserved for the checkpoint's own counter"
        raise ValueError(msg)
    if not _trackable(obj):
        msg = (
            f"Checkpoint({name}=...) takes modules, optimizers, variables or "
            f"lists/dicts of them, got {obj!r}"
        )
        raise TypeError(msg)


def _trackable(obj: Any) -> bool:
    # _sf_children is looked up on the type, as the walk does: a class is not trackable.
    if isinstance(obj, (Variable, Module)) or callable(getattr(type(obj), "_sf_children", None)):
        return True
    if isinstance(obj, dict):
        return all(_trackable(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_trackable(v) for v in obj)
    return False


def _add_entry(paths: dict[str, Variable], key: str, var: Variable) -> None:
    """Add ``var`` at ``key``; two objects whose paths read the same are refused."""
    other = paths.get(key)
    if other is not None and other is not var:
        msg = (
            f"Two variables have the object path {key!r} ({other.name!r} and {var.name!r}): "
            f"a dict key or attribute name contains '/' or two dict keys read the same "
            f"(1 and '1'); rename one so that every path is unique"
        )
        raise ValueError(msg)
    paths[key] = var


def _check_eager(var: Variable, key: str, verb: str = "checkpoint") -> None:
    if var.graph is not None:
        msg = (
            f"Cannot {verb} graph variable {var.name!r} ({key!r}): its value lives in a "
            f"Session. Checkpoints hold eager variables (made in eager code or lifted out "
            f"of traced functions)"
        )
        raise TypeError(msg)


def _check_entry(
    source: str,
    key: str,
    arr: np.ndarray[Any, Any],
    dtype: np.dtype[Any],
    shape: tuple[int | None, ...],
    name: str,
) -> None:
    if arr.dtype != dtype or arr.shape != tuple(shape):
        msg = (
            f"Checkpoint {source!r} entry {key!r} has dtype {arr.dtype.name} and "
            f"shape {arr.shape}, but the variable {name!r} has dtype "
            f"{dtype.name} and shape {tuple(shape)}"
        )
        raise ValueError(msg)


def _value_of(var: Variable, key: str) -> np.ndarray[Any, Any]:
    _check_eager(var, key)
    value = var.numpy()
    return value if value.flags.c_contiguous else value.copy(order="C")


def iter_paths(ckpt: Checkpoint) -> Iterator[str]:
    """The object paths ``ckpt`` saves, in order (for tools and docs)."""
    yield from ckpt._entries()
