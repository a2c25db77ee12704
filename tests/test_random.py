"""sf.random: per-context seeds, fresh draws per run and per call, distributions, errors."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf


def _fresh(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a brand-new, empty context (no seed set)."""
    return contextvars.Context().run(fn)


def _draws(seed: int | None, op_seed: int | None = None, n: int = 3) -> list[np.ndarray[Any, Any]]:
    def run() -> list[np.ndarray[Any, Any]]:
        sf.random.set_seed(seed)
        return [sf.random.normal((4,), seed=op_seed).numpy() for _ in range(n)]

    return _fresh(run)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _no_seed() -> Any:
    sf.random.set_seed(None)
    yield
    sf.random.set_seed(None)


# -- seeds ------------------------------------------------------------------------------------


def test_global_seed_reproduces_the_sequence_in_a_fresh_context() -> None:
    first, again = _draws(7), _draws(7)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # Successive ops of one sequence differ, and another seed gives other values.
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], _draws(8)[0])


def test_set_seed_restarts_the_sequence_in_the_same_context() -> None:
    sf.random.set_seed(3)
    a = [sf.random.uniform((3,)).numpy(), sf.random.uniform((3,), seed=5).numpy()]
    sf.random.set_seed(3)
    b = [sf.random.uniform((3,)).numpy(), sf.random.uniform((3,), seed=5).numpy()]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_an_op_seed_alone_is_reproducible_and_repeated_calls_advance() -> None:
    first, again = _draws(None, op_seed=11), _draws(None, op_seed=11)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[2], again[2])
    assert not np.array_equal(first[0], first[1])


def test_without_any_seed_draws_are_not_repeated() -> None:
    a, b = _draws(None), _draws(None)
    assert not np.array_equal(a[0], b[0])


def test_draws_use_numpy_generator_not_the_legacy_global_state() -> None:
    np.random.seed(0)
    a = _draws(None)[0]
    np.random.seed(0)
    b = _draws(None)[0]
    assert not np.array_equal(a, b)
    # Seeded draws are PCG64 streams keyed by (global seed, op seed, draw index).
    value = _draws(5, op_seed=9, n=1)[0]
    expected = np.random.Generator(np.random.PCG64(np.random.SeedSequence((5, 9, 0))))
    np.testing.assert_array_equal(value, expected.standard_normal(4).astype(np.float32))


@pytest.mark.parametrize("seed", ["1", 1.5, True, [1]])
def test_set_seed_rejects_non_integers(seed: Any) -> None:
    with pytest.raises(TypeError, match=r"^set_seed\(\): seed must be an integer"):
        sf.random.set_seed(seed)


def test_a_failed_call_does_not_advance_the_sequence() -> None:
    sf.random.set_seed(1)
    with pytest.raises(ValueError, match=r"logits must be 2-D"):
        sf.random.categorical([1.0, 2.0], 1)
    a = sf.random.normal((3,)).numpy()
    sf.random.set_seed(1)
    np.testing.assert_array_equal(a, sf.random.normal((3,)).numpy())


@pytest.mark.anyio
async def test_seeds_are_per_task_while_tasks_interleave() -> None:
    expected = {s: _draws(s) for s in (1, 2)}
    got: dict[int, list[np.ndarray[Any, Any]]] = {}
    sf.random.set_seed(99)
    parent_first = _draws(99)[0]

    async def worker(seed: int) -> None:
        sf.random.set_seed(seed)
        out = []
        for _ in range(3):
            await anyio.sleep(0)  # the other task sets its seed and draws meanwhile
            out.append(sf.random.normal((4,)).numpy())
        got[seed] = out

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, 1)
        tg.start_soon(worker, 2)
    for seed in (1, 2):
        for a, b in zip(got[seed], expected[seed], strict=True):
            np.testing.assert_array_equal(a, b)
    # The children's set_seed and draws left the parent's sequence untouched.
    np.testing.assert_array_equal(sf.random.normal((4,)).numpy(), parent_first)


def test_seeds_are_per_thread() -> None:
    expected = {s: _draws(s) for s in (1, 2, 3, 4)}
    barrier = threading.Barrier(4)
    got: dict[int, list[np.ndarray[Any, Any]]] = {}
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            sf.random.set_seed(seed)
            barrier.wait()
            got[seed] = [sf.random.normal((4,)).numpy() for _ in range(3)]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(s,)) for s in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for seed, values in expected.items():
        for a, b in zip(got[seed], values, strict=True):
            np.testing.assert_array_equal(a, b)


# -- graphs and functions ---------------------------------------------------------------------


def _graph_with_seed(seed: int) -> tuple[sf.Graph, Any]:
    def build() -> tuple[sf.Graph, Any]:
        sf.random.set_seed(seed)
        g = sf.Graph()
        with g.as_default():
            return g, sf.random.uniform((3,))

    return _fresh(build)  # type: ignore[no-any-return]


def test_each_session_run_draws_new_values_and_graphs_reproduce() -> None:
    g, u = _graph_with_seed(4)
    sess = sf.Session(g)
    runs = [sess.run(u) for _ in range(3)]
    assert not np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[1], runs[2])
    g2, u2 = _graph_with_seed(4)
    np.testing.assert_array_equal(sf.Session(g2).run(u2), runs[0])


def test_eager_and_graph_draws_of_one_seed_pair_agree() -> None:
    sf.random.set_seed(21)
    eager = [sf.random.normal((2, 2), seed=3).numpy() for _ in range(2)]
    g = sf.Graph()
    with g.as_default():
        x = sf.random.normal((2, 2), seed=3)
    sess = sf.Session(g)
    for value in eager:
        np.testing.assert_array_equal(sess.run(x), value)


def test_a_traced_function_draws_new_values_on_every_call() -> None:
    @sf.function
    def noisy(x: Any) -> Any:
        return x + sf.random.normal((3,))

    zeros = sf.zeros((3,))
    a, b = noisy(zeros).numpy(), noisy(zeros).numpy()
    assert not np.array_equal(a, b)
    assert noisy.trace_count == 1


def test_a_traced_function_with_seeds_reproduces_in_a_fresh_context() -> None:
    def run() -> list[np.ndarray[Any, Any]]:
        sf.random.set_seed(5)

        @sf.function
        def draw() -> Any:
            return sf.random.uniform((2,))

        return [draw().numpy(), draw().numpy()]

    first, again = _fresh(run), _fresh(run)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])


def test_concurrent_runs_of_one_op_never_share_a_draw() -> None:
    g, u = _graph_with_seed(8)
    reference_g, reference_u = _graph_with_seed(8)
    reference_sess = sf.Session(reference_g)
    expected = {reference_sess.run(reference_u).tobytes() for _ in range(40)}
    sess = sf.Session(g)
    barrier = threading.Barrier(4)
    got: list[bytes] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            value = sess.run(u).tobytes()
            with lock:
                got.append(value)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 40
    assert set(got) == expected


def test_a_shape_tensor_gives_a_dynamic_shape() -> None:
    g = sf.Graph()
    with g.as_default():
        shape = sf.placeholder(sf.int32, shape=(2,))
        u = sf.random.uniform(shape, seed=1)
        n = sf.random.normal(shape, seed=2)
    assert u.shape == (None, None)
    value, normal = sf.Session(g).run([u, n], {shape: [2, 5]})
    assert value.shape == (2, 5)
    assert normal.shape == (2, 5)
    eager = sf.random.uniform(sf.constant([3, 1]))
    assert eager.shape == (3, 1)


# -- distributions ----------------------------------------------------------------------------


def test_normal_and_truncated_normal_statistics() -> None:
    sf.random.set_seed(0)
    x = sf.random.normal((20000,), mean=3.0, stddev=2.0, dtype=sf.float64).numpy()
    assert x.dtype == np.float64
    assert abs(x.mean() - 3.0) < 0.1
    assert abs(x.std() - 2.0) < 0.1
    t = sf.random.truncated_normal((20000,), mean=-1.0, stddev=0.5).numpy()
    assert t.dtype == np.float32
    assert t.min() >= -2.0
    assert t.max() <= 0.0
    assert abs(t.mean() + 1.0) < 0.05


def test_uniform_float_and_int_ranges() -> None:
    sf.random.set_seed(0)
    f = sf.random.uniform((5000,), minval=-2.0, maxval=3.0).numpy()
    assert f.min() >= -2.0
    assert f.max() < 3.0
    assert f.max() > 2.9
    i = sf.random.uniform((5000,), minval=-3, maxval=4, dtype=sf.int64).numpy()
    assert i.dtype == np.int64
    assert set(np.unique(i).tolist()) == set(range(-3, 4))


def test_uniform_int_errors() -> None:
    with pytest.raises(ValueError, match=r"^uniform\(\): maxval must be given for the integer"):
        sf.random.uniform((2,), dtype=sf.int32)
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"need minval < maxval"):
        sf.random.uniform((2,), minval=5, maxval=5, dtype=sf.int32)
    g = sf.Graph()
    with g.as_default():
        hi = sf.placeholder(sf.int32, shape=())
        u = sf.random.uniform((2,), minval=3, maxval=hi, dtype=sf.int32)
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"minval=3 and maxval=1"):
        sf.Session(g).run(u, {hi: 1})
    with pytest.raises(TypeError, match=r"must be ints, got 1.5"):
        sf.random.uniform((2,), maxval=1.5, dtype=sf.int32)


def test_bad_shapes_and_dtypes_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"^normal\(\): shape \(2, -1\) has a negative size"):
        sf.random.normal((2, -1))
    with pytest.raises(TypeError, match=r"^normal\(\): shape \(2, 'a'\) must hold ints"):
        sf.random.normal((2, "a"))
    with pytest.raises(TypeError, match=r"^normal\(\): dtype must be a floating-point dtype"):
        sf.random.normal((2,), dtype=sf.int32)
    with pytest.raises(TypeError, match=r"^uniform\(\): dtype must be a floating-point or int"):
        sf.random.uniform((2,), dtype=sf.bool_)
    with pytest.raises(TypeError, match=r"^categorical\(\): dtype must be an integer dtype"):
        sf.random.categorical([[0.0]], 1, dtype=sf.float32)


def test_shuffle_permutes_rows() -> None:
    value = np.arange(20).reshape(10, 2)
    sf.random.set_seed(2)
    out = sf.random.shuffle(value).numpy()
    assert not np.array_equal(out, value)
    assert sorted(map(tuple, out.tolist())) == sorted(map(tuple, value.tolist()))
    g = sf.Graph()
    with g.as_default():
        s = sf.random.shuffle(sf.constant(value))
    sess = sf.Session(g)
    assert not np.array_equal(sess.run(s), sess.run(s))


def test_shuffle_has_no_gradient_and_says_so() -> None:
    x = sf.constant([1.0, 2.0])
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = sf.random.shuffle(x)
    with pytest.raises(LookupError, match=r"RandomShuffle"):
        tape.gradient(y, x)


def test_gradients_flow_to_mean_and_stddev() -> None:
    mean, std = sf.constant(1.0), sf.constant(2.0)
    with sf.GradientTape() as tape:
        tape.watch([mean, std])
        x = sf.random.normal((100,), mean=mean, stddev=std, seed=1)
        loss = sf.reduce_sum(x)
    d_mean, d_std = tape.gradient(loss, [mean, std])
    assert float(d_mean) == 100.0
    np.testing.assert_allclose(float(d_std), ((x.numpy() - 1.0) / 2.0).sum(), rtol=1e-4)


@pytest.mark.parametrize("mode", ["eager", "graph", "function"])
def test_categorical_follows_the_logits(mode: str) -> None:
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]], dtype=np.float32) + 1e-30)

    def build(lg: Any) -> Any:
        return sf.random.categorical(lg, 4000, seed=3)

    if mode == "eager":
        out = build(sf.constant(logits)).numpy()
    elif mode == "function":
        out = sf.function(build)(sf.constant(logits)).numpy()
    else:
        g = sf.Graph()
        with g.as_default():
            p = sf.placeholder(sf.float32, shape=(None, 3))
            t = build(p)
        assert t.shape == (None, 4000)
        out = sf.Session(g).run(t, {p: logits})
    assert out.shape == (2, 4000)
    assert out.dtype == np.int64
    freq = np.bincount(out[0], minlength=3) / 4000
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.04)
    assert (out[1] == 2).all()


def test_categorical_rejects_rows_without_finite_logits() -> None:
    with pytest.raises(sf.errors.InvalidArgumentError, match=r"needs a finite maximum"):
        sf.random.categorical([[-np.inf, -np.inf]], 2)
    with pytest.raises(ValueError, match=r"num_samples must be >= 0"):
        sf.random.categorical([[0.0]], -1)


# -- gradients of traced calls see the values the call drew ---------------------------------


@sf.function
def _dropout_noise(x: Any) -> Any:
    mask = sf.cast(sf.random.uniform((200,)) < 0.5, sf.float32)
    return x * mask * sf.random.normal((200,))


def test_gradient_of_a_traced_call_uses_the_draws_of_that_call() -> None:
    # y = x * mask * noise, so dy/dx is y itself at x = 1 (the replayed graph must not
    # draw a new mask and new noise).
    x = sf.ones((200,))
    with sf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = _dropout_noise(x)
        _dropout_noise(x)  # a later call draws other values and keeps its own
    for _ in range(2):  # a persistent tape replays the same draws every time
        np.testing.assert_array_equal(tape.gradient(y, x).numpy(), y.numpy())


@pytest.mark.parametrize("taken", [True, False])
def test_draws_in_cond_branches_and_loops_are_replayed_too(taken: bool) -> None:
    @sf.function
    def model(x: Any, flag: Any) -> Any:
        looped = sf.while_loop(
            lambda i, a: i < 3,
            lambda i, a: (i + 1, a * (1.0 + sf.random.uniform((200,)))),
            (0, x),
        )[1]
        return sf.cond(flag, lambda: _dropout_noise(looped), lambda: looped * 2.0)

    x = sf.ones((200,))
    with sf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, sf.constant(taken))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), y.numpy(), rtol=1e-6)


def test_gradients_replayed_in_a_graph_refuse_to_redraw() -> None:
    @sf.function
    def noisy(x: Any) -> Any:
        return x * sf.random.normal((3,))

    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=(3,))
        flag = sf.placeholder(sf.bool_, shape=())
        through_call = noisy(p)
        through_cond = sf.cond(flag, lambda: p * sf.random.uniform((3,)), lambda: p)
        with pytest.raises(LookupError, match=r"^No gradient through the random op normal\(\)"):
            sf.gradients(through_call, [p])
        with pytest.raises(LookupError, match=r"^No gradient through the random op uniform\(\)"):
            sf.gradients(through_cond, [p])
        # Where the values are drawn, the gradient uses them.
        direct = p * sf.random.normal((3,))
        (d,) = sf.gradients(direct, [p])
    value, grad = sf.Session(g).run([direct, d], {p: np.ones(3, np.float32)})
    np.testing.assert_array_equal(value, grad)


def test_eager_calls_without_op_seed_keep_the_seed_state_small() -> None:
    from scopeflow._ops import _seeds

    sf.random.set_seed(1)
    for _ in range(50):
        sf.random.uniform((1,))
    global_seed, counter, draws = _seeds._SEEDS.get()
    assert (global_seed, counter, draws) == (1, 50, {})
