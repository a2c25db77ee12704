"""Automatic differentiation: ``GradientTape``.

A tape is a scope: while its block is open, every op run or built in a context that can
see it (the task that entered it, and tasks or threads spawned from there) is offered to
it, and the tape keeps the ops connected to what it watches. Each open block is an
``_Entry`` in the frames of those contexts; leaving the block closes the entry, so
contexts that outlive the block stop recording. ``gradient`` walks the records backwards
(``_backprop``) with gradient functions built from ordinary ops, so the same walk
computes eager values or adds symbolic ops to the graph being built, and tapes that are
recording (a persistent tape inside its own block, outer tapes) record it in turn.
``sf.gradients`` runs the same walk over a graph's ops (``_gradients``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, final

import numpy as np

from . import _jacobian
from ._backprop import (
    CALLS,
    READ,
    SOURCE_VARIABLES,
    VariableGrads,
    attr_variables,
    backprop,
    backprop_arrays,
    differentiable,
    tensor_of,
    variables_read as variables_read,
)
from ._context import (
    EAGER,
    GRAPH,
    LOG,
    PAUSED,
    SCOPES,
    TAPES,
    Frame,
    Scope,
    state_get,
    state_reset,
    state_set,
)
from ._copying import refuse_copying
from ._grad_structure import _check_leaves, _leaves, _leaves_like, _rebuild, unconnected_is_zero
from ._graph import Tensor
from ._ops import _core
from ._ops._grad_util import zeros_like
from ._ops._registry import OpDef
from ._tensor import EagerTensor
from ._variables import Variable
from .errors import ScopeNestingError

__all__ = ["GradientTape"]

_CALL_TYPES: Final = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_new: Final = object.__new__

# The names the control-flow gradients imported from here before ``_backprop`` existed
# (with ``variables_read`` and ``replay_gradients``), for code written against them.
_differentiable = differentiable
_VariableGrads = VariableGrads


def _closed(opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...],
            attrs: dict[str, Any]) -> None:  # fmt: skip
    """What a closed entry does with the ops offered to it: nothing."""


class _ReenteredTapeError(ScopeNestingError, ValueError):
    """A recording tape entered again: a scope misuse, and a ValueError as in TensorFlow."""


@final
class _Entry:
    """One open block of a tape, as the frames of the contexts that can see it hold it.

    Tasks and threads spawned inside the block copy the frame, and with it this object;
    they may outlive the block. Leaving the block closes the entry (``offer`` becomes a
    no-op), which is how a tape stops recording in every context at once: frames are
    immutable and cannot be reached from the tape.
    """

    __slots__ = ("_offer", "_tape")

    def __init__(self, tape: GradientTape) -> None:
        # The tape while the entry is open; None once closed. The entry (not the tape) is
        # the owner of the frame pushed for the block, so tasks spawned inside it that
        # outlive it hold no reference to the tape and its records.
        self._tape: GradientTape | None = tape
        # A bound method stored once: the recording hook calls it without a lookup.
        self._offer: Callable[..., None] = tape._offer

    # What the scope machinery asks of a frame's owner when scopes are misnested.
    def _forget(self, frame: Frame) -> None:
        if self._tape is not None:
            self._tape._forget(frame)

    @property
    def _abandoned(self) -> bool:
        return bool(getattr(self._tape, "_abandoned", False))

    def __repr__(self) -> str:
        return repr(self._tape) if self._tape is not None else "<sf.GradientTape (closed)>"


def _open_entry(tapes: tuple[Any, ...], tape: GradientTape) -> Any:
    for entry in tapes:
        if entry._tape is tape and entry._offer is not _closed:
            return entry
    return None


class _WatchError(TypeError, ValueError):
    """What ``watch()`` raises for a value that is not a tensor: a ``TypeError`` (as for
    every bad type here) that ``except ValueError`` also catches, as in TensorFlow."""


@refuse_copying(
    "a tape holds the operations recorded in its block, and a lock",
    "Open a new sf.GradientTape(persistent=True) to compute several gradients.",
)
@final
class GradientTape(Scope):
    """Record operations to differentiate them.

    Args:
        persistent: allow several ``gradient`` calls (a non-persistent tape allows one).
            A persistent tape also records the gradients computed inside its own block,
            so they can be differentiated again.
        watch_accessed_variables: watch trainable variables read while recording.

    Example:
        >>> import scopeflow as sf
        >>> x = sf.constant(3.0)
        >>> with sf.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x + x
        >>> float(tape.gradient(y, x))
        7.0
        >>> with sf.GradientTape(persistent=True) as tape:
        ...     tape.watch(x)
        ...     dy = tape.gradient(x * x * x, x)
        >>> float(tape.gradient(dy, x))
        18.0
    """

    __slots__ = (
        "__weakref__",
        "_calls",
        "_force",
        "_lock",
        "_masked",
        "_persistent",
        "_records",
        "_tracked",
        "_used",
        "_watch_accessed",
        "_watched_vars",
    )

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self._frame = None  # Scope.__init__, inlined: a tape step builds one tape
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._lock = threading.Lock()
        self._records: list[Any] = []
        # id -> object, for every tensor the tape follows; holding the objects keeps ids
        # unique while the tape lives.
        self._tracked: dict[int, Any] = {}
        self._watched_vars: dict[int, Variable] = {}
        self._used = False
        # Record even where tapes are paused (the private tapes that differentiate a
        # replayed function: the caller may compute gradients under stop_recording()).
        self._force = False
        # (inputs, attrs) of recorded function calls some of whose inputs the tape did not
        # follow when the call ran (see _offer); None until there is one.
        self._masked: list[tuple[tuple[Any, ...], dict[str, Any]]] | None = None
        # Whether a function call was recorded (see gradient: SOURCE_VARIABLES).
        self._calls = False

    def __enter__(self) -> GradientTape:
        cur = state_get()
        tapes = cur[TAPES]
        if tapes and _open_entry(tapes, self) is not None:
            msg = (
                "This GradientTape is still recording here (it is already recording in "
                "this context): it cannot be entered twice; leave its block first, or use "
                "a second tape"
            )
            raise _ReenteredTapeError(msg)
        paused = cur[PAUSED]
        if paused and self._force:
            tapes, paused = (), False
        # _Entry(self) without its __init__ frame (the tape step: ~0.1 µs).
        entry = _new(_Entry)
        entry._tape = self
        entry._offer = self._offer
        frame = (
            cur, entry, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], (*tapes, entry),
            paused, None,
        )  # fmt: skip
        # Scope._push, inlined (a call less per tape step); as there, the check and the
        # claim of the slots run no call.
        token = state_set(frame)
        if self._frame is None:
            self._frame = frame
            self._token = token
        else:
            self._push_more(frame, token)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Scope.__exit__'s fast path, inlined (SPEC section 11 times a tape step), plus
        # closing the entry so that tasks and threads spawned in the block, which may
        # still run, stop recording too. Other exits close entries in ``_forget``.
        cur = state_get(None)
        if cur is self._frame and cur is not None:
            try:
                state_reset(self._token)  # type: ignore[arg-type]
            except ValueError:
                raise self._elsewhere() from None
            self._frame = self._token = None
            entry = cur[TAPES][-1]  # _close, inlined
            entry._offer = _closed
            entry._tape = None
            return
        self._exit_slow(cur)

    def _forget(self, frame: Frame) -> None:
        self._close(frame[TAPES][-1])
        super()._forget(frame)

    def _close(self, entry: _Entry) -> None:
        entry._offer = _closed
        entry._tape = None

    @property
    def _tape(self) -> GradientTape:
        """A tape placed in a frame by itself (a private scope that records with one
        tape only) reads as an entry of itself that is always open (``_offer`` is the
        method)."""
        return self

    def __repr__(self) -> str:
        return f"<sf.GradientTape persistent={self._persistent} records={len(self._records)}>"

    # -- watching ------------------------------------------------------------------------

    def watch(self, tensor: Any) -> None:
        """Follow ``tensor`` (or variables, or nested lists/tuples/dicts of them).

        Raises:
            TypeError: something that is neither a tensor nor a variable was given (also a
                ``ValueError``, which TensorFlow raises there).
        """
        if type(tensor) is EagerTensor:
            self._tracked[id(tensor)] = tensor  # the common case; a dict store is atomic
            return
        leaves = _leaves(tensor)
        for leaf in leaves:
            if not isinstance(leaf, (Variable, EagerTensor, Tensor)):
                msg = (
                    f"GradientTape.watch() takes tensors or variables, got "
                    f"{type(leaf).__module__}.{type(leaf).__qualname__} {leaf!r}"
                )
                raise _WatchError(msg)
        with self._lock:
            for leaf in leaves:
                if isinstance(leaf, Variable):
                    self._watched_vars[id(leaf)] = leaf
                else:
                    self._tracked[id(leaf)] = leaf

    def watched_variables(self) -> tuple[Variable, ...]:
        """The variables watched so far (explicitly, or read while recording)."""
        with self._lock:
            return tuple(self._watched_vars.values())

    def reset(self) -> None:
        """Forget everything recorded and watched so far, as a new tape would.

        As TensorFlow's ``GradientTape.reset``: a tape whose block is open keeps recording
        from here, and a non-persistent tape may compute a gradient again.

        Raises:
            ValueError: the tape is not recording here (as in TensorFlow).
        """
        if _open_entry(state_get()[TAPES], self) is None:
            msg = "GradientTape.reset(): the tape is not recording here (use it in its block)"
            raise ValueError(msg)
        with self._lock:
            self._records = []
            self._tracked = {}
            self._watched_vars = {}
            self._masked = None
            self._calls = False
            self._used = False

    # TensorFlow's signatures; the loops live in _jacobian (module size).
    jacobian = _jacobian.jacobian
    batch_jacobian = _jacobian.batch_jacobian

    def stop_recording(self) -> Scope:
        """A scope in which this tape (only) does not record.

        Raises:
            RuntimeError: on entry, if the tape is not recording in this context.
        """
        return _PauseTape(self)

    # -- recording (called for every op while the tape is visible) -----------------------

    def _offer(self, opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...],
               attrs: dict[str, Any]) -> None:  # fmt: skip
        kind = opdef.type
        tracked = self._tracked
        if kind != READ and kind not in CALLS:
            # The common case, checked without the lock (dict reads are atomic): is any
            # input something this tape follows?
            if not opdef.differentiable:
                return
            for x in inputs:
                if id(x) in tracked:
                    break
            else:
                return
            # No lock: list.append and dict stores are atomic, and records from several
            # threads only need each op after its inputs, which running them guarantees.
            # A plain tuple: the walks make a Record of it only for an op-level gradient
            # function (~0.1 µs less per recorded op).
            self._records.append((opdef, inputs, outputs, attrs))
            for out in outputs:
                tracked[id(out)] = out
            return
        with self._lock:
            if self._used and not self._persistent:
                return
            if kind == READ:
                var = attrs["var"]
                if id(var) not in self._watched_vars:
                    if not (self._watch_accessed and var.trainable):
                        return
                    self._watched_vars[id(var)] = var
            else:
                connected = any(id(x) in tracked for x in inputs)
                for var in attr_variables(attrs):
                    if id(var) in self._watched_vars or (self._watch_accessed and var.trainable):
                        self._watched_vars[id(var)] = var
                        connected = True
                if not connected:
                    return
                if kind in _CALL_TYPES:
                    self._calls = True
                    # Which inputs the tape follows: the call's backward function then
                    # differentiates only those (a traced model's captured weights are
                    # inputs too, and their gradients would cost as much as the input's).
                    needed = tuple(id(x) in tracked for x in inputs)
                    if not all(needed):
                        attrs = {**attrs, "needed": needed}
                        if self._masked is None:
                            self._masked = []
                        self._masked.append((inputs, attrs))
            self._records.append((opdef, inputs, outputs, attrs))
            for out in outputs:
                tracked[id(out)] = out

    # -- differentiating -----------------------------------------------------------------

    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: Any = "none",
    ) -> Any:
        """d(target)/d(sources), in the structure of ``sources``.

        Called inside the block of a persistent tape, the computation is recorded by
        that tape (and by every outer tape), so the result can be differentiated again.

        Args:
            target: a tensor, or a list/tuple/dict of tensors (their sum is differentiated).
            sources: a tensor or variable, or a nested list/tuple/dict of them.
            output_gradients: gradients of ``target`` (same structure); ones by default.
            unconnected_gradients: ``"none"`` (the default) gives None for a source the
                target does not depend on; ``"zero"`` gives zeros of its shape instead.

        Returns:
            Gradients shaped like the sources; None for a source the target does not
            depend on (or an integer one), unless ``unconnected_gradients="zero"``.

        Raises:
            RuntimeError: a non-persistent tape was already used once.
            TypeError: a target or source is not a tensor or variable (the tape can
                still be used).
            LookupError: an op on a path from the target to a source has no gradient.
            ValueError: ``unconnected_gradients`` is neither "none" nor "zero".
        """
        zero = unconnected_gradients != "none" and unconnected_is_zero(
            unconnected_gradients, "gradient()"
        )
        if type(target) is EagerTensor or type(target) is Tensor:
            targets: list[Any] = [target]
            seeds: list[Any] = [None]
        else:
            targets = _leaves(target)
            _check_leaves(targets, "target", allow_none=True)
            seeds = [None] * len(targets)
        if type(sources) is EagerTensor or type(sources) is Tensor:
            source_leaves: list[Any] = [sources]
        else:
            # Checked before the tape is used: a bad call leaves it usable.
            source_leaves = _leaves(sources)
            _check_leaves(source_leaves, "sources", allow_none=False)
        if output_gradients is not None:
            seeds = list(_leaves_like(output_gradients, target))
            if len(seeds) != len(targets):
                msg = (
                    f"output_gradients has {len(seeds)} tensors but target has "
                    f"{len(targets)}; give one gradient per target tensor"
                )
                raise ValueError(msg)
        persistent = self._persistent
        with self._lock:
            if self._used and not persistent:
                msg = (
                    "A non-persistent GradientTape can only compute gradients once "
                    "(GradientTape.gradient can only be called once on non-persistent tapes, "
                    "in TensorFlow's words); create it with GradientTape(persistent=True) to "
                    "call gradient() several times"
                )
                raise RuntimeError(msg)
            # Claimed before the work so that two threads cannot both use a
            # non-persistent tape; given back below if the work fails.
            self._used = True
            records = list(self._records)
            tracked = self._tracked
            if self._masked:
                # An input watched only after its call ran is a source now: that call
                # must differentiate every input again. (Sources the tape does not
                # follow get no gradient: they need no new backward function.)
                ids = {id(x) for x in source_leaves if id(x) in tracked}
                for inputs, attrs in self._masked:
                    needed = attrs["needed"]
                    if needed is not None and any(
                        not n and id(x) in ids for x, n in zip(inputs, needed, strict=True)
                    ):
                        attrs["needed"] = None
        # Calls differentiate only the variables asked for here (their gradients are not
        # used otherwise); set only where calls were recorded, off the tape step's path.
        token = None
        if self._calls:
            source_vars = frozenset(id(v) for v in source_leaves if isinstance(v, Variable))
            token = SOURCE_VARIABLES.set(source_vars)
        try:
            frame = state_get()
            tapes = frame[TAPES]
            if frame[EAGER] and (not tapes or frame[PAUSED]):
                # What backprop would pick, called directly (a call less per tape step),
                # told which gradients are read: those of the tensors the tape follows
                # (the outputs of its records among them), if the sources are among them.
                want: dict[int, Any] | None = tracked
                if len(source_leaves) != 1 or id(sources) not in tracked:
                    for leaf in source_leaves:
                        if id(leaf) not in tracked and type(leaf) is not Variable:
                            want = None  # a source the tape does not follow: compute all
                            break
                grads, var_grads = backprop_arrays(records, targets, seeds, want)
            elif persistent or not tapes or _open_entry(tapes, self) is None:
                grads, var_grads = backprop(records, targets, seeds)
            else:
                # This tape is done: it does not record its own gradient computation
                # (outer tapes do).
                with _PauseTape(self, strict=False):
                    grads, var_grads = backprop(records, targets, seeds)
        except BaseException:
            if not persistent:
                self._used = False
            raise
        finally:
            if token is not None:
                SOURCE_VARIABLES.reset(token)
        if not persistent:
            # As in TensorFlow, a used non-persistent tape stops recording (also in its
            # block and in tasks spawned there: with nothing tracked and ``_used`` set,
            # ``_offer`` keeps nothing); its records are freed.
            self._records = []
            self._tracked = {}
        if type(sources) is EagerTensor or type(sources) is Tensor:
            grad = grads.get(id(sources))
            if grad is not None and id(sources) not in tracked:
                grad = _untracked(sources, targets, grads)
            if grad is None:
                return zeros_like(sources) if zero else None
            # tensor_of (the eager walk gives NumPy arrays) written out for the scalar
            # result of a tape step: two calls less.
            if isinstance(grad, np.generic):
                out = _new(EagerTensor)
                out._value = np.asarray(grad)
                return out
            return tensor_of(grad)
        for leaf in source_leaves:
            key = id(leaf)
            if isinstance(leaf, Variable):
                if (
                    key in var_grads
                    and key not in self._watched_vars
                    and not any(t is leaf for t in targets)
                ):
                    del var_grads[key]  # a call computed it; the tape does not watch it
            elif key in grads and key not in tracked and _untracked(leaf, targets, grads) is None:
                del grads[key]
        return _rebuild(sources, grads, var_grads, zero)


def _untracked(source: Any, targets: Sequence[Any], grads: dict[int, Any]) -> Any:
    """The gradient of a source the tape does not follow (not watched, not an output of
    a recorded op): None, as in TensorFlow (where the walk drops the gradient of a tensor
    with no place on the tape), even where a recorded op took it as an input (``x * c``
    with ``x`` watched gives ``c`` none); a source that is also a target keeps its own
    (``gradient(x, x)``: ones)."""
    if any(t is source for t in targets):
        return grads.get(id(source))
    return None


@final
class _PauseTape(Scope):
    __slots__ = ("_strict", "_tape")

    def __init__(self, tape: GradientTape, strict: bool = True) -> None:
        super().__init__()
        self._tape = tape
        # Not strict: pause the tape if it records here, and do nothing otherwise.
        self._strict = strict

    def __enter__(self) -> None:
        cur = state_get()
        tapes = cur[TAPES]
        if self._strict and (cur[PAUSED] or _open_entry(tapes, self._tape) is None):
            msg = (
                "GradientTape.stop_recording() was entered while the tape is not recording "
                "here; enter it inside the tape's `with` block"
            )
            raise RuntimeError(msg)
        kept = tuple(e for e in tapes if e._tape is not self._tape)
        self._push(
            (cur, self, cur[EAGER], cur[GRAPH], cur[SCOPES], cur[LOG], kept, cur[PAUSED], None)
        )

    def __repr__(self) -> str:
        return "GradientTape.stop_recording()"


@final
class _NoTapes(Scope):
    """Eager execution that no tape of the caller sees (and no pause applies to).

    Kernels that differentiate a function at run time use it: their private tapes must
    record even when the caller paused its own, and the caller's tapes must not record
    the kernel's internal ops.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        cur = state_get()
        self._push((cur, self, True, cur[GRAPH], cur[SCOPES], cur[LOG], (), False, None))

    def __repr__(self) -> str:
        return "_NoTapes()"


def no_tapes() -> Scope:
    """A scope whose body runs eagerly, unseen by the caller's tapes (see ``_NoTapes``)."""
    return _NoTapes()


# -- the recording hook --------------------------------------------------------------


def _record(frame: Frame, opdef: OpDef, inputs: tuple[Any, ...], outputs: tuple[Any, ...],
            attrs: dict[str, Any]) -> None:  # fmt: skip
    for entry in frame[TAPES]:
        entry._offer(opdef, inputs, outputs, attrs)


_core.record_hook[0] = _record
