"""Bad input raises scopeflow's own clear errors, never a raw KeyError/AttributeError."""

from __future__ import annotations

import collections
import collections.abc
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _context

Graph = sf.Graph


@pytest.fixture
def graph_xy() -> tuple[sf.Graph, Any, Any]:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, shape=(), name="x")
        y = sf.multiply(x, 2.0, name="y")
    return g, x, y


@pytest.mark.parametrize(
    ("fetch", "pattern"),
    [
        ("nope:0", r"^Cannot fetch 'nope:0': The name 'nope' refers to no operation"),
        ("x:3", r"^Cannot fetch 'x:3': Operation 'x' has 1 outputs; 'x:3' does not exist"),
        ("nope", r"^Cannot fetch 'nope': The name 'nope' refers to no operation"),
        ("x:a", r"^Cannot fetch 'x:a': 'x:a' is not a tensor name"),
    ],
)
def test_fetching_an_unknown_name(graph_xy: Any, fetch: str, pattern: str) -> None:
    g, _, _ = graph_xy
    with pytest.raises(ValueError, match=pattern):
        sf.Session(g).run(fetch)


@pytest.mark.parametrize(
    ("feed", "error", "pattern"),
    [
        ({"nope": 1.0}, TypeError, r"^Cannot interpret feed_dict key 'nope' as a tensor: "),
        ({"x:7": 1.0}, TypeError, r"^Cannot interpret feed_dict key 'x:7' as a tensor: "),
        ([("x", 1.0)], TypeError, r"^feed_dict must be a dict mapping tensors .* got list"),
        ((("x", 1.0),), TypeError, r"^feed_dict must be a dict mapping tensors .* got tuple"),
    ],
)
def test_bad_feed_dicts(graph_xy: Any, feed: Any, error: type, pattern: str) -> None:
    g, _, y = graph_xy
    with pytest.raises(error, match=pattern):
        sf.Session(g).run(y, feed_dict=feed)


def test_feeding_by_name_still_works(graph_xy: Any) -> None:
    g, _, y = graph_xy
    assert sf.Session(g).run(y, feed_dict={"x": 1.5}) == 3.0
    assert sf.Session(g).run("y:0", feed_dict={"x:0": 2.0}) == 4.0


def test_fetching_a_defaultdict_keeps_its_type_and_factory(graph_xy: Any) -> None:
    g, x, y = graph_xy
    fetches = collections.defaultdict(list, {"y": y, "both": [x, y]})
    out = sf.Session(g).run(fetches, feed_dict={x: 1.0})
    assert type(out) is collections.defaultdict
    assert out.default_factory is list
    assert out["y"] == 2.0
    assert out["both"] == [1.0, 2.0]
    assert out["missing"] == []


def test_ordered_dict_and_mapping_subclasses_are_rebuilt(graph_xy: Any) -> None:
    g, x, y = graph_xy
    out = sf.Session(g).run(collections.OrderedDict(b=y, a=x), feed_dict={x: 1.0})
    assert type(out) is collections.OrderedDict
    assert list(out.items()) == [("b", 2.0), ("a", 1.0)]


class _FrozenMap(collections.abc.Mapping[str, Any]):
    """A read-only mapping whose constructor does not take a dict."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_a_mapping_that_cannot_be_rebuilt_fails_before_the_graph_runs() -> None:
    g = sf.Graph()
    with g.as_default():
        v = sf.Variable(0.0, name="v")
        inc = v.assign_add(1.0)
    sess = sf.Session(g)
    sess.run(v.initializer)
    with pytest.raises(TypeError, match=r"^Cannot use a _FrozenMap as a nested structure"):
        sess.run(_FrozenMap(inc=inc))
    assert sess.run(v) == 0.0  # nothing ran


@pytest.mark.parametrize(
    ("shape", "error", "pattern"),
    [
        ([None], ValueError, r"^constant\(\): shape \[None\] has an unknown \(None\) size"),
        ([-1], ValueError, r"^constant\(\): shape \[-1\] has a negative size -1"),
        ([2.5], TypeError, r"^constant\(\): shape \[2.5\] has a non-integer size 2.5"),
        ([True], TypeError, r"^constant\(\): shape \[True\] has a non-integer size True"),
        (3, TypeError, r"^constant\(\): shape must be a sequence of dimension sizes"),
        ("ab", TypeError, r"^constant\(\): shape must be a sequence of dimension sizes"),
    ],
)
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_constant_refuses_bad_shapes(shape: Any, error: type, pattern: str, mode: str) -> None:
    g = sf.Graph()
    before = _context.current()
    with g.as_default() if mode == "graph" else sf.eager_mode():
        with pytest.raises(error, match=pattern):
            sf.constant(1.0, shape=shape)
    assert g.get_operations() == []
    assert _context.current() is before


def test_constant_accepts_numpy_integer_sizes() -> None:
    t = sf.constant(1.0, shape=np.array([2, 3]))
    assert t.shape == (2, 3)
    assert sf.constant([1, 2, 3, 4], shape=(np.int64(2), 2)).shape == (2, 2)


def test_placeholder_refuses_bad_shapes() -> None:
    with sf.Graph().as_default():
        with pytest.raises(TypeError, match=r"^placeholder\(\): shape \[1.5\] has a non-integer"):
            sf.placeholder(sf.float32, shape=[1.5])
        with pytest.raises(ValueError, match=r"^placeholder\(\): shape \[2, -3\] has a negative"):
            sf.placeholder(sf.float32, shape=[2, -3])
        assert sf.placeholder(sf.float32, shape=[None, 2]).shape == (None, 2)


@pytest.mark.parametrize(
    ("shape", "error", "pattern"),
    [
        (3, TypeError, r"^TensorSpec\(\): shape must be a sequence of dimension sizes"),
        ([2.5], TypeError, r"^TensorSpec\(\): shape \[2.5\] has a non-integer size"),
        ([-2], ValueError, r"^TensorSpec\(\): shape \[-2\] has a negative size"),
    ],
)
def test_tensor_spec_refuses_bad_shapes(shape: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        sf.TensorSpec(shape)


def test_tensor_spec_accepts_unknown_sizes_and_rank() -> None:
    assert sf.TensorSpec([None, 3]).shape == (None, 3)
    assert sf.TensorSpec(None).shape is None


@pytest.mark.parametrize("spec", [["/cpu:0"], 0, {"device": "cpu"}])
def test_device_refuses_non_strings(spec: Any) -> None:
    before = _context.current()
    with pytest.raises(TypeError, match=r"^A device specification must be a string or None"):
        sf.device(spec)
    with sf.Graph().as_default() as g, pytest.raises(TypeError, match="must be a string"):
        g.device(spec)
    assert _context.current() is before


def _loop(max_iter: Any) -> Any:
    return sf.while_loop(
        lambda i: i < 10, lambda i: i + 1, [sf.constant(0)], maximum_iterations=max_iter
    )


def test_while_loop_takes_an_eager_or_constant_iteration_bound() -> None:
    assert int(_loop(sf.constant(3))[0]) == 3
    g = sf.Graph()
    with g.as_default():
        out = _loop(sf.constant(4))
    assert sf.Session(g).run(out) == [4]


def test_while_loop_refuses_a_non_integer_or_non_scalar_graph_tensor_bound() -> None:
    g = sf.Graph()
    with g.as_default():
        before = len(g.get_operations())
        x = sf.placeholder(sf.float32, shape=(), name="x")
        with pytest.raises(TypeError, match=r"'w': maximum_iterations must be an integer tensor"):
            sf.while_loop(lambda i: i < 3, lambda i: i + 1, [0], x, name="w")
        v = sf.placeholder(sf.int32, shape=(2,), name="v")
        with pytest.raises(ValueError, match=r"must be a scalar, got 'v:0' of shape \(2,\)"):
            _loop(v)
        # nothing built but the placeholders and _loop's initial constants
        assert {op.type for op in g.get_operations()[before:]} == {"Placeholder", "Const"}


def test_while_loop_bound_of_unknown_rank_is_checked_when_the_loop_runs() -> None:
    g = sf.Graph()
    with g.as_default():
        u = sf.placeholder(sf.int32, shape=None, name="u")
        (out,) = sf.while_loop(lambda i: i < 10, lambda i: i + 1, [0], u, name="w")
    with sf.Session(g) as session:
        assert int(session.run(out, {u: 4})) == 4
        with pytest.raises(sf.errors.InvalidArgumentError, match=r"'w_maximum_iterations'"):
            session.run(out, {u: [4, 5]})


def test_while_loop_refuses_a_graph_tensor_bound_in_eager_code() -> None:
    g = sf.Graph()
    with g.as_default():
        n = sf.placeholder(sf.int32, shape=(), name="n")
    with pytest.raises(TypeError, match=r"the graph tensor 'n:0' belongs to a graph"):
        _loop(n)


@pytest.mark.parametrize("bad", [2.5, "3", True, [3], sf.constant(2.0)], ids=repr)
def test_while_loop_refuses_non_integer_bounds(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"^while_loop\(\) maximum_iterations must be an integer"):
        _loop(bad)
