"""Variables as operands of eager ops: the fast paths read them themselves
(``_core.EAGER_READS``); results, tape records and errors are those of the general path
(``apply``), which resolves the variable through ``__sf_tensor__``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._ops._core import apply
from scopeflow._ops._registry import REGISTRY

_BINARY: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("Add", lambda a, b: a + b),
    ("Sub", lambda a, b: a - b),
    ("Mul", lambda a, b: a * b),
    ("RealDiv", lambda a, b: a / b),
]


def _records(tape: sf.GradientTape) -> list[str]:
    return [rec[0].type for rec in tape._records]


@pytest.mark.parametrize(("op_type", "fn"), _BINARY)
@pytest.mark.parametrize("shape", [(3,), (2, 3), ()])
def test_variable_operand_matches_the_general_path(
    op_type: str, fn: Callable[[Any, Any], Any], shape: tuple[int, ...]
) -> None:
    x = sf.constant(np.arange(6, dtype=np.float32).reshape(2, 3) + 1)
    v = sf.Variable(np.full(shape, 1.5, np.float32))
    with sf.GradientTape(persistent=True) as fast_tape:
        fast = fn(x, v)
    with sf.GradientTape(persistent=True) as slow_tape:
        slow = apply(REGISTRY[op_type], (x, v), {})
    np.testing.assert_array_equal(fast.numpy(), slow.numpy(), strict=True)
    assert _records(fast_tape) == _records(slow_tape) == ["ReadVariableOp", op_type]
    assert fast_tape.watched_variables() == slow_tape.watched_variables() == (v,)
    g_fast = fast_tape.gradient(fast, v)
    g_slow = slow_tape.gradient(slow, v)
    np.testing.assert_array_equal(g_fast.numpy(), g_slow.numpy(), strict=True)


@pytest.mark.parametrize(
    ("value", "error"),
    [(np.ones(2, np.float64), TypeError), (np.ones(3, np.float32), ValueError)],
)
def test_refused_variable_operand_raises_and_records_as_before(value: Any, error: Any) -> None:
    x = sf.constant(np.ones(2, np.float32))
    v = sf.Variable(value, name="w")
    messages = []
    for run in (lambda: x + v, lambda: apply(REGISTRY["Add"], (x, v), {})):
        with sf.GradientTape() as tape, pytest.raises(error) as info:
            run()
        messages.append(str(info.value))
        assert _records(tape) == ["ReadVariableOp"]
    assert messages[0] == messages[1]
    assert "sf.Variable 'w:0'" in messages[0]


def test_variable_operand_not_recorded_where_paused() -> None:
    x = sf.constant(np.ones(2, np.float32))
    v = sf.Variable(np.ones(2, np.float32))
    with sf.GradientTape() as tape:
        with tape.stop_recording():
            y = x + v
        z = x * v
    assert _records(tape) == ["ReadVariableOp", "Mul"]
    np.testing.assert_array_equal(y.numpy(), np.full(2, 2.0, np.float32))
    np.testing.assert_array_equal(tape.gradient(z, v).numpy(), np.ones(2, np.float32))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.int32])
@pytest.mark.parametrize(("ta", "tb"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("weights", ["variable", "tensor"])
def test_eager_matmul_matches_the_general_path(
    dtype: Any, ta: bool, tb: bool, weights: str
) -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 4) if not ta else (4, 3)).astype(dtype)
    b = rng.standard_normal((4, 5) if not tb else (5, 4)).astype(dtype)
    x = sf.constant(a)
    w: Any = sf.Variable(b) if weights == "variable" else sf.constant(b)
    attrs = {"transpose_a": ta, "transpose_b": tb}
    with sf.GradientTape(persistent=True) as fast_tape:
        fast_tape.watch(x)
        fast = sf.matmul(x, w, transpose_a=ta, transpose_b=tb)
    with sf.GradientTape(persistent=True) as slow_tape:
        slow_tape.watch(x)
        slow = apply(REGISTRY["MatMul"], (x, w), attrs)
    np.testing.assert_array_equal(fast.numpy(), slow.numpy(), strict=True)
    assert _records(fast_tape) == _records(slow_tape)
    assert [rec[3] for rec in fast_tape._records][-1] == attrs
    if np.dtype(dtype).kind == "f":
        _, g_fast = fast_tape.gradient(fast, [x, w])
        _, g_slow = slow_tape.gradient(slow, [x, w])
        if weights == "tensor":
            # A constant the tapes do not follow gets no gradient (as in TensorFlow).
            assert g_fast is None
            assert g_slow is None
        else:
            np.testing.assert_array_equal(g_fast.numpy(), g_slow.numpy(), strict=True)


@pytest.mark.parametrize(
    ("a_shape", "b_value"),
    [((2, 3), np.ones((4, 5), np.float32)), ((2, 3), np.ones((3, 5), np.float64)),
     ((3,), np.ones((3, 5), np.float32)), ((2, 2, 3), np.ones((3, 5), np.float32))],
)  # fmt: skip
def test_eager_matmul_refusals_raise_and_record_as_before(a_shape: Any, b_value: Any) -> None:
    x = sf.constant(np.ones(a_shape, np.float32))
    v = sf.Variable(b_value, name="w")
    outcomes = []
    for run in (lambda: sf.matmul(x, v), lambda: apply(REGISTRY["MatMul"], (x, v), {
            "transpose_a": False, "transpose_b": False})):  # fmt: skip
        with sf.GradientTape() as tape:
            try:
                outcomes.append(("ok", run().numpy().tolist(), _records(tape)))
            except (TypeError, ValueError) as err:
                outcomes.append((type(err).__name__, str(err), _records(tape)))
    assert outcomes[0] == outcomes[1]
