"""Graphs, operations, names, control dependencies, devices, collections (SPEC section 5)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _context


def _names(g: sf.Graph) -> list[str]:
    return [op.name for op in g.get_operations()]


# -- default graph ---------------------------------------------------------------------


def test_as_default_binds_the_graph_and_switches_to_graph_mode() -> None:
    g = sf.Graph()
    assert sf.executing_eagerly()
    with g.as_default() as bound:
        assert bound is g
        assert sf.get_default_graph() is g
        assert sf.has_default_graph()
        assert not sf.executing_eagerly()
        assert sf.context_switches()[-1].enter_context.__self__ is g  # type: ignore[attr-defined]
    assert sf.executing_eagerly()
    assert not sf.has_default_graph()


def test_global_default_graph_is_process_wide_and_lazy() -> None:
    g = sf.get_default_graph()
    seen: list[sf.Graph] = []
    t = threading.Thread(target=lambda: seen.append(sf.get_default_graph()))
    t.start()
    t.join()
    assert seen == [g]
    assert not g.building_function


def test_reset_default_graph_replaces_the_global_graph() -> None:
    old = sf.get_default_graph()
    sf.reset_default_graph()
    assert sf.get_default_graph() is not old


def test_reset_default_graph_inside_a_graph_is_an_error() -> None:
    g = sf.Graph()
    with g.as_default():
        before = sf.get_default_graph()
        with pytest.raises(sf.ScopeNestingError, match="exit the nested graphs first"):
            sf.reset_default_graph()
        assert sf.get_default_graph() is before


def test_get_operations_in_creation_order_and_lookup_by_name() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        b = sf.constant(2.0, name="b")
        c = sf.add(a, b, name="c")
    assert _names(g) == ["a", "b", "c"]
    assert g.get_operation_by_name("c") is c.op
    assert g.get_tensor_by_name("c:0") is c
    with pytest.raises(KeyError, match="'nope' refers to no operation"):
        g.get_operation_by_name("nope")
    with pytest.raises(ValueError, match="looks like a tensor name"):
        g.get_operation_by_name("c:0")
    with pytest.raises(ValueError, match="is not a tensor name"):
        g.get_tensor_by_name("c")
    with pytest.raises(KeyError, match="has 1 outputs"):
        g.get_tensor_by_name("c:1")


def test_operation_and_tensor_attributes() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(None, 2), name="x")
        y = sf.multiply(x, 2.0, name="y")
    assert y.op.type == "Mul"
    assert y.op.inputs[0] is x
    assert y.op.outputs == (y,)
    assert y.value_index == 0
    assert y.graph is g
    assert y.dtype == np.float32
    assert y.shape == (None, 2)
    assert y.op.graph is g


# -- names -----------------------------------------------------------------------------


def test_op_names_are_unique_per_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        ops = [sf.constant(1.0) for _ in range(3)]
        with sf.name_scope("scope"):
            s = sf.add(ops[0], ops[1])
            s2 = sf.add(ops[0], ops[1])
    assert [t.op.name for t in ops] == ["Const", "Const_1", "Const_2"]
    assert s.op.name == "scope/Add"
    assert s2.op.name == "scope/Add_1"


def test_uniqueness_is_case_insensitive_and_skips_taken_suffixes() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        a_1 = sf.constant(1.0, name="a_1")
        upper = sf.constant(1.0, name="A")
        again = sf.constant(1.0, name="a")
    assert [a.op.name, a_1.op.name, upper.op.name, again.op.name] == ["a", "a_1", "A_2", "a_3"]


def test_name_scope_rules() -> None:
    g = sf.Graph()
    with g.as_default():
        with sf.name_scope("outer") as outer:
            assert outer == "outer/"
            with sf.name_scope("a") as a:
                assert a == "outer/a/"
            with sf.name_scope("a") as a1:
                assert a1 == "outer/a_1/"
            with sf.name_scope(None) as root:
                assert root == ""
                assert sf.get_name_scope() == ""
            with sf.name_scope("") as root2:
                assert root2 == ""
            with sf.name_scope(a) as again:
                assert again == "outer/a/"
                c = sf.constant(1.0, name="c")
        assert sf.get_name_scope() == ""
    assert c.op.name == "outer/a/c"


def test_explicit_op_name_with_trailing_slash_is_verbatim() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("s"):
        c = sf.constant(1.0, name="exact/")
        with pytest.raises(ValueError, match="already exists"):
            sf.constant(2.0, name="exact/")
    assert c.op.name == "exact"


@pytest.mark.parametrize("bad", ["a:b", "_private", "-x"])
def test_invalid_names_at_the_root(bad: str) -> None:
    g = sf.Graph()
    with g.as_default():
        before = sf.context_switches()
        with pytest.raises(ValueError, match="is not a valid name"):
            sf.name_scope(bad).__enter__()
        with pytest.raises(ValueError, match="is not a valid name"):
            sf.constant(1.0, name=bad)
        assert sf.context_switches() == before
        assert sf.get_name_scope() == ""


def test_underscore_is_fine_inside_a_scope_but_colon_never() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("s"):
        with sf.name_scope("_inner") as inner:
            assert inner == "s/_inner/"
        with pytest.raises(ValueError, match="not a valid name"):
            sf.name_scope("a:b").__enter__()


def test_name_scope_type_error() -> None:
    with pytest.raises(TypeError, match="must be a string or None"):
        sf.name_scope(3)  # type: ignore[arg-type]


def test_eager_name_scopes_concatenate() -> None:
    with sf.name_scope("a") as a, sf.name_scope("a") as b:
        assert (a, b) == ("a/", "a/a/")
        assert sf.get_name_scope() == "a/a"
    assert sf.get_name_scope() == ""


def test_graph_name_scope_method_on_a_non_default_graph() -> None:
    g = sf.Graph()
    other = sf.Graph()
    with g.name_scope("pre"):
        assert g.get_name_scope() == "pre"
        assert sf.get_name_scope() == ""
        with other.as_default():
            assert sf.get_name_scope() == ""
        with g.as_default():
            c = sf.constant(1.0, name="c")
    assert c.op.name == "pre/c"
    assert g.get_name_scope() == ""


def test_unique_name_method() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("s"):
        assert g.unique_name("x") == "s/x"
        assert g.unique_name("x") == "s/x_1"
        assert g.unique_name("x", mark_as_used=False) == "s/x_2"


# -- control dependencies --------------------------------------------------------------


def test_control_dependencies_accumulate_and_none_clears() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        b = sf.constant(2.0, name="b")
        with sf.control_dependencies([a]):
            x = sf.constant(0.0, name="x")
            with sf.control_dependencies([b.op]):
                y = sf.constant(0.0, name="y")
                with sf.control_dependencies(None):
                    z = sf.constant(0.0, name="z")
                    with sf.control_dependencies([a]):
                        w = sf.constant(0.0, name="w")
    assert x.op.control_inputs == (a.op,)
    assert y.op.control_inputs == (a.op, b.op)
    assert z.op.control_inputs == ()
    assert w.op.control_inputs == (a.op,)


def test_control_dependency_pruned_when_an_input_already_has_it() -> None:
    g = sf.Graph()
    with g.as_default():
        a = sf.constant(1.0, name="a")
        b = sf.constant(1.0, name="b")
        with sf.control_dependencies([a]):
            x = sf.constant(2.0, name="x")
            y = sf.add(x, x, name="y")  # x already waits for a
            z = sf.add(y, y, name="z")
            with sf.control_dependencies([b]):
                w = sf.add(x, x, name="w")  # a pruned, b kept
        outside = sf.add(x, x, name="outside")
    assert x.op.control_inputs == (a.op,)
    assert y.op.control_inputs == ()
    assert z.op.control_inputs == ()
    assert w.op.control_inputs == (b.op,)
    assert outside.op.control_inputs == ()


def test_control_dependencies_bad_input() -> None:
    g = sf.Graph()
    other = sf.Graph()
    with other.as_default():
        foreign = sf.constant(1.0, name="foreign")
    with g.as_default():
        before = sf.context_switches()
        with pytest.raises(TypeError, match="takes operations or tensors"):
            sf.control_dependencies([1.0]).__enter__()
        with pytest.raises(ValueError, match="belongs to"):
            sf.control_dependencies([foreign]).__enter__()
        with pytest.raises(TypeError, match="Wrap a single one in a list"):
            sf.control_dependencies(foreign)  # type: ignore[arg-type]
        assert sf.context_switches() == before


def test_eager_control_dependencies_call_callables_once() -> None:
    calls: list[int] = []
    with sf.control_dependencies([lambda: calls.append(1), sf.constant(1.0)]):
        r = sf.add(1.0, 2.0)
    assert calls == [1]
    assert float(r) == 3.0


# -- devices ---------------------------------------------------------------------------


def test_devices_merge_and_clear() -> None:
    g = sf.Graph()
    with g.as_default(), sf.device("/job:worker/replica:0/task:1"):
        a = sf.constant(1.0)
        with sf.device("/gpu:1"):
            b = sf.constant(1.0)
            with sf.device("/cpu:0"):
                c = sf.constant(1.0)
            with sf.device(None):
                d = sf.constant(1.0)
    assert a.op.device == "/job:worker/replica:0/task:1"
    assert b.op.device == "/job:worker/replica:0/task:1/device:GPU:1"
    assert c.op.device == "/job:worker/replica:0/task:1/device:CPU:0"
    assert d.op.device == ""


def test_bad_device_spec() -> None:
    with pytest.raises(ValueError, match="Invalid device specification '/nonsense'"):
        sf.device("/nonsense")
    with pytest.raises(TypeError, match="must be a string or None"):
        sf.device(3)  # type: ignore[arg-type]


def test_device_of_graph_method() -> None:
    g = sf.Graph()
    with g.device("/cpu:0"), g.as_default():
        c = sf.constant(1.0)
    assert c.op.device == "/device:CPU:0"


# -- collections and finalize ----------------------------------------------------------


def test_collections() -> None:
    g = sf.Graph()
    g.add_to_collection("things", 1)
    g.add_to_collection("things", 2)
    got = g.get_collection("things")
    got.append(3)
    assert g.get_collection("things") == [1, 2]
    assert g.get_collection("missing") == []
    assert g.get_all_collection_keys() == ["things"]


def test_finalized_graph_refuses_changes() -> None:
    g = sf.Graph()
    with g.as_default():
        sf.constant(1.0)
    g.finalize()
    assert g.finalized
    with g.as_default(), pytest.raises(RuntimeError, match="finalized"):
        sf.constant(2.0)
    with pytest.raises(RuntimeError, match="finalized"):
        g.add_to_collection("x", 1)
    assert _names(g) == ["Const"]


# -- mixing graphs and eager -----------------------------------------------------------


def test_tensor_from_another_graph_is_a_value_error_naming_both() -> None:
    a = sf.Graph(name="A")
    b = sf.Graph(name="B")
    with a.as_default():
        x = sf.constant(1.0, name="x")
    with b.as_default():
        y = sf.constant(1.0, name="y")
        with pytest.raises(ValueError, match=r"'x:0' belongs to <sf.Graph 'A'>.*'B'") as info:
            sf.add(x, y)
    assert isinstance(info.value, sf.errors.GraphMismatchError)
    assert _names(b) == ["y"]


def test_eager_tensor_in_plain_graph_is_a_runtime_error() -> None:
    e = sf.constant(1.0)
    g = sf.Graph()
    with g.as_default(), pytest.raises(RuntimeError, match="traced function"):
        sf.add(e, 1.0)


def test_graph_tensor_in_eager_op_is_a_type_error() -> None:
    g = sf.Graph()
    with g.as_default():
        t = sf.constant(1.0)
    with pytest.raises(TypeError, match="cannot be used outside its graph"):
        sf.add(t, 1.0)


def test_symbolic_tensor_has_no_truth_value() -> None:
    g = sf.Graph()
    with g.as_default():
        t = sf.constant(True)
        with pytest.raises(TypeError, match="sf.cond"):
            bool(t)


def test_function_graph_fields() -> None:
    outer = sf.Graph()
    fg = sf.FuncGraph("f", outer)
    assert fg.building_function
    assert fg.outer_graph is outer
    with pytest.raises(TypeError, match="outer_graph must be a Graph"):
        sf.FuncGraph("f", outer_graph="nope")  # type: ignore[arg-type]


# -- threads building one graph --------------------------------------------------------


def test_many_threads_build_one_graph() -> None:
    g = sf.Graph()
    n_threads, per_thread = 8, 200
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def build(i: int) -> None:
        try:
            barrier.wait()
            with g.as_default(), sf.name_scope(f"t{i}"), sf.device(f"/cpu:{i}"):
                for _ in range(per_thread):
                    c = sf.constant(1.0)
                    assert c.op.name.startswith(f"t{i}/")
                    assert c.op.device == f"/device:CPU:{i}"
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = _names(g)
    assert len(names) == len(set(names)) == n_threads * per_thread
    # A thread's scopes never leak into the main thread.
    assert _context.current() is _context.root_frame()
