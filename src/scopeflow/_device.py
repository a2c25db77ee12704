"""Device specifications: parsing, merging of nested partial specs, canonical strings.

Devices are recorded on operations, not enforced: every kernel runs on NumPy on the CPU.
Parsed and merged results are cached, so a device scope costs a dict lookup.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["canonical_device", "merge_devices"]

_FIELD: Final = re.compile(
    r"(?:job:(?P<job>[A-Za-z_][\w-]*))"
    r"|(?:replica:(?P<replica>\d+))"
    r"|(?:task:(?P<task>\d+))"
    r"|(?:device:(?P<dtype>[A-Za-z]+):(?P<dindex>\d+|\*))"
    r"|(?:(?P<short>cpu|gpu|tpu|CPU|GPU|TPU):(?P<sindex>\d+|\*))"
    r"|(?:device:(?P<dtype_only>[A-Za-z]+))"
)
_ORDER: Final = ("job", "replica", "task", "type", "index")
_Parsed = dict[str, str]
# Programs use a handful of device strings; the caches are emptied if one ever grows past
# _CACHE_LIMIT entries (say, device names built from a counter), so memory stays bounded.
_CACHE_LIMIT: Final = 4096
_parse_cache: dict[str, _Parsed] = {}
_merge_cache: dict[tuple[str, str], str] = {}
_canonical_cache: dict[str, str] = {}


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    return cache


def _parse(spec: str) -> _Parsed:
    cached = _parse_cache.get(spec)
    if cached is not None:
        return cached
    fields: _Parsed = {}
    for part in spec.split("/"):
        if not part:
            continue
        m = _FIELD.fullmatch(part)
        if m is None:
            msg = (
                f"Invalid device specification {spec!r}: cannot parse {part!r}. Use forms "
                f"like '/cpu:0', '/device:GPU:1' or '/job:worker/replica:0/task:1/device:CPU:0'"
            )
            raise ValueError(msg)
        g = m.groupdict()
        if g["job"] is not None:
            fields["job"] = g["job"]
        elif g["replica"] is not None:
            fields["replica"] = g["replica"]
        elif g["task"] is not None:
            fields["task"] = g["task"]
        elif g["dtype"] is not None:
            fields["type"] = g["dtype"].upper()
            fields["index"] = g["dindex"]
        elif g["short"] is not None:
            fields["type"] = g["short"].upper()
            fields["index"] = g["sindex"]
        else:
            fields["type"] = g["dtype_only"].upper()
    _bounded(_parse_cache)[spec] = fields
    return fields


def _format(fields: _Parsed) -> str:
    out = []
    for key in _ORDER:
        if key not in fields:
            continue
        if key == "type":
            out.append(f"/device:{fields['type']}:{fields.get('index', '*')}")
        elif key != "index":
            out.append(f"/{key}:{fields[key]}")
    return "".join(out)


def canonical_device(spec: str) -> str:
    """The canonical form of ``spec`` ("/cpu:0" -> "/device:CPU:0"); raises on bad specs."""
    if not isinstance(spec, str):
        msg = f"A device specification must be a string or None, got {spec!r}"
        raise TypeError(msg)
    canonical = _canonical_cache.get(spec)
    if canonical is None:
        canonical = _bounded(_canonical_cache)[spec] = _format(_parse(spec))
    return canonical


def merge_devices(outer: str, inner: str) -> str:
    """``inner`` nested inside ``outer``: the fields ``inner`` names override ``outer``'s.

    Example:
        >>> merge_devices("/job:worker/device:CPU:0", "/device:GPU:1")
        '/job:worker/device:GPU:1'
    """
    key = (outer, inner)
    merged = _merge_cache.get(key)
    if merged is None:
        fields = dict(_parse(outer))
        inner_fields = _parse(inner)
        if "type" in inner_fields:
            fields.pop("index", None)
        fields.update(inner_fields)
        merged = _bounded(_merge_cache)[key] = _format(fields)
    return merged
