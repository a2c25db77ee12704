"""gather, boolean_mask and tensor indexing (issue 9) in every mode, with static shapes.

Tensor indices work in graphs as they do eagerly: ``x[i]`` with ``i`` a graph int
tensor, slices with tensor bounds, ``x[idx]`` with an int tensor of rank >= 1 (its
dimensions replace the indexed one, in place) and ``x[mask]`` with a bool tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from test_ops import MODES, Runner, assert_same, data

F32, I32, I64, BOOL = (np.dtype(t) for t in (np.float32, np.int32, np.int64, bool))


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Runner:
    return Runner(request.param)


def _static(fn: Any, *specs: Any) -> Any:
    """The static shape of ``fn`` built on placeholders of ``(dtype, shape)`` specs."""
    with sf.Graph().as_default():
        return fn(*[sf.placeholder(d, s) for d, s in specs]).shape


# -- gather ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "indices", "axis"),
    [
        ((4, 3), [2, 0, 2], 0),
        ((4, 3), [[1], [2]], 1),
        ((2, 3, 4), 1, -1),
        ((5,), [[0, 4], [3, 3]], 0),
        ((3, 2), [], 0),
    ],
    ids=str,
)
@pytest.mark.parametrize("idtype", [I32, I64], ids=str)
def test_gather(run: Runner, shape: Any, indices: Any, axis: int, idtype: Any) -> None:
    a = data(shape, F32)
    idx = np.array(indices, idtype)
    assert_same(run(lambda x, i: sf.gather(x, i, axis=axis), a, idx), np.take(a, idx, axis=axis))


def test_gather_with_python_indices_and_batch_dims(run: Runner) -> None:
    a = data((2, 3, 4), F32)
    assert_same(run(lambda x: sf.gather(x, [2, 0], axis=1), a), a[:, [2, 0]])
    idx = np.array([[0, 2], [1, 1]], I32)
    expected = np.stack([a[b][:, idx[b]] for b in range(2)])
    assert_same(run(lambda x, i: sf.gather(x, i, axis=2, batch_dims=1), a, idx), expected)
    if run.mode == "graph-unknown-rank":
        with pytest.raises(ValueError, match=r"negative batch_dims needs indices of known rank"):
            run(lambda x, i: sf.gather(x, i, axis=-1, batch_dims=-1), a, idx)
        return
    assert_same(run(lambda x, i: sf.gather(x, i, axis=-1, batch_dims=-1), a, idx), expected)


def test_gather_static_and_errors() -> None:
    assert _static(lambda p, i: sf.gather(p, i, axis=1), (F32, (None, 5, 2)), (I32, (3, None))) == (
        None, 3, None, 2,
    )  # fmt: skip
    assert _static(lambda p, i: sf.gather(p, i), (F32, None), (I32, (3,))) is None
    with pytest.raises(TypeError, match=r"^Gather: indices must be integers, got dtype float32"):
        sf.gather(sf.zeros([3]), sf.zeros([2]))
    with pytest.raises(ValueError, match=r"^Gather: axis 2 is out of range for rank 2"):
        sf.gather(sf.zeros([3, 2]), [0], axis=2)
    with pytest.raises(ValueError, match=r"batch_dims=1 must be at most the axis \(0\)"):
        sf.gather(sf.zeros([3, 2]), [[0]], axis=0, batch_dims=1)
    with pytest.raises(sf.InvalidArgumentError, match=r"index 3 is out of range \[0, 3\)"):
        sf.gather(sf.zeros([3]), [0, 3])
    with pytest.raises(sf.InvalidArgumentError, match=r"index -1 is out of range"):
        sf.gather(sf.zeros([3]), [-1])
    g = sf.Graph()
    with g.as_default():
        i = sf.placeholder(I32, (None,))
        y = sf.gather(sf.zeros([3]), i)
    with pytest.raises(sf.InvalidArgumentError, match=r"index 7 is out of range \[0, 3\)"):
        sf.Session(g).run(y, {i: np.array([7], np.int32)})


# -- boolean_mask ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "mask_shape", "axis"),
    [((4, 3), (4,), None), ((4, 3), (4, 3), 0), ((2, 4, 3), (4,), 1), ((2, 3, 2), (3, 2), -2)],
    ids=str,
)
def test_boolean_mask(run: Runner, shape: Any, mask_shape: Any, axis: Any) -> None:
    a = data(shape, F32)
    m = data(mask_shape, BOOL, seed=1)
    ax = 0 if axis is None else axis % len(shape)
    expected = a[(slice(None),) * ax + (m,)]
    if run.mode == "graph-unknown-rank":
        # As in TensorFlow, the mask's rank must be known while the graph is built.
        with pytest.raises(ValueError, match=r"(mask must have a rank|needs a tensor of known)"):
            run(lambda x, mask: sf.boolean_mask(x, mask, axis=axis), a, m)
        return
    out = run(lambda x, mask: sf.boolean_mask(x, mask, axis=axis), a, m, exact_shape=False)
    assert_same(out, expected)
    if run.mode == "graph":
        assert run.static_shape == (*shape[:ax], None, *shape[ax + len(mask_shape) :])


def test_boolean_mask_errors() -> None:
    z = sf.zeros([3, 2])
    with pytest.raises(
        TypeError,
        match=r"^BooleanMask 'boolean_mask': the mask must be a bool tensor, got dtype int32",
    ):
        sf.boolean_mask(z, sf.constant([1, 0, 1]))
    with pytest.raises(TypeError, match=r"^boolean_mask\(\): the mask must be bools"):
        sf.boolean_mask(z, [1, 0, 1])
    with pytest.raises(
        ValueError, match=r"the mask's shape \(2,\) does not match the shape \(3, 2\)"
    ):
        sf.boolean_mask(z, [True, False])
    with pytest.raises(ValueError, match="the mask cannot be a scalar"):
        sf.boolean_mask(z, True)
    with pytest.raises(ValueError, match="does not fit a rank-2 tensor"):
        sf.boolean_mask(z, [True, False], axis=2)
    with sf.Graph().as_default():
        with pytest.raises(ValueError, match="mask must have a rank known while building"):
            sf.boolean_mask(sf.placeholder(F32, (3,)), sf.placeholder(BOOL))
        x = sf.placeholder(F32, (None,))
        m = sf.placeholder(BOOL, (None,))
        y = sf.boolean_mask(x, m)
        with sf.Session() as sess, pytest.raises(sf.InvalidArgumentError, match="does not match"):
            sess.run(y, {x: np.zeros(3, np.float32), m: np.ones(2, bool)})


# -- x[key] with tensors ---------------------------------------------------------------------

_A = data((4, 5, 6), F32)

# (id, key builder taking the index tensors, NumPy-free expected value, index arrays)
TENSOR_KEYS: list[tuple[str, Any, Any, tuple[Any, ...]]] = [
    ("scalar", lambda i: i, _A[2], (np.array(2, I32),)),
    ("negative-scalar", lambda i: i, _A[-1], (np.array(-1, I64),)),
    (
        "scalar-then-slice",
        lambda i: (slice(None), i, slice(1, None, 2)),
        _A[:, 3, 1::2],
        (np.array(3, I32),),
    ),
    ("slice-bounds", lambda a, b: slice(a, b), _A[1:3], (np.array(1, I32), np.array(3, I32))),
    ("slice-step", lambda s: (Ellipsis, slice(None, None, s)), _A[..., ::-2], (np.array(-2, I32),)),
    ("vector", lambda i: i, _A[[3, 0, 0]], (np.array([3, 0, 0], I32),)),
    ("vector-middle", lambda i: (slice(1, 3), i), _A[1:3][:, [4, 1]], (np.array([4, 1], I64),)),
    ("vector-after-int", lambda i: (0, slice(None), i), _A[0][:, [5, 0]], (np.array([5, 0], I32),)),
    (
        "matrix",
        lambda i: (Ellipsis, i),
        np.take(_A, [[0, 1], [2, 3]], axis=2),
        (np.array([[0, 1], [2, 3]], I32),),
    ),
    ("negative-vector", lambda i: (1, i), _A[1][[-1, 0]], (np.array([-1, 0], I32),)),
    ("newaxis-scalar", lambda i: (None, i), _A[None, 2], (np.array(2, I32),)),
    ("mask", lambda m: m, _A[_A[:, 0, 0] > 0], (_A[:, 0, 0] > 0,)),
    ("mask-2d", lambda m: m, _A[_A[:, :, 0] > 0], (_A[:, :, 0] > 0,)),
    ("mask-after-slice", lambda m: (slice(None), m), _A[:, _A[0, :, 0] > 0], (_A[0, :, 0] > 0,)),
    (
        "mask-before-ellipsis",
        lambda m: (m, Ellipsis, 0),
        _A[_A[:, 0, 0] > 0][..., 0],
        (_A[:, 0, 0] > 0,),
    ),
    ("empty-vector", lambda i: i, _A[np.zeros(0, int)], (np.zeros(0, I32),)),
]


@pytest.mark.parametrize(
    ("label", "key", "expected", "indices"), TENSOR_KEYS, ids=[k[0] for k in TENSOR_KEYS]
)
def test_getitem_with_tensor_indices(
    run: Runner, label: str, key: Any, expected: Any, indices: Any
) -> None:
    masked = label.startswith("mask")
    # A scalar key only known at run time can hide the size of a sliced dimension.
    exact = not masked and "slice" not in label
    out = run(lambda x, *idx: x[key(*idx)], _A, *indices, exact_shape=exact)
    assert_same(out, expected)


def test_getitem_eager_index_tensors_match_graph() -> None:
    x = sf.constant(_A)
    np.testing.assert_array_equal(x[sf.constant([1, 3])].numpy(), _A[[1, 3]])
    np.testing.assert_array_equal(x[x[:, 0, 0] > 0].numpy(), _A[_A[:, 0, 0] > 0])
    np.testing.assert_array_equal(x[np.array([2, 2])].numpy(), _A[[2, 2]])


def test_getitem_tensor_static_shapes() -> None:
    x_spec = (F32, (None, 5, 6))
    scalar = (I32, ())
    assert _static(lambda x, i: x[i], x_spec, scalar) == (5, 6)
    assert _static(lambda x, i: x[:, i], x_spec, scalar) == (None, 6)
    assert _static(lambda x, i: x[:, :i], x_spec, scalar) == (None, None, 6)
    assert _static(lambda x, i: x[..., i], x_spec, (I32, (2, None))) == (None, 5, 2, None)
    assert _static(lambda x, m: x[m], x_spec, (BOOL, (None, 5))) == (None, 6)
    assert _static(lambda x, i: x[i], x_spec, (I32, None)) is None
    assert _static(lambda x, i: x[i], (F32, None), scalar) is None


@pytest.mark.parametrize(
    ("key", "error", "pattern"),
    [
        (lambda f, i: f, TypeError, "an index must be an int tensor or a bool mask, got float32"),
        (lambda f, i: slice(i, f[0]), TypeError, "a slice bound must be an int tensor"),
        (lambda f, i: slice(sf.stack([i, i])), ValueError, "a slice bound must be a scalar"),
        (lambda f, i: (sf.stack([i]), sf.stack([i])), TypeError, "at most one tensor of rank >= 1"),
        (lambda f, i: (i, i, i, i), ValueError, "too many indices"),
        (lambda f, i: (Ellipsis, i, Ellipsis), ValueError, r"only one ellipsis"),
        (lambda f, i: i > 0, TypeError, "an index must be an int tensor or a bool mask, got bool"),
        (lambda f, i: [0, 1], TypeError, "is not supported"),
    ],
)
def test_getitem_bad_tensor_keys(key: Any, error: Any, pattern: str) -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (4, 5, 6))
        f = sf.placeholder(F32, (2,))
        i = sf.placeholder(I32, ())
        before = len(g.get_operations())
        k = key(f, i)
        built = len(g.get_operations())
        with pytest.raises(error, match=pattern):
            x[k]
    assert len(g.get_operations()) == built >= before


def test_getitem_out_of_range_index_tensor_at_run_time() -> None:
    g = sf.Graph()
    with g.as_default():
        x = sf.placeholder(F32, (3, 2))
        i = sf.placeholder(I32, (None,))
        y = x[i]
    with sf.Session(g) as sess:
        with pytest.raises(
            sf.InvalidArgumentError, match="index 3 is out of bounds for a dimension of size 3"
        ):
            sess.run(y, {x: np.zeros((3, 2), np.float32), i: np.array([0, 3], np.int32)})
        np.testing.assert_array_equal(
            sess.run(y, {x: np.eye(3, 2, dtype=np.float32), i: np.array([-3], np.int32)}),
            [[1.0, 0.0]],
        )


def test_graph_index_is_fed_in_a_traced_function() -> None:
    @sf.function
    def pick(x: Any, i: Any) -> Any:
        return x[i] + x[sf.range(i)][-1]

    x = sf.constant([1.0, 2.0, 4.0, 8.0])
    assert float(pick(x, sf.constant(3))) == 12.0
    assert float(pick(x, sf.constant(2))) == 6.0


def test_index_tensors_in_the_wrong_context() -> None:
    with sf.Graph().as_default():
        leaked = sf.constant(1, name="leaked")
    x = sf.constant([1.0, 2.0])
    with pytest.raises(TypeError, match=r"'leaked:0'.*cannot be used outside its graph"):
        x[leaked]
    with sf.Graph().as_default(), pytest.raises(ValueError, match=r"'leaked:0' belongs to"):
        sf.zeros([3])[leaked]
    eager_index = sf.constant([0])
    with sf.Graph().as_default(), pytest.raises(RuntimeError, match="eager tensor was used"):
        sf.zeros([3])[eager_index]
