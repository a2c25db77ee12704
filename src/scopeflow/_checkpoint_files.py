"""Checkpoint files on disk: atomic writes and the record of the latest checkpoint.

``atomic_write`` writes a temporary file in the target's directory and renames it over the
target, so a crash never leaves a torn file and a reader sees the old file or the new one.
``save`` records the file it wrote in ``checkpoint_state.json`` beside it, which
``latest_checkpoint`` reads (see :mod:`scopeflow._checkpoint` for the format).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from typing import Any, Final

import numpy as np

__all__ = ["STATE_FILE", "atomic_write", "latest_path", "write_state"]


def atomic_write(
    target: str, header: bytes, *arrays: np.ndarray[Any, Any], sync: bool = False
) -> None:
    """Write ``header`` then each array's buffer to ``target``, through a renamed temp file.

    The buffers go straight to the file (no joined copy of the whole checkpoint), as
    little-endian bytes, which is what safetensors stores.
    """
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        msg = f"Cannot write checkpoint {target!r}: it is a directory; pass a file path"
        raise IsADirectoryError(errno.EISDIR, msg)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
        # mkstemp makes the file private (0600); the checkpoint gets the mode a plain
        # open() would give it, so another user's serving process can read it.
        os.fchmod(fd, file_mode(target))
    except OSError as err:
        msg = f"Cannot write checkpoint {target!r}: {err.strerror or err}"
        raise type(err)(err.errno, msg) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            for arr in arrays:
                if arr.dtype.byteorder == ">":
                    arr = arr.astype(arr.dtype.newbyteorder("<"))
                f.write(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
            if sync:  # durable across a power loss, not only atomic
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            msg = f"Cannot write checkpoint {target!r}: {err.strerror or err}"
            raise type(err)(err.errno, msg) from None
        raise


def file_mode(target: str) -> int:
    """The mode of the file being replaced, else 0o666 minus the process umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(target).st_mode)
    umask = 0o022
    # os.umask() can only be read by setting it, which races with other threads.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    return 0o666 & ~umask


# -- the latest checkpoint -------------------------------------------------------------

STATE_FILE: Final = "checkpoint_state.json"
STATE_FORMAT: Final = "scopeflow.checkpoint_state"
STATE_VERSION: Final = "1"


def write_state(path: str) -> None:
    """Record ``path`` as the latest checkpoint of its directory (for latest_checkpoint)."""
    directory, name = os.path.split(os.path.abspath(path))
    state = {"format": STATE_FORMAT, "version": STATE_VERSION, "latest": name}
    atomic_write(os.path.join(directory, STATE_FILE), json.dumps(state).encode())


def read_state(directory: str) -> str | None:
    """The latest checkpoint recorded in ``directory``, if valid and still there."""
    try:
        with open(os.path.join(directory, STATE_FILE), "rb") as f:
            state = json.loads(f.read(4096))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        return None
    name = state.get("latest")
    if not isinstance(name, str) or name in ("", ".", "..") or os.sep in name or "/" in name:
        return None  # only a file name inside the directory, never a path elsewhere
    path = os.path.join(directory, name)
    return path if os.path.isfile(path) else None


def latest_path(path: str) -> str | None:
    """See :func:`scopeflow.train.latest_checkpoint`."""
    if os.path.isdir(path):
        return read_state(path)
    directory, base = os.path.split(path)
    pattern = re.compile(rf"^{re.escape(base)}-(\d+)$")
    recorded = read_state(directory or ".")
    if recorded is not None and pattern.match(os.path.basename(recorded)):
        return os.path.join(directory, os.path.basename(recorded))
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return None
    numbered = [
        (int(m.group(1)), n)
        for n in names
        if (m := pattern.match(n)) and os.path.isfile(os.path.join(directory, n))
    ]
    if not numbered:
        return None
    return os.path.join(directory, max(numbered)[1])
