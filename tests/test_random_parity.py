"""sf.random against TensorFlow's seeding contract: streams that must never coincide.

TensorFlow derives the op seed of an op without one from the global seed's own
sequence; it never equals a user's explicit op seed by construction of a counter. Here the
counter-made op seeds live in their own range, so ``normal(seed=0)`` after ``set_seed(s)``
is not a copy of the first unseeded op.
"""

from __future__ import annotations

import contextvars
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf


@pytest.fixture(autouse=True)
def _no_seed() -> Any:
    sf.random.set_seed(None)
    yield
    sf.random.set_seed(None)


@pytest.mark.parametrize("op_seed", [0, 1, 2])
def test_counter_op_seeds_never_equal_an_explicit_op_seed_eagerly(op_seed: int) -> None:
    sf.random.set_seed(42)
    unseeded = [sf.random.normal([8]).numpy() for _ in range(3)]
    sf.random.set_seed(42)
    explicit = sf.random.normal([8], seed=op_seed).numpy()
    for value in unseeded:
        assert not np.array_equal(value, explicit)


def test_counter_op_seeds_never_equal_an_explicit_op_seed_in_a_graph() -> None:
    g = sf.Graph()
    with g.as_default():
        sf.random.set_seed(42)
        a = sf.random.uniform([8])
        b = sf.random.uniform([8], seed=0)
    va, vb = sf.Session(g).run([a, b])
    assert not np.array_equal(va, vb)


def test_reproducible_in_a_fresh_context_after_the_fix() -> None:
    def run() -> list[Any]:
        sf.random.set_seed(42)
        return [sf.random.normal([3]).numpy(), sf.random.normal([3], seed=0).numpy()]

    first, again = contextvars.Context().run(run), contextvars.Context().run(run)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.anyio
async def test_a_traced_function_in_tasks_draws_per_call_and_seeds_stay_per_task() -> None:
    """Tasks that set different seeds and interleave get their own reproducible draws."""

    async def draws(seed: int, out: dict[int, list[Any]]) -> None:
        sf.random.set_seed(seed)

        @sf.function
        def f() -> Any:
            return sf.random.uniform([4])

        values = []
        for _ in range(3):
            await anyio.sleep(0)
            values.append(f().numpy())
        out[seed] = values

    first: dict[int, list[Any]] = {}
    again: dict[int, list[Any]] = {}
    async with anyio.create_task_group() as tg:
        for seed in (1, 2):
            tg.start_soon(draws, seed, first)
    async with anyio.create_task_group() as tg:
        for seed in (2, 1):
            tg.start_soon(draws, seed, again)
    for seed in (1, 2):
        # New values on every call, and the same sequence in another task.
        assert not np.array_equal(first[seed][0], first[seed][1])
        for a, b in zip(first[seed], again[seed], strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1][0], first[2][0])


def test_a_shape_list_holding_scalar_tensors_works_in_every_mode() -> None:
    """``normal([tf.shape(x)[0], 2])``, TensorFlow's usual dynamic batch idiom."""
    x = sf.zeros([3, 5])
    assert sf.random.normal([sf.shape(x)[0], 2], seed=1).shape == (3, 2)

    @sf.function
    def traced(t: Any) -> Any:
        return sf.random.uniform([sf.shape(t)[1], 4])

    assert traced(x).shape == (5, 4)
    g = sf.Graph()
    with g.as_default():
        p = sf.placeholder(sf.float32, shape=[None, 5])
        out = sf.random.truncated_normal([sf.shape(p)[0], 2])
    assert out.shape == (None, None)
    assert sf.Session(g).run(out, {p: np.zeros((4, 5), np.float32)}).shape == (4, 2)
    with pytest.raises(TypeError, match=r"^normal\(\): shape entries must be ints, got a float32"):
        sf.random.normal([sf.constant(1.5), 2])


def test_counter_op_seeds_are_distinct_int64_values() -> None:
    """They stay storable as int64 (exported graphs) and never repeat within a context."""
    from scopeflow._ops._seeds import _counter_op_seed

    seeds = [_counter_op_seed(i) for i in range(10_000)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)
    assert not set(seeds) & set(range(1_000_000))
