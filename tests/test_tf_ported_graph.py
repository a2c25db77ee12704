"""Scenarios from TensorFlow's own graph and scope tests, re-run on scopeflow.

``Operation.control_inputs`` is a tuple here (TensorFlow: a list), so the tests compare
``list(op.control_inputs)``.

Sources: ``tensorflow/python/framework/ops_test.py`` (ControlDependenciesTest, OpScopeTest,
NameStackTest, NameScopeTest, InitScopeTest, GraphTest, DeviceTest, OutputTypesTest,
MultithreadedGraphStateTest, CollectionTest). Each test names the TensorFlow test it follows;
the expected values are TensorFlow's, the code is written for scopeflow's API. Control flow
(``cond_v2_test.py``, ``while_v2_test.py``) is in ``test_tf_ported_control_flow.py``.

Not ported (features scopeflow does not have): ``Graph.create_op`` with made-up op types
(we use real ops instead), node defs and ``as_graph_def``, device functions and
``pydev.merge_device``, job/replica device fields and GPU devices, ``colocate_with``,
``get_collection_ref`` and collection scopes, ``prevent_feeding``/``prevent_fetching``,
``_as_graph_element`` conversion, ``name_scope(name, default_name, values)``, kernel label maps
and attribute scopes, sparse tensors, ``variable_scope.get_variable``.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import numpy as np
import pytest

import scopeflow as sf


def _consts(n: int) -> list[Any]:
    return [sf.constant(float(i)) for i in range(n)]


def _ops(ts: list[Any]) -> set[Any]:
    return {t.op for t in ts}


# -- ControlDependenciesTest ----------------------------------------------------------------


def test_control_dependencies_basic() -> None:
    """testBasic: ops under the scope get the control input, unless already dominated."""
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0)
        b = sf.constant(1.0)
        with g.control_dependencies([a]):
            c = sf.constant(1.0)
            d = sf.identity(b)
            e = sf.identity(c)
    assert list(c.op.control_inputs) == [a.op]
    assert list(d.op.control_inputs) == [a.op]
    assert list(e.op.control_inputs) == []  # e is dominated by c


def test_control_dependencies_eager_calls_callables_once() -> None:
    """testEager: eagerly a callable in the list is called (once); in a graph its op counts."""
    calls = []

    def future() -> Any:
        calls.append(1)
        return sf.constant(2.0)

    a = sf.constant(1.0)
    with sf.control_dependencies([a, future]):
        sf.constant(3.0)
    assert len(calls) == 1

    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0)
        b = future()
        with g.control_dependencies([a, b]):
            c = sf.constant(3.0)
    assert list(c.op.control_inputs) == [a.op, b.op]
    assert len(calls) == 2


def test_control_dependencies_nested() -> None:
    """testNested: nested scopes add up to the same set as one scope with all four."""
    g = sf.Graph()
    with g.as_default():
        a = _consts(4)
        with g.control_dependencies(a):
            b_1 = sf.constant(0.0)
        with g.control_dependencies([a[0]]):
            with g.control_dependencies([a[1]]):
                with g.control_dependencies([a[2]]):
                    with g.control_dependencies([a[3]]):
                        b_2 = sf.constant(0.0)
    assert set(b_1.op.control_inputs) == _ops(a)
    assert set(b_2.op.control_inputs) == set(b_1.op.control_inputs)


def test_control_dependencies_clear() -> None:
    """testClear: control_dependencies(None) clears the outer dependencies until it exits."""
    g = sf.Graph()
    with g.as_default():
        a_1, a_2, a_3, a_4 = _consts(4)
        with g.control_dependencies([a_1]):
            with g.control_dependencies([a_2]):
                with g.control_dependencies(None):
                    with g.control_dependencies([a_3]):
                        with g.control_dependencies([a_4]):
                            b_3_4 = sf.constant(0.0)
                        b_3 = sf.constant(0.0)
                    b_none = sf.constant(0.0)
                b_1_2 = sf.constant(0.0)
            b_1 = sf.constant(0.0)
            with g.control_dependencies(None):
                b_none2 = sf.constant(0.0)
    assert set(b_3_4.op.control_inputs) == _ops([a_3, a_4])
    assert set(b_3.op.control_inputs) == _ops([a_3])
    assert list(b_none.op.control_inputs) == []
    assert set(b_1_2.op.control_inputs) == _ops([a_1, a_2])
    assert set(b_1.op.control_inputs) == _ops([a_1])
    assert list(b_none2.op.control_inputs) == []


def test_control_dependencies_complex() -> None:
    """testComplex: control inputs already reached through data inputs are left out."""
    g = sf.Graph()
    with g.as_default():
        a_1, a_2, a_3, a_4 = _consts(4)
        with g.control_dependencies([a_1]):
            b_1 = a_3 * a_4
            c_1 = a_1 * b_1
            d_1 = b_1 * c_1
            e_1 = sf.constant(0.0)
            with g.control_dependencies([a_2]):
                b_2 = a_3 * a_4
                c_2 = a_1 * b_1
                d_2 = b_2 * c_2
                e_2 = e_1 * e_1
                with g.control_dependencies([a_3]):
                    b_3 = a_3 * a_4
                    c_3 = a_1 * b_1
                    d_3 = b_3 * c_3
                    e_3 = e_2 * e_2
                    with g.control_dependencies([a_4]):
                        b_4 = a_3 * a_4
                        c_4 = a_1 * b_1
                        d_4 = b_4 * c_4
                        e_4 = e_3 * e_3

    def ctl(t: Any) -> set[Any]:
        return set(t.op.control_inputs)

    assert ctl(b_1) == _ops([a_1])
    assert ctl(b_2) == _ops([a_1, a_2])
    assert ctl(b_3) == _ops([a_1, a_2])
    assert ctl(b_4) == _ops([a_1, a_2])
    assert ctl(c_1) == set()
    assert ctl(c_2) == _ops([a_2])
    assert ctl(c_3) == _ops([a_2, a_3])
    assert ctl(c_4) == _ops([a_2, a_3, a_4])
    assert ctl(d_1) == ctl(d_2) == ctl(d_3) == ctl(d_4) == set()
    assert ctl(e_1) == _ops([a_1])
    assert ctl(e_2) == _ops([a_2])
    assert ctl(e_3) == _ops([a_3])
    assert ctl(e_4) == _ops([a_4])


def test_control_dependencies_repeated_dependency() -> None:
    """testRepeatedDependency: two outputs of one op give that op once."""
    g = sf.Graph()
    with g.as_default():
        a_0, a_1 = sf.split(sf.constant([1.0, 2.0]), 2)
        with g.control_dependencies([a_0]):
            b = sf.constant(0.0)
            with g.control_dependencies([a_1]):
                c = sf.constant(0.0)
    assert list(b.op.control_inputs) == [a_0.op]
    assert list(c.op.control_inputs) == [a_0.op]


def test_no_control_dependency_with_data_dependency() -> None:
    """testNoControlDependencyWithDataDependency."""
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0)
        with g.control_dependencies([a]):
            b = sf.identity(a)
    assert list(b.op.control_inputs) == []


# -- OpScopeTest / NameStackTest / NameScopeTest ----------------------------------------------


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_name_scope_names(mode: str) -> None:
    """OpScopeTest.testNames: the strings name_scope yields, in graph and eager modes."""

    def check() -> None:
        with sf.name_scope("foo") as foo:
            assert foo == "foo/"
            with sf.name_scope("foo2") as foo2:
                assert foo2 == "foo/foo2/"
            with sf.name_scope(None) as empty1:
                assert empty1 == ""
                with sf.name_scope("foo3") as foo3:
                    assert foo3 == "foo3/"
            with sf.name_scope("") as empty2:
                assert empty2 == ""
        with sf.name_scope("foo/") as outer_foo:
            assert outer_foo == "foo/"
            with sf.name_scope("") as empty3:
                assert empty3 == ""
            with sf.name_scope("foo4") as foo4:
                assert foo4 == "foo/foo4/"
            with sf.name_scope("foo5//") as foo5:
                assert foo5 == "foo5//"
                with sf.name_scope("foo6") as foo6:
                    assert foo6 == "foo5//foo6/"
            with sf.name_scope("/") as foo7:
                assert foo7 == "/"
            with sf.name_scope("//") as foo8:
                assert foo8 == "//"
            with sf.name_scope("a//b/c") as foo9:
                assert foo9 == "foo/a//b/c/"
        with sf.name_scope("a//b/c") as foo10:
            assert foo10 == "a//b/c/"

    if mode == "eager":
        check()
    else:
        with sf.Graph().as_default() as g:
            check()
            with g.name_scope("foo"), g.name_scope("/") as root:  # Graph.name_scope too
                assert root == "/"
                assert g.get_name_scope() == ""


def test_unique_name_basics() -> None:
    """NameStackTest.testBasics: Graph.unique_name with and without marking the name used."""
    g = sf.Graph()
    assert g.unique_name("foo", mark_as_used=False) == "foo"
    assert g.unique_name("foo", mark_as_used=False) == "foo"
    assert g.unique_name("foo") == "foo"
    assert g.unique_name("foo", mark_as_used=False) == "foo_1"
    assert g.unique_name("foo") == "foo_1"
    assert g.unique_name("foo", mark_as_used=False) == "foo_2"
    assert g.unique_name("foo") == "foo_2"
    assert g.unique_name("foo_1", mark_as_used=False) == "foo_1_1"
    assert g.unique_name("foo_1") == "foo_1_1"
    assert g.unique_name("foo_1", mark_as_used=False) == "foo_1_2"
    assert g.unique_name("foo_1") == "foo_1_2"
    assert g.unique_name("foo_1_2", mark_as_used=False) == "foo_1_2_1"
    assert g.unique_name("foo_1_2") == "foo_1_2_1"
    with g.name_scope("bar"):
        assert g.unique_name("foo", mark_as_used=False) == "bar/foo"
        assert g.unique_name("foo") == "bar/foo"
        assert g.unique_name("foo", mark_as_used=False) == "bar/foo_1"
        assert g.unique_name("foo") == "bar/foo_1"
        with g.name_scope(None):
            assert g.unique_name("foo", mark_as_used=False) == "foo_3"
            assert g.unique_name("foo") == "foo_3"
        with g.name_scope("baz"):
            assert g.unique_name("foo", mark_as_used=False) == "bar/baz/foo"
            assert g.unique_name("foo") == "bar/baz/foo"
            assert g.unique_name("foo", mark_as_used=False) == "bar/baz/foo_1"
            assert g.unique_name("foo") == "bar/baz/foo_1"
        with g.name_scope("baz"):
            assert g.unique_name("foo", mark_as_used=False) == "bar/baz_1/foo"
            assert g.unique_name("foo") == "bar/baz_1/foo"
            assert g.unique_name("foo", mark_as_used=False) == "bar/baz_1/foo_1"
            assert g.unique_name("foo") == "bar/baz_1/foo_1"
    with g.name_scope("quux"):
        assert g.unique_name("foo", mark_as_used=False) == "quux/foo"
        assert g.unique_name("foo") == "quux/foo"
    with g.name_scope("bar"):
        with g.name_scope("baz"):
            assert g.unique_name("foo", mark_as_used=False) == "bar_1/baz/foo"
            assert g.unique_name("foo") == "bar_1/baz/foo"
    assert g.unique_name("foo", mark_as_used=False) == "foo_4"
    assert g.unique_name("foo") == "foo_4"
    assert g.unique_name("bar", mark_as_used=False) == "bar_2"
    assert g.unique_name("bar") == "bar_2"


def test_op_names_follow_scopes() -> None:
    """NameStackTest.testNameAndVariableScope-like: op names under repeated scopes."""
    g = sf.Graph()
    with g.as_default():
        with sf.name_scope("l0"):
            a = sf.constant(1.0, name="a")
        with sf.name_scope("l0"):
            b = sf.constant(1.0, name="a")
            c = sf.constant(1.0, name="a")
        with sf.name_scope("l0/"):  # an absolute scope re-enters 'l0'
            d = sf.constant(1.0, name="a")
    assert [t.op.name for t in (a, b, c, d)] == ["l0/a", "l0_1/a", "l0_1/a_1", "l0/a_1"]


def test_get_name_scope() -> None:
    """NameScopeTest.testGetNameScope."""
    with sf.Graph().as_default() as g:
        with sf.name_scope("scope1"):
            with sf.name_scope("scope2"):
                with sf.name_scope("scope3"):
                    assert g.get_name_scope() == "scope1/scope2/scope3"
                assert g.get_name_scope() == "scope1/scope2"
            assert g.get_name_scope() == "scope1"
        assert g.get_name_scope() == ""


# -- InitScopeTest ------------------------------------------------------------------------------


def test_init_scope_clears_control_dependencies() -> None:
    """testClearsControlDependencies."""
    g = sf.Graph()
    with g.as_default():
        a_1, a_2, a_3, a_4 = _consts(4)
        with g.control_dependencies([a_1]):
            with g.control_dependencies([a_2]):
                with sf.init_scope():
                    with g.control_dependencies([a_3]):
                        with g.control_dependencies([a_4]):
                            b_3_4 = sf.constant(0.0)
                        b_3 = sf.constant(0.0)
                    b_none = sf.constant(0.0)
                b_1_2 = sf.constant(0.0)
            b_1 = sf.constant(0.0)
            with sf.init_scope():
                b_none2 = sf.constant(0.0)
    assert set(b_3_4.op.control_inputs) == _ops([a_3, a_4])
    assert set(b_3.op.control_inputs) == _ops([a_3])
    assert list(b_none.op.control_inputs) == []
    assert set(b_1_2.op.control_inputs) == _ops([a_1, a_2])
    assert set(b_1.op.control_inputs) == _ops([a_1])
    assert list(b_none2.op.control_inputs) == []


def test_init_scope_lifts_ops_from_functions() -> None:
    """testLiftsOpsFromFunctions (function graphs are FuncGraphs here)."""
    g0 = sf.Graph()
    g1 = sf.FuncGraph("g1")
    g2 = sf.FuncGraph("g2")
    with g0.as_default(), g1.as_default(), g2.as_default(), sf.init_scope():
        sf.constant(1.0)
    assert len(g2.get_operations()) == 0
    assert len(g1.get_operations()) == 0
    assert len(g0.get_operations()) == 1


def test_init_scope_preserves_devices() -> None:
    """testPreservesDevices (CPU indices stand in for TF's GPU:0)."""
    g0 = sf.Graph()
    with g0.as_default(), sf.device("CPU:0"):
        g1 = sf.FuncGraph("g1")
        with g1.as_default(), sf.device("CPU:1"):
            with sf.init_scope():
                on_1 = sf.constant(1.0)
                assert on_1.op.device == "/device:CPU:1"
            still_on_1 = sf.constant(1.0)
            assert still_on_1.op.device == "/device:CPU:1"
        on_0 = sf.constant(1.0)
        assert on_0.op.device == "/device:CPU:0"


def test_init_scope_composes() -> None:
    """testComposes: the lowest graph not building a function receives the ops."""
    g0 = sf.Graph()
    g1 = sf.FuncGraph("g1")
    g2 = sf.FuncGraph("g2")
    g3 = sf.Graph()
    with g0.as_default(), g1.as_default():
        with sf.init_scope():
            sf.constant(1.0)
            assert sf.get_default_graph() is g0
            assert len(g2.get_operations()) == 0
            assert len(g1.get_operations()) == 0
            assert len(g0.get_operations()) == 1
        with g2.as_default(), sf.init_scope():
            sf.constant(1.0)
            assert sf.get_default_graph() is g0
            with g3.as_default(), sf.init_scope():
                sf.constant(1.0)
                assert sf.get_default_graph() is g3
    assert len(g3.get_operations()) == 1
    assert len(g2.get_operations()) == 0
    assert len(g1.get_operations()) == 0
    assert len(g0.get_operations()) == 2


def test_init_scope_escapes_to_eager_context() -> None:
    """testEscapesToEagerContext."""
    g = sf.FuncGraph("g")
    with sf.eager_mode(), sf.graph_mode(), g.as_default():
        with sf.init_scope():
            assert sf.executing_eagerly()
        assert sf.get_default_graph() is g
        assert not sf.executing_eagerly()


def test_init_scope_stays_in_eager_when_only_eager_context_active() -> None:
    """testStaysInEagerWhenOnlyEagerContextActive."""
    with sf.eager_mode():
        with sf.init_scope():
            assert sf.executing_eagerly()
        assert sf.executing_eagerly()


def test_init_scope_escapes_function_when_in_eager_mode() -> None:
    """testEscapesDefunWhenInEagerMode: a variable made in init_scope makes f stateful."""
    holder: dict[str, Any] = {}

    def function_with_variables() -> Any:
        with sf.init_scope():
            holder["v"] = sf.Variable(3)
        return holder["v"].assign_add(1)

    assert int(function_with_variables()) == 4
    assert int(function_with_variables()) == 4
    compiled = sf.function(function_with_variables)
    assert int(compiled()) == 4
    assert int(compiled()) == 5


def test_init_scope_escapes_function_when_in_graph_mode() -> None:
    """testEscapesDefunWhenInGraphMode (with sf.Variable for get_variable)."""

    def function_with_variables(name: str) -> None:
        with sf.init_scope():
            sf.Variable(np.zeros(1, np.float32), name=name)

    g = sf.Graph()
    with g.as_default():
        function_with_variables("foo")
        compiled = sf.function(function_with_variables)
        compiled("bar")
        assert len(g.get_collection("variables")) == 2
        compiled("bar")  # the trace is reused: no new variable
        assert len(g.get_collection("variables")) == 2


def test_init_scope_escapes_nested_functions() -> None:
    """testEscapesNestedDefun."""
    holder: dict[str, Any] = {}

    def inner_function() -> Any:
        with sf.init_scope():
            holder["v"] = sf.Variable(1)
        return holder["v"].assign_add(2)

    def outer_function(inner: Any = None) -> Any:
        with sf.init_scope():
            holder["v0"] = sf.Variable(0)
        return holder["v0"].assign_add(1) + inner()

    assert int(outer_function(inner=inner_function)) == 4
    assert int(outer_function(inner=inner_function)) == 4
    compiled_inner = sf.function(inner_function)
    compiled_outer = sf.function(outer_function)
    assert int(compiled_outer(inner=compiled_inner)) == 4
    assert int(compiled_outer(inner=compiled_inner)) == 7


def test_init_scope_falls_back_to_global_graph_when_all_graphs_build_functions() -> None:
    """testFallsBackToGlobalGraphWhenAllGraphsAreBuildingFunctions (a TF1-only test).

    TensorFlow runs it with eager execution off for the process; so does this port. Under
    ``graph_mode()`` in an eager program both TensorFlow 2 and scopeflow escape to the
    eager context logged first (``graph_mode`` logs no context switch).
    """
    sf.disable_eager_execution()
    sf.reset_default_graph()
    global_graph = sf.get_default_graph()
    fn_graph = sf.FuncGraph("fn")
    with fn_graph.as_default(), sf.init_scope():
        dummy = sf.constant(1.0)
    assert dummy.graph is global_graph
    sf.enable_eager_execution()
    with sf.graph_mode(), fn_graph.as_default(), sf.init_scope():
        assert sf.executing_eagerly()


def test_init_scope_installs_default_graph_when_graph_stack_is_empty() -> None:
    """testInstallsDefaultGraphWhenGraphStackIsEmptyInGraphMode (observed via the graph)."""
    with sf.graph_mode():
        with sf.init_scope():
            assert not sf.executing_eagerly()
            assert sf.get_default_graph() is sf.get_default_graph()
            c = sf.constant(1.0)
        assert c.graph is sf.get_default_graph()


def test_init_scope_preserves_name_scope_in_graph_construction() -> None:
    """testPreservesNameScopeInGraphConstruction."""
    with sf.Graph().as_default():
        function_graph = sf.Graph()
        with function_graph.as_default():
            with sf.name_scope("inner"), sf.init_scope():
                assert sf.get_name_scope() == "inner"
        assert sf.get_name_scope() == ""


def test_init_scope_entering_graph_from_eager_is_sticky() -> None:
    """testEnteringGraphFromEagerIsSticky."""
    with sf.eager_mode():
        g = sf.Graph()
        with g.as_default(), sf.init_scope():
            assert not sf.executing_eagerly()
            assert sf.get_default_graph() is g


def test_init_scope_preserves_name_scope_in_eager_execution() -> None:
    """testPreservesNameScopeInEagerExecution."""
    seen = []

    def foo() -> None:
        with sf.name_scope("inner"), sf.init_scope():
            seen.append(sf.get_name_scope())

    foo()
    assert sf.get_name_scope() == ""
    sf.function(foo)()
    assert sf.get_name_scope() == ""
    assert seen == ["inner", "inner"]


def test_executing_eagerly_outside_functions() -> None:
    """testExecutingEagerlyOutsideFunctions."""

    @sf.function
    def f() -> Any:
        return sf.constant(sf.executing_eagerly_outside_functions())

    assert sf.executing_eagerly_outside_functions()
    assert bool(f())
    with sf.Graph().as_default():
        assert not sf.executing_eagerly_outside_functions()


# -- GraphTest ----------------------------------------------------------------------------------


def test_graph_context_manager_cancels_eager() -> None:
    """testGraphContextManagerCancelsEager."""
    with sf.eager_mode(), sf.Graph().as_default():
        assert not sf.executing_eagerly()


def test_graph_context_manager() -> None:
    """testGraphContextManager: as_default yields the graph."""
    g0 = sf.Graph()
    with g0.as_default() as g1:
        assert g1 is g0


def test_default_graph() -> None:
    """testDefaultGraph: creating a graph or its scope object changes nothing until entered."""
    orig = sf.get_default_graph()
    assert sf.get_default_graph() is orig
    g0 = sf.Graph()
    assert sf.get_default_graph() is orig
    context_manager_0 = g0.as_default()
    assert sf.get_default_graph() is orig
    with context_manager_0 as g0:
        assert sf.get_default_graph() is g0
        with sf.Graph().as_default() as g1:
            assert sf.get_default_graph() is g1
        assert sf.get_default_graph() is g0
    assert sf.get_default_graph() is orig


def test_reset_default_graph_nesting() -> None:
    """testResetDefaultGraphNesting: resetting inside as_default() is refused.

    TensorFlow raises ``AssertionError``; scopeflow raises ``ScopeNestingError`` (SPEC §12.5:
    misuse of scopes raises it, never a bare assertion).
    """
    g0 = sf.Graph()
    with pytest.raises(sf.ScopeNestingError), g0.as_default():
        sf.reset_default_graph()


def test_graph_garbage_collected() -> None:
    """testGarbageCollected: a graph that was run in a session is freed once dropped."""
    g = sf.Graph()
    g_ref = weakref.ref(g)
    with g.as_default():
        a = sf.constant(2.0)
        b = sf.constant(3.0)
        c = sf.add(a, b)
    with sf.Session(graph=g) as sess:
        assert sess.run(c) == 5.0
    del g, a, b, c, sess
    gc.collect()
    assert g_ref() is None


def test_graph_runnable_after_invalid_shape() -> None:
    """testRunnableAfterInvalidShape."""
    with sf.Graph().as_default():
        with pytest.raises(ValueError):
            sf.add([1, 2], [1, 2, 3])
        a = sf.constant(1)
        with sf.Session() as sess:
            assert sess.run(a) == 1


def test_collections() -> None:
    """CollectionTest.test_add_to_collection (the parts without scopes or refs)."""
    g = sf.Graph()
    g.add_to_collection("key", 12)
    g.add_to_collection("other", "foo")
    g.add_to_collection("key", 34)
    assert g.get_collection("key") == [12, 34]
    assert g.get_collection("nothing") == []
    snapshot = g.get_collection("other")
    g.add_to_collection("other", "bar")
    assert snapshot == ["foo"]  # get_collection returns a copy
    assert g.get_collection("other") == ["foo", "bar"]
    assert sorted(g.get_all_collection_keys()) == ["key", "other"]


# -- DeviceTest (CPU only) ----------------------------------------------------------------------


def test_device_nesting_with_device_strings() -> None:
    """DeviceTest.testNestingWithDeviceStrings / testNoneClearsDefault, on CPU devices."""
    g = sf.Graph()
    with g.as_default():
        with g.device("/device:CPU:0"):
            a = sf.constant(0.0)
            with g.device("/device:CPU:1"):
                b = sf.constant(0.0)
                with g.device(""):
                    c = sf.constant(0.0)
            with g.device(None):
                d = sf.constant(0.0)
            e = sf.constant(0.0)
    assert a.op.device == "/device:CPU:0"
    assert b.op.device == "/device:CPU:1"
    assert c.op.device == "/device:CPU:1"  # an empty string keeps the outer device
    assert d.op.device == ""  # None clears it
    assert e.op.device == "/device:CPU:0"


def test_device_partial_spec_is_canonical() -> None:
    """DeviceTest.testPartialDeviceString-like: 'cpu:0' and 'CPU:0' read '/device:CPU:0'."""
    g = sf.Graph()
    with g.as_default():
        with sf.device("cpu:0"):
            a = sf.constant(0.0)
        with sf.device("/cpu:0"):
            b = sf.constant(0.0)
    assert a.op.device == b.op.device == "/device:CPU:0"


# -- OutputTypesTest ----------------------------------------------------------------------------


def test_output_types() -> None:
    """testOneOutput / testThreeOutputs, through the outputs' dtypes."""
    with sf.Graph().as_default():
        op = sf.constant(12, dtype=sf.uint16).op
        assert [t.dtype for t in op.outputs] == [np.dtype(np.uint16)]
        a = sf.constant(np.ones((5, 30), np.float64))
        split0, _, _ = sf.split(a, [4, 15, 11], 1)
        assert [t.dtype for t in split0.op.outputs] == [np.dtype(np.float64)] * 3
        assert [t.shape for t in split0.op.outputs] == [(5, 4), (5, 15), (5, 11)]


# -- MultithreadedGraphStateTest ----------------------------------------------------------------


def test_name_stack_per_thread() -> None:
    """MultithreadedGraphStateTest.testNameStack: each thread's scope is its own."""
    g = sf.Graph()
    results: dict[int, tuple[Any, Any]] = {}
    mutated = [threading.Event() for _ in range(3)]
    go = [threading.Event() for _ in range(3)]

    def run(i: int) -> None:
        with g.as_default(), g.name_scope("foo"):
            op1 = sf.constant(1.0, name="FloatOutput").op
            mutated[i].set()
            go[i].wait()
            op2 = sf.constant(1.0, name="FloatOutput").op
            results[i] = (op1, op2)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for i, t in enumerate(threads):
        t.start()
        mutated[i].wait()
    for i, t in enumerate(threads):
        go[i].set()
        t.join()
    for i, suffix in enumerate(["", "_1", "_2"]):
        assert results[i][0].name == f"foo{suffix}/FloatOutput"
        assert results[i][1].name == f"foo{suffix}/FloatOutput_1"


def test_control_dependencies_per_thread() -> None:
    """MultithreadedGraphStateTest.testControlDependencies: per-thread dependency stacks."""
    g = sf.Graph()
    with g.as_default():
        deps = [sf.constant(float(i), name=f"ColocateWithMe_{i}") for i in range(3)]
    out: dict[int, Any] = {}
    mutated = [threading.Event() for _ in range(3)]
    go = [threading.Event() for _ in range(3)]

    def run(i: int) -> None:
        with g.as_default(), g.control_dependencies([deps[i]]):
            mutated[i].set()
            go[i].wait()
            out[i] = sf.constant(0.0, name=f"FloatOutput_{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for i, t in enumerate(threads):
        t.start()
        mutated[i].wait()
    for i, t in enumerate(threads):
        go[i].set()
        t.join()
    for i in range(3):
        assert list(out[i].op.control_inputs) == [deps[i].op]
