"""A source the tape does not follow (not watched, not an auto-watched trainable
variable, not an output of a recorded op) gets no gradient, as in TensorFlow, even where
a recorded op took it as an input: ``x * c`` with only ``x`` watched gives ``c`` None."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _value(g: Any) -> Any:
    return None if g is None else float(g.numpy())


@pytest.mark.parametrize("op_level", [False, True])
def test_unwatched_input_of_a_recorded_op_gets_none(op_level: bool) -> None:
    x = sf.constant(2.0)
    c = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * c
    if op_level:  # an outer tape that records the walk: the op-level walk
        with sf.GradientTape(watch_accessed_variables=False):
            grads = tape.gradient(y, [x, c])
    else:  # the array walk (_np_grad)
        grads = tape.gradient(y, [x, c])
    assert [_value(g) for g in grads] == [3.0, None]


def test_single_untracked_source_and_unconnected_zero() -> None:
    x = sf.constant(2.0)
    c = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * c + sf.square(c)
    assert tape.gradient(y, c) is None
    zero = tape.gradient(y, c, unconnected_gradients="zero")
    assert _value(zero) == 0.0
    assert zero.dtype == c.dtype
    # Asked twice, and by dict structure: the same answers.
    assert tape.gradient(y, c) is None
    out = tape.gradient(y, {"x": x, "c": c})
    assert _value(out["x"]) == 3.0
    assert out["c"] is None


def test_untracked_source_in_a_persistent_tape_block_and_second_order() -> None:
    x = sf.constant(2.0)
    c = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * c
        dx, dc = tape.gradient(y, [x, c])
    assert _value(dx) == 12.0
    assert dc is None
    assert _value(tape.gradient(dx, x)) == 6.0
    assert tape.gradient(dx, c) is None


def test_nested_tapes_follow_their_own_sources() -> None:
    x = sf.constant(2.0)
    c = sf.constant(3.0)
    with sf.GradientTape() as outer:
        outer.watch(c)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = x * c
        dx, dc = inner.gradient(y, [x, c])
    assert _value(dx) == 3.0
    assert dc is None
    # The outer tape follows c, and recorded the inner walk: d(dx)/dc = 1.
    assert _value(outer.gradient(dx, c)) == 1.0


def test_function_call_inputs_and_variables_not_followed() -> None:
    x = sf.constant(2.0)
    c = sf.constant(3.0)
    v = sf.Variable(5.0)

    @sf.function
    def f(a: Any, b: Any) -> Any:
        return a * b * v

    with sf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        y = f(x, c)
    dx, dc, dv = tape.gradient(y, [x, c, v])
    assert _value(dx) == 15.0
    assert dc is None
    assert dv is None
    # With the variable watched (here: read while recording), it gets its gradient.
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = f(x, c)
    dx, dc, dv = tape.gradient(y, [x, c, v])
    assert [_value(dx), dc, _value(dv)] == [15.0, None, 6.0]


def test_unwatched_variable_read_directly_gets_none() -> None:
    x = sf.constant(2.0)
    v = sf.Variable(5.0)
    with sf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        y = x * v
    dx, dv = tape.gradient(y, [x, v])
    assert _value(dx) == 5.0
    assert dv is None


def test_source_watched_after_its_use_still_gets_its_gradient() -> None:
    x = sf.constant(2.0)
    c = sf.constant(3.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = x * c
        tape.watch(c)
    assert [_value(g) for g in tape.gradient(y, [x, c])] == [3.0, 2.0]


def test_target_that_is_a_source_keeps_its_seed() -> None:
    c = sf.constant(np.array([1.0, 2.0], np.float32))
    with sf.GradientTape() as tape:
        pass
    np.testing.assert_array_equal(tape.gradient(c, c).numpy(), [1.0, 1.0])


def test_untracked_source_inside_a_traced_function() -> None:
    @sf.function
    def grads(x: Any, c: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = x * c
        dx, dc = tape.gradient(y, [x, c], unconnected_gradients="zero")
        return dx, dc

    dx, dc = grads(sf.constant(2.0), sf.constant(3.0))
    assert [_value(dx), _value(dc)] == [3.0, 0.0]
