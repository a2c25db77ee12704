"""Variables: eager and graph, assignment, initializers, collections, lifting (SPEC section 8)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import scopeflow as sf


def test_eager_variable_reads_assigns_and_is_tensor_like() -> None:
    v = sf.Variable([1.0, 2.0], name="v")
    assert v.name == "v:0"
    assert v.dtype == np.float32
    assert v.shape == (2,)
    assert v.trainable
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(v.assign([3.0, 4.0]).numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(v.assign_add([1.0, 1.0]).numpy(), [4.0, 5.0])
    np.testing.assert_array_equal(v.assign_sub(1.0 + np.zeros(2, np.float32)).numpy(), [3.0, 4.0])
    np.testing.assert_array_equal((v * 2.0).numpy(), [6.0, 8.0])
    np.testing.assert_array_equal((v + v).numpy(), [6.0, 8.0])
    np.testing.assert_array_equal(sf.add(v, 1.0).numpy(), [4.0, 5.0])
    np.testing.assert_array_equal(np.asarray(v), [3.0, 4.0])


def test_eager_reads_are_snapshots() -> None:
    v = sf.Variable(1.0)
    before = v.read_value()
    snap = v.numpy()
    v.assign(5.0)
    assert float(before) == 1.0
    assert float(snap) == 1.0
    assert not snap.flags.writeable
    assert float(v.read_value()) == 5.0


def test_eager_name_follows_name_scope() -> None:
    with sf.name_scope("layer"):
        v = sf.Variable(0.0, name="w")
    assert v.name == "layer/w:0"


def test_bad_assignments() -> None:
    v = sf.Variable([1.0, 2.0], name="v")
    with pytest.raises(ValueError, match=r"shape \(3,\) to variable 'v:0' of shape \(2,\)"):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="Cannot assign a int32 value to variable 'v:0'"):
        v.assign(sf.constant([1, 2]))
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])


def test_assign_add_is_atomic_across_threads() -> None:
    v = sf.Variable(0, dtype=sf.int64)
    n_threads, n_adds = 8, 250
    barrier = threading.Barrier(n_threads)

    def work() -> None:
        barrier.wait()
        for _ in range(n_adds):
            v.assign_add(1)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(v.numpy()) == n_threads * n_adds


def test_graph_variable_lifecycle() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("foo"):
        v = sf.Variable([1.0, 2.0], name="bar")
        w = sf.Variable(3.0, name="w", trainable=False)
        total = sf.reduce_sum(v) + w
        inc = v.assign_add([1.0, 1.0])
        init = sf.global_variables_initializer()
    assert v.name == "foo/bar:0"
    assert v.graph is g
    assert g.get_collection("variables") == [v, w]
    assert g.get_collection("trainable_variables") == [v]
    assert v.initializer.type == "AssignVariableOp"
    with sf.Session(g) as sess:
        with pytest.raises(sf.FailedPreconditionError, match="uninitialized variable 'foo/bar'"):
            sess.run(total)
        sess.run(init)
        assert sess.run(total) == 6.0
        np.testing.assert_array_equal(sess.run(inc), [2.0, 3.0])
        np.testing.assert_array_equal(sess.run(v), [2.0, 3.0])
    # Each session holds its own values.
    with sf.Session(g) as other:
        with pytest.raises(sf.FailedPreconditionError):
            other.run(v)
        other.run(v.initializer)
        np.testing.assert_array_equal(other.run(v), [1.0, 2.0])


def test_graph_variable_cannot_be_used_eagerly_or_in_another_graph() -> None:
    g, other = sf.Graph(name="g"), sf.Graph(name="other")
    with g.as_default():
        v = sf.Variable(1.0, name="v")
    with pytest.raises(TypeError, match=r"lives in <sf.Graph 'g'>: fetch it with sf.Session"):
        v.numpy()
    with pytest.raises(TypeError, match="cannot be used eagerly"):
        v + 1.0
    with (
        other.as_default(),
        pytest.raises(ValueError, match="cannot be used in <sf.Graph 'other'>"),
    ):
        v.read_value()
    with pytest.raises(ValueError, match="belongs to <sf.Graph 'g'>"):
        sf.Session(other).run(v)


def test_eager_variable_cannot_be_used_in_a_plain_graph() -> None:
    v = sf.Variable(1.0, name="v")
    with sf.Graph().as_default(), pytest.raises(ValueError, match="created in eager mode"):
        v.read_value()
    with pytest.raises(AttributeError, match="no initializer op"):
        _ = v.initializer


def test_global_variables_initializer_is_none_eagerly() -> None:
    assert sf.global_variables_initializer() is None


def test_callable_initial_value_and_dtype() -> None:
    v = sf.Variable(lambda: [1, 2], dtype=sf.float64)
    assert v.dtype == np.float64
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    with pytest.raises(TypeError, match="variable name must be a string"):
        sf.Variable(1.0, name=3)  # type: ignore[arg-type]
