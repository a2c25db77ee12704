"""Training state on disk: checkpoints of variables, optimizers and modules.

Names: :class:`Checkpoint`, :class:`CheckpointLoadStatus`, :func:`latest_checkpoint`.
A checkpoint is one safetensors file whose entries are the variables' object paths
(``model/dense/w``); see :mod:`scopeflow._checkpoint` for the format.

Example:
    >>> import os, tempfile
    >>> import scopeflow as sf
    >>> layer = sf.Module(name="layer")
    >>> layer.w = sf.Variable([[1.0]], name="w")
    >>> ckpt = sf.train.Checkpoint(layer=layer)
    >>> prefix = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> path = ckpt.save(prefix)
    >>> os.path.basename(path), os.path.basename(sf.train.latest_checkpoint(prefix))
    ('ckpt-1', 'ckpt-1')
"""

from __future__ import annotations

import os
import re

from ._checkpoint import Checkpoint as Checkpoint, CheckpointLoadStatus as CheckpointLoadStatus

__all__ = ["Checkpoint", "CheckpointLoadStatus", "latest_checkpoint"]

for _cls in (Checkpoint, CheckpointLoadStatus):
    _cls.__module__ = __name__
del _cls


def latest_checkpoint(file_prefix: str | os.PathLike[str]) -> str | None:
    """The path ``Checkpoint.save(file_prefix)`` wrote last (highest counter), or None."""
    prefix = os.fspath(file_prefix)
    directory, base = os.path.split(prefix)
    pattern = re.compile(rf"^{re.escape(base)}-(\d+)$")
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return None
    numbered = [(int(m.group(1)), n) for n in names if (m := pattern.match(n))]
    if not numbered:
        return None
    return os.path.join(directory, max(numbered)[1])
