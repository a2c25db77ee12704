"""scopeflow's safetensors files: a zero-copy reader, the format check, the header writer.

``safetensors.numpy.load`` copies every tensor out of a bytes object that itself is a copy
of the file; for a 100 MiB checkpoint that is two extra passes over the data. This reader
reads the file once into one NumPy buffer and returns read-only views into it, after
checking the header as strictly as the safetensors format demands (known dtypes, sizes that
match the shapes, offsets that tile the data exactly). Every failure is a ``ValueError``
naming the file.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Final

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "MAX_HEADER",
    "arrays_from_bytes",
    "header_for",
    "read_arrays",
    "read_views",
]

# The version of scopeflow's array files (checkpoints, saved models' arrays), kept in
# their metadata beside the format name.
FORMAT_VERSION: Final = "1"

MAX_HEADER: Final = 100 * 2**20  # safetensors refuses larger headers too

_DTYPES: Final = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}


def read_views(source: str) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """(metadata, arrays) of the safetensors file ``source``; arrays are read-only views.

    The file is opened and read once, so a writer renaming a new file over it meanwhile
    cannot mix two versions.
    """
    try:
        buf = np.fromfile(source, dtype=np.uint8)
    except OSError as err:
        msg = f"Cannot read {source!r}: {err.strerror or err}"
        raise ValueError(msg) from None
    if buf.size < 8:
        msg = f"Cannot read {source!r}: {buf.size} bytes is too short for a safetensors file"
        raise ValueError(msg)
    (size,) = struct.unpack("<Q", buf[:8].tobytes())
    if size > min(buf.size - 8, MAX_HEADER):
        msg = f"Cannot read {source!r}: the file is truncated (header of {size} bytes)"
        raise ValueError(msg)
    try:
        header = json.loads(buf[8 : 8 + size].tobytes())
    # ValueError covers bad UTF-8, bad JSON and integers too long to convert.
    except (ValueError, RecursionError) as err:
        msg = f"Cannot read {source!r}: its header is not valid JSON ({err})"
        raise ValueError(msg) from None
    if not isinstance(header, dict):
        msg = f"Cannot read {source!r}: its header is not a JSON object"
        raise ValueError(msg)
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict):
        msg = f"{source!r} has no scopeflow metadata: it is not a scopeflow file"
        raise ValueError(msg)
    buf.flags.writeable = False
    start = 8 + size
    data_len = buf.size - start
    spans: list[tuple[int, int, str]] = []
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for key, entry in header.items():
        dtype, shape, begin, end = _entry(source, key, entry, data_len)
        spans.append((begin, end, key))
        count = math.prod(shape)
        view = np.frombuffer(buf, dtype=dtype, count=count, offset=start + begin)
        arrays[key] = view.reshape(shape)
    # The tensors must tile the data exactly: no gap, no overlap, nothing after the end.
    position = 0
    for begin, end, key in sorted(spans):
        if begin != position:
            msg = f"Cannot read {source!r}: the data of {key!r} does not start where expected"
            raise ValueError(msg)
        position = end
    if position != data_len:
        msg = f"Cannot read {source!r}: {data_len - position} bytes after the last tensor"
        raise ValueError(msg)
    return metadata, arrays


def _entry(
    source: str, key: str, entry: Any, data_len: int
) -> tuple[np.dtype[Any], tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        msg = f"Cannot read {source!r}: entry {key!r} is not a tensor description"
        raise ValueError(msg)
    dtype = _DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        msg = (
            f"Cannot read {source!r}: entry {key!r} has dtype {entry['dtype']!r}: dtype "
            f"{entry['dtype']!r} has no NumPy equivalent"
        )
        raise ValueError(msg)
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        msg = f"Cannot read {source!r}: entry {key!r} has an invalid shape {shape!r}"
        raise ValueError(msg)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        msg = f"Cannot read {source!r}: entry {key!r} has invalid data offsets {offsets!r}"
        raise ValueError(msg)
    begin, end = offsets
    if end - begin != math.prod(shape) * dtype.itemsize:
        msg = (
            f"Cannot read {source!r}: entry {key!r} holds {end - begin} bytes, but its shape "
            f"{tuple(shape)} and dtype need {math.prod(shape) * dtype.itemsize}"
        )
        raise ValueError(msg)
    return dtype, tuple(shape), begin, end


# safetensors' dtype code of each NumPy dtype name, for the headers written.
_CODES: Final = {dtype.name: code for code, dtype in _DTYPES.items()}


def header_for(
    arrays: dict[str, np.ndarray[Any, Any]], metadata: dict[str, str], target: str
) -> bytes:
    """The safetensors header for ``arrays`` (whose data follows it in the given order),
    with ``metadata`` as its ``__metadata__``.

    Writing the header and then each array's buffer straight to the file (rather than
    through ``safetensors.numpy.save``, which first joins everything into one bytes
    object) saves a full copy of the checkpoint; the file is the same format.
    """
    entries: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for key, arr in arrays.items():
        code = _CODES.get(arr.dtype.name)
        if code is None:
            msg = (
                f"Cannot write checkpoint {target!r}: entry {key!r} has dtype "
                f"{arr.dtype.name}, which safetensors cannot store"
            )
            raise ValueError(msg)
        entries[key] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
    header = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    header += b" " * (-len(header) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(header)) + header


def read_arrays(source: str, fmt: str) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of the safetensors file ``source``, whose metadata must name ``fmt``.

    The file is read once, into one buffer the returned read-only arrays are views of (a
    writer renaming a new file over it meanwhile is harmless); every failure is a
    ``ValueError`` naming the file.
    """
    metadata, arrays = read_views(source)
    _check_format(metadata, source, fmt)
    return arrays


def _check_format(metadata: dict[str, Any], source: str, fmt: str) -> None:
    if metadata.get("format") != fmt:
        msg = f"{source!r} is not a {fmt} file (its metadata names {metadata.get('format')!r})"
        raise ValueError(msg)
    if metadata.get("version") != FORMAT_VERSION:
        msg = (
            f"{source!r} has {fmt} version {metadata.get('version')!r}; this scopeflow "
            f"reads version {FORMAT_VERSION}"
        )
        raise ValueError(msg)


def arrays_from_bytes(data: bytes, source: str, fmt: str) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of safetensors ``data`` read from ``source``; see :func:`read_arrays`."""
    _check_format(_metadata(data, source), source, fmt)
    # Imported here: ``import scopeflow`` does not load the safetensors extension.
    import safetensors.numpy
    from safetensors import SafetensorError

    try:
        arrays = safetensors.numpy.load(data)
    # Untrusted bytes: safetensors.numpy raises KeyError for dtypes NumPy lacks (BF16, F8).
    except (SafetensorError, ValueError, TypeError, KeyError, OverflowError, MemoryError) as err:
        detail = (
            f"dtype {err.args[0]!r} has no NumPy equivalent" if isinstance(err, KeyError) else err
        )
        msg = f"Cannot read {source!r}: {detail}"
        raise ValueError(msg) from None
    return dict(arrays)


def _metadata(data: bytes, source: str) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors header, validated before anything else."""
    if len(data) < 8:
        msg = f"Cannot read {source!r}: {len(data)} bytes is too short for a safetensors file"
        raise ValueError(msg)
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        msg = f"Cannot read {source!r}: the file is truncated (header of {size} bytes)"
        raise ValueError(msg)
    try:
        header = json.loads(data[8 : 8 + size])
    # ValueError covers bad UTF-8, bad JSON and integers too long to convert.
    except (ValueError, RecursionError) as err:
        msg = f"Cannot read {source!r}: its header is not valid JSON ({err})"
        raise ValueError(msg) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        msg = f"{source!r} has no scopeflow metadata: it is not a scopeflow file"
        raise ValueError(msg)
    return metadata
