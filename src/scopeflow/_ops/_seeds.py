"""Random seeds per context, where each draw gets its generator, and the draw log.

See :mod:`scopeflow._ops._random` for the seeding rules; this module holds the state
they need: the ContextVar with the global seed and counters, the draw sources kernels
use (the process-wide generator, an eager draw, a graph op's stream), and the log that
lets a gradient replay a traced call with the random values the call drew.
"""

from __future__ import annotations

import contextvars
import operator
import threading
from collections.abc import Callable
from typing import Any, Final, final

import numpy as np

from .._context import EAGER, _roots, state_get

__all__ = [
    "DEFAULT_GLOBAL_SEED",
    "DRAW_LOG",
    "DrawLog",
    "commit",
    "drawn",
    "get_seed",
    "set_seed",
    "source",
]

DEFAULT_GLOBAL_SEED: Final = 87654321
_SEED_MASK: Final = (1 << 64) - 1
_INT63: Final = (1 << 63) - 1


def _counter_op_seed(counter: int) -> int:
    """The op seed of the ``counter``-th unseeded op: a splitmix64 scramble of it.

    Using the counter itself would hand an unseeded op and ``seed=0`` (or 1, 42...) the
    very same stream. splitmix64 is a bijection on 64 bits, so scrambled counters are
    distinct (dropping the top bit to fit an int64, which exported graphs can store, keeps
    them distinct in practice: a test checks the first 10,000) and land far from the
    small seeds people write.
    """
    z = (counter + 0x9E3779B97F4A7C15) & _SEED_MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _SEED_MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _SEED_MASK
    return (z ^ (z >> 31)) & _INT63


Pair = tuple[int, int]
# (global seed or None, next op seed from the counter, draws so far per seed pair). The
# dict is never mutated once it is in the variable: updates copy it, so a child task's
# draws never show in its parent (snapshots are immutable, SPEC section 3).
_SeedState = tuple[int | None, int, dict[Pair, int]]
_SEEDS: contextvars.ContextVar[_SeedState] = contextvars.ContextVar(
    "scopeflow_random_seed", default=(None, 0, {})
)


def _as_seed(seed: Any, what: str) -> int:
    if isinstance(seed, (bool, np.bool_)):
        msg = f"{what} must be an integer, got {seed!r}"
        raise TypeError(msg)
    try:
        value = operator.index(seed)
    except TypeError:
        msg = f"{what} must be an integer, got {seed!r} of type {type(seed).__name__}"
        raise TypeError(msg) from None
    # Negative int64 seeds are valid in TensorFlow; SeedSequence wants non-negative words.
    return value & _SEED_MASK


def set_seed(seed: int | None) -> None:
    """Set the global random seed of the calling context (task, thread, copied context).

    It also restarts the op-seed counter and every eager seed stream of the context, so
    the random ops that follow draw the same values as after any other ``set_seed(seed)``.
    Tasks spawned afterwards inherit it; other tasks keep their own. ``None`` clears it.

    Args:
        seed: an integer, or None for nondeterministic draws.

    Raises:
        TypeError: ``seed`` is not an integer.

    Example:
        >>> import scopeflow as sf
        >>> sf.random.set_seed(7)
        >>> a = sf.random.uniform((2,))
        >>> sf.random.set_seed(7)
        >>> bool((a.numpy() == sf.random.uniform((2,)).numpy()).all())
        True
        >>> sf.random.set_seed(None)
    """
    value = None if seed is None else _as_seed(seed, "set_seed(): seed")
    _SEEDS.set((value, 0, {}))


def get_seed(op_seed: int | None) -> Pair | None:
    """The seed pair a new random op uses (None: nondeterministic), TensorFlow's rules.

    Taking an op seed from the counter advances it.
    """
    pair, state = _seed_pair(op_seed, _SEEDS.get())
    if state is not None:
        _SEEDS.set(state)
    return pair


def _seed_pair(op_seed: Any, state: _SeedState) -> tuple[Pair | None, _SeedState | None]:
    """The seed pair for ``op_seed`` and the context's next seed state (None: unchanged)."""
    global_seed, counter, draws = state
    op = None if op_seed is None else _as_seed(op_seed, "seed")
    if global_seed is None:
        return (None if op is None else (DEFAULT_GLOBAL_SEED, op)), None
    if op is None:
        return (global_seed, _counter_op_seed(counter)), (global_seed, counter + 1, draws)
    return (global_seed, op), None


def _generator(pair: Pair, k: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence((*pair, k))))


# -- where a draw gets its generator -------------------------------------------------------

_Draw = Callable[["np.random.Generator"], Any]  # a string: numpy.random loads lazily


@final
class _Unseeded:
    """Draws from the process-wide entropy-seeded generator (NumPy generators are not
    thread-safe, hence the lock)."""

    __slots__ = ()
    _lock: Final = threading.Lock()
    # Made on the first draw: creating it imports numpy.random, which ``import scopeflow``
    # should not pay for (about 10 ms and several MiB).
    _gen: np.random.Generator | None = None

    def draw(self, fn: _Draw) -> Any:
        with self._lock:
            gen = _Unseeded._gen
            if gen is None:
                gen = _Unseeded._gen = np.random.Generator(np.random.PCG64())
            return fn(gen)


@final
class _EagerDraw:
    """Draw ``k`` of a seed pair, counted by the calling context."""

    __slots__ = ("k", "pair")

    def __init__(self, pair: Pair, k: int) -> None:
        self.pair = pair
        self.k = k

    def draw(self, fn: _Draw) -> Any:
        return fn(_generator(self.pair, self.k))


@final
class _OpStream:
    """The draws of one graph op: run ``k`` of the op uses draw ``k`` of its pair."""

    __slots__ = ("_lock", "_runs", "pair")

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self._runs = 0
        self._lock = threading.Lock()

    def draw(self, fn: _Draw) -> Any:
        with self._lock:  # claim a run index; concurrent runs never share one
            k = self._runs
            self._runs += 1
        return fn(_generator(self.pair, k))


_UNSEEDED: Final = _Unseeded()


def source(seed: Any) -> tuple[Pair | None, Any, _SeedState | None]:
    """The seed pair and draw source for a new random op in the calling context, and the
    context's seed state once the op exists (pass it to :func:`commit`).

    Nothing changes before the op is made, so a call that fails (a bad argument) leaves
    the context's sequence as it was.
    """
    state = _SEEDS.get()
    pair, after = _seed_pair(seed, state)
    if pair is None:
        return None, _UNSEEDED, None
    if state_get(_roots[0])[EAGER]:
        if after is not None:
            # A fresh op seed from the counter: its first draw, and nothing to count (a
            # long eager loop must not grow the state by one entry per call).
            return pair, _EagerDraw(pair, 0), after
        global_seed, counter, draws = state
        k = draws.get(pair, 0)
        updated = dict(draws)
        updated[pair] = k + 1
        return pair, _EagerDraw(pair, k), (global_seed, counter, updated)
    return pair, _OpStream(pair), after


def commit(state: _SeedState | None) -> None:
    if state is not None:
        _SEEDS.set(state)


# -- keeping the draws of a call for its gradient ------------------------------------------------


@final
class DrawLog:
    """The values random kernels drew during one eager call of a traced function.

    The gradient of such a call replays its graph (see ``ConcreteFunction._replay``);
    replayed random ops must produce what the call drew, or the gradient would be that of
    other samples (another dropout mask, another reparameterisation noise). While a tape
    records an eager call, kernels append their values here (per op, in run order); while
    its gradient replays the call, :meth:`replayer` serves them back in the same order.
    Every replay pass (the call, then any cond branch or loop body replayed inside it)
    runs an op's draws in the order they were made, so each op cycles through its list.
    """

    __slots__ = ("_cursor", "_values")

    def __init__(self, values: dict[int, list[Any]] | None = None) -> None:
        self._values: dict[int, list[Any]] = {} if values is None else values
        self._cursor: dict[int, int] | None = None if values is None else {}

    def __bool__(self) -> bool:
        return bool(self._values)

    def replayer(self) -> DrawLog:
        """A log that serves these values from the start (one per gradient computation)."""
        return DrawLog(self._values)

    def draw(self, attrs: dict[str, Any], fresh: Callable[[], Any]) -> Any:
        key = id(attrs)  # an op's attrs dict lives as long as its graph; kept below
        cursor = self._cursor
        if cursor is None:
            value = fresh()
            self._values.setdefault(key, [attrs]).append(value)
            return value
        seen = self._values.get(key)
        if seen is None:  # an op the call never ran (a branch not taken then)
            return fresh()
        i = cursor.get(key, 0)
        cursor[key] = i + 1
        return seen[1 + i % (len(seen) - 1)]


# Set while a tape records an eager call of a traced function, and while its gradient
# replays it: a kernel reads one ContextVar per run and does nothing more when unset.
DRAW_LOG: contextvars.ContextVar[DrawLog | None] = contextvars.ContextVar(
    "scopeflow_draw_log", default=None
)


def drawn(attrs: dict[str, Any], fresh: Callable[[], Any]) -> Any:
    log = DRAW_LOG.get()
    return fresh() if log is None else log.draw(attrs, fresh)
