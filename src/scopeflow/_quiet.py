"""Running NumPy kernels with floating-point errors ignored, cheaply.

Kernels run as TensorFlow's do: overflow gives ``inf``, ``0/0`` gives ``nan``, and nothing
warns. ``with np.errstate(all="ignore"):`` builds that state on every entry (about 1 µs,
as much as a whole small eager op); NumPy 2 keeps the state in a ``ContextVar``, so setting
that variable to a state built once costs one ``set`` and one ``reset`` (about 0.1 µs).
Where NumPy lacks the variable, the same calls fall back to ``np.errstate``.

Usage (``set``/``reset`` are bound once: this runs for every eager op and every op of
a session run)::

    token = quiet_set(QUIET)
    try:
        result = kernel(...)
    finally:
        quiet_reset(token)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["QUIET", "quiet_reset", "quiet_set"]

quiet_set: Callable[[Any], Any]
quiet_reset: Callable[[Any], None]

try:
    from numpy._core.umath import (  # type: ignore[attr-defined,unused-ignore]
        _extobj_contextvar,
        _make_extobj,
    )

    # The state of "ignore every error", built from the state at import time (its buffer
    # size and error callback do not matter once every error is ignored).
    QUIET: Any = _make_extobj(all="ignore")
    quiet_set = _extobj_contextvar.set
    quiet_reset = _extobj_contextvar.reset
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other NumPy versions
    QUIET = None

    def quiet_set(_: Any) -> Any:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def quiet_reset(state: Any) -> None:
        state.__exit__(None, None, None)
