"""The lean op representation and the graph fast paths give what the general paths give.

- The name table (``_names``) stores only the counts of the names asked for; it must hand
  out exactly the names of TensorFlow's rule written out (one key per name in use),
  compared here on random sequences of requests, verbatim names and peeks.
- ``x + y``, ``x + 1.0`` and ``1.0 + x`` on graph tensors build their ops directly
  (``Graph._op1``); the ops must be those the general op path builds.
"""

from __future__ import annotations

import gc
import random
import weakref
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _names
from scopeflow._ops._core import _apply_graph
from scopeflow._ops._math import ADD, DIV, MUL, SUB


class ReferenceNames:
    """TensorFlow's unique-name rule with every name in use stored (the former code)."""

    def __init__(self) -> None:
        self.in_use: dict[str, int] = {}

    def unique(self, name: str, mark: bool) -> str:
        in_use = self.in_use
        key = name.lower()
        i = in_use.get(key, 0)
        if mark:
            in_use[key] = i + 1
        if i == 0:
            return name
        base = key
        while key in in_use:
            key = f"{base}_{i}"
            i += 1
        if mark:
            in_use[key] = 1
        return f"{name}_{i - 1}"

    def verbatim(self, key: str) -> None:
        self.in_use[key] = self.in_use.get(key, 0) + 1


class LeanNames:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.high: dict[str, int] = {}

    def unique(self, name: str, mark: bool) -> str:
        return _names.unique(self.counts, self.high, name, mark)

    def verbatim(self, key: str) -> None:
        _names.take_verbatim(self.counts, self.high, key)


def _random_name(rng: random.Random, handed: list[str]) -> str:
    roll = rng.random()
    if handed and roll < 0.35:
        return rng.choice(handed)  # a generated name asked for again
    if handed and roll < 0.45:
        return f"{rng.choice(handed)}_{rng.randint(1, 4)}"
    base = rng.choice(["a", "A", "add", "Add", "s/x", "a_1", "a_01", "a_0", "x_2_1", "b_"])
    if rng.random() < 0.3:
        base = f"{base}_{rng.randint(1, 5)}"
    return base


@pytest.mark.parametrize("seed", range(40))
def test_the_name_table_hands_out_the_names_of_the_written_out_rule(seed: int) -> None:
    rng = random.Random(seed)
    ref, lean = ReferenceNames(), LeanNames()
    handed: list[str] = []
    for _ in range(300):
        roll = rng.random()
        name = _random_name(rng, handed)
        if roll < 0.1:
            key = name.lower()
            if ref.in_use.get(key, 0) == 0 or rng.random() < 0.5:  # may count one again
                ref.verbatim(key)
                lean.verbatim(key)
                handed.append(name)
        else:
            mark = roll > 0.2
            got = lean.unique(name, mark)
            assert got == ref.unique(name, mark), (seed, name, mark)
            if mark:
                handed.append(got)
        # Every name the rule counts as taken is taken in the lean table, and no other.
        for key in list(ref.in_use) + [f"{k}_{n}" for k in ref.in_use for n in range(1, 4)]:
            taken = ref.in_use.get(key, 0)
            assert _names.count_of(lean.counts, key) == taken, (seed, key)


def test_suffixes_taken_explicitly_are_skipped_in_a_long_chain() -> None:
    g = sf.Graph()
    with g.as_default():
        c = sf.constant(1.0)
        sf.identity(c, name="Add_3")
        sf.identity(c, name="add_5")
        x = c
        for _ in range(8):
            x = x + c
    names = [op.name for op in g.get_operations() if op.type == "Add"]
    assert names == ["Add", "Add_1", "Add_2", "Add_4", "Add_6", "Add_7", "Add_8", "Add_9"]
    with g.as_default():
        assert sf.identity(c, name="Add_4").op.name == "Add_4_1"
        assert sf.identity(c, name="Add_10").op.name == "Add_10"


def _general(opdef: Any, x: Any, y: Any) -> Any:
    from scopeflow._context import _roots, state_get

    frame = state_get(_roots[0])
    return _apply_graph(frame, sf.get_default_graph(), opdef, (x, y), {}, None)


def _describe(g: sf.Graph) -> list[tuple[Any, ...]]:
    out = []
    for op in g.get_operations():
        value = op.get_attr("value") if op.type == "Const" else None
        out.append(
            (
                op.name,
                op.type,
                [t.name for t in op.inputs],
                [(t.name, t.dtype, t.shape) for t in op.outputs],
                [c.name for c in op.control_inputs],
                op.device,
                None if value is None else (value.dtype, value.shape, repr(value.tolist())),
            )
        )
    return out


_OPS = [(sf.add, ADD, "+"), (sf.subtract, SUB, "-"), (sf.multiply, MUL, "*"), (sf.divide, DIV, "/")]
_SCALARS: list[Any] = [1.0, 2, -3, 0.0, -0.0, True, 2**40, 1e300, float("nan"), np.float32(2.5)]


class MyFloat(float):
    pass


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("scalar", [*_SCALARS, MyFloat(1.5)], ids=repr)
def test_scalar_operands_build_the_ops_of_the_general_path(dtype: Any, scalar: Any) -> None:
    for fn, opdef, sym in _OPS:
        results = []
        for fast in (True, False):
            g = sf.Graph()
            with g.as_default(), sf.name_scope("s"), sf.device("/cpu:0"):
                x = sf.placeholder(dtype, (2, None), name="x")
                d = sf.placeholder(dtype, (), name="d")
                try:
                    with sf.control_dependencies([d]):  # Const and op get d
                        fn(x, scalar) if fast else _general(opdef, x, scalar)
                    if fast:
                        a = fn(x, scalar)
                        b = eval(f"x {sym} scalar")
                        c = eval(f"scalar {sym} x")
                    else:
                        a = _general(opdef, x, scalar)
                        b = _general(opdef, x, scalar)
                        c = _general(opdef, scalar, x)
                except (TypeError, ValueError) as err:
                    results.append(type(err))
                    continue
                assert a.shape == b.shape == c.shape
            results.append(_describe(g))
        assert results[0] == results[1], (fn, dtype, scalar)


@pytest.mark.parametrize(
    ("sx", "sy", "dx", "dy"),
    [
        ((3,), (3,), np.float32, np.float32),
        ((), (), np.int32, np.int32),
        ((None, 2), (None, 2), np.float64, np.float64),
        ((2,), (3, 2), np.float32, np.float32),
        (None, (2,), np.float32, np.float32),
        ((2,), (2,), np.float32, np.float64),
        ((2,), (2,), np.bool_, np.bool_),
        ((2,), (2,), np.int32, np.int32),
    ],
)
def test_tensor_operands_build_the_ops_of_the_general_path(
    sx: Any, sy: Any, dx: Any, dy: Any
) -> None:
    for fn, opdef, _ in _OPS:
        results = []
        for fast in (True, False):
            g = sf.Graph()
            with g.as_default():
                x = sf.placeholder(dx, sx, name="x")
                y = sf.placeholder(dy, sy, name="y")
                with sf.control_dependencies([x]):
                    try:
                        fn(x, y) if fast else _general(opdef, x, y)
                        with sf.control_dependencies([y.op]):
                            fn(x, y) if fast else _general(opdef, x, y)
                    except (TypeError, ValueError) as err:
                        results.append(type(err))
                        continue
            results.append(_describe(g))
        assert results[0] == results[1], (fn, sx, sy, dx, dy)


def test_the_fast_path_leaves_foreign_and_finalized_graphs_to_the_general_path() -> None:
    g, h = sf.Graph(), sf.Graph()
    with g.as_default():
        x = sf.constant(1.0)
    with h.as_default():
        with pytest.raises(sf.errors.GraphMismatchError):
            x + 1.0
        y = sf.constant(2.0)
    with g.as_default():
        with pytest.raises(sf.errors.GraphMismatchError):
            x + y
        g.finalize()
        with pytest.raises(sf.errors.FinalizedGraphError):
            x + 1.0
        with pytest.raises(sf.errors.FinalizedGraphError):
            x + x


def test_shared_const_attrs_and_outputs_of_the_lean_ops() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.constant(np.ones(3, np.float32))
        a, b = x + 1.0, x + 1.0
        z = x + 0.0
    ca, cb = a.op.inputs[1].op, b.op.inputs[1].op
    assert ca.get_attr("value") is cb.get_attr("value")
    assert not ca.get_attr("value").flags.writeable
    assert ca.get_attr("dtype") == np.float32
    assert ca.get_attr("shape") == ()
    assert z.op.inputs[1].op.get_attr("value").item() == 0.0
    assert a.op.outputs == (a,)
    assert a.op.outputs[0] is a
    assert a.value_index == 0
    assert a.device == ""
    assert a.op.device == ""
    assert g.get_operation_by_name(a.op.name) is a.op
    assert g.get_tensor_by_name(b.name) is b
    with sf.Session(g) as s:
        np.testing.assert_array_equal(s.run(a), np.full(3, 2.0, np.float32))
        np.testing.assert_array_equal(s.run(z), np.ones(3, np.float32))


def test_a_graph_of_lean_ops_is_freed_by_the_collector() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.constant(1.0)
        for _ in range(10):
            x = 1.0 + (x + 1.0) * x
    ref = weakref.ref(g)
    del g, x
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("seed", range(30))
def test_a_graph_names_ops_as_the_written_out_rule_does(seed: int) -> None:
    """Automatic names (with the graph's per-type memos), explicit, verbatim and peeked
    names in several scopes, against the rule written out."""
    rng = random.Random(seed)
    ref = ReferenceNames()
    g = sf.Graph()
    taken: set[str] = set()
    with g.as_default():
        c = sf.placeholder(np.float32, (), name="c")
    ref.unique("c", True)
    taken.add("c")
    for _ in range(250):
        scope = rng.choice(["", "", "a", "B", "a/b"])
        prefix = f"{scope}/" if scope else ""
        with g.as_default(), sf.name_scope(f"{scope}/" if scope else None):
            roll = rng.random()
            if roll < 0.5:
                op_type = rng.choice(["Add", "Identity", "Mul"])
                fn = {"Add": sf.add, "Identity": sf.identity, "Mul": sf.multiply}[op_type]
                got = fn(c) if op_type == "Identity" else fn(c, c)  # type: ignore[operator]
                assert got.op.name == ref.unique(prefix + op_type, True), seed
            elif roll < 0.75:
                name = rng.choice(["Add", "add_2", "Add_1", "Mul_3", "x", "x_1", "Identity_2"])
                got = sf.identity(c, name=name)
                assert got.op.name == ref.unique(prefix + name, True), seed
            elif roll < 0.9:
                name = prefix + rng.choice(["Add_4", "add_5", "Mul", "y", "Identity_7"])
                if name in taken:
                    with pytest.raises(ValueError, match="already exists"):
                        sf.identity(c, name=f"{name}/")
                else:
                    assert sf.identity(c, name=f"{name}/").op.name == name
                    ref.verbatim(name.lower())
            else:
                name = rng.choice(["Add", "Mul_2", "z"])
                assert g.unique_name(name, mark_as_used=False) == ref.unique(prefix + name, False)
        taken.update(op.name for op in g.get_operations())


def test_name_memos_of_alternating_op_types_stay() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(np.float32, (), name="x")
        for _ in range(3):
            x = x + 1.0
    assert set(g._name_memo) == {"Const", "Add"}
    assert [op.name for op in g.get_operations()][-2:] == ["Const_2", "Add_2"]


def test_a_lean_op_becomes_one_operation_on_first_need() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("s"), sf.device("/cpu:0"):
        x = sf.placeholder(np.float32, (2,), name="x")
        y = x + 1.0
        z = sf.add(y, y)
    # Before any op is asked for: the tensor's own fields.
    assert (y.name, z.name, y.device) == ("s/Add:0", "s/Add_1:0", "/device:CPU:0")
    assert y.graph is g
    assert z.value_index == 0
    op = z.op
    assert op is z.op
    assert op.outputs[0] is z
    assert op.inputs == (y, y)
    assert y.op.inputs[1].op.type == "Const"
    assert y.op.inputs[0] is x
    ops = g.get_operations()
    assert [o.name for o in ops] == ["s/x", "s/Const", "s/Add", "s/Add_1"]
    assert ops[3] is op
    assert ops[2] is y.op
    assert all(type(o) is sf.Operation for o in ops)
    assert g.get_operation_by_name("s/Const") is y.op.inputs[1].op


def _ask_from_threads(g: sf.Graph, ts: list[Any], n: int) -> list[list[Any]]:
    import threading

    got: list[list[Any]] = []
    barrier = threading.Barrier(n)

    def ask() -> None:
        barrier.wait()
        got.append([t.op for t in ts] + g.get_operations())

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return got


def test_threads_asking_for_a_lean_op_get_the_same_operation() -> None:
    for _ in range(20):
        g = sf.Graph()
        with g.as_default():
            ts = [sf.constant(1.0) + 1.0 for _ in range(50)]
        got = _ask_from_threads(g, ts, 4)
        assert len(got) == 4
        for ops in zip(*got, strict=True):
            assert all(o is ops[0] for o in ops)


def test_unique_name_without_memos_follows_the_rule() -> None:
    # Graph._unique_name skips the name memos when the graph has none (no op built yet).
    g = sf.Graph()
    assert not g._name_memo
    got = [g.unique_name(n) for n in ["a", "A", "a_2", "a", "a", "b", "a_1_1", "a_1"]]
    assert got == ["a", "A_1", "a_2", "a_3", "a_4", "b", "a_1_1", "a_1_2"]
    assert g.unique_name("a", mark_as_used=False) == "a_5"
    assert g.unique_name("a") == "a_5"


def test_unique_name_same_with_and_without_memos() -> None:
    # The no-memo path and the memo write-back path hand out the same names.
    def names(build_first: bool) -> list[str]:
        g = sf.Graph()
        with g.as_default():
            if build_first:
                sf.constant(1.0)
                sf.constant(2.0)
                assert g._name_memo
            out = []
            for n in ["a", "Const", "const_2", "Const", "a", "A"]:
                with sf.name_scope(n) as s:
                    out.append(s)
            out.append(sf.constant(3.0).op.name)
            return out

    plain, memo = names(False), names(True)
    assert plain == ["a/", "Const/", "const_2/", "Const_1/", "a_1/", "A_2/", "Const_3"]
    assert memo == ["a/", "Const_2/", "const_2_1/", "Const_3/", "a_1/", "A_2/", "Const_4"]
