"""``x + 1.0`` in a graph: the Const built inside the op's lean tensor, and the op's memo
of its last scalar (``_fast_binary``: found by identity).

The Const of ``x <op> scalar`` is at first only part of the op's lean tensor (its input
is the Const's attrs, the tensor stands in the op list in both places) and is made real
with the op. Whatever order the graph is then read in, the ops must be those the general
op path builds, named, placed and connected the same, one Operation per op. The memo
finds the Const attrs of the op's last scalar by identity, which must never confuse
``1``, ``1.0`` and ``True``, ``0.0`` and ``-0.0``, or two dtypes, and must leave
subclasses and NumPy scalars to the general path.
"""

from __future__ import annotations

import operator
import threading
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._ops._core import _apply_graph
from scopeflow._ops._math import ADD, DIV, MUL, SUB

_OPS = [(sf.add, ADD, "+"), (sf.subtract, SUB, "-"), (sf.multiply, MUL, "*"), (sf.divide, DIV, "/")]
_PY_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8,
           np.complex64, np.bool_]  # fmt: skip


class MyFloat(float):
    pass


class MyInt(int):
    pass


_SCALARS: list[Any] = [1.0, 2.5, -0.0, 0.0, float("nan"), float("inf"), -float("inf"), 1e300,
                       5e-324, True, False, 1, 0, -3, 2**31, 2**63, -(2**63) - 1, 2**70,
                       MyFloat(1.5), MyInt(2), np.float32(2.5), np.float64(-0.0), np.int64(3),
                       np.bool_(True)]  # fmt: skip


def _general(opdef: Any, a: Any, b: Any) -> Any:
    from scopeflow._context import state_get

    return _apply_graph(state_get(), sf.get_default_graph(), opdef, (a, b), {}, None)


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
                None
                if value is None
                else (value.dtype, value.shape, value.tobytes(), op.get_attr("dtype")),
            )
        )
    return out


def _build(dtype: Any, scalar: Any, fast: bool, scope: bool) -> list[Any]:
    """The graph of ``x <op> scalar``, twice, and ``scalar <op> x`` for each op (or the
    type of the error), by the operators or the general path."""
    results: list[Any] = []
    for fn, opdef, sym in _OPS:
        g = sf.Graph()
        with g.as_default():
            with sf.name_scope("s") if scope else sf.name_scope(None):
                x = sf.placeholder(dtype, (2, None), name="x")
                try:
                    if fast:
                        outs = [fn(x, scalar), eval(f"x {sym} scalar"), eval(f"scalar {sym} x")]
                    else:
                        outs = [_general(opdef, x, scalar), _general(opdef, x, scalar),
                                _general(opdef, scalar, x)]  # fmt: skip
                except (TypeError, ValueError) as err:
                    results.append(type(err))
                    continue
        results.append(([(t.name, t.dtype, t.shape) for t in outs], _describe(g)))
    return results


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("scalar", _SCALARS, ids=repr)
def test_the_const_built_with_the_op_is_the_general_paths(dtype: Any, scalar: Any) -> None:
    for scope in (False, True):
        fast = _build(dtype, scalar, True, scope)
        fast_again = _build(dtype, scalar, True, scope)  # now the memo holds the scalar
        assert fast == _build(dtype, scalar, False, scope) == fast_again, (dtype, scalar)


def test_the_value_keeps_the_sign_of_zero_and_the_dtype() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (2,), name="x")
        y = sf.placeholder(sf.float64, (2,), name="y")
        outs = [x + 0.0, x + -0.0, x + 0.0, y + 0.0, y + -0.0, x + 1, x + 1.0, x + True]
    consts = [t.op.inputs[1].op for t in outs[:-1]]
    values = [c.get_attr("value") for c in consts]
    assert [v.dtype for v in values] == [np.float32] * 3 + [np.float64] * 2 + [np.float32] * 2
    assert [bool(np.signbit(v)) for v in values] == [False, True, False, False, True, False, False]
    assert [c.get_attr("dtype") for c in consts] == [v.dtype for v in values]
    assert outs[-1].op.inputs[1].dtype == np.float32  # bool converts by the general path
    with sf.Session(g) as s:
        got = s.run(outs, {x: [1.0, -0.0], y: [-0.0, 2.0]})
    np.testing.assert_array_equal(got[1], np.array([1.0, -0.0], np.float32), strict=True)
    assert np.signbit(got[1][1])
    assert not np.signbit(got[0][1])
    assert np.signbit(got[4][0])
    assert not np.signbit(got[3][0])


def test_alternating_scalars_and_dtypes_get_their_own_constants() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
        n = sf.placeholder(sf.int32, (), name="n")
        outs = []
        for _ in range(3):
            outs += [x + 1.0, n + 1, x * 2.0, n * 2, 2.0 * x, x + 2.0, 1 + n, x + 1]
    want = [1.0, 1, 2.0, 2, 2.0, 2.0, 1, 1.0] * 3
    dtypes = [np.float32, np.int32, np.float32, np.int32, np.float32, np.float32, np.int32,
              np.float32] * 3  # fmt: skip
    for t, value, dtype in zip(outs, want, dtypes, strict=True):
        const = [i for i in t.op.inputs if i.op.type == "Const"]
        assert len(const) == 1
        got = const[0].op.get_attr("value")
        assert got.dtype == dtype
        assert got == value
    with sf.Session(g) as s:
        got = s.run(outs[:8], {x: 3.0, n: 5})
    assert [v.item() for v in got] == [4.0, 6, 6.0, 10, 6.0, 5.0, 6, 4.0]


def test_the_graph_reads_the_same_in_any_order() -> None:
    """Reading the ops one way (names, one op, one input) or another makes the same ops,
    once: each Const and its op are made real together, in their places."""

    def build() -> tuple[sf.Graph, list[Any]]:
        g = sf.Graph()
        with g.as_default():
            x = sf.placeholder(sf.float32, (3,), name="x")
            outs = [x + 1.0, 2.0 * x, x - 1.0]
            with sf.name_scope("inner"):
                outs.append(outs[-1] / 4.0)
            sf.identity(x, name="Const_3")  # taken: the next Const skips it
            outs += [1.0 - x, x * 3.0, x + 1.0]
        return g, outs

    g_ref, _ = build()
    ref = _describe(g_ref)
    readers = [
        lambda g, outs: g.get_operations(),
        lambda g, outs: [g.get_operation_by_name(r[0]) for r in ref],
        lambda g, outs: [t.op.inputs for t in outs],
        lambda g, outs: [g._op_at(i) for i in range(len(ref))],
        lambda g, outs: g.get_tensor_by_name("Const_1:0"),
        lambda g, outs: outs[3].op,
        lambda g, outs: g.to_dot(),
    ]
    for reader in readers:
        g, outs = build()
        reader(g, outs)
        ops = g.get_operations()
        assert _describe(g) == ref
        assert [g._op_at(i) for i in range(len(ops))] == ops
        for op in ops:
            assert g.get_operation_by_name(op.name) is op
            assert op.outputs[0].op is op
            for t in op.inputs:
                assert t.op is ops[ops.index(t.op)]
        for t in outs:
            (const,) = [i for i in t.op.inputs if i.op.type == "Const"]
            assert ops.index(const.op) == ops.index(t.op) - 1
            assert t.op.inputs == t.op.inputs  # the same tensor objects every time
    assert [r[0] for r in ref if r[1] == "Const"] == [
        "Const", "Const_1", "Const_2", "inner/Const", "Const_4", "Const_5", "Const_6",
    ]  # fmt: skip


def test_the_const_built_with_the_op_runs_and_differentiates() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float64, (2,), name="x")
        y = (x + 1.0) * 3.0 - 2.0 / x
        (dx,) = sf.gradients(y, [x])
    with sf.Session(g) as s:
        got, grad = s.run([y, dx], {x: [1.0, 2.0]})
    np.testing.assert_allclose(got, [4.0, 8.0])
    np.testing.assert_allclose(grad, [5.0, 3.5])


def test_shared_values_are_read_only_for_good() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
        a, b, z = x + 7.0, x * 7.0, x + 0.0
    e = sf.constant(1.0, dtype=sf.float32)
    with sf.GradientTape() as tape:
        tape.watch(e)
        e * 7.0  # the eager path shares the same array
    values = [t.op.inputs[1].op.get_attr("value") for t in (a, b, z)]
    assert values[0] is values[1]
    for v in values:
        assert not v.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            v[...] = 5.0
        with pytest.raises(ValueError, match="read-only"):
            np.add(v, 1.0, out=v)
        with pytest.raises(ValueError, match="WRITEABLE"):
            v.flags.writeable = True
    assert values[0] == 7.0
    assert values[2] == 0.0
    with sf.Session(g) as s:
        assert s.run(a, {x: 1.0}) == 8.0


def test_no_array_behind_a_shared_value_can_be_made_writeable() -> None:
    """Not even the array a shared value is a view of (``.base``): writing that would
    change every ``x + 7.0`` after it, in every graph and eagerly."""
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
        a = x + 7.0
    v = a.op.inputs[1].op.get_attr("value")
    from scopeflow._tensor import shared_scalar

    for dtype in (np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64):
        w = shared_scalar(-3 if dtype != np.uint8 else 3, np.dtype(dtype))
        assert w is not None
        assert (w.dtype, w.shape, abs(w)) == (dtype, (), 3)
        assert (w.flags.aligned, w.flags.c_contiguous) == (True, True)
        chain = [w]
        while isinstance(chain[-1].base, np.ndarray):
            chain.append(chain[-1].base)
        for arr in chain:
            with pytest.raises(ValueError, match="WRITEABLE"):
                arr.flags.writeable = True
    chain = [v]
    while isinstance(chain[-1].base, np.ndarray):
        chain.append(chain[-1].base)
    for arr in chain:
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.flags.writeable = True
    assert v == 7.0
    assert (sf.constant(1.0) + 7.0).numpy() == 8.0
    with sf.Session(g) as s:
        assert s.run(a, {x: 1.0}) == 8.0


def test_a_scalar_of_a_subclass_never_takes_the_place_of_the_memo() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.int32, (), name="x")
        one = 1
        a = x + one  # the memo holds the int 1
        b = x + MyInt(1)  # equal, but its own conversion
        c = x + True  # equal, refused by the int32 fast path
    for t in (a, b):
        v = t.op.inputs[1].op.get_attr("value")
        assert v.dtype == np.int32
        assert v == 1
    assert c.op.inputs[1].dtype in (np.int32, np.bool_)
    with sf.Session(g) as s:
        assert s.run([a, b], {x: 2}) == [3, 3]


def test_threads_building_x_plus_one_in_one_graph() -> None:
    g = sf.Graph()
    threads_n, steps = 8, 300
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
    results: list[list[Any]] = [[] for _ in range(threads_n)]
    barrier = threading.Barrier(threads_n)

    def work(k: int) -> None:
        with g.as_default():
            barrier.wait()
            y = x
            for i in range(steps):
                y = y + 1.0 if i % 2 else (2.0 - y if k % 2 else y * 0.5)
                results[k].append(y)
                if i % 50 == 0:
                    y.op.inputs  # materialise some while others build  # noqa: B018

    threads = [threading.Thread(target=work, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ops = g.get_operations()
    assert len(ops) == 1 + 2 * threads_n * steps
    names = [op.name for op in ops]
    assert len(set(names)) == len(names)
    assert sorted(n for n in names if n.startswith("Const")) == sorted(
        ["Const"] + [f"Const_{i}" for i in range(1, threads_n * steps)]
    )
    for i, op in enumerate(ops):
        assert g._op_at(i) is op
        assert g.get_operation_by_name(op.name) is op
        if op.type != "Placeholder" and op.type != "Const":
            (const,) = [t for t in op.inputs if t.op.type == "Const"]
            assert ops[i - 1] is const.op
    with sf.Session(g) as s:
        for k in range(threads_n):
            want, got = np.float32(1.0), s.run(results[k][-1], {x: 1.0})
            for i in range(steps):
                one = np.float32(1.0)
                want = want + one if i % 2 else (2 * one - want if k % 2 else want * 0.5 * one)
            assert got == want


def test_threads_reading_a_graph_make_one_operation_per_op() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
        outs = [x + float(i % 7) for i in range(500)]
    seen: list[list[Any]] = []
    barrier = threading.Barrier(4)

    def read(k: int) -> None:
        barrier.wait()
        if k % 2:
            seen.append([t.op.inputs[1].op for t in reversed(outs)][::-1])
        else:
            seen.append([g._op_at(2 * i + 1) for i in range(len(outs))])

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ops in seen[1:]:
        assert all(a is b for a, b in zip(ops, seen[0], strict=True))
    assert [op.name for op in seen[0]] == ["Const"] + [f"Const_{i}" for i in range(1, 500)]


def test_x_plus_a_scalar_builds_its_const_inside_the_op_until_read() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
        a, b = x + 1.0, 1.0 + x
        with sf.control_dependencies([x]):  # the general pruning, op by op
            c = x + 1.0
    assert isinstance(a._l_in2, dict)
    assert a._l_ins is x
    assert isinstance(b._l_ins, dict)
    assert b._l_in2 is x
    assert c._opv is not None  # real ops, one by one
    assert len(g._ops) == 7
    assert g._ops[1:5] == ["Const", a, "Const_1", b]  # a Const stands as its name
    assert [op.name for op in g.get_operations()] == [
        "x", "Const", "Add", "Const_1", "Add_1", "Const_2", "Add_2",
    ]  # fmt: skip
    assert not isinstance(a.op._in2, dict)
    assert not isinstance(b.op._ins, dict)
    assert a.op.inputs[1].op.control_inputs == ()


def test_op_at_a_const_made_real_by_another_thread_meanwhile() -> None:
    """_op_at reads a Const's name, then the op's tensor: the op may be made real in
    between (by another thread; here by the list itself on that first read)."""
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (), name="x")
        a = x + 1.0
    fired = []

    class Racing(list):  # type: ignore[type-arg]
        def __getitem__(self, i: Any) -> Any:
            item = super().__getitem__(i)
            if i == 1 and not fired:
                fired.append(True)
                a.op  # noqa: B018 - the other thread
            return item

    g._ops = Racing(g._ops)
    assert g._ops[1:3] == ["Const", a]
    const = g._op_at(1)
    assert fired
    assert const is a.op.inputs[1].op
    assert const.name == "Const"
    assert g.get_operations() == [x.op, const, a.op]


def _eager_outcome(fn: Any) -> Any:
    try:
        r = fn()
    except (TypeError, ValueError) as err:
        return type(err)
    v = r.numpy()
    return (v.dtype, v.shape, v.tobytes())


@pytest.mark.parametrize("dtype", _DTYPES)
def test_the_eager_memo_of_the_last_scalar_is_exact(dtype: Any) -> None:
    """Eager ``a <op> scalar`` and ``scalar <op> a`` over a sequence of scalars that
    alternate, repeat and compare equal across types, for two dtypes in turn: each
    result is the general path's, bit for bit."""
    from scopeflow._ops._core import NO_ATTRS, apply

    a = sf.constant(np.array([1, 2], dtype))
    b = sf.constant(np.array([3.0, -0.0], np.float64))
    sequence = [s for s in _SCALARS for _ in range(2)] + _SCALARS[::-1]
    for fn, opdef, sym in _OPS:
        py_op = _PY_OPS[sym]
        for s in sequence:
            for t in (a, b):
                want = _eager_outcome(lambda: apply(opdef, (t, s), NO_ATTRS, None))  # noqa: B023
                assert _eager_outcome(lambda: fn(t, s)) == want, (fn, t.dtype, s)  # noqa: B023
                assert _eager_outcome(lambda: py_op(t, s)) == want  # noqa: B023
                want = _eager_outcome(lambda: apply(opdef, (s, t), NO_ATTRS, None))  # noqa: B023
                assert _eager_outcome(lambda: py_op(s, t)) == want, (fn, t.dtype, s)  # noqa: B023


def test_the_eager_memo_under_a_tape() -> None:
    x = sf.constant(np.array([1.0, 2.0], np.float32))
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ys = [x * 3.0, x * 3.0, 3.0 * x, x * -0.0, x + 1.0, 2.0 - x]
    grads = [tape.gradient(y, x).numpy() for y in ys]
    assert [g.tolist() for g in grads] == [[3.0] * 2, [3.0] * 2, [3.0] * 2, [-0.0] * 2,
                                           [1.0] * 2, [-1.0] * 2]  # fmt: skip
    assert np.signbit(grads[3]).all()


_REENTRANT = """
import gc, sys, scopeflow as sf
g = sf.Graph()
with g.as_default():
    x = sf.placeholder(sf.float32, (), name="x")
    outs = [x + float(i) if i % 2 else sf.add(x, x) for i in range(1, 60)]
mode = sys.argv[1]
pending = list(outs)
def being_made() -> object:
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "_materialize_locked":
            return f.f_locals["t"]
        f = f.f_back
    return None
def callback(phase, info):
    # Code run by a collection (a gc callback here; a finalizer alike) while an op is
    # being made real asks for ops: others, or the very one.
    if phase == "start" and pending:
        t = being_made()
        if t is not None:
            if mode == "other":
                t = pending.pop()
            else:
                pending.pop()
            t.op.inputs
gc.callbacks.append(callback)
gc.set_threshold(1)
try:
    for t in outs[:30]:
        t.op.inputs
    assert len(pending) < 50, "no collection while an op was made real"
finally:
    gc.callbacks.remove(callback)
    gc.set_threshold(700)
ops = g.get_operations()
ok = all(g._op_at(i) is op and g.get_operation_by_name(op.name) is op for i, op in enumerate(ops))
ok = ok and all(t.op in ops and all(i.op in ops for i in t.op.inputs) for t in outs)
ok = ok and all(op.outputs[0].op is op for op in ops)
print(ok, len(ops), len({op.name for op in ops}))
"""


@pytest.mark.parametrize("mode", ["other", "same"])
def test_code_run_by_a_collection_during_materialisation_may_ask_for_ops(mode: str) -> None:
    """A collection triggered while an op is made real runs gc callbacks and finalizers;
    if they ask for an op (another one, or the very one being made), that neither hangs
    on the materialisation lock nor makes a second Operation for one op."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parent.parent / "src")
    out = subprocess.run(
        [sys.executable, "-c", _REENTRANT, mode],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": src, "PATH": ""},
        check=True,
    )
    assert out.stdout.split() == ["True", "90", "90"]
