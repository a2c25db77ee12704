"""``while_loop(maximum_iterations=<graph tensor>)``: a bound known only when the loop runs.

As in TensorFlow, the loop gets a counter loop variable and its condition becomes
``counter < bound and cond(...)``; the expected values below are worked out by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _doubling(bound: Any) -> list[Any]:
    """Double ``v`` while it is under 100, at most ``bound`` times."""
    return sf.while_loop(  # type: ignore[no-any-return]
        lambda i, v: v < 100.0,
        lambda i, v: (i + 1, v * 2.0),
        [0, sf.constant(1.0)],
        maximum_iterations=bound,
    )


@pytest.mark.parametrize(
    ("fed", "iterations", "value"),
    [(0, 0, 1.0), (3, 3, 8.0), (7, 7, 128.0), (50, 7, 128.0), (-2, 0, 1.0)],
)
def test_a_placeholder_bound_stops_the_loop_when_fed(
    fed: int, iterations: int, value: float
) -> None:
    g = sf.Graph()
    with g.as_default():
        n = sf.placeholder(sf.int32, shape=(), name="n")
        i, v = _doubling(n)
    assert (i.shape, v.shape) == ((), ())
    with sf.Session(g) as session:
        got_i, got_v = session.run([i, v], feed_dict={n: fed})
    # (50: the condition stops the loop first; -2: no iteration, as `0 < -2` is false)
    assert (int(got_i), float(got_v)) == (iterations, value)


def test_one_trace_serves_every_bound_and_int64_bounds_work() -> None:
    @sf.function
    def f(x: sf.Tensor, m: sf.Tensor) -> sf.Tensor:
        (y,) = sf.while_loop(lambda v: v < 1000.0, lambda v: v * 3.0, [x], maximum_iterations=m)
        return y

    x = sf.constant(1.0)
    got = [float(f(x, sf.constant(k, dtype=sf.int64))) for k in (0, 1, 2, 4, 100)]
    assert got == [1.0, 3.0, 9.0, 81.0, 2187.0]
    assert f.trace_count == 1


def test_structures_shape_invariants_and_a_bare_tensor_body() -> None:
    g = sf.Graph()
    with g.as_default():
        n = sf.placeholder(sf.int32, shape=(), name="n")
        out = sf.while_loop(
            lambda s: s["count"] < 100,
            lambda s: {"count": s["count"] + 1, "seq": sf.concat([s["seq"], s["seq"]], 0)},
            [{"count": sf.constant(0), "seq": sf.constant([1.0])}],
            maximum_iterations=n,
            shape_invariants=[{"count": (), "seq": (None,)}],
        )
        (single,) = sf.while_loop(lambda x: x < 10, lambda x: x + 4, [sf.constant(1)], n)
    (state,) = out
    assert state["seq"].shape == (None,)
    with sf.Session(g) as session:
        count, seq, s = session.run([state["count"], state["seq"], single], feed_dict={n: 3})
    assert int(count) == 3
    assert seq.shape == (8,)
    assert int(s) == 13


def test_a_body_returning_the_wrong_number_of_values_is_refused() -> None:
    g = sf.Graph()
    with g.as_default():
        n = sf.placeholder(sf.int32, shape=(), name="n")
        with pytest.raises(ValueError, match=r"'w': body must return 2 loop variables.*got 1"):
            sf.while_loop(
                lambda a, b: a < 3, lambda a, b: [a + 1], [0, 0], maximum_iterations=n, name="w"
            )


def test_gradients_through_a_bounded_loop_eager_tape_and_graph() -> None:
    @sf.function
    def power(x: sf.Tensor, m: sf.Tensor) -> sf.Tensor:
        (y,) = sf.while_loop(lambda v: v < 100.0, lambda v: v * x, [x], maximum_iterations=m)
        return y

    x = sf.constant(1.5)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = power(x, sf.constant(2))  # x * x * x
    assert float(y) == pytest.approx(3.375)
    assert float(tape.gradient(y, x)) == pytest.approx(6.75)  # 3 x^2

    g = sf.Graph()
    with g.as_default():
        xg = sf.placeholder(sf.float32, shape=(), name="x")
        n = sf.placeholder(sf.int32, shape=(), name="n")
        (yg,) = sf.while_loop(lambda v: v < 100.0, lambda v: v * xg, [xg], maximum_iterations=n)
        (dx,) = sf.gradients(yg, [xg])
    with sf.Session(g) as session:
        value, grad = session.run([yg, dx], feed_dict={xg: 2.0, n: 3})  # x^4
    assert (float(value), float(grad)) == (16.0, 32.0)  # 4 x^3


def test_a_bounded_loop_survives_export_and_load(tmp_path: Path) -> None:
    module = sf.Module(name="m")
    module.f = sf.function(
        lambda x, m: sf.while_loop(lambda v: v < 50.0, lambda v: v + 10.0, [x], m)[0]
    )
    module.f(sf.constant(0.0), sf.constant(2))
    path = str(tmp_path / "bounded")
    sf.saved_model.save(module, path)
    loaded = sf.saved_model.load(path)
    assert float(loaded.f(np.float32(0.0), np.int32(2))) == 20.0
    assert float(loaded.f(np.float32(0.0), np.int32(99))) == 50.0
