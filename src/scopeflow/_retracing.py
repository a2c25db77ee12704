"""Detecting a traced function that keeps retracing, and saying why.

TensorFlow's rule: when 5 of the last 10 calls of a function traced it anew, tracing is
likely to go on (a Python number or a shape changing on every call), so warn, once per
function. Each ``sf.function`` object (each instance's bound method too) counts its own
calls: functions made afresh in a loop are not reported (TensorFlow counts those per
Python function), which keeps the warning free of false alarms.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any, Final, final

from ._call_keys import _LEAF, _describe_part
from ._signature import Binder

__all__ = ["RetraceDetector", "RetracingWarning", "message"]

HISTORY: Final = 10
"""How many recent calls the detector looks at."""
THRESHOLD: Final = 5
"""How many of them must have traced for the warning."""


class RetracingWarning(UserWarning):
    """A traced function keeps tracing again: its arguments change from call to call.

    Every trace costs far more than a call and is kept, so a function retraced for each
    new Python number or shape gets slower and bigger. Pass such values as tensors, or
    give the function an ``input_signature`` with ``None`` where shapes vary.

    Example:
        >>> import warnings
        >>> import scopeflow as sf
        >>> f = sf.function(lambda x, n: x * n)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     for n in range(5):
        ...         _ = f(sf.constant(1.0), float(n))
        >>> [w.category.__name__ for w in caught]
        ['RetracingWarning']
    """


@final
class RetraceDetector:
    """Counts calls and traces of one Python function; decides when to warn (thread-safe)."""

    __slots__ = ("_lock", "_recent", "_warned", "calls")

    def __init__(self) -> None:
        # ``next()`` on itertools.count is atomic: the warm call path takes no lock.
        self.calls = itertools.count(1)
        self._lock = threading.Lock()
        # (call number, cache tag, key) of the traces among the last HISTORY calls.
        self._recent: deque[tuple[int, int, Any]] = deque()
        self._warned = False

    def missed(self, call: int, tag: int, key: Any) -> tuple[int, Any] | None:
        """Record that call number ``call`` found no trace for ``key`` in cache ``tag``.

        Returns (traces in the window, the previous trace's key) when the warning is due,
        else None. A key already counted in the window (callers waiting for one trace, or
        a trace retried after an error) counts once.
        """
        with self._lock:
            recent = self._recent
            while recent and recent[0][0] <= call - HISTORY:
                recent.popleft()
            if any(t == tag and k == key for _, t, k in recent):
                return None
            previous = recent[-1][2] if recent else None
            recent.append((call, tag, key))
            if self._warned or len(recent) < THRESHOLD:
                return None
            self._warned = True  # set only once the warning is certain to be issued
            return len(recent), previous


def message(binder: Binder, count: int, previous: Any, key: Any) -> str:
    """The warning text: how often, which argument changed, and what to do."""
    name = binder.name
    return (
        f"{name}() was traced {count} times in its last {HISTORY} calls. Tracing is slow "
        f"and every trace is kept; {_what_changed(binder, previous, key)}. Pass values "
        f"that change from call to call as tensors (sf.constant(...)), or give sf.function "
        f"an input_signature (sf.TensorSpec with None in the dimensions that vary) so "
        f"one trace serves every call."
    )


def _what_changed(binder: Binder, previous: Any, key: Any) -> str:
    """Which argument differs between two cache keys (eager, device, structure, refs)."""
    if previous is None:
        return "the calling context changed"
    if previous[:2] != key[:2]:
        return "the calling context changed (eager or graph caller, or device)"
    old, new = previous[2], key[2]
    if old[0] == "signature" or new[0] == "signature":
        return "the calling context changed"
    old_args, old_kwargs = old
    new_args, new_kwargs = new
    changes = [
        (binder.arg_name(i), a, b)
        for i, (a, b) in enumerate(zip(old_args, new_args, strict=False))
        if a != b
    ]
    old_kw, new_kw = dict(old_kwargs), dict(new_kwargs)
    changes.extend((k, old_kw[k], v) for k, v in new_kw.items() if k in old_kw and old_kw[k] != v)
    if not changes:
        return "the number or names of its arguments changed"
    name, a, b = changes[0]
    kind = "shape or dtype" if a[0] == _LEAF and b[0] == _LEAF else "value"
    return (
        f"the last retrace was caused by argument {name!r}, whose {kind} changed from "
        f"{_describe_part(a)} to {_describe_part(b)}"
    )
