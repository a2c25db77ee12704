"""Scenarios from TensorFlow's tests of model state.

Sources: ``tensorflow/python/ops/resource_variable_ops_test.py`` (variables),
``tensorflow/python/module/module_test.py`` (``tf.Module``), the Keras SGD/momentum and
Adam optimizer tests (update formulas checked against their NumPy references, slot names),
and ``tensorflow/python/checkpoint/checkpoint_test.py`` (save, restore, latest_checkpoint,
load status). Each test names the TensorFlow test it follows; the expected values are what
TensorFlow 2 returns or raises, the code is written for pytest and scopeflow.

Not ported (scopeflow has no such feature): sparse updates (``scatter_*``, ``IndexedSlices``
gradients), variable constraints, aggregation/synchronization, distributed and TPU
variables, ``_TF_MODULE_IGNORED_PROPERTIES``, ``Module._flatten``, AMSGrad, optimizer
``get_config``/``minimize``, ``CheckpointManager`` and deferred (delayed) restoration.
"""

from __future__ import annotations

import abc
import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scopeflow as sf

# -- variables (resource_variable_ops_test.py) ----------------------------------------------


def test_assign_add_method() -> None:
    """testAssignAddMethod / testAssignSubMethod: the methods update and return the value."""
    v = sf.Variable(1.0, name="var0")
    assert float(v.assign_add(1.0)) == 2.0
    assert float(v.numpy()) == 2.0
    assert float(v.assign_sub(1.5)) == 0.5
    assert float(v.read_value()) == 0.5


def test_assign_method_returns_new_value() -> None:
    """testAssignMethod: ``assign`` returns the value just written."""
    v = sf.Variable([1.0, 2.0])
    out = v.assign([3.0, 4.0])
    np.testing.assert_array_equal(np.asarray(out), [3.0, 4.0])
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])


def test_init_fn() -> None:
    """testInitFn: a callable initial value is called; ``dtype`` converts its result."""
    v = sf.Variable(lambda: 1, dtype=sf.float32)
    assert v.dtype == np.float32
    assert float(v.numpy()) == 1.0


def test_init_fn_dtype_default() -> None:
    """testInitFnDtype: without ``dtype`` the callable's value keeps its own dtype."""
    assert sf.Variable(lambda: 1).dtype == np.int32
    assert sf.Variable(lambda: 1.0).dtype == np.float32
    assert sf.Variable(lambda: np.float64(1.0)).dtype == np.float64


def test_variable_shape() -> None:
    """testVariableShape: the shape is the initial value's."""
    v = sf.Variable([1, 2, 3])
    assert tuple(v.shape) == (3,)
    assert tuple(sf.Variable([[1.0], [2.0]]).shape) == (2, 1)
    assert tuple(sf.Variable(1.0).shape) == ()


def test_dtypes_of_python_values() -> None:
    """testCreateRead / dtype inference: Python ints are int32, floats float32, bools bool."""
    assert sf.Variable(1).dtype == np.int32
    assert sf.Variable(1.0).dtype == np.float32
    assert sf.Variable(True).dtype == np.bool_
    assert sf.Variable(np.array([1, 2], np.int64)).dtype == np.int64


def test_bool_variable() -> None:
    """testBoolVariable: a bool variable reads and assigns bools."""
    v = sf.Variable(True)
    v.assign(False)
    assert v.numpy().dtype == np.bool_
    assert not bool(v.numpy())


def test_assign_incompatible_shape() -> None:
    """testAssignIncompatibleShape: assigning a value of another shape raises ValueError."""
    v = sf.Variable([0, 1, 2, 3])
    with pytest.raises(ValueError):
        v.assign([0, 1, 2])
    with pytest.raises(ValueError):
        v.assign_add([[1, 1, 1, 1]])
    np.testing.assert_array_equal(v.numpy(), [0, 1, 2, 3])


def test_assign_python_value_takes_variable_dtype() -> None:
    """testAssignDtypeConversion: Python numbers are converted to the variable's dtype."""
    v = sf.Variable(1.0, dtype=sf.float64)
    v.assign(2)
    assert v.numpy().dtype == np.float64
    assert float(v.numpy()) == 2.0
    i = sf.Variable(1, dtype=sf.int64)
    i.assign_add(2)
    assert i.numpy().dtype == np.int64
    assert int(i.numpy()) == 3


def test_assign_tensor_of_other_dtype_raises() -> None:
    """testAssignDifferentDtype: a tensor of another dtype is refused, nothing changes.

    TensorFlow raises ValueError (from ``convert_to_tensor(value, dtype=self.dtype)``);
    scopeflow raises TypeError for a dtype mismatch. Both are accepted here.
    """
    v = sf.Variable(1.0)
    with pytest.raises((TypeError, ValueError)):
        v.assign(sf.constant(2, dtype=sf.int32))
    assert float(v.numpy()) == 1.0


def test_trainable() -> None:
    """testVariableTrainable: ``trainable`` defaults to True and is kept."""
    assert sf.Variable(1.0).trainable
    assert not sf.Variable(1.0, trainable=False).trainable


def test_eager_names_are_not_uniquified() -> None:
    """testEagerName: eager variables keep their name, ``:0`` added; two may share it."""
    a = sf.Variable(1.0, name="foo")
    b = sf.Variable(2.0, name="foo")
    assert a.name == "foo:0"
    assert b.name == "foo:0"
    assert sf.Variable(1.0).name == "Variable:0"


def test_name_under_name_scope() -> None:
    """testVariableNameUnderNameScope: the enclosing name scope prefixes the name."""
    with sf.name_scope("outer"):
        with sf.name_scope("inner"):
            v = sf.Variable(1.0, name="v")
    assert v.name == "outer/inner/v:0"


def test_graph_names_are_uniquified() -> None:
    """testGraphName: in a graph two variables of one name get distinct op names."""
    with sf.Graph().as_default():
        a = sf.Variable(1.0, name="foo")
        b = sf.Variable(1.0, name="foo")
    assert a.name == "foo:0"
    assert b.name == "foo_1:0"


def test_numpy_and_array_protocol() -> None:
    """testNumpy / testToFromNumpy: ``numpy()`` and ``np.asarray`` give the value."""
    v = sf.Variable([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(v.numpy(), [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(v), v.numpy())
    assert v.numpy().dtype == np.float32


def test_operator_overloads() -> None:
    """testOperatorOverload: a variable works in arithmetic, indexing and comparisons."""
    v = sf.Variable([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(v + 1.0), [2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(2.0 * v), [2.0, 4.0])
    np.testing.assert_array_equal(np.asarray(-v), [-1.0, -2.0])
    assert float(v[1]) == 2.0
    np.testing.assert_array_equal(np.asarray(v > 1.5), [False, True])
    np.testing.assert_array_equal(np.asarray(v == sf.constant([1.0, 0.0])), [True, False])


def test_abs_operator() -> None:
    """testOperatorOverload (``__abs__``): ``abs()`` of a variable or tensor is ``sf.abs``."""
    np.testing.assert_array_equal(np.asarray(abs(sf.Variable([-1.0, 2.0]))), [1.0, 2.0])
    assert int(abs(sf.Variable(-3))) == 3
    assert float(abs(sf.constant(-2.5))) == 2.5
    with sf.Graph().as_default():
        t = abs(sf.constant([-2.0]))
        assert t.op.type == "Abs"
        with sf.Session() as sess:
            np.testing.assert_array_equal(sess.run(t), [2.0])
    x = sf.Variable([-3.0, 4.0])
    with sf.GradientTape() as tape:
        y = sf.reduce_sum(abs(x))
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, x)), [-1.0, 1.0])


def test_variable_is_unhashable_use_ref() -> None:
    """testHashable (TF 2): ``==`` is element-wise, so hashing raises; ``ref()`` is the key."""
    v = sf.Variable(1.0)
    with pytest.raises(TypeError):
        hash(v)
    table = {v.ref(): 1}
    assert table[v.ref()] == 1
    assert v.ref().deref() is v


def test_deep_copy_is_independent() -> None:
    """testDeepcopy (eager): a deep copy has the value and is a new variable."""
    v = sf.Variable([1.0, 2.0], name="orig")
    c = copy.deepcopy(v)
    assert c is not v
    np.testing.assert_array_equal(c.numpy(), [1.0, 2.0])
    v.assign([5.0, 6.0])
    np.testing.assert_array_equal(c.numpy(), [1.0, 2.0])


def test_initial_value_is_copied() -> None:
    """testInitializeFromArray: later changes to the NumPy array do not reach the variable."""
    arr = np.array([1.0, 2.0], np.float32)
    v = sf.Variable(arr)
    arr[0] = 9.0
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])


def test_read_and_assign_in_function() -> None:
    """testReadValueInFunction / testAssignInFunction: traced reads see the latest value."""
    v = sf.Variable(1.0)

    @sf.function
    def step() -> Any:
        v.assign_add(1.0)
        return v.read_value()

    assert float(step()) == 2.0
    assert float(step()) == 3.0
    assert float(v.numpy()) == 3.0
    assert step.trace_count == 1


def test_variable_created_in_function_once() -> None:
    """testCreateVariableInFunction: a variable made on the first trace is made once."""
    holder: list[Any] = []

    @sf.function
    def f(x: Any) -> Any:
        if not holder:
            holder.append(sf.Variable(2.0))
        return holder[0] * x

    assert float(f(sf.constant(3.0))) == 6.0
    assert float(f(sf.constant(4.0))) == 8.0
    assert len(holder) == 1
    assert holder[0].graph is None  # lifted out of the function graph (eager)


def test_variable_created_on_every_call_raises() -> None:
    """testVariableCreationInEveryCall: a function creating a new variable each trace fails.

    TensorFlow traces twice on the first call and raises there already; scopeflow lets
    the first trace create it (lifted out, made once; docs/getting-started.md "Variables,
    and state created once") and raises ValueError when a later trace would create one.
    """

    @sf.function
    def f(x: Any) -> Any:
        v = sf.Variable(1.0)
        return v * x

    assert float(f(sf.constant(2.0))) == 2.0
    with pytest.raises(ValueError, match="first trace"):
        f(sf.constant([1.0, 2.0]))  # a retrace would create another variable


def test_python_conversions_read_the_value() -> None:
    """BaseResourceVariable.__bool__/__float__/__int__/__complex__ and Variable.__iter__.

    TensorFlow's variables convert eagerly by reading their value (testBool, testIter);
    in a graph or a trace they raise TypeError like a symbolic tensor.
    """
    assert not bool(sf.Variable(False))
    assert bool(sf.Variable(True))
    assert not sf.Variable(0.0)
    assert float(sf.Variable(2.5)) == 2.5
    assert int(sf.Variable(7)) == 7
    assert int(sf.Variable(np.int64(2**40))) == 2**40
    assert complex(sf.Variable(2.0)) == 2 + 0j
    assert [int(x) for x in sf.Variable([1, 2, 3])] == [1, 2, 3]
    rows = list(sf.Variable([[1.0, 2.0], [3.0, 4.0]]))
    assert len(rows) == 2
    np.testing.assert_array_equal(np.asarray(rows[1]), [3.0, 4.0])
    with pytest.raises(ValueError):
        bool(sf.Variable([1.0, 2.0]))  # ambiguous, as for a tensor
    with pytest.raises(TypeError):
        list(sf.Variable(1.0))  # a scalar cannot be iterated
    with pytest.raises(TypeError):
        float(sf.Variable([1.0, 2.0]))


def test_python_conversions_in_graph_and_function_raise() -> None:
    """In a graph or a trace the value is unknown: conversions raise TypeError, as in TF."""
    with sf.Graph().as_default():
        g = sf.Variable(1.0)
        for convert in (bool, float, int, list):
            with pytest.raises(TypeError):
                convert(g)
    w = sf.Variable(1.0)

    @sf.function
    def f() -> Any:
        return float(w)

    with pytest.raises(TypeError):
        f()


def test_assign_read_value_false() -> None:
    """testAssignNoReadValue / use_locking: ``read_value=False`` returns the op, not a value.

    Eagerly TensorFlow returns None; in a graph the write's operation.
    """
    v = sf.Variable([1.0, 2.0])
    assert v.assign([3.0, 4.0], read_value=False) is None
    assert v.assign_add([1.0, 1.0], read_value=False, use_locking=True) is None
    assert v.assign_sub([0.5, 0.5], read_value=False) is None
    np.testing.assert_array_equal(v.numpy(), [3.5, 4.5])
    np.testing.assert_array_equal(np.asarray(v.assign([1.0, 1.0], use_locking=True)), [1, 1])
    with sf.Graph().as_default():
        g = sf.Variable(1.0)
        op = g.assign_add(2.0, read_value=False)
        assert isinstance(op, sf.Operation)
        with sf.Session() as sess:
            sess.run(g.initializer)
            sess.run(op)
            assert float(sess.run(g.read_value())) == 3.0
    w = sf.Variable(1.0)

    @sf.function
    def step() -> Any:
        w.assign_add(1.0, read_value=False)
        return w.read_value()

    assert float(step()) == 2.0
    assert float(step()) == 3.0


def test_init_scope_variable_is_eager() -> None:
    """testInitScope: a variable made in init_scope inside a function is eager."""
    made: list[Any] = []

    @sf.function
    def f() -> Any:
        if not made:
            with sf.init_scope():
                assert sf.executing_eagerly()
                made.append(sf.Variable(5.0))
        return made[0] + 1.0

    assert float(f()) == 6.0
    assert made[0].graph is None


def test_uninitialized_variable_in_graph() -> None:
    """testUninitializedVariable (graph): reading before the initializer runs fails."""
    with sf.Graph().as_default():
        v = sf.Variable([1.0, 2.0])
        with sf.Session() as sess:
            with pytest.raises(sf.errors.FailedPreconditionError):
                sess.run(v.read_value())
            sess.run(v.initializer)
            np.testing.assert_array_equal(sess.run(v.read_value()), [1.0, 2.0])


def test_graph_assign_add() -> None:
    """testAssignAdd (graph): the assign op runs in a session, state kept between runs."""
    with sf.Graph().as_default():
        v = sf.Variable(1, name="counter")
        inc = v.assign_add(1)
        with sf.Session() as sess:
            sess.run(sf.global_variables_initializer())
            assert int(sess.run(inc)) == 2
            assert int(sess.run(inc)) == 3
            assert int(sess.run(v.read_value())) == 3


def test_trainable_variables_collection_in_graph() -> None:
    """testTrainableInGraph: only trainable variables join the trainable collection."""
    g = sf.Graph()
    with g.as_default():
        a = sf.Variable(1.0, name="a")
        b = sf.Variable(1.0, name="b", trainable=False)
    trainable = g.get_collection("trainable_variables")
    assert any(x is a for x in trainable)
    assert not any(x is b for x in trainable)
    assert any(x is b for x in g.get_collection("variables"))


def test_tape_watches_trainable_variables_only() -> None:
    """testGradientTrainable: tapes watch trainable variables automatically, not others."""
    w = sf.Variable(3.0)
    n = sf.Variable(3.0, trainable=False)
    with sf.GradientTape() as tape:
        y = w * w + n * n
    gw, gn = tape.gradient(y, [w, n])
    assert float(gw) == 6.0
    assert gn is None


# -- tf.Module (module_test.py) --------------------------------------------------------------


def _get_name_scope() -> str:
    """What module_test's ``get_name_scope()`` returns: the current scope, with "/"."""
    scope = sf.get_name_scope()
    return scope + "/" if scope else ""


class _Recursive(sf.Module):
    def __init__(self, depth: int, trainable: bool = True) -> None:
        super().__init__(name="badger")
        with self.name_scope:
            self.child = None
            if depth > 1:
                self.child = _Recursive(depth - 1, trainable=trainable)
            self.w = sf.Variable(1.0, trainable=trainable, name="mushroom")


class _ReturnsNameScope(sf.Module):
    @sf.Module.with_name_scope
    def alternative_forward(self) -> str:
        return _get_name_scope()

    @sf.Module.with_name_scope
    def __call__(self) -> str:
        return _get_name_scope()


class _SubclassedReturnsNameScope(_ReturnsNameScope):
    @sf.Module.with_name_scope
    def alternative_alternative_forward(self) -> str:
        return _get_name_scope()


class _Tree(sf.Module):
    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self._leaves: list[_Tree] = []

    @sf.Module.with_name_scope
    def new_leaf(self, name: str | None = None) -> _Tree:
        leaf = _Tree(name=name)
        self._leaves.append(leaf)
        return leaf


class _ModuleError(Exception):
    pass


class _Error(sf.Module):
    def __init__(self, call_super: bool, raise_in_constructor: bool = True) -> None:
        if call_super:
            super().__init__()
        if raise_in_constructor:
            raise _ModuleError("Deliberate error!")

    def __call__(self) -> None:
        with self.name_scope:
            raise _ModuleError("Deliberate error!")


def test_single_name() -> None:
    """TestModuleNaming.test_single_name."""
    mod = sf.Module(name="simple")
    assert mod.name == "simple"
    assert mod.name_scope.name == "simple/"


def test_construct_in_scope() -> None:
    """TestModuleNaming.test_construct_in_scope: the enclosing scope is part of the scope."""
    with sf.name_scope("foo"):
        mod = sf.Module(name="bar")
    assert mod.name == "bar"
    assert mod.name_scope.name == "foo/bar/"


def test_enters_name_scope_in_call() -> None:
    """TestModuleNaming.test_enters_name_scope_in_call."""
    mod = _ReturnsNameScope()
    for _ in range(3):
        assert mod() == mod.name_scope.name == "_returns_name_scope/"


def test_enters_name_scope_in_other_method() -> None:
    """TestModuleNaming.test_enters_name_scope_in_other_method."""
    mod = _ReturnsNameScope()
    for _ in range(3):
        assert mod.alternative_forward() == mod.name_scope.name


def test_subclassed_module() -> None:
    """TestModuleNaming.test_subclassed_module."""
    mod = _SubclassedReturnsNameScope()
    for _ in range(3):
        assert mod.alternative_forward() == mod.name_scope.name
        assert mod.alternative_alternative_forward() == mod.name_scope.name


def test_submodule_created_late() -> None:
    """TestModuleNaming.test_submodule_created_late: made in a method, nested in its scope."""
    m = _Tree(name="tree_module")
    assert m.name_scope.name == "tree_module/"
    leaf1 = m.new_leaf()
    assert leaf1.name == "_tree"
    assert leaf1.name_scope.name == "tree_module/_tree/"


def test_default_name_is_snake_case() -> None:
    """module.camel_to_snake: the default name is the class name in snake case."""

    class TreeModule(sf.Module):
        pass

    class HTTPServer(sf.Module):
        pass

    assert TreeModule().name == "tree_module"
    assert HTTPServer().name == "http_server"
    assert sf.Module().name == "module"


def test_invalid_name() -> None:
    """TestModuleNaming.test_invalid_name."""
    with pytest.raises(ValueError, match="is not a valid module name"):
        sf.Module(name="$Foo")


def test_modules_not_numbered_in_eager() -> None:
    """TestModuleNaming.test_modules_not_numbered_in_eager."""
    for _ in range(2):
        mod = _Recursive(2)
        assert mod.name_scope.name == "badger/"
        assert mod.child is not None
        assert mod.child.name_scope.name == "badger/badger/"


def test_module_numbering_in_graph() -> None:
    """TestModuleNaming.test_module_numbering_in_graph."""
    with sf.Graph().as_default():
        mod = _Recursive(2)
        assert mod.name_scope.name == "badger/"
        assert mod.child is not None
        assert mod.child.name_scope.name == "badger/badger/"
        mod = _Recursive(2)
        assert mod.name_scope.name == "badger_1/"
        assert mod.child is not None
        assert mod.child.name_scope.name == "badger_1/badger/"


def test_ctor_error_closes_name_scope() -> None:
    """TestModuleNaming.test_ctor_error_closes_name_scope."""
    with pytest.raises(_ModuleError):
        _Error(call_super=True)
    assert _get_name_scope() == ""


def test_ctor_error_handles_ctor_not_opening_name_scope() -> None:
    """TestModuleNaming.test_ctor_error_handles_ctor_not_opening_name_scope."""
    with pytest.raises(_ModuleError):
        _Error(call_super=False)
    assert _get_name_scope() == ""


def test_forward_method_closes_name_scope() -> None:
    """TestModuleNaming.test_forward_method_closes_name_scope."""
    mod = _Error(call_super=True, raise_in_constructor=False)
    with pytest.raises(_ModuleError):
        mod()
    assert _get_name_scope() == ""


def test_patched_callable() -> None:
    """TestModuleNaming.test_patched_callable: a plain function attribute enters no scope."""
    with sf.name_scope("foo"):
        mod = sf.Module(name="bar")
    mod.foo = _get_name_scope
    assert mod.foo() == ""


def test_does_not_evaluate_property_methods() -> None:
    """TestModuleNaming.test_does_not_evaluate_property_methods (walks too)."""

    class PropertyThrows(sf.Module):
        @property
        def raise_assertion_error(self) -> None:
            raise AssertionError

    mod = PropertyThrows()
    with pytest.raises(AssertionError):
        _ = mod.raise_assertion_error
    assert mod.variables == ()
    assert mod.submodules == ()


def test_property_with_name_scope() -> None:
    """TestModuleNaming.test_property / test_property_no_name_scope."""

    class PropertyModule(sf.Module):
        def __init__(self) -> None:
            super().__init__()
            self._setter_scope: str | None = None

        @property
        @sf.Module.with_name_scope
        def some_property(self) -> tuple[str, str | None]:
            return _get_name_scope(), self._setter_scope

        @some_property.setter
        @sf.Module.with_name_scope
        def some_property(self, value: Any) -> None:
            self._setter_scope = _get_name_scope()

        @property
        def plain(self) -> tuple[str, str | None]:
            return _get_name_scope(), self._setter_scope

        @plain.setter
        def plain(self, value: Any) -> None:
            self._setter_scope = _get_name_scope()

    mod = PropertyModule()
    mod.some_property = None
    assert mod.some_property == ("property_module/", "property_module/")
    mod.plain = None
    assert mod.plain == ("", "")


def test_get_attr_doesnt_enter_name_scope() -> None:
    """TestModuleNaming.test_get_attr_doesnt_enter_name_scope."""
    scope_names: list[tuple[str, str]] = []

    class GetAttrModule(sf.Module):
        def __getattr__(self, name: str) -> Any:
            scope_names.append((name, _get_name_scope()))
            raise AttributeError(name)

    mod = GetAttrModule()
    with pytest.raises(AttributeError):
        _ = mod.does_not_exist
    assert ("does_not_exist", "") in scope_names


def test_variable_names() -> None:
    """VariableNamingTest.test_variable_names."""
    mod = _Recursive(3)
    assert mod.w.name == "badger/mushroom:0"
    assert mod.child is not None
    assert mod.child.child is not None
    assert mod.child.w.name == "badger/badger/mushroom:0"
    assert mod.child.child.w.name == "badger/badger/badger/mushroom:0"


def test_name_scope_memoized_in_tf2() -> None:
    """NameScopeTest.test_memoized_in_tf2: ``name_scope`` is the same object each time."""
    mod = sf.Module(name="name")
    assert mod.name_scope is mod.name_scope


def _ids(xs: Any) -> list[int]:
    return [id(x) for x in xs]


def test_variables_order() -> None:
    """VariableTrackingTest.test_variables: exact order (m.w, m.child.w, ...)."""
    m = _Recursive(3)
    assert m.child is not None
    assert m.child.child is not None
    assert _ids(m.variables) == _ids((m.w, m.child.w, m.child.child.w))


def test_variables() -> None:
    """VariableTrackingTest.test_variables, per module."""
    m = _Recursive(3)
    assert m.child is not None
    assert m.child.child is not None
    assert set(_ids(m.variables)) == set(_ids((m.w, m.child.w, m.child.child.w)))
    assert set(_ids(m.child.variables)) == set(_ids((m.child.w, m.child.child.w)))
    assert _ids(m.child.child.variables) == _ids((m.child.child.w,))
    assert len(m.variables) == 3


def test_trainable_variables() -> None:
    """VariableTrackingTest.test_trainable_variables (as sets)."""
    m = _Recursive(3)
    assert m.child is not None
    assert m.child.child is not None
    assert set(_ids(m.trainable_variables)) == set(_ids((m.w, m.child.w, m.child.child.w)))
    assert _ids(m.child.child.trainable_variables) == _ids((m.child.child.w,))


def test_trainable_variables_ignores_non_trainable() -> None:
    """VariableTrackingTest.test_trainable_variables_ignores_non_trainable."""
    m = _Recursive(3, trainable=False)
    assert m.child is not None
    assert m.child.child is not None
    assert len(m.trainable_variables) == 0
    assert len(m.child.trainable_variables) == 0
    assert len(m.child.child.trainable_variables) == 0
    assert len(m.non_trainable_variables) == 3


def test_submodules() -> None:
    """ModuleTrackingTest.test_submodules."""
    m = _Recursive(3)
    assert m.child is not None
    assert _ids(m.submodules) == _ids([m.child, m.child.child])
    assert _ids(m.child.submodules) == _ids([m.child.child])
    assert m.child.child is not None
    assert list(m.child.child.submodules) == []


def test_non_ctor_submodule() -> None:
    """ModuleTrackingTest.test_non_ctor_submodule: modules in a list attribute are found."""
    m = _Tree()
    leaf1 = m.new_leaf()
    assert set(_ids(m.submodules)) == {id(leaf1)}
    leaf2 = m.new_leaf()
    assert set(_ids(m.submodules)) == {id(leaf1), id(leaf2)}


@pytest.mark.parametrize("container", ["list", "tuple", "dict"])
def test_flatten_containers(container: str) -> None:
    """FlattenTest.test_flatten: variables in lists, tuples and dicts, submodules too."""

    def make() -> sf.Module:
        m = sf.Module(name="simple")
        pair = [sf.Variable(1.0, name="a0"), sf.Variable(2.0, name="a1")]
        m.a = {"list": pair, "tuple": tuple(pair), "dict": dict(enumerate(pair))}[container]
        m.z = sf.Variable(3.0, name="z")
        return m

    parent = make()
    parent.c = make()
    names = [v.name for v in parent.variables]
    assert len(names) == 6
    assert names.count("a0:0") == 2
    assert names.count("z:0") == 2
    assert _ids(parent.submodules) == [id(parent.c)]


def test_abstract() -> None:
    """AbcTest.testAbstract: abstract modules cannot be instantiated."""

    class AbstractModule(sf.Module, abc.ABC):
        @abc.abstractmethod
        def __call__(self, x: Any) -> Any: ...

    with pytest.raises(TypeError, match="abstract"):
        AbstractModule()  # type: ignore[abstract]


def test_concrete() -> None:
    """AbcTest.testConcrete: a concrete subclass of an ABC module enters its scope."""

    class AbstractModule(sf.Module, abc.ABC):
        @abc.abstractmethod
        def __call__(self, x: Any) -> Any: ...

    class ConcreteModule(AbstractModule):
        @sf.Module.with_name_scope
        def __call__(self, x: Any) -> Any:
            return x**2, _get_name_scope()

    x, scope = ConcreteModule()(2.0)
    assert x == 4.0
    assert scope == "concrete_module/"
    assert _get_name_scope() == ""


def test_enters_name_scope_in_function() -> None:
    """ForwardMethodsTest.testEntersNameScope_call: a traced method enters the scope.

    TensorFlow returns the scope as a string tensor; scopeflow has no string tensors, so
    the scope seen while tracing is recorded in Python instead.
    """
    seen: list[str] = []

    class WithFunction(sf.Module):
        @sf.function
        @sf.Module.with_name_scope
        def forward(self) -> Any:
            seen.append(_get_name_scope())
            return sf.constant(1.0)

    mod = WithFunction()
    mod.forward()
    assert seen == ["with_function/"]
    assert _get_name_scope() == ""


# -- optimizers (Keras SGD / momentum / Adam tests) ------------------------------------------


def _two_vars(dtype: Any) -> tuple[Any, Any, Any, Any]:
    var0 = sf.Variable(np.array([1.0, 2.0], dtype))
    var1 = sf.Variable(np.array([3.0, 4.0], dtype))
    grads0 = sf.constant(np.array([0.1, 0.1], dtype))
    grads1 = sf.constant(np.array([0.01, 0.01], dtype))
    return var0, var1, grads0, grads1


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sgd_basic(dtype: Any) -> None:
    """gradient_descent_test.testBasic: var -= lr * g."""
    var0, var1, grads0, grads1 = _two_vars(dtype)
    opt = sf.optimizers.SGD(learning_rate=3.0)
    opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
    tol = 1e-3 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(var0.numpy(), [1.0 - 3.0 * 0.1, 2.0 - 3.0 * 0.1], rtol=tol)
    np.testing.assert_allclose(var1.numpy(), [3.0 - 3.0 * 0.01, 4.0 - 3.0 * 0.01], rtol=tol)
    assert var0.numpy().dtype == dtype
    assert int(opt.iterations.numpy()) == 1
    assert opt.variables[0] is opt.iterations  # no slots without momentum
    assert len(opt.variables) == 1


def test_sgd_learning_rate_schedule() -> None:
    """gradient_descent_test.testBasicCallableParams: the rate may be a callable."""
    var0, var1, grads0, grads1 = _two_vars(np.float32)
    opt = sf.optimizers.SGD(learning_rate=lambda step: 3.0)
    opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
    np.testing.assert_allclose(var0.numpy(), [0.7, 1.7], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_momentum_basic(dtype: Any) -> None:
    """momentum_test.testBasic: two steps of momentum 0.9, lr 2.0; slot named "momentum"."""
    var0, var1, grads0, grads1 = _two_vars(dtype)
    opt = sf.optimizers.SGD(learning_rate=2.0, momentum=0.9)
    opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
    slot0 = opt.get_slot(var0, "momentum")
    slot1 = opt.get_slot(var1, "momentum")
    assert tuple(slot0.shape) == tuple(var0.shape)
    np.testing.assert_allclose(slot0.numpy(), [-0.2, -0.2], rtol=1e-6)
    np.testing.assert_allclose(slot1.numpy(), [-0.02, -0.02], rtol=1e-6)
    np.testing.assert_allclose(var0.numpy(), [1.0 - 0.2, 2.0 - 0.2], rtol=1e-6)
    np.testing.assert_allclose(var1.numpy(), [3.0 - 0.02, 4.0 - 0.02], rtol=1e-6)
    opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
    np.testing.assert_allclose(slot0.numpy(), [-(0.9 * 0.2 + 0.2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(slot1.numpy(), [-(0.9 * 0.02 + 0.02)] * 2, rtol=1e-6)
    np.testing.assert_allclose(
        var0.numpy(), [1.0 - 0.2 - (0.9 * 0.2 + 0.2), 2.0 - 0.2 - (0.9 * 0.2 + 0.2)], rtol=1e-6
    )
    np.testing.assert_allclose(
        var1.numpy(),
        [2.98 - (0.9 * 0.02 + 0.02), 3.98 - (0.9 * 0.02 + 0.02)],
        rtol=1e-6,
    )


def _nesterov_numpy(var: Any, accum: Any, g: Any, lr: float, momentum: float) -> Any:
    accum = accum * momentum - g * lr
    var = var + (accum * momentum - g * lr)
    return var, accum


def test_nesterov_momentum() -> None:
    """momentum_test.testNesterovMomentum: against the test's NumPy reference."""
    var0 = sf.Variable([1.0, 2.0], dtype=sf.float64)
    var1 = sf.Variable([3.0, 4.0], dtype=sf.float64)
    var0_np, var1_np = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    accum0_np, accum1_np = np.zeros(2), np.zeros(2)
    opt = sf.optimizers.SGD(learning_rate=2.0, momentum=0.9, nesterov=True)
    for _ in range(5):
        with sf.GradientTape() as tape:
            loss = 5 * var0 * var0 + 3 * var1
        g0, g1 = tape.gradient(loss, [var0, var1])
        var0_np, accum0_np = _nesterov_numpy(var0_np, accum0_np, var0_np * 10, 2.0, 0.9)
        var1_np, accum1_np = _nesterov_numpy(var1_np, accum1_np, np.full(2, 3.0), 2.0, 0.9)
        opt.apply_gradients([(g0, var0), (g1, var1)])
        np.testing.assert_allclose(var0.numpy(), var0_np)
        np.testing.assert_allclose(var1.numpy(), var1_np)
        np.testing.assert_allclose(opt.get_slot(var0, "momentum").numpy(), accum0_np)


def test_momentum_in_function() -> None:
    """momentum_test.testMinimizeWith (tf.function): slots made once, same values."""
    var0, var1, grads0, grads1 = _two_vars(np.float32)
    opt = sf.optimizers.SGD(learning_rate=2.0, momentum=0.9)

    @sf.function
    def step() -> None:
        opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))

    step()
    step()
    assert step.trace_count == 1
    np.testing.assert_allclose(var0.numpy(), [0.42, 1.42], rtol=1e-6)
    assert opt.get_slot(var0, "momentum").graph is None
    assert int(opt.iterations.numpy()) == 2


def _adam_numpy(
    param: Any, g: Any, t: int, m: Any, v: Any, lr: float = 0.001, eps: float = 1e-7
) -> Any:
    beta1, beta2 = 0.9, 0.999
    lr_t = lr * np.sqrt(1 - beta2 ** (t + 1)) / (1 - beta1 ** (t + 1))
    m_t = beta1 * m + (1 - beta1) * g
    v_t = beta2 * v + (1 - beta2) * g * g
    return param - lr_t * m_t / (np.sqrt(v_t) + eps), m_t, v_t


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_adam_basic(dtype: Any) -> None:
    """adam_test.testBasic: three steps against the NumPy reference; slots "m" and "v"."""
    var0_np = np.array([1.0, 2.0], dtype)
    grads0_np = np.array([0.1, 0.1], dtype)
    var1_np = np.array([3.0, 4.0], dtype)
    grads1_np = np.array([0.01, 0.01], dtype)
    m0 = v0 = m1 = v1 = np.zeros(2)
    var0, var1 = sf.Variable(var0_np), sf.Variable(var1_np)
    grads0, grads1 = sf.constant(grads0_np), sf.constant(grads1_np)
    opt = sf.optimizers.Adam()
    # TensorFlow's assertAllCloseAccordingToType: rtol = atol = 1e-3 for half, else 1e-6.
    tol = 1e-3 if dtype == np.float16 else 1e-6
    p0, p1 = var0_np.astype(np.float64), var1_np.astype(np.float64)
    for t in range(3):
        opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
        assert int(opt.iterations.numpy()) == t + 1
        p0, m0, v0 = _adam_numpy(p0, grads0_np.astype(np.float64), t, m0, v0)
        p1, m1, v1 = _adam_numpy(p1, grads1_np.astype(np.float64), t, m1, v1)
        np.testing.assert_allclose(var0.numpy(), p0, rtol=tol, atol=tol)
        np.testing.assert_allclose(var1.numpy(), p1, rtol=tol, atol=tol)
        np.testing.assert_allclose(opt.get_slot(var0, "m").numpy(), m0, rtol=tol, atol=tol)
        np.testing.assert_allclose(opt.get_slot(var0, "v").numpy(), v0, rtol=tol, atol=tol)
    assert var0.numpy().dtype == dtype
    assert opt.get_slot(var0, "m").dtype == dtype


def test_adam_callable_params() -> None:
    """adam_test.testBasicCallableParams: a callable learning rate."""
    var0 = sf.Variable([1.0, 2.0])
    opt = sf.optimizers.Adam(learning_rate=lambda step: 0.001)
    g = np.array([0.1, 0.1])
    p, m, v = np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)
    for t in range(3):
        opt.apply_gradients([(sf.constant([0.1, 0.1]), var0)])
        p, m, v = _adam_numpy(p, g, t, m, v)
    np.testing.assert_allclose(var0.numpy(), p, rtol=1e-6)


def test_adam_in_function() -> None:
    """adam_test.testBasic (tf.function): the same values from a traced step."""
    var0 = sf.Variable([1.0, 2.0])
    opt = sf.optimizers.Adam(learning_rate=0.1, epsilon=1e-8)

    @sf.function
    def step(g: Any) -> None:
        opt.apply_gradients([(g, var0)])

    g = np.array([0.1, -0.2], np.float32)
    p, m, v = np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)
    for t in range(3):
        step(sf.constant(g))
        p, m, v = _adam_numpy(p, g.astype(np.float64), t, m, v, lr=0.1, eps=1e-8)
    np.testing.assert_allclose(var0.numpy(), p, rtol=1e-5)
    assert step.trace_count == 1
    assert int(opt.iterations.numpy()) == 3


def test_adam_set_learning_rate() -> None:
    """adam_test.testSetLearningRate: setting the rate takes effect at the next step."""
    var0 = sf.Variable([1.0, 2.0])
    opt = sf.optimizers.Adam(learning_rate=1.0)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    g = np.array([0.1, 0.1])
    opt.apply_gradients([(sf.constant([0.1, 0.1]), var0)])
    p, _, _ = _adam_numpy(np.array([1.0, 2.0]), g, 0, np.zeros(2), np.zeros(2), lr=0.5)
    # beta_2 ** t is computed in the variable's dtype, as in Keras (float32(0.999) is
    # 0.99900001): at lr 0.5 that is a few 1e-6 from the float64 reference.
    np.testing.assert_allclose(var0.numpy(), p, rtol=1e-5)


def test_no_gradients_raises() -> None:
    """optimizer_test.testNoGradients: every gradient None raises ValueError."""
    var0 = sf.Variable([1.0, 2.0])
    opt = sf.optimizers.SGD(3.0)
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        opt.apply_gradients([(None, var0)])


def test_some_gradients_none_skips_those() -> None:
    """optimizer_test.testNoGradientsForAnyVariables_Minimize / partial: None pairs skip."""
    var0 = sf.Variable([1.0, 2.0])
    var1 = sf.Variable([3.0, 4.0])
    opt = sf.optimizers.SGD(3.0)
    opt.apply_gradients([(None, var0), (sf.constant([1.0, 1.0]), var1)])
    np.testing.assert_array_equal(var0.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(var1.numpy(), [0.0, 1.0])


def test_gradients_with_tape_minimize() -> None:
    """optimizer_test.testBasic (minimize): loss 5*var0 + 3*var1, via a tape."""
    var0 = sf.Variable([1.0, 2.0])
    var1 = sf.Variable([3.0, 4.0])
    opt = sf.optimizers.SGD(3.0)
    with sf.GradientTape() as tape:
        loss = 5 * var0 + 3 * var1
    grads = tape.gradient(loss, [var0, var1])
    opt.apply_gradients(zip(grads, [var0, var1], strict=True))
    np.testing.assert_allclose(var0.numpy(), [-14.0, -13.0])
    np.testing.assert_allclose(var1.numpy(), [-6.0, -5.0])


def test_optimizer_rejects_non_float_variable() -> None:
    """optimizer_test.testInvalidType: integer variables cannot be optimized."""
    v = sf.Variable([1, 2])
    with pytest.raises(TypeError):
        sf.optimizers.SGD(1.0).apply_gradients([(sf.constant([1, 1]), v)])


# -- checkpoints (checkpoint_test.py) -------------------------------------------------------


class _Model(sf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense_w = sf.Variable([[1.0, 2.0], [3.0, 4.0]], name="w")
        self.dense_b = sf.Variable([0.5, -0.5], name="b")


def _train_step(model: _Model, opt: Any) -> None:
    with sf.GradientTape() as tape:
        loss = sf.reduce_sum(sf.matmul(sf.ones((1, 2)), model.dense_w) + model.dense_b)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))


def test_save_restore(tmp_path: Path) -> None:
    """checkpoint_test.testNamingWithOptimizer / testSaveRestore: model and slots round-trip."""
    model, opt = _Model(), sf.optimizers.Adam(0.1)
    _train_step(model, opt)
    ckpt = sf.train.Checkpoint(model=model, optimizer=opt)
    path = ckpt.save(os.fspath(tmp_path / "ckpt"))
    saved_w = model.dense_w.numpy().copy()
    saved_m = opt.get_slot(model.dense_w, "m").numpy().copy()
    _train_step(model, opt)
    model.dense_b.assign([9.0, 9.0])
    status = ckpt.restore(path)
    status.assert_consumed()
    status.assert_existing_objects_matched()
    np.testing.assert_array_equal(model.dense_w.numpy(), saved_w)
    np.testing.assert_array_equal(opt.get_slot(model.dense_w, "m").numpy(), saved_m)
    assert int(opt.iterations.numpy()) == 1


def test_deferred_slot_restoration(tmp_path: Path) -> None:
    """checkpoint_test.testDeferredSlotRestoration: slots come back in a fresh optimizer."""
    model, opt = _Model(), sf.optimizers.SGD(0.1, momentum=0.9)
    _train_step(model, opt)
    path = sf.train.Checkpoint(model=model, optimizer=opt).save(os.fspath(tmp_path / "c"))
    momentum = opt.get_slot(model.dense_w, "momentum").numpy().copy()
    new_model, new_opt = _Model(), sf.optimizers.SGD(0.1, momentum=0.9)
    sf.train.Checkpoint(model=new_model, optimizer=new_opt).restore(path).assert_consumed()
    np.testing.assert_array_equal(new_opt.get_slot(new_model.dense_w, "momentum").numpy(), momentum)
    assert int(new_opt.iterations.numpy()) == 1
    np.testing.assert_array_equal(new_model.dense_w.numpy(), model.dense_w.numpy())


def test_save_counter_and_latest_checkpoint(tmp_path: Path) -> None:
    """checkpoint_test.testSaveCounter / testLatestCheckpoint: numbered saves."""
    v = sf.Variable(1.0)
    ckpt = sf.train.Checkpoint(v=v)
    prefix = os.fspath(tmp_path / "ckpt")
    assert sf.train.latest_checkpoint(os.fspath(tmp_path)) is None
    first = ckpt.save(prefix)
    assert first.endswith("ckpt-1")
    assert int(ckpt.save_counter.numpy()) == 1
    v.assign(2.0)
    second = ckpt.save(prefix)
    assert second.endswith("ckpt-2")
    assert int(ckpt.save_counter.numpy()) == 2
    assert sf.train.latest_checkpoint(os.fspath(tmp_path)) == second
    ckpt.restore(first).assert_consumed()
    assert float(v.numpy()) == 1.0
    assert int(ckpt.save_counter.numpy()) == 1  # the counter is restored too
    third = ckpt.save(prefix)
    assert third.endswith("ckpt-2")


def test_restore_none_status(tmp_path: Path) -> None:
    """checkpoint_test.testInitializationOnlyStatus: restore(None) restores nothing."""
    v = sf.Variable(1.0)
    status = sf.train.Checkpoint(v=v).restore(sf.train.latest_checkpoint(os.fspath(tmp_path)))
    with pytest.raises(AssertionError):
        status.assert_consumed()
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()
    assert float(v.numpy()) == 1.0


def test_write_read_without_counter(tmp_path: Path) -> None:
    """checkpoint_test.testWriteRead: ``write`` uses the path as given and counts nothing."""
    v = sf.Variable([1.0, 2.0])
    ckpt = sf.train.Checkpoint(v=v)
    path = ckpt.write(os.fspath(tmp_path / "weights"))
    assert path == os.fspath(tmp_path / "weights")
    v.assign([0.0, 0.0])
    ckpt.read(path).assert_consumed()
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    assert int(ckpt.save_counter.numpy()) == 0


def test_partial_restore_with_expect_partial(tmp_path: Path) -> None:
    """checkpoint_test.testPartialRestore: restore only the model from a training checkpoint.

    TensorFlow restores what matches and warns about the rest unless ``expect_partial``;
    scopeflow refuses unmatched entries unless ``expect_partial=True`` (documented in
    docs/model-state.md: restoring is all or nothing).
    """
    model, opt = _Model(), sf.optimizers.Adam(0.1)
    _train_step(model, opt)
    path = sf.train.Checkpoint(model=model, optimizer=opt).save(os.fspath(tmp_path / "c"))
    fresh = _Model()
    with pytest.raises(ValueError, match="expect_partial"):
        sf.train.Checkpoint(model=fresh).restore(path)
    np.testing.assert_array_equal(fresh.dense_w.numpy(), [[1.0, 2.0], [3.0, 4.0]])
    sf.train.Checkpoint(model=fresh).restore(path, expect_partial=True)
    np.testing.assert_array_equal(fresh.dense_w.numpy(), model.dense_w.numpy())


def test_shape_mismatch_raises(tmp_path: Path) -> None:
    """checkpoint_test.testRestoreShapeMismatch: a value of another shape is refused."""
    path = sf.train.Checkpoint(v=sf.Variable([1.0, 2.0])).save(os.fspath(tmp_path / "c"))
    other = sf.Variable([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        sf.train.Checkpoint(v=other).restore(path)
    np.testing.assert_array_equal(other.numpy(), [1.0, 2.0, 3.0])


def test_missing_object_in_file(tmp_path: Path) -> None:
    """checkpoint_test.testAssertExistingObjectsMatched: a variable the file lacks.

    TensorFlow's restore succeeds and ``assert_existing_objects_matched`` fails;
    scopeflow's restore raises ValueError at once and changes nothing (all or nothing,
    docs/model-state.md).
    """
    a = sf.Variable(1.0)
    path = sf.train.Checkpoint(a=a).save(os.fspath(tmp_path / "c"))
    a.assign(5.0)
    b = sf.Variable(2.0)
    with pytest.raises(ValueError, match="no entry"):
        sf.train.Checkpoint(a=a, b=b).restore(path)
    assert float(a.numpy()) == 5.0


def test_checkpoint_list_and_dict_dependencies(tmp_path: Path) -> None:
    """checkpoint_test (data structures): variables in lists and dicts are saved."""
    vs = [sf.Variable(1.0), sf.Variable(2.0)]
    d = {"x": sf.Variable([3.0])}
    ckpt = sf.train.Checkpoint(vs=vs, d=d)
    path = ckpt.save(os.fspath(tmp_path / "c"))
    vs[0].assign(0.0)
    d["x"].assign([0.0])
    ckpt.restore(path).assert_consumed()
    assert float(vs[0].numpy()) == 1.0
    np.testing.assert_array_equal(d["x"].numpy(), [3.0])


def test_checkpoint_attributes_are_tracked(tmp_path: Path) -> None:
    """checkpoint_test.testAddVariable / util_test.testAttributeAccess.

    The objects given to ``Checkpoint`` are its attributes, and a public attribute set
    later is tracked and saved like one given to the constructor.
    """
    model = _Model()
    ckpt = sf.train.Checkpoint(model=model)
    assert ckpt.model is model
    ckpt.step = sf.Variable(np.int64(3), trainable=False)
    ckpt.extras = [sf.Variable(1.0)]
    path = ckpt.save(os.fspath(tmp_path / "c"))
    ckpt.step.assign(10)
    ckpt.extras[0].assign(5.0)
    model.dense_b.assign([0.0, 0.0])
    ckpt.restore(path).assert_consumed()
    assert int(ckpt.step.numpy()) == 3
    assert float(ckpt.extras[0].numpy()) == 1.0
    np.testing.assert_array_equal(model.dense_b.numpy(), [0.5, -0.5])
    # A checkpoint without the new attribute cannot restore this file unnoticed.
    with pytest.raises(ValueError, match="matches no tracked object"):
        sf.train.Checkpoint(model=_Model()).restore(path)
    with pytest.raises(AttributeError):
        _ = ckpt.missing
    with pytest.raises(TypeError):
        ckpt.bad = 3
    with pytest.raises(ValueError):
        ckpt.save_counter = sf.Variable(np.int64(0))
    with pytest.raises(ValueError):
        ckpt.restore = sf.Variable(1.0)


def test_checkpoint_attribute_copies_keep_tracking() -> None:
    """Copies of a checkpoint keep the objects set as attributes."""
    ckpt = sf.train.Checkpoint()
    ckpt.v = sf.Variable(2.0)
    clone = copy.copy(ckpt)
    assert clone.v is ckpt.v
    ckpt.w = sf.Variable(3.0)
    with pytest.raises(AttributeError):
        _ = clone.w  # set on the original after the copy


def test_complex_of_tensors_and_variables() -> None:
    """complex() of an eager tensor or variable is its value (TensorFlow: (1+2j)); of a
    symbolic one a TypeError that says why."""
    assert complex(sf.constant(1 + 2j)) == 1 + 2j
    assert complex(sf.constant(2.0)) == 2 + 0j
    assert complex(sf.Variable(1 + 1j)) == 1 + 1j
    g = sf.Graph()
    with g.as_default():
        t = sf.placeholder(sf.complex64, ())
        v = sf.Variable(1.0)
        for x in (t, v):
            with pytest.raises(TypeError, match=r"^complex\(\) is not available: "):
                complex(x)


def test_assign_takes_tensorflows_positional_order() -> None:
    """ResourceVariable.assign(value, use_locking=None, name=None, read_value=True)."""
    v = sf.Variable(1.0)
    assert float(v.assign(2.0, True)) == 2.0  # use_locking, accepted and ignored
    assert float(v.assign_add(1.0, False, "add")) == 3.0
    assert v.assign_sub(1.0, None, None, False) is None  # read_value=False, eagerly
    assert float(v.read_value()) == 2.0
    g = sf.Graph()
    with g.as_default():
        w = sf.Variable(1.0)
        out = w.assign(5.0, True, "set_w")
        assert out.op.name == "set_w"
