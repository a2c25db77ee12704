"""Building operations into a graph: the op objects, their names, the op list.

:class:`OpBuilder` is the part of :class:`~scopeflow._graph.Graph` that creates ops, kept
in its own module: ``_create_op`` is the general path, ``_op1`` and ``_const_op`` the hot
paths the binary ops take (SPEC section 11: bench_ops and bench_tasks). All of it runs
under the graph's lock where it touches what the graph shares between tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from . import _context
from ._context import CONTROLS, DEVICE, EAGER, FLOW, GLOBAL_GRAPH, GRAPH, NAME, SCOPES, Frame
from ._names import NameMemo, check_name, take_verbatim, unique
from ._operation import Operation, Shape, Tensor

if TYPE_CHECKING:
    pass

__all__ = ["OpBuilder"]

_new = object.__new__
# See OpBuilder._materialize; reentrant for code that a collection runs meanwhile.
_materialize_lock = threading.RLock()
# What an op keeps of the scopes it was created in when there was no control dependency,
# device or control-flow scope (the name scope is in its name): one shared tuple, where
# the frame's tuple is a reference to an object of the task, far from the op in memory,
# that the collector visits whenever it traces the op (the interleaved bench_tasks row).
_PLAIN_SCOPES: Final = ("", (), "", None)
# The key of the name-scope memo in a graph's ``_name_memo`` (see ``_scope_name``): op
# types are registered identifiers, never "/", so it is no op type's key.
SCOPE_MEMO: Final = "/"


class OpBuilder:
    """Op creation and naming for :class:`~scopeflow._graph.Graph` (a mixin: the state
    below is the graph's, in its slots)."""

    # Slots for what op creation reads on every op (SPEC section 11, bench_tasks): a slot is
    # read at a fixed offset where an instance dict costs a lookup in a dict that, with
    # thousands of graphs built by interleaved tasks, is rarely in the cache.
    __slots__ = (
        "_by_name",
        "_const_memo",
        "_finalized",
        "_indexed",
        "_last_memo",
        "_last_scope",
        "_lock",
        "_name_memo",
        "_names_high",
        "_names_in_use",
        "_ops",
    )

    _by_name: dict[str, Operation]
    _finalized: bool
    _indexed: int
    _lock: threading.Lock
    _name_memo: dict[str, NameMemo]
    # The memos used last, found without the dict (see _op1): one per graph and op type
    # would do, but the dict is one more object, rarely in the cache, per op.
    _last_memo: NameMemo | None
    _const_memo: NameMemo | None
    # The name scope asked for last (see _scope_name_locked), None before the first.
    _last_scope: str | None
    _names_high: dict[str, int]
    _names_in_use: dict[str, int]
    # A lean op stands here as its tensor, and a Const built with it as its name (see
    # Tensor and _const_op).
    _ops: list[Operation | Tensor | str]
    building_function: bool

    def _check_not_finalized(self, action: str) -> None:
        raise NotImplementedError  # Graph's

    def _index_names(self) -> dict[str, Operation]:
        """The name -> op index, brought up to date (it is filled lazily: an insert per op
        into a growing dict cost a few cache misses per op of interleaved tasks)."""
        with self._lock:
            return self._index_names_locked()

    def _index_names_locked(self) -> dict[str, Operation]:
        by_name = self._by_name
        ops = self._ops
        n = len(ops)
        if self._indexed < n:
            for i in range(self._indexed, n):
                op = self._op_at(i)
                by_name[op._name] = op
            self._indexed = n
        return by_name

    def _op_at(self, index: int) -> Operation:
        """The operation at ``index`` in creation order, made real if it is lean."""
        ops = self._ops
        entry = ops[index]
        if type(entry) is not Operation:
            # A Const built with an op stands here as its name, before the op's tensor
            # (an Operation already if another thread made both since: the Const's place
            # is replaced first).
            t = ops[index + 1] if type(entry) is str else entry
            if type(t) is Tensor:
                self._materialize(t)
            entry = ops[index]
        return entry  # type: ignore[return-value]  # an Operation now

    def _operations_locked(self) -> list[Operation]:
        """All operations in creation order, lean ones made real."""
        ops = self._ops
        for entry in ops:
            if type(entry) is Tensor:  # a Const's name before it: made with the op
                self._materialize(entry)
        return ops  # type: ignore[return-value]  # all Operations now

    def _materialize(self, t: Tensor) -> Operation:
        """The Operation of the lean op of ``t``, made on first need (see Tensor).

        Under a lock of its own, not the graph's: code holding the graph's lock reads
        ``tensor._op`` (``FuncGraph._order_stateful``). Replacing the tensor in the op
        list keeps the list's length and order, which is all the graph's lock guards.
        """
        with _materialize_lock:
            op = t._opv
            if op is None:  # checked again under the lock: one Operation per op, ever
                op = self._materialize_locked(t)
            return op

    def _materialize_locked(self, t: Tensor) -> Operation:
        # Everything is built first and made visible at the end, after one more check:
        # a collection during the allocations may run code (a gc callback, a finalizer)
        # that asks for this very op, in this thread (the lock is reentrant for that).
        op = _new(Operation)
        op._type = t._l_type
        a = t._l_ins
        const = None
        if isinstance(a, dict):  # a Const built with the op (see _const_op)
            a = const = self._materialize_const(t, a)
        b = t._l_in2
        if isinstance(b, dict):  # the same, as the second input
            b = const = self._materialize_const(t, b)
        op._ins = a
        op._in2 = b
        op._attrs = t._l_attrs
        op._control_inputs = ()
        op._scopes = t._l_scopes
        op._graph = self  # type: ignore[assignment]  # self is the Graph
        op._name = t._l_name
        op._id = t._l_id
        op._outs = t
        done = t._opv
        if done is not None:  # made by code that ran meanwhile (see above): it stands
            return done
        # No allocation from here on, so no other code runs in this thread. The Const's
        # place first (see _op_at), then the op's.
        if const is not None:
            c: Operation = const._opv  # type: ignore[assignment]  # set by _materialize_const
            ops = self._ops
            c._name = ops[c._id]  # type: ignore[assignment]  # its name, a str still
            ops[c._id] = c
        t._opv = op
        self._ops[op._id] = op
        return op

    def _materialize_const(self, t: Tensor, attrs: dict[str, Any]) -> Tensor:
        """The output of the ``Const`` op that :meth:`_const_op` built with the op of
        ``t`` (under the materialize lock), a real Operation that
        :meth:`_materialize_locked` names and puts in its place in the list."""
        c = _new(Operation)
        c._type = "Const"
        c._ins = ()
        c._in2 = None
        c._attrs = attrs
        c._control_inputs = ()
        c._scopes = t._l_scopes
        c._graph = self  # type: ignore[assignment]  # self is the Graph
        c._id = t._l_id - 1
        out = _new(Tensor)
        out._opv = c
        out._graph = self  # type: ignore[assignment]
        out._value_index = 0
        out._dtype = attrs["dtype"]
        out._shape = ()
        c._outs = out
        return out

    def _unique_name_locked(self, name: str, mark_as_used: bool) -> str:
        self._flush_name_memos_locked()
        name = unique(self._names_in_use, self._names_high, name, mark_as_used)
        self._resync_name_memos_locked()
        return name

    def _flush_name_memos_locked(self) -> None:
        """Write the counts of the name memos back to the table, before it is used."""
        counts = self._names_in_use
        for memo in self._name_memo.values():
            counts[memo.key] = memo.count

    def _resync_name_memos_locked(self) -> None:
        """After the table was used: take its counts into the memos, and drop a memo
        whose next name may be taken now (see NameMemo)."""
        counts = self._names_in_use
        high = self._names_high
        memos = self._name_memo
        self._last_memo = self._const_memo = None  # found in the dict again
        for op_type, memo in list(memos.items()):
            count = counts[memo.key]
            if count > high.get(memo.key, 0):
                memo.count = count
            else:
                del memos[op_type]

    def _auto_name_locked(self, op_type: str, prefix: str) -> str:
        """The next automatic name of ``op_type`` in the name scope ``prefix`` when it has
        no memo there (the first op of a type in a scope), and a memo for the next ones."""
        full = f"{prefix}/{op_type}" if prefix else op_type
        self._flush_name_memos_locked()
        memos = self._name_memo
        memos.pop(op_type, None)  # a memo of another scope, written back just now
        name = unique(self._names_in_use, self._names_high, full, True)
        self._resync_name_memos_locked()
        key = full.lower()
        count = self._names_in_use[key]
        if count > self._names_high.get(key, 0):  # no taken key_N with N >= count
            scope_memo = memos.get(SCOPE_MEMO)
            if scope_memo is not None and scope_memo.key == key:
                # One memo per key: the name scope's (written back and taken back just
                # now, so the table is true without it) goes.
                del memos[SCOPE_MEMO]
            memos[op_type] = NameMemo(op_type, prefix, full, key, count)
        return name

    def _scope_name(self, full: str) -> str:
        """The name scope ``full`` (absolute, no trailing slash) made unique and taken.

        A name asked for again and again (a layer built in a loop: ``a``, ``a_1``, ...)
        gets a NameMemo under the key ``SCOPE_MEMO``, as op types get theirs: the next
        name without the table (SPEC section 11, bench_scopes: name_scope('a') in a graph
        about 1.45 -> 1.25 us per enter+exit, 5.9 -> 5.1 x F).
        """
        # acquire/release rather than `with`: half the cost on 3.11.
        lock = self._lock
        lock.acquire()
        try:
            memo = self._name_memo.get(SCOPE_MEMO)
            if memo is not None and memo.full == full:
                i = memo.count
                memo.count = i + 1
                return f"{full}_{i}"
            return self._scope_name_locked(full)
        finally:
            lock.release()

    def _scope_name_locked(self, full: str) -> str:
        """``_scope_name`` when the memo does not give the name: the table, and a memo for
        a name asked for twice in a row (one that alternates with others gets none, so
        that it does not replace the memo on every request)."""
        memos = self._name_memo
        counts = self._names_in_use
        if memos:
            name = self._unique_name_locked(full, True)
        else:
            name = unique(counts, self._names_high, full, True)
        if self._last_scope != full:
            self._last_scope = full
            return name
        key = full.lower()
        count = counts[key]
        if count > self._names_high.get(key, 0):  # no taken key_N with N >= count
            for op_type, memo in memos.items():
                if memo.key == key and op_type != SCOPE_MEMO:
                    return name  # an op type's memo has the key: one memo per key
            memos[SCOPE_MEMO] = NameMemo(SCOPE_MEMO, "", full, key, count)
        return name

    def _create_op(
        self,
        op_type: str,
        inputs: tuple[Tensor, ...],
        attrs: dict[str, Any],
        outputs: Sequence[tuple[np.dtype[Any], Shape | None]],
        name: str | None,
        frame: Frame,
        stateful: bool = False,
    ) -> Operation:
        """Create an operation with the calling task's scopes (``frame``).

        The general path; :meth:`_op1` is the hot path for an automatically named op
        with one output. Holds the graph lock only to name and append the op.
        """
        # GLOBAL_GRAPH[0] rather than global_default_graph(): when there is no global
        # graph yet, it is not this one either.
        if not frame[EAGER] and (frame[GRAPH] or GLOBAL_GRAPH[0]) is self:
            scopes = frame[SCOPES]
        else:
            scopes = _context.scopes_of(frame, self, False)  # type: ignore[arg-type]
        if name is None and len(outputs) == 1 and not stateful and len(inputs) <= 2:
            dtype, shape = outputs[0]
            a = inputs[0] if inputs else None
            b = inputs[1] if len(inputs) == 2 else None
            return self._op1(op_type, a, b, attrs, dtype, shape, scopes)._op
        prefix = scopes[NAME]
        verbatim = False
        if name is None:
            full = f"{prefix}/{op_type}" if prefix else op_type
        else:
            if not isinstance(name, str):
                msg = f"An op name must be a string, got {name!r}"
                raise TypeError(msg)
            verbatim = name.endswith("/")
            full = name[:-1] if verbatim else (f"{prefix}/{name}" if prefix else name)
            check_name(full if verbatim else name, bool(prefix) and not verbatim)
        chain = scopes[CONTROLS]
        op = _new(Operation)
        op._type = op_type
        n = len(inputs)
        if n == 1 or n == 2:  # see Operation.__slots__
            op._ins = inputs[0]
            op._in2 = inputs[1] if n == 2 else None
        else:
            op._ins = inputs
            op._in2 = None
        op._attrs = attrs
        op._control_inputs = _control_inputs_for(chain, inputs) if chain else ()
        plain = not chain and not scopes[DEVICE] and scopes[FLOW] is None
        op._scopes = _PLAIN_SCOPES if plain else scopes
        op._graph = self  # type: ignore[assignment]  # self is the Graph
        tensors = []
        for i, (dtype, shape) in enumerate(outputs):
            t = _new(Tensor)
            t._opv = op
            t._graph = self  # type: ignore[assignment]
            t._value_index = i
            t._dtype = dtype
            t._shape = shape
            tensors.append(t)
        op._outs = tensors[0] if len(tensors) == 1 else tuple(tensors)
        with self._lock:
            if self._finalized:
                self._check_not_finalized("add an operation to")
            self._flush_name_memos_locked()
            if verbatim:
                if full in self._index_names_locked():
                    msg = f"An operation named {full!r} already exists in {self!r}"
                    raise ValueError(msg)
                take_verbatim(self._names_in_use, self._names_high, full.lower())
            else:
                full = unique(self._names_in_use, self._names_high, full, True)
            self._resync_name_memos_locked()
            op._name = full
            if stateful and self.building_function:
                # Under the lock, once the op is sure to exist: threads adding stateful
                # ops at once extend one chain, and a refused op never joins it.
                self._order_stateful(op)  # type: ignore[attr-defined]
            ops = self._ops
            op._id = len(ops)
            ops.append(op)
        return op

    def _op1(
        self,
        op_type: str,
        a: Tensor | None,
        b: Tensor | None,
        attrs: dict[str, Any],
        dtype: np.dtype[Any],
        shape: Shape | None,
        scopes: tuple[Any, ...],
    ) -> Tensor:
        """The hot path of graph building (SPEC section 11): a non-stateful op with the
        inputs ``a`` and ``b`` (None: fewer), one output and an automatic name, built
        under ``scopes`` (the scopes tuple of the calling task's frame on this graph);
        returns its output tensor, a lean op (see Tensor).

        Everything is written out, without helper calls: ``sf.add(x, y)`` costs about
        0.9 µs in all where the general path took 2.5 µs (bench_ops, gc off).
        """
        if scopes[1]:  # CONTROLS: control inputs to find, a real Operation
            return self._op1_controlled(op_type, a, b, attrs, dtype, shape, scopes)
        t = _new(Tensor)
        t._opv = None
        t._graph = self  # type: ignore[assignment]  # self is the Graph
        t._value_index = 0
        t._dtype = dtype
        t._shape = shape
        t._l_type = op_type
        t._l_ins = () if a is None else a
        t._l_in2 = b
        t._l_attrs = attrs
        # DEVICE and FLOW written out; see _PLAIN_SCOPES
        t._l_scopes = _PLAIN_SCOPES if not scopes[2] and scopes[3] is None else scopes
        prefix = scopes[0]  # NAME
        # acquire/release rather than `with`: half the cost on 3.11, on every op.
        lock = self._lock
        lock.acquire()
        try:
            if self._finalized:
                self._check_not_finalized("add an operation to")
            memo = self._last_memo
            if memo is None or memo.op_type is not op_type:
                memo = self._last_memo = self._name_memo.get(op_type)
            if memo is not None and memo.prefix is prefix:
                i = memo.count
                memo.count = i + 1
                t._l_name = f"{memo.full}_{i}"
            else:
                t._l_name = self._auto_name_locked(op_type, prefix)
            ops = self._ops
            t._l_id = len(ops)
            ops.append(t)
        finally:
            lock.release()
        return t

    def _op1_controlled(
        self,
        op_type: str,
        a: Tensor | None,
        b: Tensor | None,
        attrs: dict[str, Any],
        dtype: np.dtype[Any],
        shape: Shape | None,
        scopes: tuple[Any, ...],
    ) -> Tensor:
        """:meth:`_op1` under control dependencies: an Operation from the start."""
        inputs = () if a is None else (a,) if b is None else (a, b)
        op = _new(Operation)
        op._type = op_type
        op._ins = () if a is None else a
        op._in2 = b
        op._attrs = attrs
        op._control_inputs = _control_inputs_for(scopes[CONTROLS], inputs)
        op._scopes = scopes
        op._graph = self  # type: ignore[assignment]
        t = _new(Tensor)
        t._opv = op
        t._graph = self  # type: ignore[assignment]
        t._value_index = 0
        t._dtype = dtype
        t._shape = shape
        op._outs = t
        with self._lock:
            if self._finalized:
                self._check_not_finalized("add an operation to")
            op._name = self._auto_name_locked(op_type, scopes[NAME])
            ops = self._ops
            op._id = len(ops)
            ops.append(op)
        return t

    def _const_op(
        self,
        op_type: str,
        x: Tensor,
        const_attrs: dict[str, Any],
        attrs: dict[str, Any],
        shape: Shape | None,
        scopes: tuple[Any, ...],
        const_first: bool,
    ) -> Tensor:
        """``x <op> c`` (``c <op> x`` when ``const_first``) for a new ``Const`` op ``c``
        with ``const_attrs``, named and placed as :meth:`_op1` would build the two ops one
        after the other, but under one hold of the lock and in one lean tensor: ``c`` is
        made when the op is (see Tensor and :meth:`_materialize_const`). ``x + 1.0`` in a
        graph (SPEC section 11, bench_ops and bench_tasks): the lock, about 0.1 µs less
        per step; the one tensor, about 0.17 µs less (1.25 -> 1.08 µs, bench_ops)."""
        if scopes[1]:  # under control dependencies: the general pruning, op by op
            c = self._op1("Const", None, None, const_attrs, const_attrs["dtype"], (), scopes)
            a, b = (c, x) if const_first else (x, c)
            return self._op1(op_type, a, b, attrs, x._dtype, shape, scopes)
        t = _new(Tensor)
        t._opv = None
        t._graph = self  # type: ignore[assignment]  # self is the Graph
        t._value_index = 0
        t._dtype = x._dtype
        t._shape = shape
        t._l_type = op_type
        # The Const stands in the input as its attrs dict (see _materialize_const).
        if const_first:
            t._l_ins = const_attrs
            t._l_in2 = x
        else:
            t._l_ins = x
            t._l_in2 = const_attrs
        t._l_attrs = attrs
        t._l_scopes = _PLAIN_SCOPES if not scopes[2] and scopes[3] is None else scopes
        prefix = scopes[0]
        lock = self._lock
        lock.acquire()
        try:
            if self._finalized:
                self._check_not_finalized("add an operation to")
            memo = self._const_memo
            if memo is None:
                memo = self._const_memo = self._name_memo.get("Const")
            if memo is not None and memo.prefix is prefix:
                i = memo.count
                memo.count = i + 1
                cname = f"{memo.full}_{i}"
            else:
                cname = self._auto_name_locked("Const", prefix)
            memo = self._last_memo
            if memo is None or memo.op_type is not op_type:
                memo = self._last_memo = self._name_memo.get(op_type)
            if memo is not None and memo.prefix is prefix:
                i = memo.count
                memo.count = i + 1
                t._l_name = f"{memo.full}_{i}"
            else:
                t._l_name = self._auto_name_locked(op_type, prefix)
            ops = self._ops
            t._l_id = len(ops) + 1
            # The Const's place holds its name (see Tensor), then the op's tensor.
            ops.append(cname)
            ops.append(t)
        finally:
            lock.release()
        return t


def _control_inputs_for(
    chain: tuple[Any, ...], inputs: tuple[Tensor, ...]
) -> tuple[Operation, ...]:
    """Control inputs that an op with ``inputs`` gets from the control-dependency chain.

    A dependency scope is skipped when some input was itself created inside that scope:
    the input already waits for those ops, so the new op does too (TensorFlow's pruning).
    A control input that produces one of ``inputs`` is dropped too: the data edge already
    orders it. Deeper ancestors are not searched, which would cost a graph walk per op.
    """
    input_chains = [t._op._ctl for t in inputs]
    per_scope: list[tuple[Operation, ...]] = []  # innermost scope first
    node = chain
    while node:
        parent, ops = node
        dominated = False
        for c in input_chains:
            while c:
                if c is node:
                    dominated = True
                    break
                c = c[0]
            if dominated:
                break
        if not dominated:
            per_scope.append(ops)
        node = parent
    if not per_scope:  # the usual case inside a scope: an input was made in it
        return ()
    result: list[Operation] = []
    for ops in reversed(per_scope):  # outermost scope first, each in the order given
        for op in ops:
            if op not in result:
                result.append(op)
    for t in inputs:
        if t._op in result:
            result.remove(t._op)
    return tuple(result)
