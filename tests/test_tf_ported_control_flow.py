"""Scenarios from TensorFlow's control-flow tests, re-run on scopeflow.

Sources: ``tensorflow/python/kernel_tests/control_flow/cond_v2_test.py`` and
``while_v2_test.py``. Each test names the TensorFlow test it follows; the expected values
are TensorFlow's, the code is written for scopeflow's API (``sf.cond`` is cond_v2,
``sf.while_loop`` is while_v2 and returns a list like ``return_same_structure=True``).

Not ported (features scopeflow does not have): IndexedSlices branch outputs, TensorArray and
TensorList loop variables, XLA (``jit_compile``), ``einsum``, meta-graph export/import,
grappler pruning, remote devices, ``capture_call_time_value``, ``gradient_checker_v2``
(finite differences are computed here by hand), random gamma/poisson ops, optionals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _cond_check(
    build: Callable[[Any], tuple[Callable[[], Any], Callable[[], Any], list[Any]]],
    feeds: dict[Any, Any] | None = None,
) -> None:
    """cond_v2_test._testCond: the cond and its gradients agree with the branch taken.

    ``build(pred)`` returns ``(true_fn, false_fn, train_vals)``. TensorFlow compares
    cond_v2 with cond_v1; here each branch is also run alone (the reference).
    """
    g = sf.get_default_graph()
    pred = sf.placeholder(sf.bool, name="pred")
    true_fn, false_fn, train_vals = build(pred)
    actual = sf.cond(pred, true_fn, false_fn, name="actual")
    actual_grad = sf.gradients(actual, train_vals)
    ref = {True: sf.convert_to_tensor(true_fn()), False: sf.convert_to_tensor(false_fn())}
    ref_grad = {k: sf.gradients(v, train_vals) for k, v in ref.items()}
    zero = sf.constant(0.0)
    with sf.Session(graph=g) as sess:
        for value in (True, [[True]], False, [[False]]):  # TF feeds both forms
            feed = {pred: value, **(feeds or {})}
            got, got_grad = sess.run((actual, actual_grad), feed)
            want_grad = [zero if r is None else r for r in ref_grad[bool(np.squeeze(value))]]
            want, want_grad = sess.run((ref[bool(np.squeeze(value))], want_grad), feed)
            np.testing.assert_allclose(np.asarray(got), np.asarray(want))
            for a, b in zip(got_grad, want_grad, strict=True):
                np.testing.assert_allclose(0.0 if a is None else a, b)


def _consts() -> tuple[Any, Any]:
    return sf.constant(1.0, name="x"), sf.constant(2.0, name="y")


# -- cond_v2_test.py ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["x", "xy", "y"])
def test_cond_basic(which: str) -> None:
    """testBasic."""
    with sf.Graph().as_default():
        x, y = _consts()
        vals = {"x": [x], "xy": [x, y], "y": [y]}[which]
        _cond_check(lambda p: (lambda: x * 2.0, lambda: y * 3.0, vals))


@pytest.mark.parametrize("which", ["x", "xy", "y"])
def test_cond_multiple_outputs(which: str) -> None:
    """testMultipleOutputs."""
    with sf.Graph().as_default():
        x, y = sf.constant(1.0, name="x"), sf.constant(3.0, name="y")
        vals = {"x": [x], "xy": [x, y], "y": [y]}[which]
        pred = sf.placeholder(sf.bool, name="pred")
        out = sf.cond(pred, lambda: (x * y, y), lambda: (x, y * 3.0))
        grads = sf.gradients(list(out), vals)
        with sf.Session() as sess:
            got, g = sess.run((out, grads), {pred: True})
            assert list(got) == [3.0, 3.0]
            assert g == {"x": [3.0], "xy": [3.0, 2.0], "y": [2.0]}[which]
            got, g = sess.run((out, grads), {pred: False})
            assert list(got) == [1.0, 9.0]
            assert g == {"x": [1.0], "xy": [1.0, 3.0], "y": [3.0]}[which]


def test_cond_basic2() -> None:
    """testBasic2: a branch returning a Python float."""
    with sf.Graph().as_default():
        x, y = _consts()
        _cond_check(lambda p: (lambda: x * y * 2.0, lambda: 2.0, [x, y]))


def test_cond_no_inputs() -> None:
    """testNoInputs."""
    with sf.Graph().as_default():
        pred = sf.placeholder(sf.bool, name="pred")
        out = sf.cond(pred, lambda: sf.constant(1.0), lambda: sf.constant(2.0))
        with sf.Session() as sess:
            assert sess.run(out, {pred: True}) == 1.0
            assert sess.run(out, {pred: False}) == 2.0


def test_cond_default_name() -> None:
    """testDefaultName: the op is named 'cond', in the name scope, made unique.

    In TensorFlow the output is an Identity of the ``StatelessIf`` op; here the output is
    the ``StatelessIf`` op's own (so ``output.op`` is the cond op).
    """
    with sf.Graph().as_default():
        pred = sf.constant(True, name="pred")
        x = sf.constant(1.0, name="x")
        out = sf.cond(pred, lambda: x, lambda: x + 1)
        assert out.op.type == "StatelessIf"
        assert out.op.name == "cond"
    with sf.Graph().as_default():
        pred = sf.constant(True, name="pred")
        x = sf.constant(1.0, name="x")
        with sf.name_scope("foo"):
            out1 = sf.cond(pred, lambda: x, lambda: x + 1, name="")
            out2 = sf.cond(pred, lambda: x, lambda: x + 1)
        assert out1.op.name == "foo/cond"
        assert out2.op.name == "foo/cond_1"


def test_cond_inherit_parent_name_scope() -> None:
    """testInheritParentNameScope: branches build under '<scope>/cond'."""
    seen = []

    @sf.function
    def f() -> Any:
        with sf.name_scope("foo"):

            def then_branch() -> Any:
                with sf.name_scope("then"):
                    seen.append(sf.get_name_scope())
                return 0.0

            def else_branch() -> Any:
                with sf.name_scope("else"):
                    seen.append(sf.get_name_scope())
                return 0.0

            return sf.cond(sf.constant(True), then_branch, else_branch)

    f()
    assert seen == ["foo/cond/then", "foo/cond/else"]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cond_function_in_cond(depth: int) -> None:
    """testFunctionInCond / testNestedFunctionInCond / testDoubleNestedFunctionInCond."""
    with sf.Graph().as_default():
        x, y = _consts()

        def nest(n: int) -> Any:
            if n == 0:
                return x * y * 2.0
            return sf.function(lambda: nest(n - 1))()

        _cond_check(lambda p: (lambda: nest(depth), lambda: 2.0, [x, y]))
        _cond_check(lambda p: (lambda: 2.0, lambda: nest(depth), [x]))


@pytest.mark.parametrize("pred_value", [True, False])
def test_cond_nested_cond(pred_value: bool) -> None:
    """testNestedCond."""
    with sf.Graph().as_default():
        x, y = _consts()
        inner = sf.placeholder(sf.bool, name="inner")

        def false_fn() -> Any:
            return sf.cond(inner, lambda: x * y * 2.0, lambda: x * 5.0, name="inside_false_fn")

        _cond_check(lambda p: (lambda: 2.0, false_fn, [x, y]), {inner: pred_value})


@pytest.mark.parametrize("pred_value", [True, False])
def test_cond_nested_cond_both_branches(pred_value: bool) -> None:
    """testNestedCondBothBranches."""
    with sf.Graph().as_default():
        x, y = _consts()
        inner = sf.placeholder(sf.bool, name="inner")
        _cond_check(
            lambda p: (
                lambda: sf.cond(inner, lambda: x + y, lambda: x * x),
                lambda: sf.cond(inner, lambda: x - y, lambda: y * y),
                [x, y],
            ),
            {inner: pred_value},
        )


@pytest.mark.parametrize("p1", [True, False])
@pytest.mark.parametrize("p2", [True, False])
def test_cond_double_nested_cond(p1: bool, p2: bool) -> None:
    """testDoubleNestedCond."""
    with sf.Graph().as_default():
        x, y = _consts()
        pred1 = sf.placeholder(sf.bool, name="pred1")
        pred2 = sf.placeholder(sf.bool, name="pred2")

        def false_fn() -> Any:
            def false_true_fn() -> Any:
                return sf.cond(pred1, lambda: x * y * 2.0, lambda: x * 10.0)

            return sf.cond(pred2, false_true_fn, lambda: x * 5.0)

        _cond_check(lambda p: (lambda: 2.0, false_fn, [x, y]), {pred1: p1, pred2: p2})


_NESTED_GRADS = {(True, True): [0.0, 0.0], (True, False): [0.0, 0.0]}
_NESTED_GRADS.update({(False, True): [4.0, 2.0], (False, False): [5.0, 0.0]})


def _outer_inner(x: Any, y: Any, pred_outer: Any, pred_inner: Any) -> Any:
    def false_fn() -> Any:
        return sf.cond(pred_inner, lambda: x * y * 2.0, lambda: x * 5.0, name="inner_cond")

    return sf.cond(pred_outer, lambda: 2.0, false_fn, name="outer_cond")


def _run_nested_grads(grads: Any, pred_outer: Any, pred_inner: Any) -> None:
    with sf.Session() as sess:
        for (po, pi), want in _NESTED_GRADS.items():
            got = sess.run(grads, {pred_outer: po, pred_inner: pi})
            assert [float(v) for v in got] == want


@pytest.mark.parametrize("nesting", [1, 2])
def test_cond_gradient_from_inside_function(nesting: int) -> None:
    """testGradientFromInsideFunction / testGradientFromInsideNestedFunction."""
    with sf.Graph().as_default():
        pred_outer = sf.placeholder(sf.bool, name="pred_outer")
        pred_inner = sf.placeholder(sf.bool, name="pred_inner")
        x, y = _consts()
        cond_outer = _outer_inner(x, y, pred_outer, pred_inner)

        def grads() -> Any:
            return sf.gradients(cond_outer, [x, y])

        fn = grads
        for _ in range(nesting):
            fn = sf.function(fn)
        _run_nested_grads(fn(), pred_outer, pred_inner)


def test_cond_build_cond_and_gradient_inside_function() -> None:
    """testBuildCondAndGradientInsideFunction."""
    with sf.Graph().as_default():
        pred_outer = sf.placeholder(sf.bool, name="pred_outer")
        pred_inner = sf.placeholder(sf.bool, name="pred_inner")
        x, y = _consts()

        @sf.function
        def fn() -> Any:
            return sf.gradients(_outer_inner(x, y, pred_outer, pred_inner), [x, y])

        _run_nested_grads(fn(), pred_outer, pred_inner)


def test_cond_second_derivative() -> None:
    """testSecondDerivative."""
    with sf.Graph().as_default():
        pred = sf.placeholder(sf.bool, name="pred")
        x = sf.constant(3.0, name="x")
        cond = sf.cond(pred, lambda: sf.pow(x, 3), lambda: x, name="cond")
        cond_grad = sf.gradients(cond, [x])
        cond_grad_grad = sf.gradients(cond_grad, [x])
        with sf.Session() as sess:
            assert sess.run(cond_grad, {pred: True}) == [27.0]
            assert sess.run(cond_grad, {pred: False}) == [1.0]
            assert sess.run(cond_grad_grad, {pred: True}) == [18.0]
            assert sess.run(cond_grad_grad, {pred: False}) == [0.0]


def test_cond_func_cond() -> None:
    """testFuncCond: conds in a function are stateless, with no control inputs."""

    @sf.function
    def fn_with_cond() -> Any:
        sf.cond(sf.constant(True), lambda: sf.zeros([]), lambda: sf.ones([]), name="cond_1")
        return sf.cond(sf.constant(False), lambda: sf.zeros([]), lambda: sf.ones([]), name="cond_2")

    concrete = fn_with_cond.get_concrete_function()
    cond_1 = concrete.graph.get_operation_by_name("cond_1")
    cond_2 = concrete.graph.get_operation_by_name("cond_2")
    assert cond_1.type == cond_2.type == "StatelessIf"
    assert len(cond_2.control_inputs) == 0
    assert float(concrete()) == 1.0


def test_cond_func_cond_func() -> None:
    """testFuncCondFunc: a function called in a branch."""

    @sf.function
    def fn_with_cond() -> Any:
        sf.cond(
            sf.constant(True), lambda: sf.constant(1.0), lambda: sf.constant(2.0), name="cond_1"
        )
        true_branch = sf.function(lambda: sf.constant(3.0))
        return sf.cond(sf.constant(True), true_branch, lambda: sf.constant(4.0), name="cond_2")

    concrete = fn_with_cond.get_concrete_function()
    cond_1 = concrete.graph.get_operation_by_name("cond_1")
    cond_2 = concrete.graph.get_operation_by_name("cond_2")
    assert cond_1.type == cond_2.type == "StatelessIf"
    assert len(cond_2.control_inputs) == 0
    assert float(concrete()) == 3.0


def test_cond_func_cond_with_variable() -> None:
    """testFuncCondWithVariable: conds touching variables are 'If' and run in order.

    Scopeflow difference: a function's stateful ops form one chain in program order
    (TensorFlow orders them per variable), so cond_3 (on v2) also runs after cond_2 (on
    v1). The stateless cond stays unordered, as in TensorFlow.
    """
    v1 = sf.Variable(2.0)
    v2 = sf.Variable(4.0)

    def update_v1() -> Any:
        v1.assign(v1)
        return v1

    def update_v2() -> Any:
        v2.assign(v2)
        return v2

    @sf.function
    def fn_with_cond() -> Any:
        t, f = sf.constant(True), sf.constant(False)
        zero = lambda: sf.constant(0.0)  # noqa: E731
        sf.cond(t, update_v1, zero, name="cond_1")
        cond_2 = sf.cond(f, zero, update_v1, name="cond_2")
        sf.cond(t, update_v2, zero, name="cond_3")
        cond_4 = sf.cond(f, zero, lambda: v2, name="cond_4")
        stateless = sf.cond(
            f, lambda: sf.constant(5.0), lambda: sf.constant(6.0), name="stateless_cond"
        )
        return cond_2, cond_4, stateless

    concrete = fn_with_cond.get_concrete_function()
    op = concrete.graph.get_operation_by_name
    cond_1, cond_2, cond_3, cond_4 = (op(f"cond_{i}") for i in range(1, 5))
    for c in (cond_1, cond_2, cond_3, cond_4):
        assert c.type == "If"
    assert op("stateless_cond").type == "StatelessIf"
    assert list(cond_1.control_inputs) == []
    assert list(cond_2.control_inputs) == [cond_1]
    assert list(cond_3.control_inputs) == [cond_2]  # TensorFlow: []
    assert list(cond_4.control_inputs) == [cond_3]
    assert list(op("stateless_cond").control_inputs) == []
    assert [float(t) for t in concrete()] == [2.0, 4.0, 6.0]


def test_cond_external_control_dependencies() -> None:
    """testExternalControlDependencies: an outer op as control input of a branch."""
    with sf.Graph().as_default():
        v = sf.Variable(1.0)
        op = v.assign_add(1.0)

        def true_branch() -> Any:
            with sf.control_dependencies([op]):
                return sf.constant(1.0)

        pred = sf.placeholder(sf.bool, shape=())
        out = sf.cond(pred, true_branch, lambda: sf.constant(2.0))
        with sf.Session() as sess:
            sess.run(v.initializer)
            assert sess.run(out, {pred: False}) == 2.0
            assert sess.run(v) == 2.0  # TF: the control input runs with the cond op


def test_cond_gradient_tape_of_cond_with_resource_variable_in_function() -> None:
    """testGradientTapeOfCondWithResourceVariableInFunction."""
    v = sf.Variable(2.0)

    @sf.function
    def fn_with_cond() -> Any:
        with sf.GradientTape() as tape:
            pred = sf.constant(True, dtype=sf.bool)
            cond = sf.cond(pred, lambda: sf.pow(v, 3), lambda: v, name="cond")
        return tape.gradient(cond, v)

    assert float(fn_with_cond()) == 12.0


def test_cond_iterated_gradients() -> None:
    """testIteratedGradientsCond: cos, -sin, -cos, sin, cos through nested tapes."""

    def func(x: Any) -> Any:
        return sf.cond(
            sf.constant(True), lambda: sf.cos(sf.identity(x)), lambda: sf.sin(sf.identity(x))
        )

    f = func
    one = sf.constant(1.0)
    for expected in (np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), np.sin, np.cos):
        np.testing.assert_allclose(float(sf.function(f)(one)), expected(1.0), rtol=1e-5)
        f = _tape_grad(f)


def test_cond_structured_outputs() -> None:
    """testStructuredOutputs: nested tuples come back nested."""
    x, y = sf.constant(1.0, name="x"), sf.constant(3.0, name="y")
    cond = sf.function(
        lambda: sf.cond(sf.constant(False), lambda: ((x * y,), y), lambda: ((x,), y * 3.0))
    )
    out = cond()
    assert float(out[0][0]) == 1.0
    assert float(out[1]) == 9.0


def test_cond_raises_output_structures_mismatch() -> None:
    """testRaisesOutputStructuresMismatch: TensorFlow raises TypeError.

    Scopeflow's error is both a ``TypeError`` and a ``ValueError`` (its documented type).
    """

    @sf.function
    def f() -> Any:
        x, y = sf.constant(1.0), sf.constant(3.0)
        return sf.cond(sf.constant(False), lambda: (x * y, y), lambda: ((x,), y * 3.0))

    with pytest.raises(TypeError, match="must return the same structure"):
        f()


def test_cond_collections_in_branches() -> None:
    """CondV2CollectionTest: branches read and write the enclosing graph's collections."""
    with sf.Graph().as_default() as g:
        g.add_to_collection("x", 2)
        g.add_to_collection("y", 5)
        xt, yt = sf.constant(2), sf.constant(5)
        g.add_to_collection("xt", xt)
        g.add_to_collection("yt", yt)

        def read_ints() -> Any:
            graph = sf.get_default_graph()
            return sf.add(
                sf.constant(graph.get_collection("x")[0]),
                sf.constant(graph.get_collection("y")[0]),
            )

        def read_tensors() -> Any:
            graph = sf.get_default_graph()
            return sf.add(graph.get_collection("xt")[0], graph.get_collection("yt")[0])

        def true_fn() -> Any:
            z = sf.add(xt, yt)
            sf.get_default_graph().add_to_collection("z", 7)
            return sf.multiply(xt, z)

        def false_fn() -> Any:
            return sf.multiply(xt, sf.add(xt, yt))

        a = sf.cond(sf.constant(True), read_ints, read_ints)
        b = sf.cond(sf.less(xt, yt), read_tensors, read_tensors)
        c = sf.cond(sf.constant(True), true_fn, false_fn)
        assert _run([a, b, c]) == [7, 7, 14]
        assert g.get_collection("z") == [7]


# -- while_v2_test.py ---------------------------------------------------------------------------


def _run(fetches: Any, feed: dict[Any, Any] | None = None) -> Any:
    with sf.Session() as sess:
        return sess.run(fetches, feed)


def test_while_single_loop_var() -> None:
    """testSingleLoopVar."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        (ret,) = sf.while_loop(lambda v: v < 8.0, lambda v: v * v, [x])
        grad = sf.gradients(ret, [x])
        assert _run(ret) == 16.0
        assert _run(grad) == [32.0]


def test_while_single_loop_var_back_prop_false() -> None:
    """testSingleLoopVarBackPropFalse: no gradient flows through the loop."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        (ret,) = sf.while_loop(lambda v: v < 8.0, lambda v: v * v, [x], back_prop=False)
        assert sf.gradients(ret, [x]) == [None]
        assert _run(ret) == 16.0


def test_while_custom_gradient() -> None:
    """testCustomGradient (without the variables part of the gradient function)."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        n = sf.constant(1.0, name="const-n")

        def body_fn(v: Any) -> Any:
            @sf.custom_gradient
            def inner_fn(v: Any) -> Any:
                def grad_fn(dy: Any) -> Any:
                    return dy * 2 * v * n

                return v * v, grad_fn

            return inner_fn(v)

        (ret,) = sf.while_loop(lambda v: v < 8.0, body_fn, [x])
        grad = sf.gradients(ret, [x])
        assert _run(ret) == 16.0
        assert _run(grad) == [32.0]


def test_while_return_same_structure() -> None:
    """testReturnSameStructureTrue: a one-element list in, a one-element list out."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        ret = sf.while_loop(lambda v: v < 8.0, lambda v: v * v, [x])
        got = _run(ret)
        assert isinstance(got, list)
        assert len(got) == 1
        assert got[0] == 16.0
        assert _run(sf.gradients(ret, [x])) == [32.0]


def test_while_verify_input_output_types_match() -> None:
    """testVerifyInputOutputTypesMatch: a body that changes a dtype is a TypeError."""

    @sf.function
    def build_while() -> None:
        x = sf.constant(1.0, sf.float32)
        sf.while_loop(lambda x: x < 10, lambda x: sf.cast(x, sf.float16) + 1, [x])

    with pytest.raises(TypeError, match=r"float32.*float16|float16.*float32"):
        build_while()


@pytest.mark.parametrize("dtype", [sf.float32, sf.float64], ids=str)
def test_while_gradient_tape_resource_variable(dtype: Any) -> None:
    """testGradientTapeResourceVariable."""
    v = sf.Variable(1.0, dtype=dtype)

    @sf.function
    def fn_with_loop() -> Any:
        with sf.GradientTape() as tape:
            _, x = sf.while_loop(
                lambda i, _: i < 2,
                lambda i, x: (i + 1, x * v),
                [0, sf.constant(2.0, dtype=dtype)],
            )
        return tape.gradient(x, v)

    assert float(fn_with_loop()) == 4.0


def _tape_grad(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def grad(x: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        return tape.gradient(y, x)

    return grad


def _numeric(f: Callable[[Any], Any], x: float, eps: float = 1e-3) -> float:
    hi = float(f(sf.constant(x + eps, sf.float64)))
    lo = float(f(sf.constant(x - eps, sf.float64)))
    return (hi - lo) / (2 * eps)


def test_while_iterated_gradients() -> None:
    """testIteratedGradients: three orders of a cos loop, checked against differences."""

    def func(x: Any) -> Any:
        _, z = sf.while_loop(lambda i, _: i < 2, lambda i, y: (i + 1, sf.cos(y)), [0, x])
        return z

    f = func
    for _ in range(3):
        numeric = _numeric(sf.function(f), 1.0)
        g = _tape_grad(f)
        np.testing.assert_allclose(
            float(sf.function(g)(sf.constant(1.0, sf.float64))), numeric, rtol=1e-3
        )
        f = g


def test_while_grad_while_grad_while_with_variable() -> None:
    """testGradWhileGradWhileWithVariable: a tape gradient of a loop inside a loop body."""
    v = sf.Variable(1.0, dtype=sf.float64)

    @sf.function
    def func(x: Any) -> Any:
        def inner(a: Any) -> Any:
            with sf.GradientTape() as tape:
                tape.watch(a)
                _, b = sf.while_loop(
                    lambda i, _: i < 2, lambda i, y: (i + 1, sf.cos(v + y)), [0, a]
                )
            return tape.gradient(b, a)

        _, z = sf.while_loop(lambda i, _: i < 2, lambda i, y: (i + 1, inner(y)), [0, x])
        return z

    x = sf.constant(1.0, sf.float64)
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = func(x)
    dx, _ = tape.gradient(y, [x, v])
    np.testing.assert_allclose(float(dx), _numeric(func, 1.0), rtol=1e-3)


def test_while_device_labels_inherited() -> None:
    """testDeviceLabelsInherited (CPU:10/CPU:11 as in TensorFlow)."""
    devices = []

    def body(i: Any, y: Any) -> Any:
        result = sf.cos(y)
        devices.append(result.op.device)
        with sf.device("CPU:11"):
            result = sf.identity(result)
        devices.append(result.op.device)
        return i + 1, result

    @sf.function
    def with_loop() -> Any:
        x = sf.constant(1.0)
        with sf.device("CPU:10"):
            _, z = sf.while_loop(lambda i, _: i < 2, body, [0, x])
        return z

    with_loop.get_concrete_function()
    assert "CPU:10" in devices[0]
    assert "CPU:11" in devices[1]


def test_while_external_control_dependencies() -> None:
    """testExternalControlDependencies."""
    with sf.Graph().as_default():
        v = sf.Variable(1.0)
        op = v.assign_add(1.0)

        def body_fn(i: Any) -> Any:
            with sf.control_dependencies([op]):
                return i + 1

        loop = sf.while_loop(lambda i: i < 1, body_fn, [0])
        with sf.Session() as sess:
            sess.run(v.initializer)
            sess.run(loop[0].op)
            assert sess.run(v) == 2.0


def test_while_multiple_loop_vars_basic() -> None:
    """testMultipleLoopVarsBasic."""
    with sf.Graph().as_default():
        x, y = sf.constant(5.0), sf.constant(3.0)
        ret = sf.while_loop(lambda v, _: v < 45.0, lambda v, w: (v * w, w), [x, y])
        grad = sf.gradients(ret, [x])
        assert _run(ret) == [45.0, 3.0]
        assert _run(grad) == [9.0]


def test_while_multiple_loop_nonscalar_cond() -> None:
    """testMultipleLoopNonscalarCond: a [[bool]] condition."""
    with sf.Graph().as_default():
        x, y = sf.constant([[5.0]]), sf.constant(3.0)
        ret = sf.while_loop(lambda v, _: v < 45.0, lambda v, w: (v * w, w), [x, y])
        grad = sf.gradients(ret, [x])
        got = _run(ret)
        assert got[0].tolist() == [[45.0]]
        assert got[1] == 3.0
        assert _run(grad)[0].tolist() == [[9.0]]


def test_while_multiple_loop_vars() -> None:
    """testMultipleLoopVars."""
    with sf.Graph().as_default():
        x, y = sf.constant(5.0), sf.constant(3.0)
        ret = sf.while_loop(lambda v, _: v < 45.0, lambda v, w: (v * w, v + w), [x, y])
        assert _run(ret) == [120.0, 23.0]
        assert _run(sf.gradients(ret[0], [x])) == [39.0]
        assert _run(sf.gradients(ret[1], [x])) == [4.0]
        assert _run(sf.gradients(ret, [x])) == [43.0]
        assert _run(sf.gradients(ret[0], [y])) == [55.0]
        assert _run(sf.gradients(ret[1], [y])) == [6.0]
        assert _run(sf.gradients(ret, [y])) == [61.0]


def test_while_gradient_tape() -> None:
    """testGradientTape (eager)."""
    with sf.GradientTape() as t:
        x = sf.constant(2.0)
        t.watch(x)
        (ret,) = sf.while_loop(lambda v: v < 4.0, lambda v: v * v, [x])
    assert float(t.gradient(ret, x)) == 4.0


def test_while_multiple_while_loops_second_order() -> None:
    """testMultipleWhileLoops: chained loops, first and second derivatives."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        (ret1,) = sf.while_loop(lambda v: v < 4.0, lambda v: v * v, [x])
        (ret2,) = sf.while_loop(lambda v: v < 16.0, lambda v: v * v, [ret1])
        grad = sf.gradients(ret2, [x])
        grad_grad = sf.gradients(grad, [x])
        assert _run(grad) == [32.0]
        assert _run(grad_grad) == [48.0]


def test_while_multiple_while_loops_with_func() -> None:
    """testMultipleWhileLoopsWithFunc: stateless loops have no control inputs."""
    x = sf.constant(2.0)

    @sf.function
    def fn() -> Any:
        ret1 = sf.while_loop(lambda v: v < 4.0, lambda v: v * v, [x], name="while_1")
        ret2 = sf.while_loop(lambda v: v < 16.0, lambda v: v * v, [x], name="while_2")
        return ret1[0], ret2[0]

    concrete = fn.get_concrete_function()
    while_1 = concrete.graph.get_operation_by_name("while_1")
    while_2 = concrete.graph.get_operation_by_name("while_2")
    assert while_1.type == while_2.type == "StatelessWhile"
    assert list(while_1.control_inputs) == []
    assert list(while_2.control_inputs) == []
    assert [float(t) for t in concrete()] == [4.0, 16.0]


def test_while_multiple_while_loops_with_deps() -> None:
    """testMultipleWhileLoopsWithDeps / WithVarsDeps: loops writing a variable run in order.

    Scopeflow difference: the stateful loops form one chain of stateful ops; TensorFlow
    orders them per variable (while_3 would not wait for while_2). The stateless loop is a
    ``StatelessWhile`` outside the chain, as in TensorFlow.
    """
    x1 = sf.Variable(2.0)
    x2 = sf.Variable(3.0)
    c = sf.constant(2.0)

    @sf.function
    def fn() -> Any:
        def body(var: Any, power: int) -> Callable[[Any], Any]:
            def b(v: Any) -> Any:
                var.assign(var)
                out = v
                for _ in range(power):
                    out = out * var
                return out

            return b

        rets = [
            sf.while_loop(lambda v: v < 4.0, body(x1, 1), [c], name="while_1"),
            sf.while_loop(lambda v: v < 16.0, body(x1, 2), [c], name="while_2"),
            sf.while_loop(lambda v: v < 4.0, body(x2, 1), [c], name="while_3"),
            sf.while_loop(lambda v: v < 16.0, body(x2, 2), [c], name="while_4"),
            sf.while_loop(lambda v: v < 16.0, lambda v: v * v, [c], name="while_stateless"),
        ]
        return [r[0] for r in rets]

    concrete = fn.get_concrete_function()
    op = concrete.graph.get_operation_by_name
    w1, w2, w3, w4, ws = (
        op(n) for n in ("while_1", "while_2", "while_3", "while_4", "while_stateless")
    )
    assert [w.type for w in (w1, w2, w3, w4, ws)] == ["While"] * 4 + ["StatelessWhile"]
    assert list(w1.control_inputs) == []
    assert list(w2.control_inputs) == [w1]
    assert list(w3.control_inputs) == [w2]  # TensorFlow: []
    assert list(w4.control_inputs) == [w3]
    assert list(ws.control_inputs) == []
    assert [float(t) for t in concrete()] == [4.0, 32.0, 6.0, 18.0, 16.0]


def test_while_double_derivative() -> None:
    """testDoubleDerivative."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        (ret,) = sf.while_loop(lambda v: v < 8.0, lambda v: v**2, [x])
        grad = sf.gradients(ret, [x])
        grad_grad = sf.gradients(grad, [x])
        assert _run(ret) == 16.0
        assert _run(grad) == [32.0]
        assert _run(grad_grad) == [48.0]


def test_while_multiple_while_loops_eager() -> None:
    """testMultipleWhileLoopsEager / testDoubleDerivativeEager: sf.gradients in a function."""

    @sf.function
    def func() -> Any:
        x = sf.constant(2.0)
        (ret1,) = sf.while_loop(lambda v: v < 4.0, lambda v: v * v, [x])
        (ret2,) = sf.while_loop(lambda v: v < 16.0, lambda v: v * v, [ret1])
        grad = sf.gradients(ret2, [x])[0]
        grad_grad = sf.gradients(grad, [x])[0]
        return ret2, grad, grad_grad

    ret, grad, grad_grad = func()
    assert (float(ret), float(grad), float(grad_grad)) == (16.0, 32.0, 48.0)


def test_while_maximum_iterations_loop_invariant_gradient() -> None:
    """testDoNotAccumulateInvariants' loop: v**5 from maximum_iterations=5."""
    with sf.Graph().as_default():
        v = sf.constant(5.0, name="v")
        (r,) = sf.while_loop(lambda _: True, lambda x: v * x, [1.0], maximum_iterations=5)
        (output,) = sf.gradients(r, v)
        assert _run(r) == 3125.0
        assert _run(output) == 3125.0  # 5 * v**4


def test_while_maximum_iterations_gather_gradient() -> None:
    """testGradOfGatherOfLoopOutput-like: x**4 by two iterations, gathered."""

    @sf.function
    def f() -> Any:
        x = sf.constant([2.0])
        (ret,) = sf.while_loop(lambda _: True, lambda v: v * v, [x], maximum_iterations=2)
        v = sf.gather(ret, [0])
        return sf.gradients(v, [x])[0]

    assert f().numpy().tolist() == [32.0]


def test_while_loop_in_cond_and_cond_in_loop() -> None:
    """testCondInsideWhile / testWhileInsideCond-like nesting, with gradients."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        pred = sf.placeholder(sf.bool, shape=())
        out = sf.cond(
            pred,
            lambda: sf.while_loop(lambda v: v < 8.0, lambda v: v * v, [x])[0],
            lambda: x * 3.0,
        )
        (loop,) = sf.while_loop(
            lambda v: v < 10.0, lambda v: sf.cond(v > 3.0, lambda: v * 2.0, lambda: v + 1.0), [x]
        )
        g_out = sf.gradients(out, [x])
        g_loop = sf.gradients(loop, [x])
        assert _run([out, g_out], {pred: True}) == [16.0, [32.0]]
        assert _run([out, g_out], {pred: False}) == [6.0, [3.0]]
        assert _run([loop, g_loop]) == [16.0, [4.0]]  # 2 -> 3 -> 4 -> 8 -> 16


def test_while_shape_invariants() -> None:
    """testShapeInvariants-like: a loop growing a vector needs a relaxed invariant."""
    with sf.Graph().as_default():
        i = sf.constant(0)
        m = sf.ones((1,))
        with pytest.raises(ValueError):
            sf.while_loop(lambda i, m: i < 3, lambda i, m: (i + 1, sf.concat([m, m], 0)), [i, m])
        ret = sf.while_loop(
            lambda i, m: i < 3,
            lambda i, m: (i + 1, sf.concat([m, m], 0)),
            [i, m],
            shape_invariants=[(), (None,)],
        )
        assert ret[1].shape == (None,)
        assert _run(ret[1]).shape == (8,)


# -- the code paths the fixes above added -------------------------------------------------------


def test_one_element_predicates_are_squeezed_in_every_mode() -> None:
    """A (1, 1) predicate acts as its one element (eager, graph, traced); (2,) is refused."""
    t, f = np.array([[True]]), np.array([[False]])
    assert float(sf.cond(sf.constant(t), lambda: 1.0, lambda: 2.0)) == 1.0
    assert float(sf.cond(f, lambda: 1.0, lambda: 2.0)) == 2.0
    (n,) = sf.while_loop(lambda i: sf.reshape(i < 3, (1, 1)), lambda i: i + 1, [0])
    assert int(n) == 3
    traced = sf.function(lambda p: sf.cond(p, lambda: 1.0, lambda: 2.0))
    assert float(traced(sf.constant(f))) == 2.0
    with sf.Graph().as_default():
        p = sf.placeholder(sf.bool, shape=(1, 1))
        out = sf.cond(p, lambda: sf.constant(1.0), lambda: sf.constant(2.0))
        assert out.op.inputs[0].shape == ()
        assert _run(out, {p: f}) == 2.0
        with pytest.raises(ValueError, match=r"pred must be a scalar, got shape \(2,\)"):
            sf.cond(sf.constant([True, False]), lambda: 1.0, lambda: 2.0)


def test_branches_inherit_the_device_scope() -> None:
    """cond branches and loop bodies see the device open where they are built."""
    devices = []

    def branch() -> Any:
        c = sf.constant(1.0)
        devices.append(c.op.device)
        return c

    with sf.Graph().as_default(), sf.device("CPU:3"):
        sf.cond(sf.constant(True), branch, branch)
        sf.while_loop(lambda v: v < 2.0, lambda v: v + branch(), [0.0])
    assert devices == ["/device:CPU:3"] * 3


def test_branch_name_scopes_in_functions_and_plain_graphs() -> None:
    """Traced from eager code, branch and body ops are named under the op's scope; in a
    plain graph (TensorFlow 1 style) they start at the branch graph's root. The op names
    themselves are made unique as before."""
    names: list[str] = []

    def branch() -> Any:
        c = sf.constant(1.0, name="c")
        names.append(c.op.name)
        return c

    def run() -> Any:
        with sf.name_scope("outer"):
            a = sf.cond(sf.constant(True), branch, branch)
            b = sf.cond(sf.constant(True), branch, branch, name="pick")
            (w,) = sf.while_loop(lambda v: v < 2.0, lambda v: v + branch(), [0.0])
        return a, b, w

    concrete = sf.function(run).get_concrete_function()
    want = ["outer/cond/c", "outer/cond/c", "outer/pick/c", "outer/pick/c", "outer/while/c"]
    assert names == want
    graph_ops = [op.name for op in concrete.graph.get_operations() if op.type != "Const"]
    assert {"outer/cond", "outer/pick", "outer/while"} <= set(graph_ops)
    names.clear()
    with sf.Graph().as_default() as g:
        run()
        run()
        assert names == ["c"] * 10
        assert {"outer/cond", "outer/pick", "outer_1/cond", "outer/while"} <= {
            op.name for op in g.get_operations()
        }


def test_gradients_of_enclosing_graph_targets_and_sources() -> None:
    """sf.gradients in a function: targets of an enclosing graph, sources captured (through
    nested functions) or not used at all (None); a target of an unrelated graph is refused."""
    with sf.Graph().as_default():
        x = sf.constant(3.0)
        y = x * x
        unused = sf.constant(1.0)

        @sf.function
        def inner() -> Any:
            return sf.gradients(y, [x, unused])

        @sf.function
        def outer() -> Any:
            return sf.function(lambda: sf.gradients(x * y, [x]))()

        gx, gu = inner()
        assert gu is None
        assert _run(gx) == 6.0
        assert _run(outer()) == [9.0]  # y is captured: a leaf in the function, as in TF
        other = sf.Graph()
        with other.as_default():
            z = sf.constant(1.0)
        with pytest.raises(ValueError, match="is not a tensor of the default graph"):
            sf.function(lambda: sf.gradients(z, [x]))()


# -- more of while_v2_test.py -------------------------------------------------------------------


def test_while_default_name() -> None:
    """testDefaultName: 'while', then 'foo/while' and 'foo/while_1' in a name scope."""

    def create() -> Any:
        (out,) = sf.while_loop(lambda i: i < 3, lambda i: i + 1, [sf.constant(0)])
        return out.op

    with sf.Graph().as_default():
        assert create().name == "while"
    with sf.Graph().as_default(), sf.name_scope("foo"):
        assert create().name == "foo/while"
        assert create().name == "foo/while_1"


def test_while_inherit_parent_name_scope() -> None:
    """testInheritParentNameScope: condition and body build under 'foo/while'."""
    seen = []

    def cond(i: Any) -> Any:
        with sf.name_scope("cond"):
            seen.append(sf.get_name_scope())
        return i < 3

    def body(i: Any) -> Any:
        with sf.name_scope("body"):
            seen.append(sf.get_name_scope())
        return i + 1

    @sf.function
    def f() -> Any:
        with sf.name_scope("foo"):
            return sf.while_loop(cond, body, [0])

    f()
    assert seen == ["foo/while/cond", "foo/while/body"]


def test_while_nested_while() -> None:
    """testNestedWhile: sum of n**k for k = 0..5 by nested loops, and its gradient."""
    with sf.Graph().as_default():
        n, m = sf.constant(3.0), sf.constant(5.0)

        def body(i: Any, previous_sum: Any) -> Any:
            prod = sf.constant(1.0)
            inner = sf.while_loop(lambda c, _: c > 0, lambda c, v: (c - 1.0, v * n), [i, prod])
            return i - 1.0, previous_sum + inner[1]

        result = sf.while_loop(lambda i, _: i >= 0, body, [m, sf.constant(0.0)])[1]
        grad = sf.gradients(result, [n])
        assert _run(result) == 364.0
        assert _run(grad) == [547.0]


def test_while_identity_node_in_body() -> None:
    """testIdentityNodeInBody."""
    with sf.Graph().as_default():
        x = sf.constant(2.0)
        (ret,) = sf.while_loop(lambda v: v < 8.0, lambda v: sf.identity(sf.identity(v)) ** 2, [x])
        assert _run(ret) == 16.0
        assert _run(sf.gradients(ret, [x])) == [32.0]


def test_while_reshape_and_fill_shapes() -> None:
    """testReshapeShape / testFillOpsShape: shapes computed from constants stay static."""
    shapes = []
    with sf.Graph().as_default():
        shape = sf.constant([3, 4])

        def body(i: Any, u: Any) -> Any:
            extended = sf.concat([[5], shape], axis=0)
            flat = sf.reshape(u, [-1])
            shapes.append(flat.shape)
            u = sf.reshape(flat, extended)
            shapes.append(u.shape)
            for fill in (sf.zeros, sf.ones, lambda s: sf.fill(s, 1.0)):
                shapes.append(fill(extended).shape)
            return i + 1, u

        sf.while_loop(lambda i, _: i < 3, body, [0, sf.zeros([5, 3, 4])])
    assert shapes == [(60,)] + [(5, 3, 4)] * 4


def test_captured_constants_fold_into_static_shapes() -> None:
    """A captured outer constant (through nested graphs) folds into static shapes; a
    captured placeholder or an argument stays unknown."""
    with sf.Graph().as_default():
        const = sf.constant([2, 3])
        fed = sf.placeholder(sf.int32, shape=(2,))
        seen = []

        @sf.function
        def f(arg: Any) -> Any:
            def branch() -> Any:
                seen.extend(sf.zeros(s).shape for s in (const, fed, arg))
                return sf.constant(0.0)

            return sf.cond(sf.constant(True), branch, branch)

        f(sf.constant([1, 1]))
        assert seen[:3] == [(2, 3), (None, None), (None, None)]


def test_while_run_basic_on_cpu() -> None:
    """testRunKernelsInline / testSingleThreadedExecution: 1000 iterations under a device."""
    with sf.Graph().as_default():
        with sf.device("/cpu:0"):
            (ret,) = sf.while_loop(lambda x: x < 1000, lambda x: x + 1, [sf.constant(0)])
        assert ret.op.device == "/device:CPU:0"
        assert _run(ret) == 1000
