"""Shape and indexing ops against NumPy, eagerly and in graphs, with static shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import scopeflow as sf
from scopeflow._ops import getitem
from test_ops import KNOWN_SHAPE_MODES, MODES, Runner, assert_same, data

F32, I32, I64, BOOL = (np.dtype(t) for t in (np.float32, np.int32, np.int64, np.bool_))
DTYPES = (F32, I64, BOOL)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _static(fn: Any, *shapes: Any, dtype: Any = F32) -> Any:
    """The static shape of ``fn`` built on placeholders of ``shapes``."""
    with sf.Graph().as_default():
        return fn(*[sf.placeholder(dtype, s) for s in shapes]).shape


# -- reshape -------------------------------------------------------------------------------

RESHAPES = [
    ((2, 3, 4), [4, -1]),
    ((2, 3, 4), [24]),
    ((6,), (2, 3)),
    ((2, 3), [-1]),
    ((), [1, 1]),
    ((1, 1), []),
    ((0, 3), [3, 0]),
    ((2, 3), [3, -1, 1]),
]


@pytest.mark.parametrize(("shape", "target"), RESHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_reshape(run: Runner, shape: Any, target: Any, dtype: Any) -> None:
    a = data(shape, dtype)
    assert_same(run(lambda x: sf.reshape(x, target), a), np.reshape(a, target))


def test_reshape_accepts_an_eager_int_tensor_as_shape(run: Runner) -> None:
    a = data((2, 3), F32)
    shape = sf.constant([3, 2]) if run.mode == "eager" else np.array([3, 2])
    assert_same(run(lambda x: sf.reshape(x, shape), a), a.reshape(3, 2))


@pytest.mark.parametrize(
    ("shape", "target", "expected"),
    [
        ((None, 3, 4), [-1, 12], (None, 12)),
        ((None, 3, 4), [2, -1], (2, None)),
        ((None, 3), [6, 1], (6, 1)),
        (None, [-1, 4], (None, 4)),
        (None, [], ()),
        ((2, 3), [-1, 2], (3, 2)),
    ],
)
def test_reshape_static_shape(shape: Any, target: Any, expected: Any) -> None:
    assert _static(lambda x: sf.reshape(x, target), shape) == expected


@pytest.mark.parametrize(
    ("shape", "target", "pattern"),
    [
        ((2, 3), [4], r"cannot reshape a tensor of 6 elements \(shape \(2, 3\)\) to \(4,\)"),
        ((2, 3), [4, -1], "cannot reshape a tensor of 6 elements"),
        ((0, 3), [0, -1], "cannot reshape a tensor of 0 elements"),
        ((None, 3), [4], r"shape \(None, 3\) .* cannot have shape \(4,\)"),
        ((None, 0), [3], r"shape \(None, 0\) \(0 elements\) cannot have shape \(3,\)"),
        ((2, 3), [-1, -1], "at most one -1"),
        ((2, 3), [-2, -3], "at most one -1"),
    ],
)
def test_reshape_impossible_shapes_fail_when_built(shape: Any, target: Any, pattern: str) -> None:
    with sf.Graph().as_default(), pytest.raises(ValueError, match=rf"^Reshape: .*{pattern}"):
        sf.reshape(sf.placeholder(sf.float32, shape), target)


def test_reshape_size_mismatch_eagerly_and_at_run_time() -> None:
    with pytest.raises(ValueError, match="^Reshape: cannot reshape a tensor of 6 elements"):
        sf.reshape(sf.zeros([2, 3]), [5])
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(sf.float32, (None, 3))
        y = sf.reshape(x, [-1, 2])
    assert y.shape == (None, 2)
    assert sf.Session(g).run(y, {x: np.zeros((2, 3))}).shape == (3, 2)
    with pytest.raises(sf.InvalidArgumentError, match="cannot reshape"):
        sf.Session(g).run(y, {x: np.zeros((1, 3))})


@pytest.mark.parametrize("shape", [3.0, [2, "3"], [2, None]], ids=str)
def test_reshape_shape_must_be_ints(shape: Any) -> None:
    with pytest.raises(TypeError, match=r"^reshape\(\): shape must be an int"):
        sf.reshape(sf.zeros([6]), shape)


def test_reshape_to_a_constant_graph_tensor_knows_its_shape() -> None:
    # Issue 9: a shape tensor is accepted; a constant one is folded into the static shape.
    with sf.Graph().as_default() as g:
        r = sf.reshape(sf.zeros([6]), sf.constant([2, 3]))
    assert r.shape == (2, 3)
    assert sf.Session(g).run(r).shape == (2, 3)


# -- transpose -----------------------------------------------------------------------------

TRANSPOSES = [
    ((2, 3), None),
    ((2, 3), [1, 0]),
    ((2, 3, 4), [2, 0, 1]),
    ((2, 3, 4), None),
    ((2, 3, 4), (0, 1, 2)),
    ((), None),
    ((), []),
    ((4,), [0]),
    ((2, 0, 3), [1, 2, 0]),
]


@pytest.mark.parametrize(("shape", "perm"), TRANSPOSES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_transpose(run: Runner, shape: Any, perm: Any, dtype: Any) -> None:
    a = data(shape, dtype)
    assert_same(run(lambda x: sf.transpose(x, perm), a), np.transpose(a, perm))


@pytest.mark.parametrize(
    ("shape", "perm", "expected"),
    [
        ((None, 3, 4), [2, 0, 1], (4, None, 3)),
        ((None, 3), None, (3, None)),
        (None, [1, 0, 2], (None, None, None)),
        (None, None, None),
    ],
)
def test_transpose_static_shape(shape: Any, perm: Any, expected: Any) -> None:
    assert _static(lambda x: sf.transpose(x, perm), shape) == expected


@pytest.mark.parametrize(
    ("perm", "pattern"),
    [
        ([1, 0], r"perm \(1, 0\) has 2 entries but the input has rank 3"),
        ([0, 0, 1], r"perm \(0, 0, 1\) is not a permutation of 0..2"),
        ([-1, 0, 1], "is not a permutation"),
        ([0, 1, 3], "is not a permutation"),
    ],
)
def test_transpose_bad_perm_is_value_error(run: Runner, perm: Any, pattern: str) -> None:
    if run.mode == "graph-unknown-rank" and "rank 3" in pattern:
        with pytest.raises(sf.InvalidArgumentError, match="axes don't match"):
            run(lambda x: sf.transpose(x, perm), data((1, 2, 3), F32))
        return
    with pytest.raises(ValueError, match=rf"^Transpose: .*{pattern}"):
        run(lambda x: sf.transpose(x, perm), data((1, 2, 3), F32))


def test_transpose_perm_must_be_ints() -> None:
    with pytest.raises(TypeError, match=r"^transpose\(\): perm must be an int"):
        sf.transpose(sf.zeros([2, 2]), [1.0, 0.0])


# -- concat and stack ----------------------------------------------------------------------

CONCATS = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 1), (2, 0)], 1),
    ([(2, 3)], -1),
    ([(1, 2, 3), (1, 4, 3)], -2),
    ([(3,), (2,), (0,)], 0),
]


@pytest.mark.parametrize(("shapes", "axis"), CONCATS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_concat(run: Runner, shapes: Any, axis: int, dtype: Any) -> None:
    arrays = [data(s, dtype, seed=i) for i, s in enumerate(shapes)]
    assert_same(run(lambda *xs: sf.concat(list(xs), axis), *arrays), np.concatenate(arrays, axis))


def test_concat_converts_python_values_to_the_tensor_dtype(run: Runner) -> None:
    a = data((1, 2), F32)
    out = run(lambda x: sf.concat((x, [[1, 2]]), axis=0), a)
    assert_same(out, np.concatenate([a, np.array([[1, 2]], np.float32)]))


@pytest.mark.parametrize(
    ("shapes", "axis", "expected"),
    [
        ([(None, 3), (2, 3)], 0, (None, 3)),
        ([(None, 3), (2, 1)], 1, (2, 4)),
        ([None, (2, 3)], 0, (None, 3)),
        ([None, None], 1, None),
        ([(2, None), (2, 5)], -1, (2, None)),
    ],
)
def test_concat_static_shape(shapes: Any, axis: int, expected: Any) -> None:
    assert _static(lambda *xs: sf.concat(list(xs), axis), *shapes) == expected


@pytest.mark.parametrize(
    ("shapes", "axis", "pattern"),
    [
        (
            [(2, 3), (2, 4)],
            0,
            r"shapes \[\(2, 3\), \(2, 4\)\] differ in dimension 1; only dimension 0",
        ),
        ([(2, 3), (2,)], 0, "all inputs must have the same rank"),
        ([(2, 3), (2, 3)], 2, r"axis 2 is out of range for rank 2 \(expected -2 <= axis < 2\)"),
        ([(2, 3), (2, 3)], -3, "axis -3 is out of range"),
        ([(), ()], 0, "cannot concatenate scalars"),
    ],
)
def test_concat_bad_shapes_or_axis_are_value_errors(shapes: Any, axis: int, pattern: str) -> None:
    for mode in KNOWN_SHAPE_MODES:
        arrays = [np.zeros(s, np.float32) for s in shapes]
        with pytest.raises(ValueError, match=rf"^Concat: {pattern}"):
            Runner(mode)(lambda *xs: sf.concat(list(xs), axis), *arrays)


def test_concat_and_stack_argument_errors() -> None:
    x = sf.zeros([2])
    for fn in (sf.concat, sf.stack):
        name = fn.__name__
        with pytest.raises(ValueError, match=rf"^{name}\(\): values is empty"):
            fn([], 0)
        with pytest.raises(TypeError, match=rf"^{name}\(\): axis must be an int"):
            fn([x, x], 0.5)
    with pytest.raises(TypeError, match=r"^stack\(\): values must be a list or tuple"):
        sf.stack(x, 0)
    with pytest.raises(TypeError, match=r"^concat\(\): values must be a list or tuple"):
        sf.concat(3.0, 0)
    # As in TensorFlow, concat treats a lone tensor as a list of one.
    assert sf.concat(x, 0).numpy().tolist() == [0.0, 0.0]


STACKS = [
    ([(2, 3)] * 3, 0),
    ([(2, 3)] * 2, 1),
    ([(2, 3)] * 2, 2),
    ([(2, 3)] * 2, -1),
    ([(2, 3)] * 2, -3),
    ([()] * 4, 0),
    ([(0,)] * 2, 1),
]


@pytest.mark.parametrize(("shapes", "axis"), STACKS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_stack(run: Runner, shapes: Any, axis: int, dtype: Any) -> None:
    arrays = [data(s, dtype, seed=i) for i, s in enumerate(shapes)]
    assert_same(run(lambda *xs: sf.stack(xs, axis), *arrays), np.stack(arrays, axis))


@pytest.mark.parametrize(
    ("shapes", "axis", "expected"),
    [
        ([(None, 3), (2, None)], 0, (2, 2, 3)),
        ([(None, 3), None], -1, (None, 3, 2)),
        ([None, None, None], 0, None),
    ],
)
def test_stack_static_shape(shapes: Any, axis: int, expected: Any) -> None:
    assert _static(lambda *xs: sf.stack(list(xs), axis), *shapes) == expected


@pytest.mark.parametrize(
    ("shapes", "axis", "pattern"),
    [
        ([(2, 3), (3, 2)], 0, r"shapes \(2, 3\) and \(3, 2\) differ in dimension 0"),
        ([(2, 3), (2,)], 0, "different ranks"),
        ([(2, 3), (2, 3)], 3, "axis 3 is out of range for rank 3"),
        ([(2, 3), (2, 3)], -4, "axis -4 is out of range"),
    ],
)
def test_stack_bad_shapes_or_axis_are_value_errors(shapes: Any, axis: int, pattern: str) -> None:
    for mode in KNOWN_SHAPE_MODES:
        arrays = [np.zeros(s, np.float32) for s in shapes]
        with pytest.raises(ValueError, match=rf"^Stack: .*{pattern}"):
            Runner(mode)(lambda *xs: sf.stack(xs, axis), *arrays)


# -- zeros, ones, fill ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [[], [3], (2, 0, 3), 4], ids=str)
@pytest.mark.parametrize("dtype", [*DTYPES, None], ids=str)
def test_zeros_and_ones(run: Runner, shape: Any, dtype: Any) -> None:
    kwargs = {} if dtype is None else {"dtype": dtype}
    expected_dtype = F32 if dtype is None else dtype
    assert_same(run(lambda: sf.zeros(shape, **kwargs)), np.zeros(shape, expected_dtype))
    assert_same(run(lambda: sf.ones(shape, **kwargs)), np.ones(shape, expected_dtype))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, np.int32(7)),
        (2.5, np.float32(2.5)),
        (True, np.bool_(True)),
        (np.float64(1.5), np.float64(1.5)),
        (np.uint8(3), np.uint8(3)),
    ],
    ids=str,
)
def test_fill_takes_the_dtype_of_its_value(run: Runner, value: Any, expected: Any) -> None:
    assert_same(run(lambda: sf.fill([2, 3], value)), np.full((2, 3), expected))


@pytest.mark.parametrize("dtype", [F32, I64, BOOL], ids=str)
def test_fill_with_a_tensor_value(run: Runner, dtype: Any) -> None:
    value = np.array(1, dtype)
    assert_same(run(lambda v: sf.fill([3, 1], v), value), np.full((3, 1), value))


def test_fill_ops_in_a_graph_are_named_and_fully_shaped() -> None:
    g = sf.Graph()
    with g.as_default():
        z, o, f = sf.zeros([2, 3]), sf.ones([4], sf.int32), sf.fill([1], 5.0, name="five")
        z2 = sf.zeros([])
    assert [op.name for op in g.get_operations()] == ["zeros", "ones", "five", "zeros_1"]
    assert {op.type for op in g.get_operations()} == {"Fill"}
    assert (z.shape, o.shape, f.shape, z2.shape) == ((2, 3), (4,), (1,), ())
    assert (z.dtype, o.dtype, f.dtype) == (F32, I32, F32)


def test_fill_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"^zeros\(\): shape \(2, -1\) has a negative size"):
        sf.zeros([2, -1])
    with pytest.raises(ValueError, match=r"^fill\(\): value must be a scalar"):
        sf.fill([2], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^fill\(\): value must be a scalar"):
        sf.fill([2], sf.constant([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^ones\(\): dtype \S+ is not numeric or bool"):
        sf.ones([2], dtype=str)
    with pytest.raises(TypeError, match="is not a dtype"):
        sf.zeros([2], dtype="no-such-dtype")
    with pytest.raises(TypeError, match=r"^ones\(\): shape must be an int"):
        sf.ones([None])


# -- where ---------------------------------------------------------------------------------

SELECTS = [((2, 3), (2, 3), (2, 3)), ((2, 1), (3,), ()), ((), (2,), (2,)), ((4,), (), ())]


@pytest.mark.parametrize(("sc", "sx", "sy"), SELECTS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_where_selects_with_broadcasting(
    run: Runner, sc: Any, sx: Any, sy: Any, dtype: Any
) -> None:
    c = data(sc, BOOL, seed=1)
    x, y = data(sx, dtype, seed=2), data(sy, dtype, seed=3)
    assert_same(run(sf.where, c, x, y), np.where(c, x, y))


def test_where_python_values_take_the_dtype_of_the_other_branch(run: Runner) -> None:
    c = np.array([True, False, True])
    x = np.array([1, 2, 3], np.int64)
    assert_same(run(lambda c_, x_: sf.where(c_, x_, 0), c, x), np.where(c, x, np.int64(0)))
    assert_same(run(lambda c_, x_: sf.where(c_, -1, x_), c, x), np.where(c, np.int64(-1), x))
    assert_same(run(lambda c_: sf.where(c_, 1.5, 2), c), np.where(c, 1.5, 2.0).astype(F32))


@pytest.mark.parametrize("shape", [(3,), (2, 3), (), (0, 2), (2, 2, 2)], ids=str)
@pytest.mark.parametrize("dtype", [BOOL, F32, I32], ids=str)
def test_where_without_branches_gives_indices(run: Runner, shape: Any, dtype: Any) -> None:
    c = data(shape, dtype, -1, 1, seed=4)
    out = run(sf.where, c, exact_shape=False)
    assert_same(out, np.argwhere(c).astype(np.int64))
    if run.mode in ("graph", "function"):
        assert run.static_shape == (None, len(shape))


def test_where_errors(run: Runner) -> None:
    c = np.array([True, False])
    f = np.array([1.0, 2.0], np.float32)
    with pytest.raises(
        TypeError, match=r"^Select: condition must be a bool tensor, got dtype float32"
    ):
        run(sf.where, f, f, f)
    with pytest.raises(
        TypeError, match=r"^Select: x and y must have the same dtype, got float32 and int32"
    ):
        run(sf.where, c, f, np.array([1, 2], np.int32))
    with pytest.raises(ValueError, match=r"^where\(\): pass both x and y, or neither"):
        run(lambda c_: sf.where(c_, x=f), c)
    with pytest.raises(
        TypeError, match=r"^Where: condition must be bool or real, got dtype complex64"
    ):
        run(sf.where, np.array([1j], np.complex64))
    if run.shapes_known:
        with pytest.raises(ValueError, match=r"^Select: shapes .* cannot be broadcast"):
            run(sf.where, c, f, np.ones(3, np.float32))
    else:
        with pytest.raises(sf.InvalidArgumentError, match="could not be broadcast"):
            run(sf.where, c, f, np.ones(3, np.float32))


# -- indexing ------------------------------------------------------------------------------

KEYS = [
    0,
    -1,
    (1, 2),
    slice(1, 3),
    slice(None, None, -1),
    (slice(None, None, 2), Ellipsis, 1),
    (Ellipsis, None),
    (None, 0, slice(1, None), None),
    slice(10, 20),
    Ellipsis,
    (),
    (slice(-2, None), -1, slice(None, None, -2)),
    (3, 4, 5),
    (Ellipsis, 2, slice(5, 0, -2)),
    (slice(None), None, Ellipsis, None),
    np.int64(2),
]


@pytest.mark.parametrize("key", KEYS, ids=str)
@pytest.mark.parametrize("dtype", [F32, BOOL], ids=str)
def test_getitem_with_basic_keys(run: Runner, key: Any, dtype: Any) -> None:
    a = data((4, 5, 6), dtype)
    assert_same(run(lambda x: x[key], a), a[key])
    assert_same(run(lambda x: getitem(x, key), a), a[key])


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (0, (5, 6)),
        ((slice(None), slice(1, 3)), (None, 2, 6)),
        ((Ellipsis, None), (None, 5, 6, 1)),
        ((1, Ellipsis, slice(None, None, 2)), (5, 3)),
        ((slice(1, None), 0), (None, 6)),
    ],
)
def test_getitem_static_shape_with_unknown_sizes(key: Any, expected: Any) -> None:
    assert _static(lambda x: x[key], (None, 5, 6)) == expected
    assert _static(lambda x: x[key], None) is None


@pytest.mark.parametrize(
    ("key", "error", "pattern"),
    [
        (4, ValueError, "index 4 is out of bounds for dimension 0 of size 4"),
        (-5, ValueError, "index -5 is out of bounds"),
        ((0, 9), ValueError, "index 9 is out of bounds for dimension 1 of size 5"),
        ((0, 0, 0, 0), ValueError, "too many indices"),
        ((Ellipsis, 0, Ellipsis), ValueError, "only one ellipsis"),
        (slice(None, None, 0), ValueError, "slice step cannot be zero"),
        ([0, 1], TypeError, "is not supported"),
        (1.0, TypeError, "is not supported"),
        (True, TypeError, "is not supported"),
        (slice(0.5, None), TypeError, "a slice bound must be an int"),
    ],
    ids=str,
)
def test_getitem_errors_when_built(run: Runner, key: Any, error: Any, pattern: str) -> None:
    a = data((4, 5, 6), F32)
    if not run.shapes_known and "out of bounds" in pattern:
        # The size is unknown until the graph runs.
        with pytest.raises(sf.InvalidArgumentError, match="out of bounds"):
            run(lambda x: x[key], a)
        return
    if run.mode == "graph-unknown-rank" and "too many" in pattern:
        with pytest.raises(sf.InvalidArgumentError, match="too many indices"):
            run(lambda x: x[key], a)
        return
    with pytest.raises(error, match=rf"^(GetItem: )?.*{pattern}"):
        run(lambda x: x[key], a)


def test_getitem_with_a_graph_tensor_as_index() -> None:
    # Issue 9: tensor indices work in graphs as they do eagerly.
    with sf.Graph().as_default() as g:
        x = sf.constant([10, 20, 30])
        y = x[sf.constant(1)]
    assert y.shape == ()
    assert sf.Session(g).run(y) == 20


def test_getitem_with_an_eager_int_tensor_as_index() -> None:
    x = sf.constant([10, 20, 30])
    assert x[sf.constant(2)].numpy() == 30


_dims = st.lists(st.integers(0, 4), min_size=0, max_size=3)
_bound = st.none() | st.integers(-6, 6)
_part = (
    st.integers(-4, 3)
    | st.builds(slice, _bound, _bound, st.none() | st.integers(-3, 3).filter(bool))
    | st.none()
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=_dims, parts=st.lists(_part, max_size=4), ellipsis_at=st.none() | st.integers(0, 4))
def test_getitem_matches_numpy_for_random_keys(shape: Any, parts: Any, ellipsis_at: Any) -> None:
    if ellipsis_at is not None:
        parts.insert(min(ellipsis_at, len(parts)), Ellipsis)
    key = tuple(parts)
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    try:
        expected = a[key]
    except IndexError:
        for mode in KNOWN_SHAPE_MODES:
            with pytest.raises(ValueError, match="^GetItem: "):
                Runner(mode)(lambda x: x[key], a)
        return
    for mode in MODES:
        assert_same(Runner(mode)(lambda x: x[key], a), np.asarray(expected))
