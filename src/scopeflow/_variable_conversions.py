"""Python conversions of a variable (``bool``, ``float``, ``int``, ``complex``, ``iter``).

As in TensorFlow, they read the variable: eagerly they give its value's, in a graph or a
trace they raise as a symbolic tensor does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["ValueConversions"]


class ValueConversions:
    """Mixin of :class:`~scopeflow.Variable`: conversions that read the value."""

    __slots__ = ()

    def read_value(self) -> Any:
        raise NotImplementedError

    def numpy(self) -> Any:
        raise NotImplementedError

    def __bool__(self) -> bool:
        return bool(self.read_value())

    def __float__(self) -> float:
        return float(self.read_value())

    def __int__(self) -> int:
        return int(self.read_value())

    def __complex__(self) -> complex:
        return complex(self.read_value())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.read_value())
