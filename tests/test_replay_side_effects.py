"""A gradient through a traced function does not run the side effects of a ``cond`` or a
``while_loop`` in it again: they replay as a cond (a loop) of their functions' replays
(writes as reads, prints skipped), flat, nested in another traced call, at higher orders
and in ``sf.gradients``."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any

import pytest

import scopeflow as sf


def _functions() -> tuple[Any, Any, Any, Any]:
    v = sf.Variable(2.0)
    count = sf.Variable(0.0)

    @sf.function
    def inner(x: Any) -> Any:
        def taken() -> Any:
            count.assign_add(1.0)
            sf.print("side effect")
            return x * x * v

        return sf.cond(x > 0, taken, lambda: x * 3.0)

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x)

    return v, count, inner, outer


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("x0", [1.5, -1.5])
def test_a_cond_in_a_traced_function_runs_its_side_effects_once(nested: bool, x0: float) -> None:
    v, count, inner, outer = _functions()
    f = outer if nested else inner
    x = sf.constant(x0)
    out = io.StringIO()
    with redirect_stdout(out):
        with sf.GradientTape() as t2:
            t2.watch(x)
            with sf.GradientTape() as t1:
                t1.watch(x)
                y = f(x)
            d1, dv = t1.gradient(y, [x, v])
        d2 = t2.gradient(d1, x)
    taken = x0 > 0
    assert float(y) == (x0 * x0 * 2.0 if taken else x0 * 3.0)
    assert float(d1) == (2 * x0 * 2.0 if taken else 3.0)
    assert float(d2) == (4.0 if taken else 0.0)
    assert (float(dv) if dv is not None else 0.0) == (x0 * x0 if taken else 0.0)
    assert float(count.numpy()) == (1.0 if taken else 0.0)
    assert out.getvalue().count("side effect") == (1 if taken else 0)


def test_a_cond_in_a_traced_function_in_symbolic_gradients() -> None:
    _, count, _, outer = _functions()
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, ())
        (gp,) = sf.gradients(outer(p), [p])
        (gg,) = sf.gradients(gp, [p])
        types = [op.type for op in g.get_operations()]
        assert "AssignAddVariableOp" not in types
        assert types.count("StatefulPartitionedCall") == 1  # the forward call
        out = io.StringIO()
        with redirect_stdout(out):
            got = sf.Session(g).run([gp, gg], {p: 1.5})
    assert [float(a) for a in got] == [6.0, 4.0]
    assert float(count.numpy()) == 1.0
    assert out.getvalue().count("side effect") == 1


def _loop_functions() -> tuple[Any, Any, Any, Any]:
    v = sf.Variable(2.0)
    count = sf.Variable(0.0)

    @sf.function
    def inner(x: Any) -> Any:
        def body(i: Any, y: Any) -> Any:
            count.assign_add(1.0)
            sf.print("side effect")
            return i + 1, y * v * x

        return sf.while_loop(lambda i, y: i < 2, body, (sf.constant(0), x), 5)[1]

    @sf.function
    def outer(x: Any) -> Any:
        return inner(x)

    return v, count, inner, outer


@pytest.mark.parametrize("nested", [False, True])
def test_a_loop_in_a_traced_function_runs_its_side_effects_once(nested: bool) -> None:
    # y = x**3 * v**2 after two iterations.
    v, count, inner, outer = _loop_functions()
    f = outer if nested else inner
    x = sf.constant(1.5)
    out = io.StringIO()
    with redirect_stdout(out):
        with sf.GradientTape() as t2:
            t2.watch(x)
            with sf.GradientTape() as t1:
                t1.watch(x)
                y = f(x)
            d1, dv = t1.gradient(y, [x, v])
        d2 = t2.gradient(d1, x)
    assert [float(a) for a in (y, d1, dv, d2)] == [13.5, 27.0, 13.5, 36.0]
    assert float(count.numpy()) == 2.0
    assert out.getvalue().count("side effect") == 2


def test_a_loop_in_a_traced_function_in_symbolic_gradients() -> None:
    _, count, _, outer = _loop_functions()
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, ())
        y = outer(p)
        (gp,) = sf.gradients(y, [p])
        (gg,) = sf.gradients(gp, [p])
        out = io.StringIO()
        with redirect_stdout(out):
            got = sf.Session(g).run([y, gp, gg], {p: 1.5})
    assert [float(a) for a in got] == [13.5, 27.0, 36.0]
    assert float(count.numpy()) == 2.0
    assert out.getvalue().count("side effect") == 2
