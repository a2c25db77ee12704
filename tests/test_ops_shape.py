"""Shape and creation ops (issue 9) against NumPy in every mode, with static shapes.

``shape, size, rank, zeros_like, ones_like, range, expand_dims, squeeze, tile, split,
pad, one_hot``, and ``zeros/ones/fill/reshape`` given a shape tensor (dynamic shapes).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner, assert_same, data

F32, F64, I32, I64, BOOL = (np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, bool))


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _static(fn: Any, *shapes: Any, dtype: Any = F32) -> Any:
    """The static shape of ``fn`` built on placeholders of ``shapes``."""
    with sf.Graph().as_default():
        return fn(*[sf.placeholder(dtype, s) for s in shapes]).shape


def _graph_ops(g: sf.Graph) -> list[str]:
    return [op.type for op in g.get_operations()]


# -- shape, size, rank ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (2, 0, 4), (2, 3)], ids=str)
@pytest.mark.parametrize("out_type", [I32, I64], ids=str)
def test_shape_size_rank(run: Runner, shape: Any, out_type: Any) -> None:
    a = data(shape, F32)
    assert_same(run(lambda x: sf.shape(x, out_type=out_type), a), np.array(shape, out_type))
    assert_same(run(lambda x: sf.size(x, out_type=out_type), a), np.array(a.size, out_type))
    assert_same(run(sf.rank, a), np.array(len(shape), I32))


def test_shape_static_shapes() -> None:
    assert _static(sf.shape, (None, 3)) == (2,)
    assert _static(sf.shape, None) == (None,)
    assert _static(sf.size, None) == ()
    assert _static(sf.rank, None) == ()


def test_shape_in_a_graph_is_a_tensor_known_only_at_run_time() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (None, 3))
        s = sf.shape(x)
    assert type(s) is sf.Tensor
    assert s.op.type == "Shape"
    assert s.dtype == I32
    assert sf.Session(g).run(s, {x: np.zeros((5, 3), np.float32)}).tolist() == [5, 3]


@pytest.mark.parametrize("fn", [sf.shape, sf.size], ids=["shape", "size"])
def test_shape_out_type_must_be_an_int_type(fn: Any) -> None:
    with pytest.raises(TypeError, match=r"^(shape|size)\(\): out_type must be int32 or int64"):
        fn(sf.zeros([2]), out_type=sf.float32)


# -- zeros, ones, fill, reshape with a shape tensor --------------------------------------------


def test_zeros_ones_fill_take_the_shape_of_another_tensor(run: Runner) -> None:
    a = data((2, 3), F32)
    assert_same(run(lambda x: sf.zeros(sf.shape(x)), a), np.zeros((2, 3), F32))
    assert_same(run(lambda x: sf.ones(sf.shape(x), sf.int64), a), np.ones((2, 3), I64))
    assert_same(run(lambda x: sf.fill(sf.shape(x), 7.5), a), np.full((2, 3), 7.5, F32))
    assert_same(run(lambda x: sf.fill(sf.shape(x), x[0, 0]), a), np.full((2, 3), a[0, 0]))
    assert_same(run(lambda x: sf.zeros([sf.shape(x)[1], 2]), a), np.zeros((3, 2), F32))


def test_reshape_takes_a_shape_tensor(run: Runner) -> None:
    a = data((2, 3, 4), F32)
    assert_same(run(lambda x: sf.reshape(x, [sf.shape(x)[0], -1]), a), a.reshape(2, 12))
    assert_same(run(lambda x: sf.reshape(x, sf.shape(x)[::-1]), a), a.reshape(4, 3, 2))
    assert_same(
        run(lambda x: sf.reshape(x, sf.concat([sf.shape(x)[:1], [-1, 2]], 0)), a),
        a.reshape(2, 6, 2),
    )


@pytest.mark.parametrize(
    ("shape", "build", "expected"),
    [
        ((None, 3), lambda x: sf.zeros(sf.shape(x)), (None, 3)),
        ((2, 3), lambda x: sf.zeros(sf.shape(x)), (2, 3)),
        (None, lambda x: sf.zeros(sf.shape(x)), None),
        ((None, 3), lambda x: sf.ones([sf.shape(x)[0], 4]), (None, 4)),
        ((None, 3), lambda x: sf.fill(sf.shape(x)[1:], 1.0), (3,)),
        ((None, 3, 4), lambda x: sf.reshape(x, [sf.shape(x)[0], -1]), (None, 12)),
        ((2, 3, 4), lambda x: sf.reshape(x, [sf.shape(x)[0], -1]), (2, 12)),
        ((None, 3), lambda x: sf.reshape(x, sf.shape(x)), (None, 3)),
        ((2, None), lambda x: sf.reshape(x, sf.stack([sf.shape(x)[1], 2])), (None, 2)),
        (None, lambda x: sf.reshape(x, sf.shape(x)), None),
    ],
)
def test_dynamic_shapes_know_what_is_known(shape: Any, build: Any, expected: Any) -> None:
    assert _static(build, shape) == expected


def test_a_constant_shape_tensor_is_folded() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (2, 3))
        z = sf.zeros(sf.shape(x))
        r = sf.reshape(x, sf.constant([3, 2]))
    assert z.shape == (2, 3)
    assert z.op.type == "Fill"
    assert r.shape == (3, 2)
    assert r.op.type == "Reshape"


def test_reshape_with_one_unknown_size_is_pinned_by_the_element_count() -> None:
    with sf.Graph().as_default():
        x = sf.placeholder(F32, (2, 6))
        n = sf.placeholder(I32, ())
        assert sf.reshape(x, sf.stack([n, 4])).shape == (3, 4)
        with pytest.raises(ValueError, match="cannot reshape a tensor of 12 elements"):
            sf.reshape(x, sf.stack([n, 5]))


def test_dynamic_shape_errors_when_the_graph_runs() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (None, 3))
        n = sf.placeholder(I32, ())
        bad_reshape = sf.reshape(x, [n, 2])
        bad_zeros = sf.zeros([n, 2])
    with sf.Session(g) as sess:
        feed = {x: np.zeros((2, 3), np.float32), n: 4}
        with pytest.raises(sf.InvalidArgumentError, match=r"cannot reshape a tensor of 6 elements"):
            sess.run(bad_reshape, feed)
        with pytest.raises(sf.InvalidArgumentError, match=r"the shape \[-1, 2\] is invalid"):
            sess.run(bad_zeros, {n: -1})
        assert sess.run(bad_zeros, {n: 2}).shape == (2, 2)


@pytest.mark.parametrize(
    ("build", "error", "pattern"),
    [
        (lambda s: sf.zeros(sf.cast(s, sf.float32)), TypeError, "must be an int32 or int64 tensor"),
        (lambda s: sf.zeros(sf.stack([s, s])), ValueError, r"must be a 1-D tensor"),
        (
            lambda s: sf.reshape(sf.zeros([4]), sf.cast(s, sf.float64)),
            TypeError,
            "int32 or int64 tensor",
        ),
        (lambda s: sf.fill(s, [1.0, 2.0]), ValueError, "fill value must be a scalar"),
        (lambda s: sf.zeros([s[0], -2]), ValueError, "has a negative size"),
        (lambda s: sf.reshape(sf.zeros([4]), [s[0], -1, -1]), ValueError, "at most one -1"),
        (lambda s: sf.ones([s[0], 2.5]), TypeError, "must be an int"),
    ],
)
def test_bad_shape_tensors_are_rejected_when_built(build: Any, error: Any, pattern: str) -> None:
    g = sf.Graph()
    with g.as_default():
        s = sf.shape(sf.placeholder(F32, (None, 2)))
        before = len(g.get_operations())
        with pytest.raises(error, match=pattern):
            build(s)
    assert "DynamicFill" not in _graph_ops(g)[before:]
    assert "DynamicReshape" not in _graph_ops(g)[before:]


# -- zeros_like, ones_like -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [F32, I64, BOOL], ids=str)
def test_zeros_like_and_ones_like(run: Runner, dtype: Any) -> None:
    a = data((2, 3), dtype)
    assert_same(run(sf.zeros_like, a), np.zeros_like(a))
    assert_same(run(sf.ones_like, a), np.ones_like(a))
    assert_same(run(lambda x: sf.zeros_like(x, dtype=sf.float64), a), np.zeros((2, 3), F64))
    assert_same(run(lambda x: sf.ones_like(x, sf.int32), a), np.ones((2, 3), I32))


def test_zeros_like_of_python_values_and_unknown_shapes() -> None:
    assert_same(np.asarray(sf.ones_like([[1.0, 2.0]])), np.ones((1, 2), F32))
    assert _static(sf.zeros_like, (None, 2)) == (None, 2)
    assert _static(lambda x: sf.ones_like(x, sf.int32), None) is None


# -- range -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((5,), {}, np.arange(5, dtype=I32)),
        ((3, 18, 3), {}, np.arange(3, 18, 3, dtype=I32)),
        ((10, 2, -3), {}, np.array([10, 7, 4], I32)),
        ((0,), {}, np.zeros(0, I32)),
        ((3, 3), {}, np.zeros(0, I32)),
        ((1.0, 2.0, 0.25), {}, np.array([1.0, 1.25, 1.5, 1.75], F32)),
        ((0, 1, 0.5), {}, np.array([0.0, 0.5], F32)),
        ((4,), {"dtype": sf.float64}, np.arange(4, dtype=F64)),
        ((np.int64(2), 5), {}, np.arange(2, 5, dtype=I64)),
        ((0, 10, 4), {"dtype": sf.int64}, np.array([0, 4, 8], I64)),
    ],
)
def test_range(run: Runner, args: Any, kwargs: Any, expected: Any) -> None:
    def build(x: Any) -> Any:
        return sf.range(*args, **kwargs)

    assert_same(run(build, np.zeros(1, F32)), expected)


def test_range_with_tensor_arguments(run: Runner) -> None:
    a = data((4, 2), F32)
    assert_same(run(lambda x: sf.range(sf.shape(x)[0]), a), np.arange(4, dtype=I32))
    assert_same(
        run(lambda x: sf.range(1, sf.size(x), 3, dtype=sf.int64), a), np.array([1, 4, 7], I64)
    )
    # The start is only known at run time, and so is the length.
    assert_same(
        run(lambda x: sf.range(x[0, 0], 5.0), a, exact_shape=False),
        np.arange(a[0, 0], 5.0, dtype=F32),
    )


def test_range_static_length() -> None:
    with sf.Graph().as_default():
        assert sf.range(3, 18, 3).shape == (5,)
        assert sf.range(sf.shape(sf.placeholder(F32, (2, 7)))[1]).shape == (7,)
        assert sf.range(sf.placeholder(I32, ())).shape == (None,)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((0, 5, 0), r"^range\(\): delta must not be zero$"),
        ((5, 0, 1), r"^range\(\): requires start <= limit when delta > 0, got start=5"),
        ((0, 5, -1), r"^range\(\): requires start >= limit when delta < 0"),
        ((0.0, float("inf")), r"^range\(\): start, limit and delta must be finite"),
        ((0.0, 1.0, float("nan")), r"^range\(\): start, limit and delta must be finite"),
    ],
)
def test_range_bad_arguments_when_built(args: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        sf.range(*args)
    g = sf.Graph()
    with g.as_default(), pytest.raises(ValueError, match=pattern):
        sf.range(*args)
    assert g.get_operations() == []


def test_range_bad_arguments_when_run() -> None:
    g = sf.Graph()
    with g.as_default():
        d = sf.placeholder(I32, ())
        r = sf.range(0, 5, d)
    with pytest.raises(sf.InvalidArgumentError, match="delta must not be zero"):
        sf.Session(g).run(r, {d: 0})


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: sf.range(True), r"^range\(\): arguments must be numbers, got dtype bool"),
        (lambda: sf.range(3, dtype=sf.bool_), r"^range\(\): dtype must be an int or float"),
        (lambda: sf.range(sf.constant([1, 2])), r"^Range.*limit must be a scalar"),
    ],
)
def test_range_bad_types(call: Any, pattern: str) -> None:
    with pytest.raises((TypeError, ValueError), match=pattern):
        call()


# -- expand_dims, squeeze ------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "axis"), [((2, 3), 0), ((2, 3), -1), ((2, 3), 1), ((), 0)])
def test_expand_dims(run: Runner, shape: Any, axis: int) -> None:
    a = data(shape, F32)
    assert_same(run(lambda x: sf.expand_dims(x, axis), a), np.expand_dims(a, axis))


def test_expand_dims_static_and_errors() -> None:
    assert _static(lambda x: sf.expand_dims(x, -1), (None, 3)) == (None, 3, 1)
    assert _static(lambda x: sf.expand_dims(x, 0), None) is None
    with pytest.raises(ValueError, match=r"^ExpandDims: axis 3 is out of range for rank 3"):
        sf.expand_dims(sf.zeros([2, 3]), 3)
    # An axis known only at run time: the rank grows by one, no size is known.
    assert _static(lambda x: sf.expand_dims(x, sf.cast(sf.shape(x)[0], sf.int32)), (None,)) == (
        None,
        None,
    )
    with pytest.raises(TypeError, match=r"^expand_dims\(\): axis must be an int known"):
        _static(lambda x: sf.expand_dims(x, sf.constant([0])), (None,))


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((1, 2, 1, 3), None),
        ((1, 2, 1, 3), [0]),
        ((1, 2, 1, 3), [-2, 0]),
        ((1, 1), None),
        ((3,), None),
    ],
    ids=str,
)
def test_squeeze(run: Runner, shape: Any, axis: Any) -> None:
    a = data(shape, F32)
    expected = np.squeeze(a, axis=None if axis is None else tuple(axis))
    # With unknown sizes, squeezing every 1 leaves the rank unknown while building.
    assert_same(run(lambda x: sf.squeeze(x, axis), a, exact_shape=axis is not None), expected)


def test_squeeze_static_and_errors() -> None:
    assert _static(lambda x: sf.squeeze(x, [1]), (None, 1, 3)) == (None, 3)
    assert _static(sf.squeeze, (None, 1)) is None
    assert _static(sf.squeeze, (2, 1)) == (2,)
    with pytest.raises(ValueError, match=r"^Squeeze: cannot squeeze dimension 1: its size is 3"):
        sf.squeeze(sf.zeros([1, 3]), axis=1)
    with pytest.raises(ValueError, match=r"lists a dimension twice"):
        sf.squeeze(sf.zeros([1, 3]), axis=[0, 0])
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (None, 3))
        y = sf.squeeze(x, 0)
    with pytest.raises(sf.InvalidArgumentError, match="cannot squeeze dimension 0"):
        sf.Session(g).run(y, {x: np.zeros((2, 3), np.float32)})


# -- tile ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "multiples"),
    [((2, 3), [2, 1]), ((2, 3), [1, 3]), ((3,), [0]), ((), []), ((2, 1, 2), (1, 2, 3))],
    ids=str,
)
def test_tile(run: Runner, shape: Any, multiples: Any) -> None:
    a = data(shape, F32)
    assert_same(run(lambda x: sf.tile(x, multiples), a), np.tile(a, multiples))


def test_tile_with_a_multiples_tensor(run: Runner) -> None:
    a = data((2, 3), I32)
    expected = np.tile(a, (2, 1))
    assert_same(run(lambda x: sf.tile(x, [sf.shape(x)[0], 1]), a), expected)


def test_tile_static_and_errors() -> None:
    assert _static(lambda x: sf.tile(x, [2, 3]), (None, 2)) == (None, 6)
    assert _static(lambda x: sf.tile(x, [2, 3]), None) == (None, None)
    assert _static(lambda x: sf.tile(x, [sf.shape(x)[0], 3]), (None, 2)) == (None, 6)
    with pytest.raises(
        ValueError, match=r"^Tile: multiples has 1 entries but the input has rank 2"
    ):
        sf.tile(sf.zeros([2, 3]), [2])
    with pytest.raises(ValueError, match="negative entry"):
        sf.tile(sf.zeros([2, 3]), [2, -1])


# -- split -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "spec", "axis"),
    [((6, 2), 3, 0), ((2, 6), [1, -1, 2], 1), ((2, 6), [2, 4], -1), ((4,), 1, 0), ((0, 2), 2, 0)],
    ids=str,
)
def test_split(run: Runner, shape: Any, spec: Any, axis: int) -> None:
    a = data(shape, F32)
    if isinstance(spec, int):
        expected = np.split(a, spec, axis=axis)
    else:
        sizes = [a.shape[axis] - sum(s for s in spec if s != -1) if s == -1 else s for s in spec]
        expected = np.split(a, np.cumsum(sizes)[:-1], axis=axis)
    for i, piece in enumerate(expected):
        assert_same(run(lambda x, i=i: sf.split(x, spec, axis=axis)[i], a), piece)


def test_split_returns_a_list_with_static_shapes() -> None:
    with sf.Graph().as_default():
        x = sf.placeholder(F32, (None, 6))
        parts = sf.split(x, [1, -1], axis=1)
        assert isinstance(parts, list)
        assert [p.shape for p in parts] == [(None, 1), (None, 5)]
        assert [p.shape for p in sf.split(x, 2, axis=0)] == [(None, 6), (None, 6)]
        assert [p.shape for p in sf.split(sf.placeholder(F32), 3)] == [None] * 3


@pytest.mark.parametrize(
    ("spec", "kwargs", "error", "pattern"),
    [
        (4, {"axis": 1}, ValueError, "dimension 1 of size 6 cannot be split into 4 equal parts"),
        ([2, 2], {"axis": 1}, ValueError, r"sizes \[2, 2\] add up to 4, not the size 6"),
        ([5, -1, 3], {"axis": 1}, ValueError, "add up to more than the size 6"),
        ([-1, -1], {}, ValueError, "at most one of them -1"),
        (0, {}, ValueError, "must be at least 1"),
        (2, {"num": 3}, ValueError, r"num=3 but num_or_size_splits makes 2 pieces"),
        (2, {"axis": 2}, ValueError, "axis 2 is out of range for rank 2"),
        (2.0, {}, TypeError, r"split\(\): num must be an int"),
    ],
)
def test_split_errors(spec: Any, kwargs: Any, error: Any, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        sf.split(sf.zeros([2, 6]), spec, **kwargs)


def test_split_sizes_checked_when_the_graph_runs() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (None,))
        a, _ = sf.split(x, [2, 2])
    with pytest.raises(sf.InvalidArgumentError, match=r"add up to 4, not the size 5"):
        sf.Session(g).run(a, {x: np.zeros(5, np.float32)})


# -- pad -------------------------------------------------------------------------------------

PADS = [
    ((2, 3), [[1, 0], [2, 1]]),
    ((3,), [[2, 2]]),
    ((2, 3), [[0, 0], [0, 0]]),
    ((2, 2, 3), [[0, 1], [1, 1], [2, 0]]),
]


@pytest.mark.parametrize(("shape", "paddings"), PADS, ids=str)
@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "symmetric"])
def test_pad(run: Runner, shape: Any, paddings: Any, mode: str) -> None:
    a = data(shape, F32)
    expected = np.pad(a, paddings, mode=mode.lower())  # type: ignore[call-overload]
    assert_same(run(lambda x: sf.pad(x, paddings, mode=mode), a), expected)


def test_pad_constant_values(run: Runner) -> None:
    a = data((2, 2), I32)
    expected = np.pad(a, [[1, 1], [0, 1]], constant_values=9)
    assert_same(run(lambda x: sf.pad(x, [[1, 1], [0, 1]], constant_values=9), a), expected)
    assert_same(
        run(lambda x: sf.pad(x, [[1, 1], [0, 1]], constant_values=x[0, 0]), a),
        np.pad(a, [[1, 1], [0, 1]], constant_values=a[0, 0]),
    )


def test_pad_static_and_errors() -> None:
    assert _static(lambda x: sf.pad(x, [[1, 2], [0, 1]]), (None, 3)) == (None, 4)
    assert _static(lambda x: sf.pad(x, [[1, 2], [0, 1]]), None) == (None, None)
    z = sf.zeros([2, 3])
    with pytest.raises(ValueError, match=r"^Pad: paddings has 1 rows but the input has rank 2"):
        sf.pad(z, [[1, 1]])
    with pytest.raises(ValueError, match=r"^pad\(\): paddings must be a \[rank, 2\] list"):
        sf.pad(z, [[1, -1], [0, 0]])
    with pytest.raises(ValueError, match=r"^pad\(\): mode must be one of CONSTANT, REFLECT"):
        sf.pad(z, [[1, 1], [0, 0]], mode="EDGE")
    with pytest.raises(ValueError, match=r"REFLECT padding of dimension 0 must be less than"):
        sf.pad(z, [[2, 0], [0, 0]], mode="REFLECT")
    with pytest.raises(ValueError, match=r"SYMMETRIC padding of dimension 1 must be at most"):
        sf.pad(z, [[0, 0], [0, 4]], mode="SYMMETRIC")
    with pytest.raises(TypeError, match="constant_values has dtype int32"):
        sf.pad(z, [[0, 0], [0, 1]], constant_values=sf.constant(1))
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (None,))
        y = sf.pad(x, [[2, 0]], mode="REFLECT")
    with pytest.raises(sf.InvalidArgumentError, match="must be less than its size 2"):
        sf.Session(g).run(y, {x: np.zeros(2, np.float32)})


# -- one_hot ---------------------------------------------------------------------------------


def _one_hot(idx: Any, depth: int, on: Any = 1.0, off: Any = 0.0, axis: int = -1) -> Any:
    out = np.where(idx[..., None] == np.arange(depth), on, off)
    return out if axis == -1 else np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("axis", [None, -1, 0, 1])
def test_one_hot(run: Runner, axis: Any) -> None:
    idx = np.array([[0, 2, 5], [-1, 1, 1]], I64)
    expected = _one_hot(idx, 3, axis=-1 if axis is None else axis).astype(F32)
    assert_same(run(lambda i: sf.one_hot(i, 3, axis=axis), idx), expected)


def test_one_hot_values_and_dtypes(run: Runner) -> None:
    idx = np.array([1, 0, 3], I32)
    # Python ints make an int32 result, as in TensorFlow (its testSimpleCases).
    assert_same(
        run(lambda i: sf.one_hot(i, 4, on_value=5, off_value=-1), idx),
        _one_hot(idx, 4, 5, -1).astype(I32),
    )
    assert_same(
        run(lambda i: sf.one_hot(i, 4, on_value=5.0, off_value=-1.0), idx),
        _one_hot(idx, 4, 5.0, -1.0).astype(F32),
    )
    assert_same(
        run(lambda i: sf.one_hot(i, 2, dtype=sf.int64), idx), _one_hot(idx, 2, 1, 0).astype(I64)
    )
    assert_same(run(lambda i: sf.one_hot(i, 2, dtype=sf.bool_), idx), _one_hot(idx, 2, True, False))
    assert_same(
        run(lambda i: sf.one_hot(i, 3, on_value=sf.constant(2.0, sf.float64)), idx),
        _one_hot(idx, 3, 2.0, 0.0).astype(F64),
    )


def test_one_hot_static_and_errors() -> None:
    assert _static(lambda i: sf.one_hot(i, 4), (None,), dtype=I32) == (None, 4)
    assert _static(lambda i: sf.one_hot(i, 4, axis=0), (2, None), dtype=I32) == (4, 2, None)
    assert _static(lambda i: sf.one_hot(i, 4), None, dtype=I32) is None
    with pytest.raises(TypeError, match=r"^OneHot: indices must be integers, got dtype float32"):
        sf.one_hot([0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"axis 3 is out of range for indices of rank 1"):
        sf.one_hot([0, 1], 2, axis=3)
    with pytest.raises(ValueError, match=r"^one_hot\(\): depth must be >= 0"):
        sf.one_hot([0], -1)
    with pytest.raises(TypeError, match=r"on_value has dtype float64, but the output is float32"):
        sf.one_hot([0], 2, on_value=sf.constant(1.0, sf.float64), dtype=sf.float32)


# -- every new op in the wrong context -------------------------------------------------------

_F = np.arange(6, dtype=np.float32).reshape(2, 3)

NEW_OPS: list[tuple[str, Any]] = [
    ("shape", sf.shape),
    ("size", sf.size),
    ("rank", sf.rank),
    ("zeros-dynamic", lambda x: sf.zeros(sf.shape(x))),
    ("reshape-dynamic", lambda x: sf.reshape(x, sf.shape(x)[::-1])),
    ("zeros_like", sf.zeros_like),
    ("ones_like", lambda x: sf.ones_like(x, sf.int32)),
    ("range", lambda x: sf.range(x[0, 0], 3.0)),
    ("expand_dims", lambda x: sf.expand_dims(x, 1)),
    ("squeeze", lambda x: sf.squeeze(x[:1])),
    ("tile", lambda x: sf.tile(x, [2, 1])),
    ("split", lambda x: sf.split(x, 3, axis=1)[1]),
    ("pad", lambda x: sf.pad(x, [[1, 0], [0, 1]], "SYMMETRIC")),
    ("one_hot", lambda x: sf.one_hot(sf.cast(x, sf.int32), 4)),
]
_IDS = [name for name, _ in NEW_OPS]


@pytest.mark.parametrize(("label", "build"), NEW_OPS, ids=_IDS)
def test_graph_tensor_in_eager_op_is_type_error(label: str, build: Any) -> None:
    with sf.Graph().as_default():
        t = sf.constant(_F, name="leaked")
    with pytest.raises(TypeError, match=r"'leaked:0'.*cannot be used outside its graph"):
        build(t)


@pytest.mark.parametrize(("label", "build"), NEW_OPS, ids=_IDS)
def test_tensor_of_another_graph_is_value_error(label: str, build: Any) -> None:
    with sf.Graph().as_default():
        foreign = sf.constant(_F, name="foreign")
    with sf.Graph().as_default(), pytest.raises(ValueError, match=r"'foreign:0' belongs to"):
        build(foreign)


@pytest.mark.parametrize(("label", "build"), NEW_OPS, ids=_IDS)
def test_eager_tensor_in_plain_graph_is_runtime_error(label: str, build: Any) -> None:
    eager = sf.constant(_F)
    with sf.Graph().as_default(), pytest.raises(RuntimeError, match="eager tensor was used"):
        build(eager)


@pytest.mark.parametrize(("label", "build"), NEW_OPS, ids=_IDS)
def test_op_names_follow_name_scopes(label: str, build: Any) -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("block"):
        out = build(sf.placeholder(F32, (2, 3), name="x"))
    assert re.match(r"^block/", out.op.name), out.op.name


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda x, n: sf.split(x, n), r"^split\(\): num_or_size_splits must be known"),
        (lambda x, n: sf.squeeze(x, n), r"^squeeze\(\): axis must be known"),
    ],
)
def test_sizes_that_fix_the_graph_must_be_known_while_building(build: Any, pattern: str) -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (4,))
        n = sf.placeholder(I32, ())
        before = _graph_ops(g)
        with pytest.raises(TypeError, match=pattern):
            build(x, n)
    # Nothing but the helper ops the test itself built was added.
    assert all(t in ("Stack", "Const") for t in _graph_ops(g)[len(before) :])


def test_sizes_from_constants_are_folded() -> None:
    with sf.Graph().as_default():
        x = sf.placeholder(F32, (None, 6))
        k = sf.constant(2)
        assert [p.shape for p in sf.split(x, k, axis=sf.constant(1))] == [(None, 3)] * 2
        assert sf.expand_dims(x, sf.rank(x)).shape == (None, 6, 1)
        assert sf.one_hot(sf.placeholder(I32, (3,)), sf.size(x[0])).shape == (3, 6)
        assert sf.pad(x, sf.constant([[0, 0], [1, 1]])).shape == (None, 8)
