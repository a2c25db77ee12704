"""Gradients of traced calls use the values their reads returned: edge cases.

Each op's logged reads are served back in the order the call made them, so a gradient
must replay every read of an op that ran more than once (a nested function called twice)
in that order, even where it needs only some of their values. Expected values are worked
out by hand; they are those TensorFlow 2.21 gives (every read of a variable contributes
to its gradient with the value it read).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _floats(*values: Any) -> list[float | None]:
    return [None if v is None else float(np.asarray(v)) for v in values]


def _nested_twice(a: sf.Variable, b: sf.Variable) -> Any:
    @sf.function
    def inner(x: Any) -> Any:
        y = x * a + b
        a.assign_add(1.0)
        return y

    @sf.function
    def outer(x: Any) -> Any:
        return inner(inner(x))

    return outer


@pytest.mark.parametrize(
    "sources",
    [("b",), ("a",), ("x",), ("a", "b"), ("b", "x"), ("x", "a", "b")],
)
def test_a_nested_call_made_twice_any_subset_of_sources(sources: tuple[str, ...]) -> None:
    # y1 = x*a + b with a = 2 (then a = 3); y = y1*a + b with a = 3 (then a = 4).
    # x = 3: y1 = 11, y = 38; dy/dx = 2*3 = 6, dy/da = y1 + 3*x = 20, dy/db = 3 + 1 = 4.
    a = sf.Variable(2.0)
    b = sf.Variable(5.0)
    outer = _nested_twice(a, b)
    x = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = outer(x)
    named = {"x": x, "a": a, "b": b}
    expected = {"x": 6.0, "a": 20.0, "b": 4.0}
    grads = tape.gradient(y, [named[s] for s in sources])
    assert _floats(y, *grads) == [38.0, *(expected[s] for s in sources)]
    assert float(a.numpy()) == 4.0
