"""Scenarios from TensorFlow's GradientTape tests (``tensorflow/python/eager/backprop_test.py``).

Each test names the TensorFlow test it follows. The scenarios and expected values are
TensorFlow's (what TF 2 returns or raises); the code is written for pytest and scopeflow.
TensorFlow's helper wrappers (``gradients_function``, ``implicit_grad``, ``make_vjp``) are
not public API; their scenarios are written here with an explicit ``sf.GradientTape``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _grad(fn: Any, *args: Any) -> list[Any]:
    """What TensorFlow's ``gradients_function(fn)(*args)`` returns: d fn / d each argument."""
    xs = [sf.convert_to_tensor(a) for a in args]
    with sf.GradientTape() as t:
        for x in xs:
            t.watch(x)
        y = fn(*xs)
    return list(t.gradient(y, xs))


def _value(t: Any) -> Any:
    return None if t is None else np.asarray(t)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "function"])
def test_no_op_behavior_consistent(traced: bool) -> None:
    """testNoOpBehaviorConsistent: identity-like ops are distinct, watchable tensors."""

    def f(x: Any) -> Any:
        x1 = sf.identity(x)
        x2 = sf.add(x, 0.0)
        x3 = sf.subtract(x, 0.0)
        x4 = sf.multiply(x, 1.0)
        with sf.GradientTape() as t:
            for v in (x, x1, x2, x3, x4):
                t.watch(v)
            loss = x * 2.0 + x1 * 3.0 + x2 * 3.0 + x3 * 3.0 + x4 * 3.0
        return t.gradient(loss, [x, x1, x2, x3, x4])

    fn = sf.function(f) if traced else f
    np.testing.assert_allclose([np.asarray(g) for g in fn(sf.constant(10.0))], [2, 3, 3, 3, 3])


def test_gradient_inside_loop() -> None:
    """testGradientInsideLoop: a tape inside a graph while_loop body differentiates a read."""
    with sf.Graph().as_default():
        v = sf.Variable(1.0)
        seen = []

        def body(i: Any) -> Any:
            _ = v + 1.0
            with sf.GradientTape() as t:
                result = v * 2
            seen.append(t.gradient(result, v))
            return i + 1.0

        sf.while_loop(lambda i: i < 0.0, body, [1.0])
        assert seen
        assert seen[0] is not None


def test_where_gradient() -> None:
    """testWhereGradient: only the selected branch gets the gradient."""

    def f(x: Any) -> Any:
        return sf.where(x < 10, x, x * x)

    assert _value(_grad(f, 5.0)[0]) == 1.0
    assert _value(_grad(f, 50.0)[0]) == 100.0


def test_two_targets() -> None:
    """testTwoTargets"""
    with sf.GradientTape() as t:
        x = sf.constant(3.0)
        y = sf.constant(2.0)
        t.watch([x, y])
        xx = 2 * x
        yy = 3 * y
    dx, dy = t.gradient([xx, yy], [x, y])
    assert _value(dx) == 2.0
    assert _value(dy) == 3.0


def test_custom_gradient_empty_error() -> None:
    """testCustomGradientEmptyError: a grad fn returning too few gradients raises ValueError."""

    @sf.custom_gradient
    def identity(x: Any) -> Any:
        def grad(_: Any) -> Any:
            return []

        return x, grad

    x = sf.Variable(1.0)
    with sf.GradientTape() as t:
        y = identity(x)
    with pytest.raises(ValueError):
        t.gradient(y, [x])


def test_output_grad_used_in_computation() -> None:
    """testOutputGradUsedInComputation"""
    with sf.GradientTape() as t:
        x = sf.constant(3.0)
        y = sf.constant(2.0)
        t.watch([x, y])
        loss = x * y
    (dx,) = t.gradient([loss, x], [x], output_gradients=[1.0, 2.0])
    assert _value(dx) == 4.0


def test_dy() -> None:
    """testDy: output_gradients scales the gradient of an identity function."""
    x = sf.constant(1.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = x
    assert _value(t.gradient(y, x, output_gradients=sf.constant(2.0))) == 2.0


def test_gradient_integer() -> None:
    """testGradientInteger: an integer source has no gradient."""
    assert _grad(lambda x: x + x, sf.constant(1))[0] is None


def test_errors() -> None:
    """testErrors: an exception in a custom gradient function propagates."""

    @sf.custom_gradient
    def f(x: Any) -> Any:
        def grad(_: Any) -> Any:
            raise RuntimeError("x")

        return x, grad

    with pytest.raises(RuntimeError):
        _grad(f, sf.constant(1.0))


def test_gradients_function_in_custom_gradient() -> None:
    """testGradientsFunctionInCustomGradient: a tape inside a custom_gradient forward."""

    @sf.custom_gradient
    def f(x: Any) -> Any:
        (y,) = _grad(lambda x: x * x, x)

        def grad(dy: Any) -> Any:
            return [2 * dy]

        return y, grad

    assert _value(f(sf.constant(1.0))) == 2.0


def test_implicit_grad_ordering() -> None:
    """testImplicitGradOrdering: watched_variables() lists variables in order of first use."""
    v0 = sf.Variable(1.0)
    v1 = sf.Variable(2.0)
    with sf.GradientTape() as t:
        x = v1 * v1
        y = v0 * v0
        _ = x + y
    watched = t.watched_variables()
    assert watched[0] is v1
    assert watched[1] is v0


def test_tape_no_op_gradient() -> None:
    """testTapeNoOpGradient"""
    x = sf.constant(3.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = x
    assert t.gradient(y, x).numpy() == 1.0


def test_tape_identity_gradient_is_identity() -> None:
    """testTapeIdentityGradientIsIdentity"""
    x = sf.constant(3.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = sf.identity(x)
    assert t.gradient(y, x).numpy() == 1.0


def test_function_indexed_slices_gradient() -> None:
    """testFunctionIndexedSlicesGradient: gather after a traced function call."""

    @sf.function
    def f(x: Any) -> Any:
        return x + 1

    with sf.GradientTape() as t:
        x = sf.constant([1.0])
        t.watch(x)
        y = f(x)
        y = sf.gather(y, [0])
    np.testing.assert_array_equal(t.gradient(y, x), [1.0])


def test_tape_gradient_multi_target_one_is_source() -> None:
    """testTapeGradientMultiTargetOneIsSource"""
    x = sf.constant(2.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = x * x
    assert t.gradient([x, y], x).numpy() == 5.0


def test_tape_no_op_gradient_with_multi_target_all_source() -> None:
    """testTapeNoOpGradientWithMultiTargetAllSource"""
    x = sf.constant(3.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = x
    assert t.gradient([y, y], x).numpy() == 2.0


def test_tape_no_op_gradient_with_multi_target_multi_source() -> None:
    """testTapeNoOpGradientWithMultiTargetMultiSource"""
    x = sf.constant(3.0)
    y = sf.constant(5.0)
    with sf.GradientTape() as t:
        t.watch(x)
        t.watch(y)
        z = y * y
    np.testing.assert_array_equal(
        [np.asarray(g) for g in t.gradient([x, y, z], [x, y])], [1.0, 11.0]
    )


def test_tape_no_op_on_variable_is_identity() -> None:
    """testTapeNoOpOnVariableIsIdentity"""
    v0 = sf.Variable(1.0)
    with sf.GradientTape() as t:
        y = v0.read_value()
    assert t.gradient(y, v0).numpy() == 1.0


def test_tape_no_op_gradient_2_by_2() -> None:
    """testTapeNoOpGradient2By2"""
    a = sf.constant(2.0, shape=[2, 2])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(a)
    dy_dy = tape.gradient(a, [a])[0]
    np.testing.assert_array_equal(dy_dy.numpy(), np.ones((2, 2), np.float32))


def test_tape_no_op_gradient_multi_target_2_by_2() -> None:
    """testTapeNoOpGradientMultiTarget2By2"""
    a = sf.constant(2.0, shape=[2, 2])
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(a)
    dy_dy = tape.gradient([a, a], [a])[0]
    np.testing.assert_array_equal(dy_dy.numpy(), np.full((2, 2), 2.0, np.float32))


def test_tape_stop_recording() -> None:
    """testTapeStopRecording"""
    with sf.GradientTape() as t:
        x = sf.Variable(1.0)
        with t.stop_recording():
            y = x * x
    assert t.gradient(y, x) is None


def test_tape_stop_start_recording() -> None:
    """testTapeStopStartRecording"""
    with sf.GradientTape(persistent=True) as t:
        x = sf.Variable(1.0)
        x2 = x * 2
        with t.stop_recording():
            y = x2 * x2
        z = x2 * x2
    assert t.gradient(y, x2) is None
    assert t.gradient(z, x2).numpy() == 4.0


def test_python_max() -> None:
    """testPythonMax: Python's max over variables compares eagerly; one gets the gradient."""
    x = [sf.Variable(2.0), sf.Variable(3.0), sf.Variable(5.0)]
    with sf.GradientTape() as t:
        f = max(x)
    grad = t.gradient(f, x)
    assert _value(f) == 5.0
    assert grad[0] is None
    assert grad[1] is None
    assert _value(grad[2]) == 1.0


def test_automatic_watched_variables() -> None:
    """testAutomaticWatchedVariables (without ``reset()``, which scopeflow lacks)."""
    with sf.GradientTape() as t:
        assert len(t.watched_variables()) == 0
        v = sf.Variable(1.0)
        _ = v * v
        assert len(t.watched_variables()) == 1
        assert t.watched_variables()[0] is v


def test_explicit_watched_variables() -> None:
    """testExplicitWatchedVariables (without ``reset()``)."""
    with sf.GradientTape() as t:
        assert len(t.watched_variables()) == 0
        v = sf.Variable(1.0)
        t.watch(v)
        assert len(t.watched_variables()) == 1
        assert t.watched_variables()[0] is v


def test_gradient_none() -> None:
    """testGradientNone: softmax cross entropy with logits, gradient w.r.t. the logits."""

    def loss(x: Any, labels: Any) -> Any:
        return sf.reduce_mean(
            sf.nn.softmax_cross_entropy_with_logits(logits=x, labels=labels), sf.constant([0])
        )

    logits = sf.constant([[0.0, 0.0]])
    labels = sf.constant([[1.0, 0.0]])
    with sf.GradientTape() as t:
        t.watch(logits)
        y = loss(logits, labels)
    np.testing.assert_array_equal(t.gradient(y, logits).numpy(), [[-0.5, 0.5]])


@pytest.mark.parametrize("persistent", [False, True])
def test_gradient_within_tape_block(persistent: bool) -> None:
    """testGradientWithinTapeBlock"""
    v1 = sf.Variable(1.0)
    with sf.GradientTape(persistent=persistent) as t:
        loss = 2 * v1
        grad = t.gradient(loss, v1)
    assert _value(grad) == 2.0


def test_gradient_within_tape_block_graph() -> None:
    """testGradientWithinTapeBlock, graph mode."""
    with sf.Graph().as_default():
        v1 = sf.Variable(1.0)
        with sf.GradientTape() as t:
            loss = 2 * v1
            grad = t.gradient(loss, v1)
        with sf.Session() as sess:
            sess.run(sf.global_variables_initializer())
            assert sess.run(grad) == 2.0


def test_nested_self_contexts() -> None:
    """testNestedSelfContexts: entering a tape that is already recording raises ValueError."""
    with sf.GradientTape() as t:
        with pytest.raises(ValueError):
            with t:
                pass


def test_second_grad() -> None:
    """testSecondGrad: the second derivative of softmax cross entropy over one class is 0."""

    def first(x: Any) -> Any:
        labels = sf.constant([[0.0]])
        x = sf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=x)
        return sf.reduce_sum(x, sf.constant([0]))

    def second(x: Any) -> Any:
        g = _grad(first, x)[0]
        return sf.reduce_sum(g, sf.constant([0]))

    np.testing.assert_array_equal(_grad(second, sf.constant([[0.1]]))[0], [[0.0]])


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_watching_is_tape_local(graph: bool) -> None:
    """testWatchingIsTapeLocal"""

    def build() -> tuple[Any, Any, list[Any]]:
        x1 = sf.Variable(2.0, trainable=False)
        x2 = sf.Variable(2.0, trainable=False)
        with sf.GradientTape() as tape1:
            with sf.GradientTape() as tape2:
                tape1.watch(x1)
                tape2.watch([x1, x2])
                y = x1**3
                z = x2**2
                dy, dz = tape2.gradient([y, z], [x1, x2])
            d2y, d2z = tape1.gradient([dy, dz], [x1, x2])
        return d2y, d2z, [x1, x2]

    if not graph:
        d2y, d2z, _ = build()
        assert _value(d2y) == 12.0
        assert d2z is None
        return
    with sf.Graph().as_default():
        d2y, d2z, _ = build()
        assert d2z is None
        with sf.Session() as sess:
            sess.run(sf.global_variables_initializer())
            assert sess.run(d2y) == 12.0


def test_make_vjp() -> None:
    """testMakeVJP and testPersistentMakeVJP: output_gradients of a persistent tape, twice."""
    x = sf.constant(3.0)
    with sf.GradientTape(persistent=True) as t:
        t.watch(x)
        result = x * x
    assert _value(result) == 9.0
    first = t.gradient(result, [x], output_gradients=sf.constant(2.0))[0]
    second = t.gradient(result, [x], output_gradients=sf.constant(2.0))[0]
    assert _value(first) == _value(second) == 12.0


def test_grad_grad() -> None:
    """testGradGrad"""
    assert _value(_grad(lambda x: _grad(lambda y: y * y, x)[0], sf.constant(3.0))[0]) == 2.0


def test_grad_grad_exp() -> None:
    """testGradGradExp"""
    assert _value(_grad(lambda x: _grad(sf.exp, x)[0], sf.constant(0.0))[0]) == 1.0


def test_stop_gradient() -> None:
    """testStopGradient"""
    assert _grad(lambda x: sf.stop_gradient(sf.argmax(x)), [0.0])[0] is None


def test_argmax() -> None:
    """testArgmax"""
    assert _grad(lambda x: sf.argmax(x), [0.0])[0] is None


def test_cpu() -> None:
    """testCPU"""

    def fn(x: Any) -> Any:
        c = sf.add(x, sf.constant(2.0))
        return sf.add(c, sf.constant(3.0))

    assert _value(_grad(fn, sf.constant(1.0))[0]) == 1.0


def test_empty_params() -> None:
    """testEmptyParams"""
    x = sf.constant(1.0)
    y = sf.constant(2.0)
    dx, dy = _grad(lambda a, b: a * b, x, y)
    assert _value(dx) == 2.0
    assert _value(dy) == 1.0


def test_unconnected_none() -> None:
    """testUnconnectedNone: a variable read that does not reach the target."""
    v = sf.Variable(1.0)
    with sf.GradientTape() as t:
        v.read_value()
        y = sf.constant(1.0)
    assert t.watched_variables()[0] is v
    assert t.gradient(y, v) is None


def test_gradient_tape_re_enter_context() -> None:
    """testGradientTapeReEnterContext: a tape entered twice keeps recording."""
    g = sf.GradientTape()
    with g:
        x = sf.constant(3.0)
        g.watch(x)
        y = 2 * x
    with g:
        z = 2 * y
    grad = g.gradient(target=z, sources=[x])
    np.testing.assert_array_equal([np.asarray(v) for v in grad], [4.0])


def test_gradient_tape_repeated_source() -> None:
    """testGradientTapeRepeatedSource"""
    with sf.GradientTape(persistent=False) as g:
        x = sf.constant(3.0)
        g.watch(x)
        y = 2 * x
    grad = g.gradient(target=y, sources=[x, x])
    assert [_value(v) for v in grad] == [2.0, 2.0]


def test_persistent_gradient_tape_repeated_source() -> None:
    """testPersistentGradientTapeRepeatedSource"""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant(3.0)
        y = sf.constant(5.0)
        g.watch(x)
        g.watch(y)
        z = x * x + x * y
    assert [_value(v) for v in g.gradient(target=z, sources=[x, x])] == [11.0, 11.0]
    assert [_value(v) for v in g.gradient(target=z, sources=[y, x])] == [3.0, 11.0]


def test_gradient_tape_structure() -> None:
    """testGradientTapeStructure: the gradient has the structure of the sources."""
    with sf.GradientTape(persistent=True) as g:
        x1 = sf.constant(3.0)
        x2 = sf.constant(3.1)
        x3 = sf.constant(3.2)
        g.watch(x1)
        g.watch(x2)
        g.watch(x3)
        y = x1 + 2 * x2 + 3 * x3

    def ev(s: Any) -> Any:
        if isinstance(s, (list, tuple)):
            return type(s)(ev(v) for v in s)
        if isinstance(s, dict):
            return {k: ev(v) for k, v in s.items()}
        return float(np.asarray(s))

    assert ev(g.gradient(y, x1)) == 1.0
    assert ev(g.gradient(y, (x1,))) == (1.0,)
    assert ev(g.gradient(y, (x1, x2))) == (1.0, 2.0)
    assert ev(g.gradient(y, [(x1, x2), (x2, x3)])) == [(1.0, 2.0), (2.0, 3.0)]
    assert ev(g.gradient(y, (x1, x2, [x1, x3]))) == (1.0, 2.0, [1.0, 3.0])
    assert ev(g.gradient(y, [x1, {"x2": x2, "x3": x3}])) == [1.0, {"x2": 2.0, "x3": 3.0}]


def test_gradient_tape() -> None:
    """testGradientTape: a nested tape's gradient, added to the outer tape's target."""
    with sf.GradientTape() as g:
        x = sf.constant(3.0)
        g.watch(x)
        y = x * x
        with sf.GradientTape() as gg:
            gg.watch(y)
            z = 2 * y
        inner_grad = gg.gradient(z, [y])[0]
        assert _value(inner_grad) == 2.0
        y += inner_grad
    assert _value(g.gradient(y, [x])[0]) == 6.0


def test_gradient_tape_called_on_constant_target() -> None:
    """testGadientTapeCalledOnConstantTarget: a variable target, another variable source."""
    with sf.GradientTape() as g:
        x = sf.Variable([3.0])
        y = sf.Variable([2.0])
    assert g.gradient(x, y) is None


def test_gradient_tape_with_cond() -> None:
    """testGradientTapeWithCond (eager)"""
    x = sf.constant(3.0)
    with sf.GradientTape() as g:
        g.watch(x)
        y = sf.cond(x < x, lambda: x, lambda: x * x)
    assert _value(g.gradient(y, [x])[0]) == 6.0


def test_gradient_tape_with_while_loop() -> None:
    """testGradientTapeWithWhileLoop (eager)"""
    i = sf.constant(1)
    x = sf.constant(2.0)
    with sf.GradientTape() as g:
        g.watch([x])
        _, y = sf.while_loop(lambda i, _: i < 3, lambda i, x: (i + 1, x * 2), [i, x])
    assert _value(g.gradient(y, [x])[0]) == 4.0


def test_gradient_tape_gradient_called_multiple_times() -> None:
    """testGradientTapeGradientCalledMultipleTimes"""
    with sf.GradientTape() as g:
        x = sf.constant(3.0)
        g.watch(x)
        y = x * x
        z = y * y
    g.gradient(z, [x])
    with pytest.raises(RuntimeError, match="GradientTape.gradient can only be called once"):
        g.gradient(y, [x])


def test_persistent_tape() -> None:
    """testPersistentTape"""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant(3.0)
        g.watch(x)
        y = x * x
        z = y * y
    assert _value(g.gradient(z, [x])[0]) == 4 * 3 * 3 * 3
    assert _value(g.gradient(y, [x])[0]) == 2 * 3


def test_higher_order_gradient() -> None:
    """testHigherOrderGradient: a persistent tape differentiates its own gradients."""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant(3.0)
        g.watch(x)
        y = x**3
        dy_dx = g.gradient(y, x)
        d2y_dx2 = g.gradient(dy_dx, x)
    d3y_dx3 = g.gradient(d2y_dx2, x)
    assert _value(y) == 27
    assert _value(dy_dx) == 27
    assert _value(d2y_dx2) == 18
    assert _value(d3y_dx3) == 6


def test_higher_order_gradient_graph() -> None:
    """testHigherOrderGradient, graph mode."""
    with sf.Graph().as_default():
        with sf.GradientTape(persistent=True) as g:
            x = sf.constant(3.0)
            g.watch(x)
            y = x**3
            dy_dx = g.gradient(y, x)
            d2y_dx2 = g.gradient(dy_dx, x)
        d3y_dx3 = g.gradient(d2y_dx2, x)
        with sf.Session() as sess:
            assert sess.run([y, dy_dx, d2y_dx2, d3y_dx3]) == [27, 27, 18, 6]


def test_persistent_nested_tape() -> None:
    """testPersistentNestedTape"""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant(3.0)
        g.watch(x)
        y = x * x
        with sf.GradientTape(persistent=True) as gg:
            gg.watch(y)
            z = 2 * y
        for _ in range(2):
            inner_grad = gg.gradient(z, [y])[0]
            assert _value(inner_grad) == 2.0
        y += inner_grad
        del gg
    assert _value(g.gradient(y, [x])[0]) == 6.0
    assert _value(g.gradient(z, [x])[0]) == 12.0


def test_gradient_tape_variable() -> None:
    """testGradientTapeVariable"""
    v = sf.Variable(1.0, name="v")
    with sf.GradientTape() as g:
        y = v * v
    assert _value(g.gradient(y, [v])[0]) == 2.0


def test_nested_gradients() -> None:
    """testNestedGradients"""
    x = sf.constant(3.0)
    with sf.GradientTape() as g:
        g.watch(x)
        y = x * x
        z = y * y
    dz_dx, dz_dy = g.gradient(z, [x, y])
    assert _value(dz_dx) == 108.0
    assert _value(dz_dy) == 18.0


def test_unconnected_gradients_default() -> None:
    """testUnconnectedGradientsDefault"""
    x = sf.constant(1.0)
    y = sf.constant(3.0)
    with sf.GradientTape() as g:
        g.watch([x, y])
        z = y * 2
    assert g.gradient(z, x) is None


def test_unconnected_gradients_zeros() -> None:
    """testUnconnectedGradientsZeros"""
    x = sf.constant(1.0, shape=[2, 2])
    y = sf.constant(3.0)
    with sf.GradientTape() as g:
        g.watch([x, y])
        z = y * 2
    np.testing.assert_array_equal(g.gradient(z, x, unconnected_gradients="zero"), np.zeros((2, 2)))


def test_unconnected_gradients_variables_zeros() -> None:
    """testUnconnectedGradientsVariablesZeros"""
    x = sf.Variable(sf.constant(1.0, shape=[2, 2]))
    y = sf.Variable(sf.constant(3.0))
    with sf.GradientTape() as g:
        g.watch([x, y])
        z = y * 2
    np.testing.assert_array_equal(g.gradient(z, x, unconnected_gradients="zero"), np.zeros((2, 2)))


def test_unknown_unconnected_gradients_value_given() -> None:
    """testUnknownUnconnectedGradientsValueGiven"""
    x = sf.constant(1.0)
    y = sf.constant(1.0)
    with sf.GradientTape() as g:
        g.watch([x, y])
        z = y * 2
    with pytest.raises(ValueError, match="Unknown value for unconnected_gradients: 'nonsense'"):
        g.gradient(z, x, unconnected_gradients="nonsense")


def test_unconnected_gradients_nested_defun_zeros() -> None:
    """testUnconnectedGradientsNestedDefunZeros"""

    @sf.function
    def f(x: Any) -> Any:
        return x * x

    @sf.function
    def h(y: Any) -> Any:
        return sf.stop_gradient(f(y))

    x = sf.constant(1.0)
    with sf.GradientTape() as g:
        g.watch(x)
        k = x + 2.0
        y = h(k)
    assert _value(g.gradient(y, x, unconnected_gradients="zero")) == 0.0


def test_empty_params_for_value_and_grad_function() -> None:
    """testEmptyParamsForValueAndGradFunction (with Python float arguments)."""
    dx, dy = _grad(lambda a, b: a * b, 2.0, 3.0)
    assert _value(dx) == 3.0
    assert _value(dy) == 2.0


def test_mul_type() -> None:
    """testMulType"""
    assert _grad(lambda x: sf.multiply(x, x), 3.0)[0].numpy() == 6.0


def test_args_gradient_function() -> None:
    """testArgsGradientFunction"""
    assert _value(_grad(lambda *args: args[0] * args[0], 1.0)[0]) == 2.0


def test_return_same_thing() -> None:
    """testReturnSameThing: a tuple target sums its gradients."""
    assert _value(_grad(lambda x: (x, 2 * x), 1.0)[0]) == 3.0


def test_exception_safety() -> None:
    """testExceptionSafety: an exception under a tape leaves later tapes working."""

    def f(_: Any) -> Any:
        raise ValueError()

    with pytest.raises(ValueError):
        _grad(f, 1.0)
    assert _value(_grad(lambda x: x * x, 1.0)[0]) == 2.0


def test_multi_value_convert_to_tensor() -> None:
    """testMultiValueConvertToTensor"""
    x = sf.Variable(sf.constant([1.0]), name="x")
    with sf.GradientTape() as t:
        a = sf.add(x, 1.0)
        b = sf.stack([a, a], axis=0)
        y = sf.reduce_mean(b)
    np.testing.assert_array_equal(t.gradient(y, x), [1.0])


def test_output() -> None:
    """testOutput: two outputs' gradients sum."""
    x = sf.constant([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(_grad(lambda x: (x + 2, x * x), x)[0], [1.0, 3.0, 5.0])


def test_same_object_for_multiple_arguments() -> None:
    """testSameObjectForMultipleArguments"""

    def np_g(x: Any, y: Any) -> list[Any]:
        with sf.GradientTape() as t:
            t.watch(x)
            t.watch(y)
            z = sf.multiply(x, y)
        dx, dy = t.gradient(z, [x, y])
        return [dx.numpy(), dy.numpy()]

    x = sf.constant(1.0)
    np.testing.assert_array_equal(np_g(x, x), [2.0, 2.0])
    x = sf.constant([[1.0]])
    np.testing.assert_array_equal(np_g(x, x), [[[2.0]], [[2.0]]])
    v = sf.Variable(1.0)
    np.testing.assert_array_equal(np_g(v, v), [2.0, 2.0])


def test_implicit_gradients_custom_gradient_and_cached_variable_value() -> None:
    """testImplicitGradientsCustomGradientAndCachedVariableValue"""

    @sf.custom_gradient
    def my_square(x: Any) -> Any:
        result = sf.square(x)

        def grad(dr: Any) -> Any:
            return 2 * dr * x + 1

        return result, grad

    x = sf.Variable(3.0)
    with sf.GradientTape() as t:
        y = my_square(x)
    assert len(t.watched_variables()) == 1
    assert _value(t.gradient(y, x)) == 7.0


def test_custom_gradient() -> None:
    """testCustomGradient: a training loop through a two-input custom gradient."""

    @sf.custom_gradient
    def my_mul(x: Any, y: Any) -> Any:
        def grad(dr: Any) -> Any:
            return [dr * y, dr * x]

        return x * y, grad

    x = sf.Variable(2.0, name="x")
    losses = []
    for _ in range(5):
        with sf.GradientTape() as t:
            loss = my_mul(2.0, x.read_value())
        losses.append(float(loss.numpy()))
        x.assign_sub(0.25 * t.gradient(loss, x))
    assert losses == [4.0, 3.0, 2.0, 1.0, 0.0]


def test_custom_gradient_identity() -> None:
    """testCustomGradientIdentity"""

    @sf.custom_gradient
    def my_identity(x: Any) -> Any:
        def grad(dresult: Any) -> Any:
            return [2 * dresult]

        return x, grad

    assert _value(_grad(my_identity, 1.0)[0]) == 2.0


def test_zeros_cache_doesnt_leak_across_graphs() -> None:
    """testZerosCacheDoesntLeakAcrossGraphs"""

    def get_grad() -> Any:
        with sf.Graph().as_default(), sf.Session() as sess:
            t = sf.constant(1, dtype=sf.float32, shape=(10, 4))
            x = sf.constant(2, dtype=sf.float32, shape=(10, 4))
            with sf.GradientTape() as tape:
                tape.watch(x)
                x1, _ = sf.split(x, num_or_size_splits=2, axis=1)
                y = sf.concat([x1**2, t], axis=1)
            return sess.run(tape.gradient(y, x))

    with sf.Graph().as_default():
        np.testing.assert_array_equal(get_grad(), get_grad())


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_selectively_watch_variables(graph: bool) -> None:
    """testSelectivelyWatchVariables"""

    def run() -> None:
        x1 = sf.Variable(1.0)
        x2 = sf.Variable(1.0)
        with sf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x2)
            y = x1**2
            z = x2**3
        assert len(tape.watched_variables()) == 1
        assert tape.watched_variables()[0] is x2
        dy, dz = tape.gradient([y, z], [x1, x2])
        assert dy is None
        if graph:
            with sf.Session() as sess:
                sess.run(sf.global_variables_initializer())
                assert sess.run(dz) == 3.0
        else:
            assert _value(dz) == 3.0

    if graph:
        with sf.Graph().as_default():
            run()
    else:
        run()


def test_differentiating_scalar_cache() -> None:
    """testDifferentiatingScalarCache: equal constants are distinct sources."""
    with sf.GradientTape(persistent=False) as g:
        x1 = sf.constant(3.0)
        x2 = sf.constant(3.0)
        g.watch(x1)
        g.watch(x2)
        y = x1 + x2
    assert [_value(v) for v in g.gradient(target=y, sources=[x1])] == [1.0]


def test_variables_and_constants_produce_the_same_gradients() -> None:
    """testVariablesAndConstantsProduceTheSameGradients"""

    def get_grads(a: Any, b: Any) -> list[Any]:
        with sf.GradientTape() as tape:
            tape.watch([a, b])
            y = a**3
            z = b**2
        return [np.asarray(g) for g in tape.gradient([y, z], [a, b])]

    np.testing.assert_array_equal(
        get_grads(sf.constant(2.0), sf.constant(2.0)), get_grads(sf.Variable(2.0), sf.Variable(2.0))
    )


def test_unknown_shapes() -> None:
    """testUnknownShapes: a placeholder of unknown rank."""
    with sf.Graph().as_default():
        with sf.GradientTape() as tape:
            a = sf.placeholder(dtype=sf.float32, shape=None)
            tape.watch(a)
            b = a**3
        db_da = tape.gradient(b, a)
        with sf.Session() as sess:
            assert tuple(sess.run((b, db_da), feed_dict={a: 2.0})) == (8.0, 12.0)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_custom_gradient_in_eager_and_graph(graph: bool) -> None:
    """testCustomGradientInEagerAndGraph"""

    @sf.custom_gradient
    def f(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return [4 * dy]

        return x * x, grad

    def build() -> Any:
        with sf.GradientTape() as t:
            c = sf.constant(1.0)
            t.watch(c)
            g = f(c)
        return t.gradient(g, c)

    if not graph:
        assert _value(build()) == 4.0
        return
    with sf.Graph().as_default():
        grad = build()
        with sf.Session() as sess:
            assert sess.run(grad) == 4.0


def test_override_second_order_with_custom_gradient() -> None:
    """testOverrideSecondOrderWithCustomGradient"""

    @sf.custom_gradient
    def f(x: Any) -> Any:
        def first_order_grad(dz: Any) -> Any:
            @sf.custom_gradient
            def first_order_custom(unused_x: Any) -> Any:
                def h(ddz: Any) -> Any:
                    return -2.1 * ddz

                return sf.constant(-1.1), h

            return dz * first_order_custom(x)

        return x + 10.0, first_order_grad

    c = sf.constant(1.0)
    with sf.GradientTape() as outer:
        outer.watch(c)
        with sf.GradientTape() as inner:
            inner.watch(c)
            d = f(c) ** 4.0
        dd = inner.gradient(d, c)
        np.testing.assert_allclose(dd, 4.0 * 11.0**3 * -1.1, rtol=1e-6)
    np.testing.assert_allclose(
        outer.gradient(dd, c), 3.0 * 4.0 * 11.0**2 * -1.1 * -1.1 + 4.0 * 11.0**3 * -2.1, rtol=1e-6
    )


def test_custom_gradient_forwardprop() -> None:
    """testCustomGradientForwardprop: a nested custom gradient, also w.r.t. output_gradients."""

    @sf.custom_gradient
    def f(x: Any) -> Any:
        z = 2.0 * sf.constant(x.numpy())

        def g(dz: Any) -> Any:
            @sf.custom_gradient
            def first_order(unused_x: Any, unused_dz: Any) -> Any:
                def second_order_and_transpose(unused_ddz: Any) -> Any:
                    return sf.constant(2.2), sf.constant(3.1)

                return sf.constant(2.1), second_order_and_transpose

            return first_order(x, dz)

        return z, g

    with sf.GradientTape(persistent=True) as t:
        with sf.GradientTape() as tt:
            c = sf.constant(1.0)
            t.watch(c)
            tt.watch(c)
            output_grad = sf.ones([])
            t.watch(output_grad)
            output = f(c)
            np.testing.assert_allclose(output, 2.0)
        gc = tt.gradient(output, c, output_gradients=output_grad)
        np.testing.assert_allclose(gc, 2.1)
    np.testing.assert_allclose(t.gradient(gc, c), 2.2)
    np.testing.assert_allclose(t.gradient(gc, output_grad), 3.1)


def test_watch_bad_thing() -> None:
    """testWatchBadThing: watching a NumPy array raises ValueError naming ndarray."""
    g = sf.GradientTape()
    with pytest.raises(ValueError, match="ndarray"):
        g.watch(np.array(1.0))


def test_watched_variables_after_non_persistent_gradient_call() -> None:
    """testWatchedVariablesAfterNonPersistentGradientCall"""
    with sf.GradientTape(persistent=False) as tape:
        x = sf.Variable(1.0)
        tape.watch(x)
    tape.gradient(x, x)
    assert len(tape.watched_variables()) == 1
    assert tape.watched_variables()[0] is x


def test_watched_variables_only_has_variables_from_last_tape() -> None:
    """testWatchedVariablesOnlyHasVariablesFromLastTape"""
    with sf.GradientTape(persistent=False) as tape:
        x = sf.Variable(1.0)
        tape.watch(x)
    with sf.GradientTape(persistent=False) as tape:
        z = sf.Variable(2.0)
        tape.watch(z)
    tape.gradient(z, z)
    assert len(tape.watched_variables()) == 1
    assert tape.watched_variables()[0] is z


def test_name_scope() -> None:
    """testNameScope: the gradient of two cos ops builds two Sin ops in the function graph.

    Deliberate difference (not ported): TensorFlow names those ops under
    ``gradient_tape/my_scope/``; scopeflow builds gradient ops in the name scope that is
    current when ``gradient()`` is called.
    """

    def fn(x: Any) -> Any:
        with sf.name_scope("my_scope"):
            a = sf.cos(x)
            b = sf.cos(x)
            return sf.add(a, b)

    @sf.function
    def grad_fn(x: Any) -> Any:
        return _grad(fn, x)

    ops = grad_fn.get_concrete_function(sf.constant(1.0)).graph.get_operations()
    sins = [op for op in ops if op.type == "Sin"]
    assert len(sins) == 2


def test_tape_reset() -> None:
    """testTapeReset: records before reset() are forgotten."""
    with sf.GradientTape() as t:
        v = sf.Variable(1.0)
        loss = v * v
        t.reset()
        loss += v * v
    assert _value(t.gradient(loss, v)) == 2.0


def test_automatic_watched_variables_with_reset() -> None:
    """testAutomaticWatchedVariables"""
    with sf.GradientTape() as t:
        assert len(t.watched_variables()) == 0
        v = sf.Variable(1.0)
        loss = v * v
        assert t.watched_variables()[0] is v
        t.reset()
        assert len(t.watched_variables()) == 0
        loss += v * v
        assert len(t.watched_variables()) == 1
        assert t.watched_variables()[0] is v


def test_explicit_watched_variables_with_reset() -> None:
    """testExplicitWatchedVariables"""
    with sf.GradientTape() as t:
        v = sf.Variable(1.0)
        t.watch(v)
        assert t.watched_variables()[0] is v
        t.reset()
        assert len(t.watched_variables()) == 0
        t.watch(v)
        assert t.watched_variables()[0] is v


def test_watched_variables_respect_reset() -> None:
    """testWatchedVariablesRespectReset"""
    with sf.GradientTape(persistent=False) as tape:
        x = sf.Variable(1.0)
        tape.watch(x)
        assert tape.watched_variables()[0] is x
        tape.reset()
        z = sf.Variable(2.0)
        tape.watch(z)
        assert len(tape.watched_variables()) == 1
        assert tape.watched_variables()[0] is z
    tape.gradient(z, z)
    assert len(tape.watched_variables()) == 1
    assert tape.watched_variables()[0] is z


def test_reset_lets_a_used_non_persistent_tape_compute_again() -> None:
    """reset() after gradient(): the tape is as new (records again in its open block)."""
    x = sf.constant(3.0)
    with sf.GradientTape() as t:
        t.watch(x)
        y = x * x
        assert _value(t.gradient(y, x)) == 6.0
        t.reset()
        t.watch(x)
        z = x * x * x
    assert _value(t.gradient(z, x)) == 27.0


# -- JacobianTest and BatchJacobianTest ------------------------------------------------------


def _jacobian(use_pfor: bool) -> tuple[list[Any], list[Any]]:
    with sf.GradientTape(persistent=not use_pfor) as g:
        x = sf.constant([1.0, 2.0])
        y = sf.constant([3.0, 4.0])
        g.watch(x)
        g.watch(y)
        z = x * x * y
    jac = g.jacobian(z, [x, y], experimental_use_pfor=use_pfor)
    xv, yv = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    return jac, [np.diag(2 * xv * yv), np.diag(xv * xv)]


@pytest.mark.parametrize("use_pfor", [True, False], ids=["pfor", "while_loop"])
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "defun"])
def test_jacobian(use_pfor: bool, traced: bool) -> None:
    """JacobianTest.testPfor, testWhileLoop, testPforDefun, testWhileLoopDefun"""
    fn = sf.function(lambda: _jacobian(use_pfor)) if traced else (lambda: _jacobian(use_pfor))
    jac, answer = fn()
    for j, a in zip(jac, answer, strict=True):
        np.testing.assert_array_equal(j, a)


def test_jacobian_persistent_tape() -> None:
    """JacobianTest.testPersistentTape"""
    with sf.GradientTape() as g:
        x = sf.constant([1.0, 2.0])
        g.watch(x)
        y = x * x
    with pytest.raises(RuntimeError, match="persistent"):
        g.jacobian(y, x, experimental_use_pfor=False)


def test_jacobian_parallel_iterations() -> None:
    """JacobianTest.test_parallel_iterations"""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant([[1.0, 2], [3, 4]])
        g.watch(x)
        y = sf.matmul(x, x)
    np.testing.assert_allclose(
        g.jacobian(y, x, parallel_iterations=2), g.jacobian(y, x, parallel_iterations=3)
    )
    assert g.jacobian(y, x).shape == (2, 2, 2, 2)


def test_nested_jacobian() -> None:
    """JacobianTest.test_nested_jacobian (graph mode)"""
    with sf.Graph().as_default(), sf.Session() as sess:
        x = sf.ones((10, 2))
        with sf.GradientTape(persistent=False) as g:
            g.watch(x)
            with sf.GradientTape(persistent=False) as gg:
                gg.watch(x)
                y = sf.reduce_sum(sf.square(x))
            dy_x = gg.jacobian(y, x)
        dy_xx = g.batch_jacobian(dy_x, x)
        np.testing.assert_allclose(sess.run(dy_xx), [[[2.0, 0], [0, 2.0]]] * 10)


def test_jacobian_non_persistent_tape_is_used_up() -> None:
    """A non-persistent tape's jacobian (TF's pfor path) uses the tape up like gradient()."""
    with sf.GradientTape() as g:
        x = sf.constant([1.0, 2.0])
        g.watch(x)
        y = x * x
    np.testing.assert_array_equal(g.jacobian(y, x), np.diag([2.0, 4.0]))
    with pytest.raises(RuntimeError, match="only compute gradients once"):
        g.gradient(y, x)


def test_jacobian_unconnected() -> None:
    """A source the target does not depend on: None, or zeros with 'zero'."""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant([1.0, 2.0])
        w = sf.constant([5.0, 6.0, 7.0])
        g.watch([x, w])
        y = x * 3.0
    jx, jw = g.jacobian(y, [x, w])
    np.testing.assert_array_equal(jx, np.diag([3.0, 3.0]))
    assert jw is None
    np.testing.assert_array_equal(g.jacobian(y, w, unconnected_gradients="zero"), np.zeros((2, 3)))


def _batch_jacobian(use_pfor: bool) -> tuple[Any, Any]:
    with sf.GradientTape(persistent=not use_pfor) as g:
        x = sf.constant([[1.0, 2.0], [3.0, 4.0]])
        y = sf.constant([[3.0, 4.0], [5.0, 6.0]])
        g.watch(x)
        z = x * x * y
    bj = g.batch_jacobian(z, x, experimental_use_pfor=use_pfor)
    xv, yv = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[3.0, 4.0], [5.0, 6.0]])
    return bj, np.stack([np.diag(2 * xv[0] * yv[0]), np.diag(2 * xv[1] * yv[1])])


@pytest.mark.parametrize("use_pfor", [True, False], ids=["pfor", "while_loop"])
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "defun"])
def test_batch_jacobian(use_pfor: bool, traced: bool) -> None:
    """BatchJacobianTest.testPfor, testWhileLoop, testPforDefun, testWhileLoopDefun"""
    run = lambda: _batch_jacobian(use_pfor)  # noqa: E731
    bj, answer = (sf.function(run) if traced else run)()
    np.testing.assert_array_equal(bj, answer)


def test_batch_jacobian_persistent_tape() -> None:
    """BatchJacobianTest.testPersistentTape"""
    with sf.GradientTape() as g:
        x = sf.constant([[1.0, 2.0]])
        g.watch(x)
        y = x * x
    with pytest.raises(RuntimeError, match="persistent"):
        g.batch_jacobian(y, x, experimental_use_pfor=False)


def test_batch_jacobian_bad_shape() -> None:
    """BatchJacobianTest.testBadShape"""
    x = sf.random.uniform([2, 3])
    with sf.GradientTape() as g:
        y = sf.concat([x, x], axis=0)
    with pytest.raises(ValueError, match="Need first dimension"):
        g.batch_jacobian(y, x)


def test_batch_jacobian_bad_input_rank() -> None:
    """BatchJacobianTest.testBadInputRank"""
    x = sf.random.uniform([2])
    with sf.GradientTape() as g:
        y = sf.random.uniform([2, 2])
    with pytest.raises(ValueError, match="must have rank at least 2"):
        g.batch_jacobian(y, x)


def test_batch_jacobian_bad_output_rank() -> None:
    """BatchJacobianTest.testBadOutputRank"""
    x = sf.random.uniform([2, 2])
    with sf.GradientTape() as g:
        y = sf.random.uniform([2])
    with pytest.raises(ValueError, match="must have rank at least 2"):
        g.batch_jacobian(y, x)


def test_batch_jacobian_parallel_iterations() -> None:
    """BatchJacobianTest.test_parallel_iterations"""
    with sf.GradientTape(persistent=True) as g:
        x = sf.constant([[1.0, 2], [3, 4]])
        g.watch(x)
        w = sf.constant([[1.0, 2, 3, 4], [5, 6, 7, 8]])
        y = sf.matmul(x, w)
    np.testing.assert_allclose(
        g.batch_jacobian(y, x, parallel_iterations=2),
        g.batch_jacobian(y, x, parallel_iterations=3),
    )
    np.testing.assert_allclose(g.batch_jacobian(y, x)[0], _value(w).T)


@pytest.mark.parametrize("use_pfor", [True, False])
@pytest.mark.parametrize("use_function", [True, False])
def test_batch_jacobian_degenerate_shape(use_function: bool, use_pfor: bool) -> None:
    """BatchJacobianTest.test_degenerate_shape"""

    def f(x: Any) -> Any:
        with sf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x**2
        return tape.batch_jacobian(y, x, experimental_use_pfor=use_pfor)

    fn = sf.function(f) if use_function else f
    assert _value(sf.shape(fn(sf.zeros([1, 0])))).tolist() == [1, 0, 0]


# -- embedding lookups (sf.gather stands for embedding_ops.embedding_lookup) ------------------


def test_aggregate_gradients() -> None:
    """testAggregateGradients: gradients of three gathers (one row twice) are summed."""
    var_np = np.random.default_rng(0).random((4, 2)).astype(np.float32)
    var = sf.constant(var_np)

    def fn(x: Any) -> Any:
        g1 = sf.gather(x, sf.constant(np.array([0, 1])))
        g2 = sf.gather(x, sf.constant(np.array([2, 3])))
        g3 = sf.gather(x, sf.constant(np.array([1, 3])))
        return g1 * g2 * g3

    grad = _grad(fn, var)[0]
    want = np.zeros((4, 2), np.float32)
    v = var_np
    want[[0, 1]] += v[[2, 3]] * v[[1, 3]]
    want[[2, 3]] += v[[0, 1]] * v[[1, 3]]
    np.add.at(want, [1, 3], v[[0, 1]] * v[[2, 3]])
    np.testing.assert_allclose(grad, want, rtol=1e-6)


def test_aggregate_gradients_with_tensor() -> None:
    """testAggregateGradientsWithTensor: a gather's gradient plus a dense one."""
    var_np = np.random.default_rng(1).random((4, 2)).astype(np.float32)
    var = sf.constant(var_np)

    def fn(x: Any) -> Any:
        g1 = sf.gather(x, sf.constant(np.array([0, 1])))
        g2 = sf.reduce_sum(x * sf.constant(2.0))
        return g1 * g2

    grad = _grad(fn, var)[0]
    want = np.zeros((4, 2), np.float32)
    want[[0, 1]] += var_np.sum() * 2.0
    want += 2.0 * var_np[[0, 1]].sum()
    np.testing.assert_allclose(grad, want, rtol=1e-5)


def test_implicit_grad_with_resource_variable() -> None:
    """testImplicitGradWithResourceVariable"""
    x = sf.Variable(sf.constant(1.0), name="x")
    with sf.GradientTape() as t:
        c = sf.add(x.read_value(), sf.constant(2.0))
        y = sf.add(c, sf.constant(3.0))
    (var,) = t.watched_variables()
    assert var is x
    assert _value(t.gradient(y, var)) == 1.0


def test_implicit_grad_over_embedding_lookup() -> None:
    """testImplicitGradOverEmbeddingLookup: a gathered variable trained by SGD."""
    batch_size, embedding_size, vocab_size, lrn_rate = 8, 16, 50, 0.1
    init = np.random.default_rng(2).random((vocab_size, embedding_size)).astype(np.float32)
    x = sf.ones((batch_size,), sf.int64)
    embedding = sf.Variable(init, name="embedding")
    with sf.GradientTape() as t:
        y = sf.constant(1.0) - sf.gather(embedding, x)
    grad = t.gradient(y, embedding)
    want = np.zeros_like(init)
    want[1] = -batch_size
    np.testing.assert_allclose(grad, want)
    sf.optimizers.SGD(lrn_rate).apply_gradients([(grad, embedding)])
    np.testing.assert_allclose(embedding.read_value(), init - lrn_rate * want, rtol=1e-6)


def test_partial() -> None:
    """testPartial"""
    part = functools.partial(lambda x, y: x * y, sf.constant(2.0))
    assert _value(_grad(part, sf.constant(1.0))[0]) == 2.0


def test_jacobian_custom_gradient() -> None:
    """testJacobianCustomGradient: a custom gradient named ``_call`` inside a function,
    whose grad_fn takes jacobians w.r.t. the variables it reads."""

    class MyCallable:
        def __init__(self) -> None:
            self.a = sf.Variable(1.0)
            self.b = sf.Variable(2.0)
            self.c = sf.Variable(3.0)

        def __call__(self, x: Any) -> Any:
            return self.a * x * x + self.b * x + self.c

    @sf.function
    def call(c: Any, x: Any) -> Any:
        @sf.custom_gradient
        def _call() -> Any:
            y = c(x)

            def grad(dy: Any, variables: Any = None) -> Any:
                with sf.GradientTape(persistent=True) as g:
                    g.watch(variables)
                    y = c(x)
                grad_vars = [2 * sf.reduce_sum(dy * g.jacobian(y, v)) for v in variables]
                return (), grad_vars

            return y, grad

        return _call()

    c = MyCallable()
    x = sf.constant([1.0, 2.0, 3.0])
    with sf.GradientTape(persistent=True) as g:
        g.watch([c.a, c.b, c.c])
        y = call(c, x)
    assert g.gradient(y, x) is None
    np.testing.assert_allclose([_value(v) for v in g.gradient(y, [c.a, c.b, c.c])], [28, 12, 6])


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "function"])
def test_custom_gradient_of_a_lambda_or_private_name(graph: bool) -> None:
    """Op names come from the function's name: ``<lambda>`` and ``_f`` are cleaned up."""

    def _f(x: Any) -> Any:
        return x * 2.0, lambda dy: dy * 5.0

    for fn in (sf.custom_gradient(_f), sf.custom_gradient(lambda x: (x * 2.0, lambda dy: dy))):

        def run(x: Any, fn: Any = fn) -> Any:
            with sf.GradientTape() as t:
                t.watch(x)
                y = fn(x)
            return t.gradient(y, x)

        assert _value((sf.function(run) if graph else run)(sf.constant(1.0))) in (1.0, 5.0)
