"""The op-specific values of the exported-model format that are not plain data.

A tensor getitem key marks where each index tensor goes with a :class:`Slot`; a print
template marks tensors, text and containers with sentinel objects and the types
``dict``, ``list`` and ``tuple``. The format writes them as ``{"slot": i}`` and
``{"marker": name}``, allowed only in the attributes listed in ``OP_TAGS``.
"""

from __future__ import annotations

from typing import Any, Final

from ._ops._debug import _TENSOR, _TEXT
from ._ops._indexing import Slot as Slot

__all__ = ["MARKERS", "MARKER_NAMES", "Slot"]

MARKERS: Final[dict[str, Any]] = {
    "tensor": _TENSOR,
    "text": _TEXT,
    "dict": dict,
    "list": list,
    "tuple": tuple,
}
# By identity: the sentinels are plain objects and the types hash as themselves.
MARKER_NAMES: Final[dict[int, str]] = {id(v): k for k, v in MARKERS.items()}
