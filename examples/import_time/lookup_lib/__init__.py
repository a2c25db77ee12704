"""A small library that creates its lookup table and constants when it is imported.

Importing happens wherever the importer happens to be: at the top of a program (eager), in
the body of ``with graph.as_default():``, while a function is being traced, or in a task
in the middle of building its own graph. The state below is created under
``sf.init_scope()``, so it always lands in the importer's outermost context that is not
building a function (never inside a function graph, where it would die with the trace),
ignores the importer's control dependencies and is not recorded by its tapes. The
``"lookup_lib/"`` name scope (trailing slash: absolute) keeps its names the same whoever
imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import scopeflow as sf

VOCABULARY = ("<unk>", "cat", "dog", "fish")
EMBEDDING_SIZE = 3

# What the table holds, for readers and tests; the tensors below are made from it.
TABLE_VALUES = np.arange(len(VOCABULARY) * EMBEDDING_SIZE, dtype=np.float32).reshape(
    len(VOCABULARY), EMBEDDING_SIZE
) / np.float32(10.0)

with sf.init_scope(), sf.name_scope("lookup_lib/"):
    TABLE = sf.constant(TABLE_VALUES, name="table")
    SCALE = sf.constant(2.0, name="scale")


def ids(words: list[str]) -> list[int]:
    """The vocabulary index of each word (0, ``"<unk>"``, for unknown words)."""
    index = {word: i for i, word in enumerate(VOCABULARY)}
    return [index.get(word, 0) for word in words]


def embed(word_ids: Any) -> Any:
    """Scaled embeddings of ``word_ids``, in whatever context the caller is in."""
    return sf.gather(TABLE, word_ids) * SCALE
