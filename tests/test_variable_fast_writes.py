"""Eager variable writes of a tensor of the variable's dtype and shape skip the op
machinery (``Variable._write``); they must behave as the write ops do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow._ops._core import apply
from scopeflow._variables import ASSIGN, ASSIGN_ADD, ASSIGN_SUB


def _by_op(var: sf.Variable, opdef: Any, value: Any) -> Any:
    return apply(opdef, (value,), {"var": var})


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.complex64])
@pytest.mark.parametrize(
    ("method", "opdef"),
    [("assign", ASSIGN), ("assign_add", ASSIGN_ADD), ("assign_sub", ASSIGN_SUB)],
)
def test_fast_write_equals_the_op(dtype: Any, method: str, opdef: Any) -> None:
    start = np.array([[1, 2], [3, 100]], dtype)
    delta = sf.constant(np.array([[0.5, -2], [7, 9]]).astype(dtype))
    fast, slow = sf.Variable(start), sf.Variable(start)
    before = fast.read_value()
    out_fast = getattr(fast, method)(delta)
    out_slow = _by_op(slow, opdef, delta)
    for a, b in ((out_fast, out_slow), (fast.read_value(), slow.read_value())):
        assert type(a) is type(b) is sf.EagerTensor
        np.testing.assert_array_equal(a.numpy(), b.numpy(), strict=True)
    # Tensors read before the write keep their value; the new value is read-only.
    np.testing.assert_array_equal(before.numpy(), start, strict=True)
    assert not fast.numpy().flags.writeable


def test_fast_write_overflow_gives_inf_without_warning() -> None:
    # pytest turns warnings into errors: the write ignores floating-point errors.
    v = sf.Variable(np.array([60000.0], np.float16))
    v.assign_add(sf.constant(np.array([60000.0], np.float16)))
    assert np.isinf(v.numpy()[0])
    v.assign_sub(sf.constant(np.array([np.inf], np.float16)))
    assert np.isnan(v.numpy()[0])


def test_other_values_take_the_op_path_and_its_errors() -> None:
    v = sf.Variable(np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="dtype"):
        v.assign_sub(sf.constant(np.ones(2, np.float64)))
    with pytest.raises(ValueError, match="shape"):
        v.assign_sub(sf.constant(np.ones(3, np.float32)))
    v.assign_add(sf.constant(np.float32(1.0)) * np.ones(2, np.float32))
    v.assign_sub([0.5, 0.25])
    np.testing.assert_array_equal(v.numpy(), np.array([0.5, 0.75], np.float32))


def test_fast_write_under_a_tape_records_nothing() -> None:
    v = sf.Variable(np.ones(2, np.float32))
    x = sf.constant(np.ones(2, np.float32))
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = v.assign_add(x * 2.0)
    assert tape.gradient(y, x) is None
    np.testing.assert_array_equal(v.numpy(), np.full(2, 3.0, np.float32))
