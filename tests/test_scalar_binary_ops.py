"""Binary ops on two 0-d eager tensors of a real float dtype compute with NumPy's scalar
math (``_fast_binary._SCALAR_OPS``); the results must be the ufuncs' bit for bit."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

_SPECIALS = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, 3e38, 65504.0, 6e-8,
             1e308, 5e-324, 0.1, 1 / 3, -2.5e-3]  # fmt: skip
_OPS = [
    (lambda a, b: a + b, np.add),
    (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply),
    (lambda a, b: a / b, np.true_divide),
    (sf.add, np.add),
    (sf.multiply, np.multiply),
]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("op", "ufunc"), _OPS)
def test_scalar_path_equals_the_ufunc(dtype: Any, op: Any, ufunc: Any) -> None:
    # Warnings are errors in the tests: the scalar path ignores overflow as ufuncs do.
    with np.errstate(all="ignore"):  # some specials overflow float16
        values = [np.asarray(v, dtype) for v in _SPECIALS]
    for a, b in itertools.product(values, values):
        got = op(sf.constant(a), sf.constant(b))
        with np.errstate(all="ignore"):
            want = np.asarray(ufunc(a, b))
        assert type(got) is sf.EagerTensor
        assert got.dtype == want.dtype
        assert got.shape == want.shape == ()
        np.testing.assert_array_equal(got.numpy(), want, strict=True)
        assert np.signbit(got.numpy()) == np.signbit(want)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.complex64, np.complex128])
def test_other_dtypes_keep_the_ufunc(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        re, im = rng.standard_normal(2) * 50
        a = np.asarray(complex(re, im) if np.dtype(dtype).kind == "c" else abs(int(re)), dtype)
        b = np.asarray(complex(im, re) if np.dtype(dtype).kind == "c" else abs(int(im)), dtype)
        with np.errstate(all="ignore"):
            want = np.asarray(np.multiply(a, b))
        got = sf.constant(a) * sf.constant(b)
        np.testing.assert_array_equal(got.numpy(), want, strict=True)
