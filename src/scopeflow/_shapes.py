"""Validation of user-given static shapes (``constant``, ``placeholder``, ``TensorSpec``).

A shape is a sequence of dimension sizes: non-negative integers, or ``None`` for an unknown
size where the caller allows it. Anything else is refused with an error that names the
function and the offending entry, instead of being truncated (``2.5`` to ``2``) or failing
deep inside NumPy.
"""

from __future__ import annotations

import operator
from typing import Any

from ._graph import Shape

__all__ = ["as_static_shape"]


def as_static_shape(shape: Any, where: str, *, allow_unknown: bool) -> Shape:
    """``shape`` as a tuple of ``int`` (and ``None`` where ``allow_unknown``).

    Raises:
        TypeError: ``shape`` is not a sequence, or an entry is not an integer (or None).
        ValueError: an entry is negative, or None where sizes must be known.
    """
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        msg = (
            f"{where}: shape must be a sequence of dimension sizes such as (2, 3) or [], "
            f"got {shape!r}"
        )
        raise TypeError(msg)
    if hasattr(shape, "ndim") and getattr(shape, "ndim", 1) != 1:
        msg = f"{where}: a shape given as an array or tensor must be 1-D, got {shape!r}"
        raise ValueError(msg)
    dims: list[int | None] = []
    for d in shape:
        if d is None:
            if not allow_unknown:
                msg = (
                    f"{where}: shape {_show(shape)} has an unknown (None) size; every size "
                    f"must be known here (use sf.placeholder for partially known shapes)"
                )
                raise ValueError(msg)
            dims.append(None)
            continue
        try:
            if isinstance(d, bool):
                raise TypeError  # True is an int to Python, but not a size
            size = operator.index(d)  # ints, NumPy integers, integer 0-d arrays
        except TypeError:
            msg = f"{where}: shape {_show(shape)} has a non-integer size {d!r}"
            raise TypeError(msg) from None
        if size < 0:
            hint = " (-1 is only meaningful in reshape)" if size == -1 else ""
            msg = f"{where}: shape {_show(shape)} has a negative size {size}{hint}"
            raise ValueError(msg)
        dims.append(size)
    return tuple(dims)


def _show(shape: Any) -> str:
    try:
        return repr(list(shape))
    except Exception:  # an exotic iterable: its own repr will do
        return repr(shape)
