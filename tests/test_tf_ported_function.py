"""Scenarios from TensorFlow's tf.function tests, re-run on ``sf.function``.

From ``tensorflow/python/eager/def_function_test.py`` and
``tensorflow/python/eager/polymorphic_function/polymorphic_function_test.py``. Each test
names the TensorFlow test it follows; the scenarios and expected values are TensorFlow's,
the code is written for pytest and scopeflow.
"""

from __future__ import annotations

import collections
import functools
import threading
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _v(t: Any) -> Any:
    return np.asarray(t)


# -- def_function_test.py -------------------------------------------------------------------


def test_no_variables() -> None:
    """testNoVariables"""

    @sf.function
    def fn(x: Any) -> Any:
        return 2 * x

    assert _v(fn(sf.constant(4.0))) == 8.0


def test_fail_if_variables_are_created_more_than_once() -> None:
    """testFailIfVariablesAreCreatedMoreThanOnce

    Documented difference (SPEC "Functions", docs/getting-started.md): TensorFlow traces a
    function that creates variables twice on its first call and raises there; scopeflow
    traces once, lifts the variables of the first trace, and raises on the next trace.
    """

    @sf.function
    def fn(x: Any) -> Any:
        return sf.Variable(1.0) + x

    assert _v(fn(1.0)) == 2.0
    with pytest.raises(ValueError):
        fn(2.0)


def test_fail_if_variables_are_created_more_than_once_no_weak_ref() -> None:
    """testFailIfVariablesAreCreatedMoreThanOnceNoWeakRef (raises on the second trace, as
    in the test above)."""
    state: list[Any] = []

    @sf.function
    def fn(x: Any) -> Any:
        state.append(sf.Variable(1.0))
        return state[-1] + x

    fn(1.0)
    with pytest.raises(ValueError):
        fn(2.0)


def test_range() -> None:
    """testRange: a range argument is a Python value."""

    @sf.function
    def f(unused_x: Any) -> Any:
        return 1.0

    assert _v(f(range(5))) == 1.0


def test_correct_variable_creation() -> None:
    """testCorrectVariableCreation"""
    state: list[Any] = []

    @sf.function
    def fn(x: Any) -> Any:
        if not state:
            state.append(sf.Variable(2.0))
        return state[0] * x

    assert _v(fn(sf.constant(1.0))) == 2.0
    assert _v(fn(sf.constant(3.0))) == 6.0


def test_function_initializer() -> None:
    """testFunctionInitializer: a callable initial value."""
    state: list[Any] = []

    @sf.function
    def fn(x: Any) -> Any:
        if not state:
            state.append(sf.Variable(lambda: 2.0))
        return state[0] * x

    assert _v(fn(sf.constant(1.0))) == 2.0


def test_variable_initializer_not_constant() -> None:
    """testVariableInitializerNotConstant: the initial value depends on the argument.

    Documented difference (SPEC "Functions"): an initial value computed inside the function
    raises ValueError (TensorFlow lifts it with a conditional initializer); computed under
    init_scope, or given as a callable, it works.
    """
    state: list[Any] = []

    @sf.function
    def fn(x: Any) -> Any:
        if not state:
            state.append(sf.Variable(2.0 * x))
        return state[0] * x

    with pytest.raises(ValueError, match="init_scope"):
        fn(sf.constant(1.0))
    state.clear()

    @sf.function
    def fn2(x: Any) -> Any:
        if not state:
            state.append(sf.Variable(lambda: 2.0 * sf.constant(1.0)))
        return state[0] * x

    assert _v(fn2(sf.constant(1.0))) == 2.0
    assert _v(fn2(sf.constant(3.0))) == 6.0


def test_legacy_graph_mode_variables() -> None:
    """testLegacyGraphModeVariables"""
    with sf.Graph().as_default(), sf.Session() as sess:
        state: list[Any] = []

        @sf.function
        def fn(x: Any) -> Any:
            if not state:
                state.append(sf.Variable(2.0))
            return state[0] * x

        result = fn(3.0)
        sess.run(sf.global_variables_initializer())
        assert sess.run(state[0]) == 2.0
        assert sess.run(result) == 6.0


def test_legacy_graph_mode_variables_non_trivial_initializer() -> None:
    """testLegacyGraphModeVariablesNonTrivialInitializer

    Documented difference (SPEC "Functions"): TensorFlow lifts an initializer that depends
    only on constants out of the function; scopeflow raises ValueError unless it is
    computed under init_scope (done here) or given as a callable.
    """
    with sf.Graph().as_default(), sf.Session() as sess:
        state: list[Any] = []

        @sf.function
        def bad(x: Any) -> Any:
            return sf.Variable(sf.sqrt(sf.constant(4.0))) * x

        with pytest.raises(ValueError, match="init_scope"):
            bad(3.0)

        @sf.function
        def fn(x: Any) -> Any:
            if not state:
                with sf.init_scope():
                    two = sf.constant(2.0)
                    four = two * two
                    two_again = sf.sqrt(four)
                    state.append(sf.Variable(two_again + four))
            return state[0] * x

        result = fn(3.0)
        sess.run(sf.global_variables_initializer())
        assert sess.run(state[0]) == 6.0
        assert sess.run(result) == 18.0


def test_method() -> None:
    """testMethod: each instance gets its own variables."""

    class MyModel:
        def __init__(self) -> None:
            self.var: Any = None

        @sf.function
        def apply(self, x: Any) -> Any:
            if self.var is None:
                self.var = sf.Variable(2.0)
            return self.var * x

    m0 = MyModel()
    assert _v(m0.apply(3.0)) == 6.0
    m0.var.assign(3.0)
    assert _v(m0.apply(3.0)) == 9.0
    m1 = MyModel()
    assert _v(m1.apply(3.0)) == 6.0


def test_functools_partial() -> None:
    """test_functools_partial"""
    f = sf.function(functools.partial(lambda x, y: x + y, 1.0))
    np.testing.assert_allclose(f(sf.constant(2.0)), 3.0)


def test_functools_partial_new_default() -> None:
    """test_functools_partial_new_default"""

    def f(x: Any = 3, y: Any = 7) -> Any:
        return x + y

    func = sf.function(functools.partial(f, y=6))
    assert func().numpy() == 9
    assert func(y=8).numpy() == 11


def test_functools_partial_keywords() -> None:
    """test_functools_partial_keywords"""

    def f(x: Any, y: Any) -> Any:
        return x + y

    func = sf.function(functools.partial(f, x=sf.zeros([1]), y=sf.zeros([1])))
    np.testing.assert_array_equal(func(), [0.0])


def test_functools_partial_single_positional() -> None:
    """test_functools_partial_single_positional"""

    def f(x: Any, y: Any) -> Any:
        return x + y

    func = sf.function(functools.partial(f, sf.constant(1)))
    assert _v(func(5)) == 6


def test_unspecified_default_argument() -> None:
    """test_unspecified_default_argument: a default outside the input signature."""
    wrapped = sf.function(lambda x, y=2: x + y, input_signature=[sf.TensorSpec((), sf.int32)])
    assert wrapped(sf.constant(1)).numpy() == 3


def test_optimizer() -> None:
    """test_optimizer: a method with an input signature trains a model on its first call."""

    class Model(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w: Any = None
            self.b: Any = None
            self.optimizer = sf.optimizers.Adam(0.01)

        @sf.function(
            input_signature=(
                sf.TensorSpec([None, 2], sf.float32),
                sf.TensorSpec([None], sf.float32),
            )
        )
        def call(self, x: Any, y: Any) -> Any:
            if self.w is None:  # callables: see test_variable_initializer_not_constant
                self.w = sf.Variable(lambda: sf.ones([2, 1]))
                self.b = sf.Variable(lambda: sf.zeros([1]))
            with sf.GradientTape() as tape:
                loss = sf.reduce_mean((sf.matmul(x, self.w) + self.b - y) ** 2.0)
            variables = [self.w, self.b]
            gradients = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return {"loss": loss}

    model = Model()
    out = model.call(sf.constant([[3.0, 4.0]]), sf.constant([2.0]))
    assert _v(out["loss"]) == 25.0
    assert _v(model.b)[0] != 0.0


def test_concrete_function_from_signature() -> None:
    """test_concrete_function_from_signature"""

    @sf.function(input_signature=[sf.TensorSpec(None, sf.float32)])
    def compute(x: Any) -> Any:
        return 2.0 * x

    concrete = compute.get_concrete_function()
    np.testing.assert_allclose(concrete(sf.constant(0.5)), 1.0)
    concrete = compute.get_concrete_function(sf.TensorSpec(None, sf.float32))
    np.testing.assert_allclose(concrete(sf.constant(2.0)), 4.0)


def test_variable_naming() -> None:
    """test_variable_naming: variables created in a traced method keep their names."""

    class HasVars(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.x: Any = None
            self.y: Any = None
            self.z: Any = None

        @sf.function
        def make_x(self) -> None:
            if self.x is None:
                self.x = sf.Variable(1.0, name="v")

        def make_y(self) -> None:
            if self.y is None:
                self.y = sf.Variable(1.0, name="v")

        def make_z(self) -> None:
            if self.z is None:
                with sf.name_scope("z_scope"):
                    self.z = sf.Variable(1.0, name="z")

    root = HasVars()
    root.make_x()
    root.make_y()
    root.make_z()
    assert root.x.name == "v:0"
    assert root.z.name == "z_scope/z:0"


def test_concrete_function_keyword_arguments() -> None:
    """test_concrete_function_keyword_arguments: a TensorSpec's name is the keyword.

    Not ported: ``structured_input_signature`` and the error for partly named specs.
    """

    @sf.function
    def f(x: Any) -> Any:
        return x

    conc = f.get_concrete_function(sf.TensorSpec(None, sf.float32, "y"))
    assert _v(conc(y=sf.constant(3.0))) == 3.0
    assert _v(conc(x=sf.constant(3.0))) == 3.0

    @sf.function
    def g(x: Any) -> Any:
        return x[0]

    conc = g.get_concrete_function([sf.TensorSpec(None, sf.float32, "z"), 2])
    assert _v(conc(z=sf.constant(3.0))) == 3.0


def test_runtime_error_not_sticky() -> None:
    """testRuntimeErrorNotSticky: a failed assertion does not break later calls."""

    @sf.function
    def fail(i: Any) -> Any:  # sf.debugging.assert_equal stands for control_flow_ops.Assert
        return sf.debugging.assert_equal(i, 0, message="ick")

    fail(sf.constant(0))
    with pytest.raises(sf.errors.InvalidArgumentError):
        fail(sf.constant(1))
    fail(sf.constant(0))


def test_underscore_name() -> None:
    """testUnderscoreName"""

    @sf.function
    def f(_: Any) -> Any:
        return _ + _

    assert _v(f(sf.constant(1.0))) == 2.0


def test_function_reference_cycles() -> None:
    """testFunctionReferenceCycles: a traced function is freed by reference counting."""
    fn = sf.function(lambda x: 2.0 * x)
    fn(sf.constant(4.0))
    weak_fn = weakref.ref(fn)
    del fn
    assert weak_fn() is None


def test_method_reference_cycles() -> None:
    """testMethodReferenceCycles"""

    class HasDecoratedMethod:
        @sf.function
        def f(self, x: Any) -> Any:
            return x * 3.0

    obj = HasDecoratedMethod()
    obj.f(sf.constant(5.0))
    weak_fn = weakref.ref(obj.f)
    del obj
    assert weak_fn() is None


def test_error_message_when_graph_tensor_is_passed_to_eager() -> None:
    """testErrorMessageWhenGraphTensorIsPassedToEager: a function tensor under init_scope."""

    @sf.function
    def failing_function() -> None:
        a = sf.constant(1.0)
        with sf.init_scope():
            _ = a + a

    with pytest.raises((TypeError, ValueError)):
        failing_function()


def test_var_already_initialized_no_clobbering() -> None:
    """testVarAlreadyInitializedNoClobbering: an init_scope assign on the first trace."""
    v_holder: list[Any] = []

    @sf.function
    def add_var(x: Any) -> Any:
        if not v_holder:
            v_holder.append(sf.Variable([1.0, 2.0]))
            already_initialized = sf.Variable(3.0)
            with sf.init_scope():
                already_initialized.assign(10.0)
            v_holder.append(already_initialized)
        return v_holder[0] + v_holder[1] + x

    add_var.get_concrete_function(sf.constant(2.0))
    np.testing.assert_allclose(add_var(sf.constant(2.0)), [13.0, 14.0])


def test_same_variable_twice() -> None:
    """testSameVariableTwice"""
    v = sf.Variable(1.0)

    @sf.function
    def add(a: Any, b: Any) -> Any:
        return a + b

    assert _v(add(v, v)) == 2.0


def test_shape_cache() -> None:
    """testShapeCache: equal specs give the same concrete function."""

    @sf.function
    def func(x: Any) -> Any:
        return 2 * x

    func_a = func.get_concrete_function(sf.TensorSpec([None], sf.int32))
    func_b = func.get_concrete_function(sf.TensorSpec([None], sf.int32))
    assert func_a is func_b


def test_initialization_in_nested_call() -> None:
    """testInitializationInNestedCall"""
    v_holder: list[Any] = []

    @sf.function
    def add_var(x: Any) -> Any:
        if not v_holder:
            v_holder.append(sf.Variable([1.0, 2.0]))
            already_initialized = sf.Variable(3.0)
            with sf.init_scope():
                already_initialized.assign(10.0)
            v_holder.append(already_initialized)
        return v_holder[0] + v_holder[1] + x

    @sf.function
    def wrapper(x: Any) -> Any:
        return add_var(x)

    np.testing.assert_allclose(wrapper(sf.constant(2.0)), [13.0, 14.0])
    v_holder[1].assign(11.0)
    np.testing.assert_allclose(wrapper(sf.constant(2.0)), [14.0, 15.0])


# -- polymorphic_function_test.py -----------------------------------------------------------


def test_basic() -> None:
    """testBasic: sf.function over a library op with keyword arguments."""
    matmul = sf.function(sf.matmul)
    t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    sq = matmul(t, t, transpose_a=True)
    sq2 = matmul(sq, t, transpose_a=True)
    np.testing.assert_array_equal(sq.numpy().reshape(-1), [10, 14, 14, 20])
    np.testing.assert_array_equal(sq2.numpy().reshape(-1), [52, 76, 74, 108])


def test_python_function_not_callable() -> None:
    """testPythonFunctionNotCallable"""
    with pytest.raises(TypeError, match="is not a callable object"):
        sf.function(1)  # type: ignore[arg-type]


def test_variable() -> None:
    """testVariable: a captured variable and a variable argument."""
    v1 = sf.Variable(1.0)
    add = sf.function(lambda x, v: x + v1 + v)
    v2 = sf.Variable(1.0)
    assert _v(add(sf.constant(1.0), v2)) == 3.0


def test_variable_only() -> None:
    """testVariableOnly: a variable argument can be assigned; a tensor has no assign_add."""
    v = sf.Variable(1.0)
    add = sf.function(lambda x: x.assign_add(1.0))
    assert _v(add(v)) == 2.0
    with pytest.raises(AttributeError, match="no attribute"):
        add(sf.constant(1.0))


def test_variable_multi_function() -> None:
    """testVariableMultiFunction: one variable passed twice, through a nested function."""

    @sf.function
    def second(dup_var: Any, dup_var_2: Any, some_const: Any) -> Any:
        return dup_var + dup_var_2 + some_const

    @sf.function
    def first(dup_var: Any, some_const: Any) -> Any:
        return second(dup_var, dup_var, some_const)

    my_const = sf.constant(1)
    my_var = sf.Variable(2, dtype=sf.int32)
    assert second(my_var, my_var, my_const).numpy() == 5
    assert first(my_var, my_const).numpy() == 5


def test_captures_variables() -> None:
    """testCapturesVariables (through captured_inputs: no ``cf.variables`` here)."""
    a = sf.Variable(1.0, trainable=False)
    b = sf.Variable(1.0)
    cc: list[Any] = [None]

    @sf.function
    def f() -> Any:
        c = cc[0]
        if c is None:
            c = cc[0] = sf.Variable(1.0)
        return a + b + c + 1

    cf = f.get_concrete_function()
    assert _v(cf()) == 4.0
    assert _v(f()) == 4.0


def test_no_hash() -> None:
    """testNoHash: an unhashable Python argument.

    Difference: TensorFlow raises TypeError (no TraceType for a set); scopeflow keys an
    unhashable, weak-referenceable argument by identity (docs/getting-started.md).
    """

    @sf.function
    def f(_: Any) -> Any:
        return 1.0

    assert _v(f(set())) == 1.0


def test_basic_graph_mode() -> None:
    """testBasicGraphMode: a traced function calls another one."""
    matmul = sf.function(sf.matmul)

    @sf.function
    def sq(a: Any) -> Any:
        return matmul(a, a)

    t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(sq(t), sf.matmul(t, t).numpy())


def test_nested_inputs_graph_mode() -> None:
    """testNestedInputsGraphMode: a namedtuple of dicts as the argument."""
    matmul = sf.function(sf.matmul)
    pair = collections.namedtuple("pair", ["a", "b"])

    @sf.function
    def a_times_b(inputs: Any) -> Any:
        return matmul(inputs.a["a"], inputs.b["b"])

    t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(a_times_b(pair({"a": t}, {"b": t})), sf.matmul(t, t).numpy())


def test_nested_outputs_graph_mode() -> None:
    """testNestedOutputsGraphMode: a namedtuple result keeps its type."""
    matmul = sf.function(sf.matmul)
    pair = collections.namedtuple("pair", ["a", "b"])

    @sf.function
    def pairs_mul(pair_a: Any, pair_b: Any) -> Any:
        return pair(matmul(pair_a.a, pair_b.a), matmul(pair_a.b, pair_b.b))

    a = sf.constant([[1.0, 2.0], [1.0, 2.0]])
    b = sf.constant([[3.0, 4.0], [3.0, 4.0]])
    out = pairs_mul(pair(a, b), pair(b, a))
    assert isinstance(out, pair)
    np.testing.assert_allclose(out.a, sf.matmul(a, b).numpy())
    np.testing.assert_allclose(out.b, sf.matmul(b, a).numpy())


def test_nested_function_graph_not_out_of_date() -> None:
    """testNestedFunctionGraphNotOutOfDate: a concrete function got inside a trace."""

    @sf.function
    def f() -> Any:
        return sf.constant(1.0)

    class Model:
        @sf.function
        def g(self) -> None:
            self.f = f.get_concrete_function()

    model = Model()
    model.g()
    concrete = model.f
    assert _v(concrete()) == 1.0


def test_basic_graph_function() -> None:
    """testBasicGraphFunction: a concrete function's output shape."""
    matmul = sf.function(sf.matmul)

    @sf.function
    def sq(a: Any) -> Any:
        return matmul(a, a)

    t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    sq_op = sq.get_concrete_function(t)
    assert sq_op.outputs[0].shape == (2, 2)
    np.testing.assert_array_equal(sq_op(t), sf.matmul(t, t).numpy())


def test_get_concrete_function_thread_safety() -> None:
    """testGetConcreteFunctionThreadSafety: concurrent first calls trace once."""

    @sf.function
    def sq() -> Any:
        t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
        return sf.matmul(t, t)

    with ThreadPoolExecutor(8) as pool:
        cfs = list(pool.map(lambda _: sq.get_concrete_function(), range(50)))
    assert len({id(cf) for cf in cfs}) == 1


def test_input_spec_graph_function() -> None:
    """testInputSpecGraphFunction"""
    matmul = sf.function(sf.matmul)

    @sf.function
    def sq(a: Any) -> Any:
        return matmul(a, a)

    sq_op = sq.get_concrete_function(sf.TensorSpec((None, None), sf.float32))
    assert sq_op.outputs[0].shape == (None, None)
    t1 = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(sq_op(t1), sf.matmul(t1, t1).numpy())


def test_nested_input_spec_graph_function() -> None:
    """testNestedInputSpecGraphFunction: specs named 'first_mat'/'second_mat' are keywords."""
    matmul = sf.function(sf.matmul)

    @sf.function
    def sq(mats: Any) -> Any:
        ((a, b),) = mats
        return matmul(a, b)

    # Difference: TensorSpec names do not key traces, so named specs asked for after
    # unnamed ones of the same shapes get the first trace (inputs mats_0, mats_1); here
    # the named trace is made first, in a function of its own.
    spec = sf.TensorSpec((None, None), sf.float32)
    sq_op_autonamed = sq.get_concrete_function([(spec, spec)])
    assert _v(sq_op_autonamed(mats_0=sf.ones([1, 1]), mats_1=sf.ones([1, 1]))) == 1.0
    sq_op = sf.function(sq.python_function).get_concrete_function(
        [
            (
                sf.TensorSpec((None, None), sf.float32, name="first_mat"),
                sf.TensorSpec((None, None), sf.float32, name="second_mat"),
            )
        ]
    )
    t1 = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    t2 = sf.constant([[1.4, 2.4], [3.4, 4.4]])
    want = sf.matmul(t1, t2).numpy()
    np.testing.assert_array_equal(sq_op(first_mat=t1, second_mat=t2), want)
    np.testing.assert_array_equal(sq_op_autonamed(t1, t2), want)


def test_executing_stateless_defun_concurrently() -> None:
    """testExecutingStatelessDefunConcurrently"""

    @sf.function
    def stateless(x: Any) -> Any:
        return sf.multiply(2.0, x)

    inputs = [sf.constant(1.0 * x) for x in range(100)]
    with ThreadPoolExecutor(8) as pool:
        outputs = [float(out) for out in pool.map(stateless, inputs)]
    assert outputs == [2.0 * x for x in range(100)]


def test_executing_many_stateless_defuns_concurrently() -> None:
    """testExecutingManyStatelessDefunsConcurrently: 100 Python-object arguments."""

    @sf.function
    def stateless(x: Any) -> Any:
        del x
        return sf.multiply(2.0, 2.0)

    objects = [object() for _ in range(100)]
    # Documented difference: scopeflow warns (sf.RetracingWarning) where TF logs.
    with pytest.warns(sf.RetracingWarning), ThreadPoolExecutor(8) as pool:
        outputs = [float(out) for out in pool.map(stateless, objects)]
    assert outputs == [4.0] * 100


def test_executing_stateful_defun_concurrently() -> None:
    """testExecutingStatefulDefunConcurrently"""
    v = sf.Variable(1.0)

    @sf.function
    def stateful(x: Any) -> None:
        v.assign(x)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(stateful, [sf.constant(0.0)] * 100))
    assert float(v.read_value()) == 0.0


def test_executing_many_stateful_defuns_concurrently() -> None:
    """testExecutingManyStatefulDefunsConcurrently"""
    v = sf.Variable(1.0)

    @sf.function
    def stateful(x: Any) -> Any:
        del x
        return v.assign(0.0)

    with pytest.warns(sf.RetracingWarning), ThreadPoolExecutor(8) as pool:
        list(pool.map(stateful, [object() for _ in range(100)]))
    assert float(v.read_value()) == 0.0


def test_nested_inputs_graph_function() -> None:
    """testNestedInputsGraphFunction: named specs in a namedtuple of dicts."""
    matmul = sf.function(sf.matmul)
    pair = collections.namedtuple("pair", ["a", "b"])

    @sf.function
    def a_times_b(inputs: Any) -> Any:
        return matmul(inputs.a["a"], inputs.b["b"])

    t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    sq_op = a_times_b.get_concrete_function(
        pair(
            {"a": sf.TensorSpec([2, 2], sf.float32, "a")},
            {"b": sf.TensorSpec([2, 2], sf.float32, "b")},
        )
    )
    assert sq_op.outputs[0].shape == (2, 2)
    np.testing.assert_array_equal(sq_op(a=t, b=t), sf.matmul(t, t).numpy())


def test_nested_output_graph_function() -> None:
    """testNestedOutputGraphFunction"""
    matmul = sf.function(sf.matmul)

    @sf.function
    def sq(a: Any) -> Any:
        return (matmul(a, a), {"b": sf.constant(1.0)})

    t = sf.constant([[1.0, 2.0], [3.0, 4.0]])
    sq_op = sq.get_concrete_function(t)
    a, b = sq_op(t)
    np.testing.assert_array_equal(a, sf.matmul(t, t).numpy())
    assert b["b"].numpy() == 1.0


def test_graph_function_none_output() -> None:
    """testGraphFunctionNoneOutput"""

    @sf.function
    def fn(unused_a: Any, unused_b: Any) -> None:
        return None

    x = sf.constant(1)
    fn_op = fn.get_concrete_function(x, x)
    assert fn_op(x, x) is None


def test_defun_captured_int32() -> None:
    """testDefunCapturedInt32"""
    x = sf.constant(1, dtype=sf.int32)

    @sf.function
    def add_int32s() -> Any:
        return x + x

    assert int(add_int32s()) == 2


def test_defun_read_variable() -> None:
    """testDefunReadVariable"""
    v = sf.Variable(1.0)

    @sf.function
    def f() -> Any:
        return v.read_value()

    assert float(f()) == 1.0


def test_defun_assign_add_variable() -> None:
    """testDefunAssignAddVariable"""
    v = sf.Variable(1.0)
    x = sf.constant(2.0)

    @sf.function
    def test_assign_add() -> Any:
        v.assign_add(x)
        return v.read_value()

    assert float(test_assign_add()) == 3.0


def test_callable_tensor_initialization_in_function() -> None:
    """testCallableTensorInitializationInFunction"""
    holder: list[Any] = []

    @sf.function
    def tensor_init() -> Any:
        if not holder:
            holder.append(sf.Variable(lambda: sf.constant(2.0)))
        return holder[0].read_value()

    assert _v(tensor_init()) == 2.0


def test_init_scope_tensor_initialization_in_function() -> None:
    """testInitScopeTensorInitializationInFunction"""
    holder: list[Any] = []

    @sf.function
    def tensor_init() -> Any:
        if not holder:
            with sf.init_scope():
                const = sf.constant(2.0)
            holder.append(sf.Variable(const))
        return holder[0].read_value()

    assert _v(tensor_init()) == 2.0


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_get_concrete_function_creates_variables(graph: bool) -> None:
    """testGetConcreteFunctionCreatesVariables"""

    def run() -> None:
        v_holder: list[Any] = []

        @sf.function
        def tensor_init() -> Any:
            if not v_holder:
                v_holder.append(sf.Variable(5.0))
            return v_holder[0].read_value()

        concrete = tensor_init.get_concrete_function()
        if graph:
            with sf.Session() as sess:
                sess.run(sf.global_variables_initializer())
                assert sess.run(concrete()) == 5.0
                assert sess.run(tensor_init()) == 5.0
        else:
            assert _v(concrete()) == 5.0
            assert _v(tensor_init()) == 5.0

    if graph:
        with sf.Graph().as_default():
            run()
    else:
        run()


def test_shape_inference_for_more_specific_input() -> None:
    """testShapeInferenceForMoreSpecificInput: a signature of unknown shape, inlined call."""

    def f(a: Any) -> Any:
        return sf.reshape(a, [-1, 3])

    compiled = sf.function(f, input_signature=[sf.TensorSpec(None, sf.float32)])
    shapes = []

    @sf.function
    def use_f() -> None:
        inputs = sf.zeros([10, 10, 3])
        shapes.append((f(inputs).shape, compiled(inputs).shape))

    use_f()
    assert shapes[0][0] == (100, 3)
    assert shapes[0][1] in ((100, 3), (None, 3))


def test_defun_shape_inference_with_captured_variable_in_graph_mode() -> None:
    """testDefunShapeInferenceWithCapturedVariableInGraphMode"""
    with sf.Graph().as_default():
        v = sf.Variable([[1, 2], [3, 4]])
        shapes = []

        def f() -> None:
            x = sf.constant([[1, 2], [3, 4]])
            shapes.append(sf.matmul(v, x).shape)

        sf.function(f)()
        assert shapes == [(2, 2)]


def test_graph_mode_capture_variable() -> None:
    """testGraphModeCaptureVariable"""
    with sf.Graph().as_default(), sf.Session() as sess:

        class HasAVar:
            def __init__(self) -> None:
                self.v = sf.Variable(1.0)

            def call(self) -> Any:
                return self.v * 2

        o = HasAVar()
        sess.run(sf.global_variables_initializer())
        op = sf.function(o.call)()
        assert sess.run(op) == 2.0


def test_graph_mode_many_functions() -> None:
    """testGraphModeManyFunctions"""
    with sf.Graph().as_default(), sf.Session() as sess:

        @sf.function
        def f(x: Any) -> Any:
            return x * x

        @sf.function
        def g(x: Any) -> Any:
            return f(x) + 1

        assert sess.run(g(sf.constant(2.0))) == 5.0


def test_dict() -> None:
    """testDict"""

    @sf.function
    def f(x: Any) -> Any:
        return {"name": x + 1}

    assert _v(f(sf.constant(1.0))["name"]) == 2.0


def test_weakref_inputs_rejected() -> None:
    """testWeakrefInputsRejected"""

    @sf.function
    def f(x: Any) -> Any:
        return x

    class Dummy:
        pass

    o = Dummy()
    with pytest.raises(TypeError, match="weakref"):
        f(weakref.ref(o))


def test_tensor_conversion_with_defun() -> None:
    """testTensorConversionWithDefun"""

    @sf.function
    def f(x: Any) -> Any:
        return sf.add(x, sf.constant(3))

    assert _v(f(sf.constant(2))) == 5


def test_tensor_conversion_call() -> None:
    """testTensorConversionCall"""

    @sf.function
    def f(x: Any) -> Any:
        return sf.add(x, sf.constant(3))

    @sf.function
    def g(x: Any) -> Any:
        return f(f(x))

    assert _v(g(sf.constant(2))) == 8


def test_call_shape() -> None:
    """testCallShape: a nested call's result has a known scalar shape."""
    shapes = []

    @sf.function
    def f(x: Any) -> Any:
        return x + 1

    @sf.function
    def g(x: Any) -> None:
        shapes.append(f(x).shape)

    g(sf.constant(1.0))
    assert shapes == [()]


def test_nested_defun_with_no_output_and_taped_input() -> None:
    """testNestedDefunWithNoOutputAndTapedInput"""
    three = sf.Variable(3.0, name="v")

    @sf.function
    def f(x: Any) -> None:
        sf.add(x, three)

    @sf.function
    def g(x: Any) -> None:
        y = sf.add(x, three)
        f(y)

    g(three)


def test_gather_resource_with_defun() -> None:
    """testGatherResourceWithDefun"""
    v = sf.Variable([0.0, 1.0, 2.0])

    def sum_gather() -> Any:
        return sf.reduce_sum(sf.gather(v, [1, 2]))

    assert _v(sum_gather()) == _v(sf.function(sum_gather)())


def test_reduce_tracing_with_nested_tf_function() -> None:
    """testReduceTracingWithNestedTFFunction (without reduce_retracing, which is absent)."""
    v = sf.Variable([1.0, 2.0])

    @sf.function
    def inner_test_fn(x: Any) -> Any:
        x.assign_add([2.0, 2.0])
        return x

    @sf.function
    def test_fn(x: Any) -> Any:
        x.assign_add([1.0, 1.0])
        return inner_test_fn(x)

    for want in ([4.0, 5.0], [7.0, 8.0]):
        with sf.GradientTape() as tape:
            y = test_fn(v)
        grad = tape.gradient(y, v)
        np.testing.assert_array_equal(y, want)
        np.testing.assert_array_equal(grad, [1.0, 1.0])


def test_implements_attribute_works_with_gradient_tape() -> None:
    """testImplementsAttributeWorksWithGradientTape (without experimental_implements)."""
    add = sf.function(lambda x, y: x + y**2)
    x = sf.Variable(3.0)
    y = sf.Variable(2.0)
    with sf.GradientTape() as tape:
        g = add(x, y)
    dg_dy, dg_dx = tape.gradient(g, [y, x])
    assert dg_dy.numpy() == 4.0
    assert dg_dx.numpy() == 1.0


def test_trace_count_threads() -> None:
    """testGetConcreteFunctionThreadSafetyWithArgs: 100 arguments, two threads."""

    @sf.function
    def add_100(*args: Any) -> Any:
        total = args[0]
        for a in args[1:]:
            total = total + a
        return total

    args = (sf.constant(1.0),) * 100
    barrier = threading.Barrier(2)

    def get(_: Any) -> Any:
        barrier.wait()
        return add_100.get_concrete_function(*args)

    with ThreadPoolExecutor(2) as pool:
        f1, _ = list(pool.map(get, range(2)))
    assert _v(f1(*args)) == 100.0


def test_concrete_function_flat_call_edges() -> None:
    """The flat call (positional, then by input name) is tried only when the structured
    call does not bind, and every value must fit its input; otherwise the structured
    error is raised."""

    @sf.function
    def f(pair: Any, scale: float = 2.0) -> Any:
        return (pair[0] + pair[1]) * scale

    spec = sf.TensorSpec((None,), sf.float32)
    cf = f.get_concrete_function((spec, spec))
    one = sf.constant([1.0])
    assert _v(cf((one, one))).tolist() == [4.0]  # structured
    assert _v(cf(one, one)).tolist() == [4.0]  # flat, by position
    assert _v(cf(pair_0=one, pair_1=one)).tolist() == [4.0]  # flat, by input name
    assert _v(cf(np.ones(1, np.float32), pair_1=sf.Variable([1.0]))).tolist() == [4.0]
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cf(one, sf.constant([1]))  # int32 does not fit a float32 input
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cf(pair_0=one, bogus=one)
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cf(one, 1.0)  # a Python value is never a flat input
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cf(one, one, one)


def test_none_output() -> None:
    """testNoneOutput"""

    @sf.function
    def my_function(_: Any) -> None:
        return None

    assert my_function(1) is None


def test_variable_capture_in_nested_functions() -> None:
    """testVariableCaptureInNestedFunctions"""
    v = sf.Variable(1, dtype=sf.int32)

    @sf.function
    def inner_read() -> Any:
        return v.read_value()

    @sf.function
    def outer() -> Any:
        return inner_read()

    assert int(outer()) == 1


def test_return_captured_eager_tensor() -> None:
    """testReturnCapturedEagerTensor"""
    t = sf.constant(1)

    @sf.function
    def read() -> Any:
        return t

    assert int(read()) == 1


def test_return_captured_graph_tensor() -> None:
    """testReturnCapturedGraphTensor"""
    with sf.Graph().as_default(), sf.Session() as sess:
        t = sf.constant(1)

        @sf.function
        def read() -> Any:
            return t

        assert int(sess.run(read())) == 1


def test_nested_sequence_inputs() -> None:
    """testNestedSequenceInputs: nested lists and tuples in and out."""

    def my_op(inputs: Any) -> Any:
        a, b, c = inputs
        e, f = b
        g, h = e
        return [a + a, [(f + f, g + g), h + h], c + c], a + f + g + h + c

    ret = sf.function(my_op)(
        [sf.constant(1), [(sf.constant(2), sf.constant(3)), sf.constant(4)], sf.constant(5)]
    )
    assert len(ret) == 2
    assert _v(ret[0][0]) == 2
    assert _v(ret[0][1][0][0]) == 8
    assert _v(ret[0][1][0][1]) == 4
    assert isinstance(ret[0][1][0], tuple)
    assert _v(ret[0][1][1]) == 6
    assert _v(ret[0][2]) == 10
    assert _v(ret[1]) == 15


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_variable_names_respect_name_scopes_with_defun(graph: bool) -> None:
    """testVariableNamesRespectNameScopesWithDefun and ...InGraph"""
    names = []

    @sf.function
    def create_variable() -> None:
        with sf.name_scope("foo"):
            v = sf.Variable([1.0, 2.0], name="bar")
        names.append(v.name)

    if graph:
        with sf.Graph().as_default():
            create_variable()
    else:
        create_variable()
    assert names == ["foo/bar:0"]


def test_variables_placed_on_outside_device() -> None:
    """testVariablesPlacedOnOutsideDevice"""

    class Obj:
        def __init__(self) -> None:
            self.v: Any = None

        @sf.function
        def f(self) -> Any:
            if self.v is None:
                self.v = sf.Variable(1.0)
            return self.v + 1.0

    has_device = Obj()
    with sf.device("cpu:0"):
        assert _v(has_device.f()) == 2.0
    # Not ported: ``has_device.v.device`` (scopeflow's eager variables and tensors have no
    # ``device`` attribute; ops record theirs).


def test_calling_graph_function_on_different_device() -> None:
    """testCallingGraphFunctionOnDifferentDevice"""

    def func() -> Any:
        return sf.constant(0)

    defined = sf.function(func)
    with sf.device("cpu:0"):
        cpu_graph_function = defined.get_concrete_function()
    with sf.device("cpu:0"):
        assert _v(cpu_graph_function()) == _v(func())
    with sf.device("cpu:1"):
        assert _v(cpu_graph_function()) == 0
    with sf.device(None):
        assert _v(cpu_graph_function()) == 0
    default_graph_function = defined.get_concrete_function()
    assert _v(default_graph_function()) == _v(func())
    with sf.device("cpu:1"):
        assert _v(default_graph_function()) == 0


def test_variables_are_tracked() -> None:
    """testVariablesAreTracked: a captured variable is read on every call."""
    v = sf.Variable(1.0)
    defined = sf.function(lambda x: v * x)
    assert _v(defined(sf.constant([1.0]))) == 1.0
    v.assign(2.0)
    np.testing.assert_array_equal(defined(sf.constant([1.0, 2.0])), [2.0, 4.0])


def test_input_signature_must_be_sequence_of_tensor_specs() -> None:
    """testInputSignatureMustBeSequenceOfTensorSpecs"""

    def foo(a: Any, b: Any) -> None:
        del a, b

    signature = [(2, 3), sf.TensorSpec([2, 3], sf.float32)]
    with pytest.raises(TypeError):
        sf.function(foo, input_signature=signature)  # type: ignore[arg-type]


def test_inputs_incompatible_with_signature_raises_error() -> None:
    """testInputsIncompatibleWithSignatureRaisesError (exception types; the messages are
    scopeflow's)."""
    defined = sf.function(
        lambda a: a, input_signature=[sf.TensorSpec(shape=(2,), dtype=sf.float32)]
    )
    defined(sf.ones([2]))
    with pytest.raises(TypeError):
        defined(sf.ones([3], dtype=sf.int32))
    with pytest.raises((TypeError, ValueError)):
        defined(sf.ones([3]))
    with pytest.raises((TypeError, ValueError)):
        defined(sf.ones([2, 1]))
    with pytest.raises(TypeError):
        defined(sf.ones([2]), sf.ones([2]))
    with pytest.raises(TypeError):
        defined()
    with pytest.raises((TypeError, ValueError)):
        defined.get_concrete_function(sf.TensorSpec(shape=(3,), dtype=sf.float32))


def test_mismatched_concrete_signature_raises_error() -> None:
    """testMismatchedConcreteSignatureRaisesError: a Python value is baked into the trace."""

    @sf.function
    def run_test() -> None:
        @sf.function
        def f(x: Any) -> Any:
            return x

        with pytest.raises(TypeError):
            f.get_concrete_function(1)(sf.constant(1))
        f.get_concrete_function(sf.constant(1))(1)
        with pytest.raises(TypeError):
            f.get_concrete_function(1)(2)

    run_test()


def test_input_signature_conversion_with_default_arg() -> None:
    """testInputSignatureConversionWithDefaultArg: a bool spec given by keyword."""

    def foo(a: Any, training: Any = True) -> Any:
        return sf.cond(training, lambda: a, lambda: -1.0 * a)

    signature = [sf.TensorSpec([], sf.float32), sf.TensorSpec([], sf.bool)]
    defined = sf.function(foo, input_signature=signature)
    a = sf.constant(1.0)
    assert _v(defined(a)) == 1.0
    assert _v(defined(a, training=True)) == 1.0
    assert _v(defined(a, training=False)) == -1.0


def test_defuning_instance_method() -> None:
    """testDefuningInstanceMethod: a tensor default argument."""
    integer = sf.constant(2, sf.int64)

    class Foo:
        def one(self, tensor: Any) -> Any:
            return tensor

        @sf.function
        def two(self, tensor: Any, other: Any = integer) -> Any:
            return self.one(tensor), other

    foo = Foo()
    one, two = foo.two(sf.constant(1.0))
    assert one.numpy() == 1.0
    assert two.numpy() == 2


def test_method_of_a_temporary_instance_raises() -> None:
    """A method looked up on a temporary is bound weakly and the temporary dies before the
    trace runs: scopeflow raises ReferenceError instead of passing ``self=None``."""

    class Foo:
        @sf.function
        def two(self, tensor: Any) -> Any:
            return tensor * 2

    with pytest.raises(ReferenceError, match="keep a reference to the instance"):
        Foo().two(sf.constant(1.0))


def test_defuning_instance_method_with_default_argument() -> None:
    """testDefuningInstanceMethodWithDefaultArgument"""
    integer = sf.constant(2, sf.int64)

    class Foo:
        @sf.function
        def func(self, other: Any = integer) -> Any:
            return other

    foo = Foo()
    assert foo.func().numpy() == 2


def test_python_call_with_side_effects() -> None:
    """testPythonCallWithSideEffects: Python side effects run only while tracing."""
    state: list[int] = []

    @sf.function
    def side_effecting_function() -> None:
        state.append(0)

    side_effecting_function()
    assert state == [0]
    side_effecting_function()
    assert state == [0]
    side_effecting_function.python_function()
    assert state == [0, 0]


def test_function_with_nested_function_call_and_side_effects() -> None:
    """testFunctionWithNestedFunctionCallAndSideEffects"""
    v1 = sf.Variable(1.0)
    v2 = sf.Variable(1.0)

    @sf.function
    def add_one(a: Any) -> None:
        a.assign_add(1.0)

    @sf.function
    def side_effecting_function(a: Any, b: Any) -> Any:
        add_one(a)
        add_one(b)
        return a + b

    assert side_effecting_function(v1, v2).numpy() == 4.0


def test_variable_retracing_on_dtype_changes() -> None:
    """testVariableRetracingOnDtypeChanges"""

    @sf.function
    def defined(a: Any, b: Any) -> Any:
        return a + b

    defined(sf.Variable(0.0), sf.Variable(0.0))
    assert defined.trace_count == 1
    defined(sf.Variable(0), sf.Variable(1))
    assert defined.trace_count == 2


def test_variable_retracing_dtype_shape() -> None:
    """testVariableRetracingDtypeShape"""

    @sf.function
    def defined(a: Any, b: Any) -> Any:
        return a + b

    defined(sf.Variable(0.0), sf.Variable(0.0))
    assert defined.trace_count == 1
    defined(sf.Variable([0.0, 1.0]), sf.Variable([0.0, 1.0]))
    assert defined.trace_count == 2
    defined(sf.Variable([[0.0, 1.0]]), sf.Variable([[0.0, 1.0]]))
    assert defined.trace_count == 3


def test_concrete_function_shape_mismatch() -> None:
    """test_concrete_function_shape_mismatch: a shape mismatch is an error when tracing."""

    @sf.function
    def f(argument_name: Any) -> Any:
        return argument_name + 1.0

    f_concrete = f.get_concrete_function(sf.constant([1.0]))

    @sf.function
    def g() -> None:
        f_concrete(sf.constant([1.0, 2.0]))

    with pytest.raises(ValueError):
        g()


def test_shape_inference_with_symbolic_shapes() -> None:
    """test_shape_inference_with_symbolic_shapes: unknown-shape specs, run-time shapes."""

    @sf.function
    def uses_symbolic_shapes(w: Any, x: Any, y: Any) -> Any:
        x = sf.identity(x, name="name_collision")
        x = sf.transpose(x, [1, 0, 2])
        x_batch = sf.shape(x)[0]
        y_batch = sf.shape(y)[0]
        y *= w
        n = y_batch // x_batch
        return sf.reshape(y, sf.stack([n, x_batch, -1]))

    spec = sf.TensorSpec(None, sf.float32)
    conc = uses_symbolic_shapes.get_concrete_function(spec, spec, spec)

    @sf.function
    def call_concrete() -> Any:
        c = sf.constant(1.0)
        sf.identity(c, name="name_collision")
        output1 = conc(sf.ones([2]), sf.ones([5, 4, 2]), sf.ones([20, 2]))
        output2 = conc(sf.ones([3]), sf.ones([5, 4, 3]), sf.ones([40, 3]))
        return output1, output2

    output1, output2 = call_concrete()
    assert _v(output1).shape == (5, 4, 2)
    assert _v(output2).shape == (10, 4, 3)


def test_concrete_function_with_nested_tensor_inputs() -> None:
    """testConcreteFunctionWithNestedTensorInputs: structured and flat calls."""

    @sf.function
    def f(x: Any, y: Any) -> Any:
        return (x["a"] + x["b"], y[0] + y[1])

    a = sf.constant(1000)
    b = sf.constant(200)
    c = sf.constant(30)
    d = {"a": a, "b": b}
    e = (c, 4)
    spec = sf.TensorSpec((), sf.int32)
    d_spec = {"a": spec, "b": spec}
    e_spec = (spec, 4)
    for cf in [
        f.get_concrete_function(d, e),
        f.get_concrete_function(d, y=e),
        f.get_concrete_function(y=e, x=d),
        f.get_concrete_function(d_spec, e_spec),
        f.get_concrete_function(d_spec, y=e_spec),
        f.get_concrete_function(y=e_spec, x=d_spec),
    ]:
        for output in [cf(d, e), cf(d, y=e), cf(y=e, x=d), cf(a, b, c)]:
            assert isinstance(output, tuple)
            assert len(output) == 2
            assert _v(output[0]) == 1200
            assert _v(output[1]) == 34


def test_concrete_function_with_nested_non_tensor_inputs() -> None:
    """testConcreteFunctionWithNestedNonTensorInputs"""

    @sf.function
    def f(x: Any, y: Any) -> Any:
        return (x["a"] + x["b"], y[0] + y[1])

    a = {"a": sf.constant(1000), "b": sf.constant(200)}
    b = (50, 3)
    for cf in [
        f.get_concrete_function(a, b),
        f.get_concrete_function(a, y=b),
        f.get_concrete_function(x=a, y=b),
    ]:
        for output in [cf(a, b), cf(x=a, y=b)]:
            assert _v(output[0] + output[1]) == 1253


def test_concrete_function_with_bound_nested_non_tensor_inputs() -> None:
    """testConcreteFunctionWithBoundNestedNonTensorInputs"""

    @sf.function
    def f(x: Any, y: Any) -> Any:
        return (x["a"] + x["b"], y[0] + y[1])

    a = {"a": 3000, "b": 200, "c": 9000}
    b = (sf.constant(30), 4)
    for cf in [
        f.get_concrete_function(a, b),
        f.get_concrete_function(a, y=b),
        f.get_concrete_function(x=a, y=b),
    ]:
        for output in [cf(a, b), cf(a, y=b), cf(x=a, y=b)]:
            assert _v(output[0] + output[1]) == 3234


def test_concrete_function_with_all_bound_nested_non_tensor_inputs() -> None:
    """testConcreteFunctionWithAllBoundNestedNonTensorInputs: no tensor arguments at all."""

    @sf.function
    def f(x: Any, y: Any) -> Any:
        return (x["a"] + x["b"], y[0] + y[1])

    a = {"a": 5000, "b": 500}
    b = (50, 5)
    cf = f.get_concrete_function(a, b)
    for output in [cf(), cf(a, b), cf(x=a, y=b)]:
        assert _v(output[0]) + _v(output[1]) == 5555


def test_concrete_function_method_with_varargs() -> None:
    """testConcreteFunctionMethodWithVarargs"""
    scalar = sf.TensorSpec(shape=(), dtype=sf.float32)

    class MyModel(sf.Module):
        @sf.function(input_signature=[scalar, scalar])
        def add(self, *arg: Any) -> Any:
            return sf.add(*arg)

    m = MyModel()
    cf = m.add.get_concrete_function()
    assert _v(cf(-12.0, 3.0)) == -9.0


def test_same_concrete_function_different_kwarg_order() -> None:
    """testSameConcreteFunctionDifferentKwargOrder"""

    @sf.function
    def foo(**kwargs: Any) -> Any:
        return kwargs["a"] + sf.cast(kwargs["b"], sf.float32)

    foo(a=sf.constant(1.0), b=sf.constant(1))
    foo(b=sf.constant(1), a=sf.constant(1.0))
    assert foo.trace_count == 1


def test_empty_input_signatures() -> None:
    """testEmptyInputSignatures: methods with only Python defaults."""

    class Foo:
        @sf.function(input_signature=[])
        def bar_none(self) -> Any:
            return 1

        @sf.function(input_signature=[])
        def bar_two(self, x: Any = 0, y: Any = 1) -> Any:
            return x + y

    foo = Foo()
    assert _v(foo.bar_none()) == 1
    assert _v(foo.bar_two()) == 1


@pytest.mark.parametrize(
    ("conc_args", "conc_kwargs", "call_args", "call_kwargs"),
    [
        pytest.param(lambda: (1, sf.constant(2)), dict, lambda: (1,), dict, id="MissingArg"),
        pytest.param(
            lambda: (1, 2, sf.constant(1.0)), dict, lambda: (1, 2), dict, id="MissingVararg"
        ),
        pytest.param(lambda: (1, 2), dict, lambda: (1, 2, 3), dict, id="ExtraPositionalArg"),
        pytest.param(
            lambda: (1, 2),
            lambda: {"c": sf.constant(1.0)},
            lambda: (1, 2),
            dict,
            id="MissingKeywordOnlyArg",
        ),
        pytest.param(
            lambda: (1, 2),
            dict,
            lambda: (1, 2),
            lambda: {"c": sf.constant(1.0)},
            id="ExtraKeywordArg",
        ),
        pytest.param(
            lambda: ({"a": sf.constant(1), "b": sf.constant(1)},),
            dict,
            lambda: (sf.constant(1), 5),
            dict,
            id="ExpectedDictGotTensor",
        ),
        pytest.param(
            lambda: ((sf.constant(1), sf.constant(2)),),
            dict,
            lambda: (sf.constant(1), 5),
            dict,
            id="ExpectedTupleGotTensor",
        ),
        pytest.param(
            lambda: (sf.constant(1),), dict, lambda: (sf.constant(1.0), 5), dict, id="WrongDType"
        ),
        pytest.param(lambda: (5,), dict, lambda: (8, 5), dict, id="ExpectedIntGotDifferentInt"),
        pytest.param(
            lambda: (5,), dict, lambda: (sf.constant(6), 5), dict, id="ExpectedIntGotTensor"
        ),
        pytest.param(lambda: (1, 2), dict, lambda: (1, 2), lambda: {"x": 3}, id="TwoValues"),
    ],
)
def test_concrete_function_structured_signature_error(
    conc_args: Any, conc_kwargs: Any, call_args: Any, call_kwargs: Any
) -> None:
    """testConcreteFunctionStructuredSignatureError: each raises TypeError (the messages
    are scopeflow's)."""

    @sf.function
    def func(x: Any, y: Any = 5, *varargs: Any, **kwargs: Any) -> Any:
        del y, varargs, kwargs
        return x

    conc = func.get_concrete_function(*conc_args(), **conc_kwargs())
    with pytest.raises(TypeError):
        conc(*call_args(), **call_kwargs())


def test_concrete_function_converts_python_numbers() -> None:
    """A Python number (or list, in a namedtuple or dict) where the trace has a tensor is
    converted to the trace's dtype; one that does not fit is refused."""
    pair = collections.namedtuple("pair", ["a", "b"])

    @sf.function
    def f(p: Any, d: Any, n: Any) -> Any:
        return p.a + p.b + d["k"] + n

    one = sf.constant(1.0)
    cf = f.get_concrete_function(pair(one, one), {"k": one}, 3)
    assert _v(cf(pair(1.0, 2), {"k": 3}, 3)) == 9.0
    assert _v(cf(p=pair(1.0, 2), d={"k": 3}, n=3)) == 9.0
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cf(pair(1.0, 2), {"k": 3.0}, 4)  # a Python value baked into the trace differs

    @sf.function
    def g(x: Any) -> Any:
        return x * 2

    cg = g.get_concrete_function(sf.constant(1))
    assert _v(cg(np.int32(4))) == 8
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cg(1.5)  # a float does not fit an int32 input
    with pytest.raises(TypeError, match="traced for arguments structured as"):
        cg(2**40)  # nor does an int beyond int32
    assert g.trace_count == 1


def test_input_signature_default_of_a_covered_parameter() -> None:
    """A parameter covered by the input_signature and left out takes its default,
    converted to the spec; with no default it is still an error."""

    @sf.function(input_signature=[sf.TensorSpec([], sf.float32), sf.TensorSpec([], sf.float32)])
    def f(a: Any, b: Any = 2) -> Any:
        return a * b

    assert _v(f(sf.constant(3.0))) == 6.0
    assert _v(f(3.0, 4.0)) == 12.0
    assert _v(f(a=3.0)) == 6.0
    assert f.trace_count == 1
    with pytest.raises(TypeError, match="missing the tensor argument 'a'"):
        f(b=1.0)


def _dummy_decorator(method: Any) -> Any:
    """An ordinary decorator that keeps the signature (functools.wraps)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return method(*args, **kwargs)

    return wrapper


def test_concrete_function_ambiguous_signature() -> None:
    """testConcreteFunctionAmbiguousSignature: the structured signature wins."""

    @sf.function
    def f(x: Any, y: Any) -> Any:
        return x * 10 + y

    conc = f.get_concrete_function(
        x=sf.TensorSpec(None, sf.int32, name="y"), y=sf.TensorSpec(None, sf.int32, name="x")
    )
    assert _v(conc(x=sf.constant(5), y=sf.constant(6))) == 56


def test_indexed_slices_as_gradients_for_concrete_functions() -> None:
    """testIndexedSlicesAsGradientsForConcreteFunctions: gather after a nested call."""

    @sf.function
    def summing_rnn(inputs: Any) -> Any:
        return sf.reduce_sum(inputs, axis=1)

    @sf.function
    def gradients(inputs: Any) -> Any:
        with sf.GradientTape() as tape:
            tape.watch(inputs)
            hidden = summing_rnn(inputs)
            hidden = sf.gather(hidden, sf.constant([0]))
            loss = sf.reduce_mean(hidden)
        return tape.gradient(loss, inputs)

    np.testing.assert_array_equal(gradients(sf.constant([[[1.0], [2.0]]])), [[[1.0], [1.0]]])


def test_with_extra_wrapper() -> None:
    """testWithExtraWrapper"""

    class Foo(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.var = None

        @sf.function
        @_dummy_decorator
        def add(self, x: Any, y: Any, z: Any = 1) -> Any:
            if self.var is None:
                return x + y + z
            return None

    foo = Foo()
    assert foo.add(2, 3).numpy() == 6


@pytest.mark.parametrize(
    ("decorator1", "decorator2"),
    [
        (sf.function, _dummy_decorator),
        (_dummy_decorator, sf.function),
        (sf.function, sf.function),
    ],
)
def test_with_extra_wrapper_redundant_args(decorator1: Any, decorator2: Any) -> None:
    """testWithExtraWrapperRedundantArgs"""

    class Foo(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.var = None

        @decorator1
        @decorator2
        def add1(self, x: Any, y: Any) -> Any:
            return x + y

    foo = Foo()
    with pytest.raises(TypeError, match="multiple values for argument"):
        foo.add1(2, x=3)


def test_with_extra_wrapper_missing_args() -> None:
    """testWithExtraWrapperMissingArgs"""
    # Message difference: scopeflow words a missing argument as a plain Python call does
    # ("missing 1 required positional argument: 'y'"); TensorFlow quotes inspect's bind
    # ("missing a required argument: 'y'").

    class Foo(sf.Module):
        @sf.function
        @_dummy_decorator
        def add1(self, x: Any, y: Any) -> Any:
            return x + y

        @sf.function
        @sf.function
        def add3(self, x: Any, y: Any) -> Any:
            return x + y

    foo = Foo()
    for method in (foo.add1, foo.add3):
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'y'"):
            method(2)
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
            method(y=2)


def test_missing_args_tf_functioned_method() -> None:
    """testMissingArgsTfFunctionedMethod"""

    class A:
        def func(self, position_arg1: Any, position_arg2: Any) -> Any:
            return position_arg1, position_arg2

        @sf.function
        def decorated_method(self, position_arg1: Any, position_arg2: Any) -> Any:
            return position_arg1, position_arg2

    a_instance = A()
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        sf.function(a_instance.func)(position_arg2="foo")
    decorated = sf.function(a_instance.decorated_method)
    decorated(position_arg1=1.0, position_arg2=2.0)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        decorated(position_arg2="bar")


def test_missing_args_tf_functioned_object() -> None:
    """testMissingArgsTfFunctionedObject: a callable object."""

    class A:
        def __call__(self, position_arg1: Any, position_arg2: Any) -> Any:
            return position_arg1, position_arg2

    tf_func_obj = sf.function(A())
    tf_func_obj(position_arg1=1, position_arg2=2)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        tf_func_obj(position_arg2="bar")


def test_missing_args_tf_functioned_functions() -> None:
    """testMissingArgsTfFunctionedFunctions"""

    def func_pos(position_arg1: Any, position_arg2: Any) -> Any:
        return position_arg1, position_arg2

    def func_with_default(position_arg: Any, named_arg: Any = None) -> Any:
        return position_arg, named_arg

    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        sf.function(func_pos)(position_arg2="foo")
    with_default = sf.function(func_with_default)
    with_default(position_arg=1.0)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        with_default(named_arg="foo")


def test_shape_inference_propagate_const_nested_stack() -> None:
    """testShapeInferencePropagateConstNestedStack: a constant argument of a nested call.

    Difference (not fixed): TensorFlow re-infers the nested call's output shape from its
    constant inputs, (3, 5); scopeflow's call op has its trace's static shape, here
    (None, None). The values agree.
    """

    @sf.function(
        input_signature=[sf.TensorSpec((None, None), sf.int32), sf.TensorSpec((), sf.int32)]
    )
    def f(x: Any, s: Any) -> Any:
        old_shape = sf.shape(x)
        new_shape = sf.stack([old_shape[0], s], axis=0)
        return sf.ones(shape=new_shape, dtype=sf.int32)

    shapes = []

    @sf.function(input_signature=[sf.TensorSpec(shape=(3, 6), dtype=sf.int32)])
    def g(x: Any) -> Any:
        y = f(x, s=5)
        shapes.append(y.shape)
        return y

    np.testing.assert_array_equal(g(sf.zeros([3, 6], dtype=sf.int32)), np.ones([3, 5]))
    assert shapes == [(None, None)]


def test_shape_inference_propagate_const_nested_concat() -> None:
    """testShapeInferencePropagateConstNestedConcat (static shape: see the test above)"""
    scalar = sf.TensorSpec((), sf.int32)

    @sf.function(input_signature=[scalar, scalar, scalar])
    def f(d1: Any, d2: Any, d3: Any) -> Any:
        new_shape = sf.concat([[d1], [d2], [d3]], axis=-1)
        return sf.ones(shape=new_shape, dtype=sf.int32)

    shapes = []

    @sf.function
    def g() -> Any:
        y = f(1, 2, 3)
        shapes.append(y.shape)
        return y

    np.testing.assert_array_equal(g(), np.ones([1, 2, 3]))
    assert shapes == [(None, None, None)]


def test_control_dependency_after_inline() -> None:
    """testControlDependencyAfterInline: nested calls that write run in program order."""
    v = sf.Variable(0.0)

    @sf.function
    def assign() -> Any:
        return v.assign(1.0)

    @sf.function
    def assign_add() -> Any:
        return v.assign_add(1.0)

    @sf.function
    def f() -> None:
        sf.debugging.assert_equal(assign(), 1.0)
        sf.debugging.assert_equal(assign_add(), 2.0)

    for _ in range(30):
        f()


def test_read_in_func_write_outside() -> None:
    """testReadInFuncWriteOutside: a nested call's read comes before the later write."""
    for _ in range(30):
        v = sf.Variable(1.0)

        @sf.function
        def add_one() -> Any:
            return v + 1.0  # noqa: B023 - each iteration's function uses its own v

        @sf.function
        def get_v_plus_one() -> Any:
            v_plus_one = add_one()
            v.assign_add(2.0)  # noqa: B023
            return v_plus_one

        assert _v(get_v_plus_one()) == 2.0


def test_function_multiple_variable_initializer() -> None:
    """testFunctionMultipleVariableInitializer"""
    state: list[Any] = []

    @sf.function
    def fn(x: Any) -> Any:
        if not state:
            state.append(sf.Variable(lambda: 2.0))
            state.append(sf.Variable(lambda: 5.0))
        return state[0] * x, state[1] * x

    assert [float(_v(t)) for t in fn(sf.constant(1.0))] == [2.0, 5.0]


def test_method_not_allow_dynamic_variable() -> None:
    """testMethodNotAllowDynamicVariable: a later trace that creates a variable raises.

    TensorFlow traces twice on the first call (trace_count 2, then 3); scopeflow once.
    """

    class Foo:
        def __init__(self) -> None:
            self._flag_keyed_vars: dict[bool, Any] = {}
            self.trace_count = 0

        def __call__(self, var_creation_flag: bool) -> Any:
            self.compute(var_creation_flag)
            return self._flag_keyed_vars[var_creation_flag]

        @sf.function
        def compute(self, var_creation_flag: bool) -> None:
            self.trace_count += 1
            if var_creation_flag not in self._flag_keyed_vars:
                value = 1.0 if var_creation_flag else 2.0
                self._flag_keyed_vars[var_creation_flag] = sf.Variable(value)

    foo = Foo()
    assert _v(foo(True)) == 1.0
    assert foo.trace_count == 1
    assert _v(foo(True)) == 1.0
    assert foo.trace_count == 1
    with pytest.raises(ValueError, match="first"):
        foo(False)
    assert foo.trace_count == 2


def test_complicated_partial_with_defaults() -> None:
    """test_complicated_partial_with_defaults"""
    seen = []

    def identity(*args: Any) -> Any:
        return args

    def dynamic_unroll(
        core_fn: Any,
        input_sequence: Any,
        initial_state: Any,
        sequence_length: Any = None,
        parallel_iterations: Any = 1,
        swap_memory: Any = False,
    ) -> Any:
        del core_fn
        seen.append((sequence_length, parallel_iterations, swap_memory))
        return input_sequence, initial_state

    func = sf.function(functools.partial(dynamic_unroll, identity, swap_memory=True))
    func(sf.random.uniform([1, 1, 1]), sf.random.uniform([1, 1]))
    assert seen == [(None, 1, True)]


def test_input_signature_missing_tensor_specs_function() -> None:
    """testInputSignatureMissingTensorSpecsFunction (and ...Lambda, ...Method): a required
    parameter the input_signature does not cover is an error; a defaulted one is not."""
    dec = sf.function(input_signature=(sf.TensorSpec([], sf.int32),))

    def f1(arg1: Any, arg2: Any, arg3: Any) -> None:
        pass

    def f5(arg1: Any, arg2: Any, arg3: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def f6(arg1: Any, arg4: Any = 4, **kwargs: Any) -> Any:
        return arg1 + arg4

    for f in (f1, f5, lambda ar1, arg2, arg3: None):
        with pytest.raises(TypeError):
            dec(f)(1, 2, 3)
    assert dec(f6)(1).numpy() == 5
    assert dec(lambda arg1, arg4=4, **kwargs: arg1 + arg4)(1).numpy() == 5


def test_input_signature_partial_func_missing_tensor_specs() -> None:
    """testInputSignaturePartialFuncMissingTensorSpecs (function case)"""

    def f(arg1: Any, arg2: Any, arg3: Any, arg4: Any = 4) -> Any:
        return arg1 + arg2 + arg3 + arg4

    dec = sf.function(input_signature=(sf.TensorSpec([], sf.int32),))
    with pytest.raises(TypeError):
        dec(functools.partial(f, 1))(2, 3)
    with pytest.raises(TypeError):
        dec(functools.partial(f, arg4=5))(1, 2, 3)
    assert _v(dec(functools.partial(f, 1, 2, arg4=5))(3)) == 11


def test_error_message_when_graph_tensor_is_passed_to_eager_out_of_scope() -> None:
    """testSymbolicTensorIllegalCaptureCallTimeError: a tensor leaked from one trace and
    used in another is out of scope."""
    leaked: list[Any] = []

    @sf.function
    def f1(a: Any) -> Any:
        leaked.append(a)
        return a

    @sf.function
    def f2(b: Any) -> Any:
        return b + leaked[0]

    f1(sf.constant(1))
    # Difference: TensorFlow raises TypeError ("out of scope"); scopeflow raises
    # sf.errors.TracingError (a RuntimeError) saying the tensor escaped f1's trace.
    with pytest.raises(sf.errors.TracingError, match="escaped"):
        f2(sf.constant(2))


def test_non_unique_names_get_concrete_function() -> None:
    """testNonUniqueNamesGetConcreteFunction: flat inputs named x, x_1, x_2 in TF.

    Difference: scopeflow names a nested argument's placeholders after the argument and
    the leaf's index (x_0, x_1, x_2), so the flat keywords differ; the flat positional
    call is the same.
    """

    @sf.function
    def non_unique_arg_names(x: Any, **kwargs: Any) -> Any:
        a, b, c = x
        return a + b + c + kwargs["d"]

    spec = sf.TensorSpec(None, sf.float32)
    concrete = non_unique_arg_names.get_concrete_function((spec, spec, spec), d=spec)
    one, two, three, four = (sf.constant(v) for v in (1.0, 2.0, 3.0, 4.0))
    np.testing.assert_allclose(concrete(x_0=one, x_1=two, x_2=three, d=four), 10.0)
    np.testing.assert_allclose(concrete(one, two, three, four), 10.0)


def test_variable_update() -> None:
    """testVariableUpdate

    Difference (not fixed): TensorFlow keys a variable argument by dtype and shape, so v2
    reuses v1's trace; scopeflow keys a variable argument by identity (the trace captures
    that variable), so every new variable traces again.
    """
    v1 = sf.Variable(1.0)
    v2 = sf.Variable(2.0)
    v3 = sf.Variable(4, dtype=sf.int32)
    trace_count = [0]

    @sf.function
    def double_variable(x: Any) -> None:
        trace_count[0] += 1
        x.assign_add(x.read_value())

    assert trace_count[0] == 0
    double_variable(v1)
    assert trace_count[0] == 1
    assert _v(v1) == 2.0
    double_variable(v2)
    assert trace_count[0] == 2  # TensorFlow: 1
    assert _v(v2) == 4.0
    double_variable(v3)
    assert trace_count[0] == 3  # TensorFlow: 2
    assert _v(v3) == 8


def test_cache_within_save_context() -> None:
    """testCacheWithinSaveContext (first part: equal arguments reuse the trace)."""

    @sf.function
    def func(x: Any) -> Any:
        return 2 * x

    assert func.get_concrete_function(sf.constant(2.0)) is func.get_concrete_function(
        sf.constant(2.0)
    )


def test_lift_placeholder_initialized_variable() -> None:
    """testLiftPlaceholderInitializedVariable (not ported: a placeholder initial value is
    refused inside a function; see test_variable_initializer_not_constant)."""
    with sf.Graph().as_default():
        var_list: list[Any] = []

        @sf.function
        def use_variable() -> Any:
            if not var_list:
                var_list.append(sf.Variable(sf.placeholder(shape=[], dtype=sf.float32)))
            return var_list[0] + 1.0

        with pytest.raises(ValueError):
            use_variable()


def test_get_concrete_function_graph_lifetime() -> None:
    """testGetConcreteFunctionGraphLifetime"""

    @sf.function
    def func() -> None:
        pass

    graph = func.get_concrete_function().graph
    del func
    assert graph.captures == []


def test_frequent_retracing_warning() -> None:
    """test_frequent_retracing_warning: the fifth trace of a function warns once.

    Documented difference: a Python warning (sf.RetracingWarning) instead of a log.
    """

    @sf.function
    def f(x: Any) -> Any:
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(1, 5):
            f(i)
        assert caught == []
        f(5)
    assert [w.category for w in caught] == [sf.RetracingWarning]


def test_frequent_retracing_warning_method() -> None:
    """test_frequent_retracing_warning_method"""

    class Foo:
        @sf.function
        def f(self, x: Any) -> Any:
            return x

    foo = Foo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(1, 6):
            foo.f(i)
    assert [w.category for w in caught] == [sf.RetracingWarning]


def test_frequent_retracing_warning_two_independent_functions() -> None:
    """test_frequent_retracing_warning_two_independent_tf_functions"""

    @sf.function
    def f(x: Any) -> Any:
        return x

    @sf.function
    def g(x: Any) -> Any:
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(1, 5):
            f(i)
        for i in range(1, 6):
            g(i)
    assert [w.category for w in caught] == [sf.RetracingWarning]


def test_frequent_retracing_warning_nested() -> None:
    """test_frequent_retracing_warning_nested"""

    @sf.function
    def inner(x: Any) -> Any:
        return x + 1

    @sf.function
    def outer1(x: Any) -> Any:
        return inner(x) * 2

    @sf.function
    def outer2(x: Any) -> Any:
        return inner(x) * 3

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(1, 5):
            inner(i)
        for i in range(5, 9):
            outer1(i)
        for i in range(9, 13):
            outer2(i)
        assert caught == []
        outer2(13)
    assert [w.category for w in caught] == [sf.RetracingWarning]


def test_experimental_get_tracing_count_function() -> None:
    """test_experimental_get_tracing_count_function (``trace_count`` here)."""

    @sf.function
    def double(a: Any) -> Any:
        return a + a

    double(sf.constant(1))
    double(sf.constant(2))
    assert double.trace_count == 1
    double(sf.constant(1.5))
    assert double.trace_count == 2


def test_experimental_get_tracing_count_method() -> None:
    """test_experimental_get_tracing_count_method: counted per instance."""

    class TestClass:
        @sf.function
        def test_double(self, a: Any) -> Any:
            return a + a

    obj1 = TestClass()
    obj1.test_double(sf.constant(1))
    obj1.test_double(sf.constant(2))
    obj1.test_double(sf.constant(1.1))
    assert obj1.test_double.trace_count == 2
    obj2 = TestClass()
    obj2.test_double(sf.constant(1))
    obj2.test_double(sf.constant(1.1))
    obj2.test_double(sf.constant(1, sf.int64))
    assert obj2.test_double.trace_count == 3
    assert obj1.test_double.trace_count == 2


def test_tensor_shape_casted_to_specific() -> None:
    """test_tensor_shape_casted_to_specific: an unknown shape passed to a specific spec."""
    shapes = []

    @sf.function(input_signature=[sf.TensorSpec([1])])
    def specific(x: Any) -> Any:
        shapes.append(x.shape)
        return x

    @sf.function(input_signature=[sf.TensorSpec(None)])
    def general(x: Any) -> Any:
        return specific(x)

    assert general(sf.constant([1.0])).numpy() == 1.0
    assert shapes == [(1,)]


def test_recursive_tf_function() -> None:
    """test_recursive_tf_function: recursion on Python values.

    Deliberate difference (tests/test_function.py): TensorFlow traces each depth as a new
    trace; scopeflow refuses a function that calls itself while being traced (a new trace
    of a function whose trace is unfinished could wait on it for variables). Recursion
    through plain Python functions inside one trace works (the tests below).
    """

    @sf.function
    def recursive_fn(n: int) -> Any:
        if n > 0:
            return recursive_fn(n - 1)
        return 1

    with pytest.raises(RuntimeError, match="called itself while being traced"):
        recursive_fn(5)


def test_recursive_tf_function_with_gradients() -> None:
    """test_recursive_tf_function_with_gradients (refused: see the test above)"""

    @sf.function
    def recursive_fn(n: int, x: Any) -> Any:
        if n > 0:
            return n * recursive_fn(n - 1, x)
        return x

    x = sf.Variable(1.0)
    with sf.GradientTape(), pytest.raises(RuntimeError, match="called itself"):
        recursive_fn(5, x)


def test_recursive_python_function_with_gradients() -> None:
    """test_recursive_python_function_with_gradients"""

    def recursive_py_fn(n: int, x: Any) -> Any:
        if n > 0:
            return n * recursive_py_fn(n - 1, x)
        return x

    @sf.function
    def recursive_fn(n: int, x: Any) -> Any:
        return recursive_py_fn(n, x)

    x = sf.Variable(1.0)
    with sf.GradientTape() as tape:
        g = recursive_fn(5, x)
    assert tape.gradient(g, x).numpy() == 120


def test_recursive_tf_function_call_each_other_with_gradients() -> None:
    """test_recursive_tf_function_call_each_other (and ..._with_gradients): refused as
    recursion (see test_recursive_tf_function)."""

    @sf.function
    def recursive_fn1(n: int, x: Any) -> Any:
        if n <= 1:
            return x
        return n * recursive_fn2(n - 1, x)

    @sf.function
    def recursive_fn2(n: int, x: Any) -> Any:
        if n <= 1:
            return 2 * x
        return n * recursive_fn1(n - 1, x)

    x = sf.Variable(1.0)
    with pytest.raises(RuntimeError, match="called itself"):
        recursive_fn1(5, x)
    with pytest.raises(RuntimeError, match="called itself"):
        recursive_fn2(5, x)


def test_recursive_tf_function_with_cond() -> None:
    """test_recursive_tf_function_with_cond: unbounded recursion on a tensor fails.

    TensorFlow raises RecursionError; scopeflow detects the function tracing itself.
    """

    @sf.function
    def recursive_fn(n: Any) -> Any:
        return sf.cond(n > 0, lambda: recursive_fn(n - 1), lambda: sf.constant(1))

    with pytest.raises((RecursionError, RuntimeError)):
        recursive_fn(sf.constant(5))


def test_nested_call_watched_variables() -> None:
    """testNestedCallWatchedVariables: variables read in nested calls are watched."""
    v = sf.Variable(4.0)

    @sf.function
    def f() -> Any:
        return v**2.0

    @sf.function
    def g() -> Any:
        return f()

    @sf.function
    def h() -> Any:
        return g()

    for fn in (f, g, h):
        with sf.GradientTape() as tape:
            fn()
        watched = tape.watched_variables()
        assert len(watched) == 1
        assert watched[0] is v


def test_retracing_warning_counts_eager_calls_only() -> None:
    """Calls made while building a graph (a plain graph here) do not count towards the
    retracing warning; eager calls still do."""

    @sf.function
    def f(x: Any) -> Any:
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sf.Graph().as_default():
            for i in range(8):
                f(i)
        assert caught == []
        for i in range(5):
            f(i)
    assert [w.category for w in caught] == [sf.RetracingWarning]
