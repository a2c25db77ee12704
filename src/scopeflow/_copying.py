"""Objects that refuse ``copy.copy``, ``copy.deepcopy`` and ``pickle``.

Graphs, operations, functions, tapes and sessions own locks, caches and references into a
graph; the default copy protocol either fails deep inside ("cannot pickle
'_thread.lock'") or, worse, makes an alias that shares the original's mutable state. They
refuse all three with a ``TypeError`` that says why and what to do instead. (Eager
tensors and eager variables are values and copy and pickle by value; see their classes.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

__all__ = ["refuse_copying"]

C = TypeVar("C", bound=type)


def refuse_copying(reason: str, instead: str) -> Callable[[C], C]:
    """A class decorator: copying or pickling an instance raises ``TypeError``.

    Args:
        reason: why an instance cannot be copied ("it owns ...").
        instead: what to do instead, as a sentence.
    """

    def decorate(cls: C) -> C:
        def refuse(obj: Any, verb: str) -> NoReturn:
            msg = f"{obj!r} cannot be {verb}: {reason}. {instead}"
            raise TypeError(msg)

        def __copy__(self: Any) -> NoReturn:
            refuse(self, "copied")

        def __deepcopy__(self: Any, memo: dict[int, Any]) -> NoReturn:
            refuse(self, "deep-copied")

        def __reduce_ex__(self: Any, protocol: Any) -> NoReturn:
            refuse(self, "pickled")

        cls.__copy__ = __copy__  # type: ignore[attr-defined]
        cls.__deepcopy__ = __deepcopy__  # type: ignore[attr-defined]
        cls.__reduce_ex__ = __reduce_ex__  # type: ignore[assignment]
        return cls

    return decorate
