"""Shape and indexing ops (placeholder implementations, completed separately)."""

from __future__ import annotations

from typing import Any

__all__ = ["concat", "fill", "getitem", "ones", "reshape", "stack", "transpose", "where", "zeros"]


def _todo(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


concat = fill = getitem = ones = reshape = stack = transpose = where = zeros = _todo
