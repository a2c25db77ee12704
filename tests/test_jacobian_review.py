"""Adversarial checks of GradientTape.jacobian / batch_jacobian (review of the TF port)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _used_tape() -> tuple[sf.GradientTape, Any, Any]:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as g:
        g.watch(x)
        y = x * x
    return g, x, y


@pytest.mark.parametrize("target", [2.0, [1.0], "y"], ids=["float", "list", "str"])
def test_jacobian_non_tensor_target_is_type_error_and_keeps_tape(target: Any) -> None:
    """A bad target is a TypeError raised before the tape is used (gradient() leaves a
    tape usable after a bad call too); it was an AttributeError that used the tape up."""
    g, x, y = _used_tape()
    with pytest.raises(TypeError, match="jacobian"):
        g.jacobian(target, x)
    np.testing.assert_array_equal(g.jacobian(y, x), np.diag([2.0, 4.0]))


def test_jacobian_list_of_tensors_target_is_type_error() -> None:
    g, x, y = _used_tape()
    with pytest.raises(TypeError, match="jacobian"):
        g.jacobian([y, y], x)
    np.testing.assert_array_equal(g.jacobian(y, x), np.diag([2.0, 4.0]))


def test_jacobian_non_tensor_source_keeps_tape() -> None:
    g, x, y = _used_tape()
    with pytest.raises(TypeError):
        g.jacobian(y, 3.0)
    np.testing.assert_array_equal(g.jacobian(y, x), np.diag([2.0, 4.0]))


def test_batch_jacobian_non_tensor_target_is_type_error_and_keeps_tape() -> None:
    x = sf.constant([[1.0, 2.0]])
    with sf.GradientTape() as g:
        g.watch(x)
        y = x * x
    with pytest.raises(TypeError, match="batch_jacobian"):
        g.batch_jacobian(3.0, x)
    with pytest.raises(TypeError, match="batch_jacobian"):
        g.batch_jacobian(y, None)
    np.testing.assert_array_equal(g.batch_jacobian(y, x), [np.diag([2.0, 4.0])])


def test_jacobian_unknown_target_shape_keeps_tape() -> None:
    """The 'shape must be fully known' ValueError comes before the tape is used."""
    seen: list[str] = []

    @sf.function(input_signature=[sf.TensorSpec([None], sf.float32)])
    def f(a: Any) -> Any:
        with sf.GradientTape() as t:
            t.watch(a)
            y = a * a
        with pytest.raises(ValueError, match="fully known"):
            t.jacobian(y, a)
        seen.append("raised")
        return t.gradient(y, a)

    np.testing.assert_array_equal(f(sf.constant([1.0, 3.0])), [2.0, 6.0])
    assert seen == ["raised"]


def test_jacobian_variable_target() -> None:
    v = sf.Variable([1.0, 2.0])
    with sf.GradientTape(persistent=True) as g:
        g.watch(v)
    np.testing.assert_array_equal(g.jacobian(v, v), np.eye(2))


def test_jacobian_in_non_persistent_block_does_not_record_into_the_tape() -> None:
    """A non-persistent tape does not record its own gradient computation (as gradient()
    pauses it): jacobian() inside its block used to, so each seeded gradient walked the
    records of all the earlier ones (quadratic in the target's size)."""
    sizes: list[int] = []
    x = sf.constant(np.arange(6, dtype=np.float32))
    with sf.GradientTape() as g:
        g.watch(x)

        @sf.custom_gradient
        def square(a: Any) -> Any:
            def grad(dy: Any) -> Any:
                sizes.append(len(g._records))
                return dy * 2.0 * a

            return a * a, grad

        y = square(x)
        jac = g.jacobian(y, x)
    np.testing.assert_array_equal(jac, np.diag(2.0 * np.arange(6)))
    assert len(sizes) == 6
    assert len(set(sizes)) == 1, sizes


def test_jacobian_non_persistent_tape_stays_non_persistent_for_other_threads() -> None:
    """While a non-persistent tape computes a jacobian, another thread sees it as it is:
    non-persistent and used (the tape was made persistent for the duration, so a
    concurrent gradient() succeeded and the tape counted as used once only)."""
    x = sf.constant(np.arange(4, dtype=np.float32))
    seen: list[Any] = []
    with sf.GradientTape() as g:
        g.watch(x)

        @sf.custom_gradient
        def square(a: Any) -> Any:
            def grad(dy: Any) -> Any:
                if not seen:
                    out: list[Any] = []

                    def other() -> None:
                        try:
                            g.gradient(y, x)
                            out.append("computed")
                        except RuntimeError:
                            out.append("refused")

                    th = threading.Thread(target=other)
                    th.start()
                    th.join()
                    seen.append((g._persistent, out[0]))
                return dy * 2.0 * a

            return a * a, grad

        y = square(x)
    np.testing.assert_array_equal(g.jacobian(y, x), np.diag(2.0 * np.arange(4)))
    assert seen == [(False, "refused")]


def test_jacobian_failure_gives_the_tape_back() -> None:
    """A gradient that raises part-way leaves a non-persistent tape usable, as gradient()."""
    x = sf.constant([1.0, 2.0])
    calls: list[int] = []
    with sf.GradientTape() as g:
        g.watch(x)

        @sf.custom_gradient
        def f(a: Any) -> Any:
            def grad(dy: Any) -> Any:
                calls.append(1)
                if len(calls) == 2:
                    raise ArithmeticError("boom")
                return dy * 3.0

            return a * 3.0, grad

        y = f(x)
    with pytest.raises(ArithmeticError):
        g.jacobian(y, x)
    np.testing.assert_array_equal(g.gradient(y, x), [3.0, 3.0])


def test_nested_non_persistent_jacobians_record_into_the_outer_tape() -> None:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as outer:
        outer.watch(x)
        with sf.GradientTape() as inner:
            inner.watch(x)
            y = x * x * x
        j = inner.jacobian(y, x)  # diag(3 x^2), recorded by the outer tape
    np.testing.assert_array_equal(outer.jacobian(j, x), [[[6.0, 0], [0, 0]], [[0, 0], [0, 12.0]]])


def test_batch_jacobian_seeds_each_target_column_over_the_batch() -> None:
    """As TensorFlow (which assumes independent examples): one gradient per target column,
    seeded over the whole batch, so a cross-example term adds in. The full Jacobian's
    diagonal blocks took batch times the gradients and memory."""
    xv = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    x = sf.constant(xv)
    with sf.GradientTape() as g:
        g.watch(x)
        y = x * sf.reduce_sum(x)
    # d y[c, i] / d x[b, k] = delta(b,c) delta(i,k) s + x[c, i]; TF's result[b, i, k]
    # sums that over c: s delta(i,k) + sum_c x[c, i].
    s = xv.sum()
    expected = np.stack([np.eye(2) * s + xv.sum(axis=0)[:, None] for _ in range(2)])
    np.testing.assert_allclose(g.batch_jacobian(y, x), expected)


def test_batch_jacobian_independent_examples_and_dtypes() -> None:
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64, np.float16):
        xv = rng.normal(size=(3, 2, 2)).astype(dtype)
        w = rng.normal(size=(4, 4)).astype(dtype)
        x = sf.constant(xv)
        with sf.GradientTape(persistent=True) as g:
            g.watch(x)
            y = sf.matmul(sf.reshape(x, (3, 4)), sf.constant(w))  # (3, 4)
        bj = g.batch_jacobian(y, x)
        assert bj.shape == (3, 4, 2, 2)
        assert bj.dtype == dtype
        full = np.asarray(g.jacobian(y, x))  # (3, 4, 3, 2, 2)
        for b in range(3):
            np.testing.assert_allclose(bj[b], full[b, :, b], rtol=1e-3)


def test_batch_jacobian_unconnected_and_integer() -> None:
    x = sf.constant([[1.0, 2.0]])
    c = sf.constant([[1.0, 2.0, 3.0]])
    with sf.GradientTape(persistent=True) as g:
        g.watch([x, c])
        y = c * 2.0
    assert g.batch_jacobian(y, x) is None
    np.testing.assert_array_equal(
        g.batch_jacobian(y, x, unconnected_gradients="zero"), np.zeros((1, 3, 2))
    )
    xi = sf.constant([[1, 2]])
    with sf.GradientTape() as gi:
        gi.watch(xi)
        yi = xi * xi
    assert gi.batch_jacobian(yi, xi) is None


def test_persistent_jacobian_in_its_block_walks_a_fixed_record_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the block of a persistent tape, the seeded gradients are recorded (for higher
    orders) but each walks only what was recorded before jacobian() (each walked all the
    earlier gradients too: quadratic in the target's size)."""
    from scopeflow import _tape

    walked: list[int] = []
    real = _tape.backprop

    def spy(records: Any, *args: Any, **kwargs: Any) -> Any:
        walked.append(len(records))
        return real(records, *args, **kwargs)

    monkeypatch.setattr(_tape, "backprop", spy)
    x = sf.constant([1.0, 2.0, 3.0])
    with sf.GradientTape(persistent=True) as g:
        g.watch(x)
        y = x * x * x
        j = g.jacobian(y, x)  # diag(3 x^2), recorded by g
    assert len(walked) == 3
    assert len(set(walked)) == 1, walked
    np.testing.assert_allclose(j, np.diag([3.0, 12.0, 27.0]))
    hessian = np.zeros((3, 3, 3))
    for i in range(3):
        hessian[i, i, i] = 6.0 * (i + 1)
    np.testing.assert_allclose(g.jacobian(j, x), hessian)


def test_persistent_jacobian_leaves_the_tape_usable() -> None:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape(persistent=True) as g:
        g.watch(x)
        y = x * x
    np.testing.assert_array_equal(g.jacobian(y, x), np.diag([2.0, 4.0]))
    np.testing.assert_array_equal(g.gradient(y, x), [2.0, 4.0])
    np.testing.assert_array_equal(
        g.jacobian(y, x, experimental_use_pfor=False), np.diag([2.0, 4.0])
    )


def test_reset_outside_the_block_is_a_value_error() -> None:
    """As TensorFlow (``_pop_tape``: "Tape is not recording."): reset() of a tape that is
    not recording (block left, never entered, or under its stop_recording()) raises; it
    silently emptied the tape."""
    x = sf.constant(3.0)
    with pytest.raises(ValueError, match="not recording"):
        sf.GradientTape().reset()
    with sf.GradientTape(persistent=True) as t:
        t.watch(x)
        y = x * x
        with t.stop_recording():
            with pytest.raises(ValueError, match="not recording"):
                t.reset()
    with pytest.raises(ValueError, match="not recording"):
        t.reset()
    assert float(t.gradient(y, x)) == 6.0  # nothing was forgotten


def test_reset_inside_the_block_under_global_stop_recording_and_in_a_thread() -> None:
    x = sf.constant(3.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = x * x
        with sf.stop_recording():
            t.reset()  # the tape still records in this block (as TF's _recording)
        t.watch(x)
        z = x * 5.0
        errors: list[BaseException] = []

        def other() -> None:
            try:
                t.reset()  # a plain thread: the tape records in the caller's context only
            except ValueError as e:
                errors.append(e)

        th = threading.Thread(target=other)
        th.start()
        th.join()
        assert len(errors) == 1
    assert y is not None
    assert float(t.gradient(z, x)) == 5.0


def test_reset_inside_a_function_traced_in_the_block() -> None:
    x = sf.constant(2.0)
    with sf.GradientTape() as t:
        t.watch(x)

        @sf.function
        def f(a: Any) -> Any:
            b = a * a
            t.reset()
            return b * 3.0

        y = f(x)
    assert y is not None
