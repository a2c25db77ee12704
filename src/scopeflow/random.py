"""Random numbers: ``sf.random``.

Names: :func:`set_seed`, :func:`normal`, :func:`truncated_normal`, :func:`uniform`,
:func:`shuffle`, :func:`categorical`.

The global seed belongs to the calling context (task, thread, copied context), so one
task's ``set_seed`` never changes another's draws; a fresh context with the same seeds
draws the same values. In a graph, a random op draws new values on every run, and inside
a traced function on every call. Draws use NumPy's ``Generator`` (PCG64).

Example:
    >>> import scopeflow as sf
    >>> sf.random.set_seed(42)
    >>> first = sf.random.normal((3,)).numpy()
    >>> sf.random.set_seed(42)
    >>> bool((sf.random.normal((3,)).numpy() == first).all())
    True
    >>> sf.random.set_seed(None)
"""

from __future__ import annotations

from ._ops._random import (
    categorical as categorical,
    normal as normal,
    set_seed as set_seed,
    shuffle as shuffle,
    truncated_normal as truncated_normal,
    uniform as uniform,
)

__all__ = ["categorical", "normal", "set_seed", "shuffle", "truncated_normal", "uniform"]
