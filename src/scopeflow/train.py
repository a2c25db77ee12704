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

from ._checkpoint import Checkpoint as Checkpoint, CheckpointLoadStatus as CheckpointLoadStatus
from ._checkpoint_files import latest_path

__all__ = ["Checkpoint", "CheckpointLoadStatus", "latest_checkpoint"]

for _cls in (Checkpoint, CheckpointLoadStatus):
    _cls.__module__ = __name__
del _cls


def latest_checkpoint(path: str | os.PathLike[str]) -> str | None:
    """The checkpoint ``Checkpoint.save`` wrote last, or None when there is none.

    ``path`` is the ``file_prefix`` given to ``save`` or, as in TensorFlow, the directory
    holding the checkpoints. ``save`` records the file it wrote in the directory's
    ``checkpoint_state.json``, so a run that starts counting again from 1 in the same
    directory is followed; without that record (files copied alone), the highest-numbered
    ``<prefix>-N`` file is taken. ``checkpoint.restore(None)`` restores nothing, so
    ``checkpoint.restore(latest_checkpoint(path))`` starts fresh or resumes.

    Example:
        >>> import os, tempfile
        >>> import scopeflow as sf
        >>> directory = tempfile.mkdtemp()
        >>> ckpt = sf.train.Checkpoint(v=sf.Variable(1.0))
        >>> sf.train.latest_checkpoint(directory) is None
        True
        >>> path = ckpt.save(os.path.join(directory, "ckpt"))
        >>> sf.train.latest_checkpoint(directory) == path
        True
    """
    return latest_path(os.fspath(path))
