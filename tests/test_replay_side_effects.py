"""A gradient through a traced function does not run the side effects of a ``cond`` in it
again: the cond is replayed as a cond of its branches' replays (writes as reads, prints
skipped), flat, nested in another traced call, at higher orders and in ``sf.gradients``."""

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
