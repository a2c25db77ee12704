"""copy.copy, copy.deepcopy and pickle: values copy by value, graph objects refuse."""

from __future__ import annotations

import copy
import pickle
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _context

COPIERS: dict[str, Callable[[Any], Any]] = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda obj: pickle.loads(pickle.dumps(obj)),
}
VERBS = {"copy": "copied", "deepcopy": "deep-copied", "pickle": "pickled"}


# -- eager tensors: immutable values --------------------------------------------------------


def test_eager_tensor_copies_are_the_tensor_itself() -> None:
    x = sf.constant([1.0, 2.0])
    assert copy.copy(x) is x
    assert copy.deepcopy(x) is x
    nested = copy.deepcopy({"a": [x, x]})
    assert nested["a"][0] is x
    assert nested["a"][1] is x


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_eager_tensor_pickles_by_value(protocol: int) -> None:
    x = sf.constant([[1, 2], [3, 4]], dtype=sf.int64)
    y = pickle.loads(pickle.dumps(x, protocol=protocol))
    assert isinstance(y, sf.EagerTensor)
    assert y is not x
    assert y.dtype == np.int64
    assert y.shape == (2, 2)
    assert y.tolist() == [[1, 2], [3, 4]]
    assert not y.numpy().flags.writeable  # still immutable


def test_unpickled_eager_tensor_is_eager_in_any_context() -> None:
    data = pickle.dumps(sf.constant(3.0))
    with sf.Graph().as_default():
        y = pickle.loads(data)
    assert isinstance(y, sf.EagerTensor)
    assert float(y) == 3.0


def test_unpickling_refuses_a_tampered_payload() -> None:
    from scopeflow._tensor import _unpickle

    with pytest.raises(TypeError, match=r"^A pickled EagerTensor holds a NumPy array, got list$"):
        _unpickle([1.0])
    with pytest.raises(TypeError, match=r"^Cannot unpickle a NumPy value of object dtype"):
        _unpickle(np.array([None], dtype=object))


# -- eager variables: a new, independent variable ---------------------------------------------


def test_a_shallow_copy_of_a_variable_is_the_variable() -> None:
    v = sf.Variable([1.0, 2.0], name="w")
    assert copy.copy(v) is v
    g = sf.Graph()
    with g.as_default():
        gv = sf.Variable(1.0, name="gv")
    assert copy.copy(gv) is gv


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_eager_variable_copies_are_independent(how: str) -> None:
    with sf.name_scope("model"):
        v = sf.Variable([1.0, 2.0], name="w", trainable=False, dtype=sf.float64)
    w = COPIERS[how](v)
    assert isinstance(w, sf.Variable)
    assert w is not v
    assert (w.name, w.trainable, w.dtype, w.shape) == ("model/w:0", False, np.float64, (2,))
    assert w.tolist() == [1.0, 2.0]
    w.assign([5.0, 6.0])
    v.assign_add([1.0, 1.0])
    assert v.tolist() == [2.0, 3.0]
    assert w.tolist() == [5.0, 6.0]


def test_deepcopy_keeps_shared_variables_shared() -> None:
    v = sf.Variable(1.0)
    model = {"a": v, "b": [v]}
    copied = copy.deepcopy(model)
    assert copied["a"] is copied["b"][0]
    assert copied["a"] is not v


def test_copy_of_eager_variable_is_eager_even_in_a_graph() -> None:
    v = sf.Variable(4.0, name="v")
    g = sf.Graph()
    with g.as_default(), sf.name_scope("other"):
        w = copy.deepcopy(v)
    assert w.graph is None
    assert w.name == "v:0"
    assert float(w.numpy()) == 4.0
    assert g.get_operations() == []


def test_copies_read_a_consistent_value_under_concurrent_writes() -> None:
    v = sf.Variable(np.zeros(1000, np.float32))
    barrier = threading.Barrier(2)
    copies: list[Any] = []

    def writer() -> None:
        barrier.wait()
        for i in range(200):
            v.assign(np.full(1000, i, np.float32))

    def copier() -> None:
        barrier.wait()
        for _ in range(200):
            copies.append(copy.deepcopy(v).numpy())

    threads = [threading.Thread(target=writer), threading.Thread(target=copier)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every copy holds one of the assigned values, never a mix of two.
    assert all(len(set(c.tolist())) == 1 for c in copies)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_graph_variable_refuses_copies(how: str) -> None:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(1.0, name="v")
    n_ops = len(g.get_operations())
    message = (
        rf"^Graph variable 'v:0' of <sf\.Graph '[^']+'> cannot be {VERBS[how]}: its value "
        r"lives in each Session that initializes it\. Fetch the value with "
        r"sf\.Session\(graph\)\.run\(variable\)"
    )
    with pytest.raises(TypeError, match=message):
        COPIERS[how](v)
    assert len(g.get_operations()) == n_ops


# -- graph objects refuse --------------------------------------------------------------------


def _graph_objects() -> dict[str, Any]:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, name="x")
        y = x + 1.0
    f = sf.function(lambda a: a * 2.0)
    concrete = f.get_concrete_function(sf.constant(1.0))
    with sf.GradientTape() as tape:
        pass
    session = sf.Session(g)
    return {
        "graph": (g, r"<sf\.Graph '[^']+'> cannot be {verb}: a graph owns its operations"),
        "func_graph": (concrete.graph, r"<sf\.FuncGraph .*> cannot be {verb}: a graph owns"),
        "operation": (
            y.op,
            r"<sf\.Operation 'Add' type=Add> cannot be {verb}: an operation is a node of its "
            r"graph\. Create the op again",
        ),
        "tensor": (
            y,
            r"Symbolic tensor 'Add:0' cannot be {verb}: it is a node of <sf\.Graph '[^']+'> "
            r"and has no value of its own\. Copy its value instead",
        ),
        "function": (
            f,
            r".* cannot be {verb}: it holds its traces, their function graphs, locks and "
            r"caches\. Share the same Function object",
        ),
        "concrete": (
            concrete,
            r"<sf\.ConcreteFunction .*> cannot be {verb}: it holds a traced function graph",
        ),
        "tape": (
            tape,
            r".* cannot be {verb}: a tape holds the operations recorded in its block, and a "
            r"lock\. Open a new sf\.GradientTape",
        ),
        "session": (
            session,
            r".* cannot be {verb}: a session holds the values of its graph's variables, "
            r"compiled run plans and locks\. Create another sf\.Session\(graph\)",
        ),
    }


@pytest.mark.parametrize("how", sorted(COPIERS))
@pytest.mark.parametrize(
    "kind",
    ["graph", "func_graph", "operation", "tensor", "function", "concrete", "tape", "session"],
)
def test_graph_objects_refuse_copy_deepcopy_and_pickle(kind: str, how: str) -> None:
    obj, pattern = _graph_objects()[kind]
    before = _context.current()
    with pytest.raises(TypeError, match="^" + pattern.format(verb=VERBS[how])):
        COPIERS[how](obj)
    assert _context.current() is before


def test_copy_of_graph_is_no_longer_an_alias() -> None:
    """The issue: copy.copy(graph) returned an object sharing the original's op list."""
    g = sf.Graph()
    with pytest.raises(TypeError, match=r"cannot be copied"):
        copy.copy(g)
    with g.as_default():
        sf.constant(1.0)
    assert len(g.get_operations()) == 1


def test_structures_holding_graph_objects_refuse_deepcopy() -> None:
    with sf.Graph().as_default():
        x = sf.placeholder(sf.float32, name="x")
    with pytest.raises(TypeError, match=r"^Symbolic tensor 'x:0' cannot be deep-copied"):
        copy.deepcopy({"inputs": [x]})
