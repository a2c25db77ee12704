"""The exported-model format (version 1): names, limits, array storage and the validator.

A saved model is a directory of three files (``docs/saved_model_format.md`` is the
contract): ``saved_model.json`` (structure), ``variables.safetensors`` (variable values by
object path) and ``constants.safetensors`` (every constant array, by id). The loader
never trusts the document: :func:`check_document` checks all of it (types, names,
references, dtypes, shapes, array entries, function nesting) and turns it into plain
records that the builder consumes, so a malformed file fails before anything is built.
Every failure is a ``ValueError`` naming the file and the entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final, NamedTuple

import numpy as np

__all__ = [
    "CONSTANTS_FILE",
    "CONSTANTS_FORMAT",
    "DOCUMENT",
    "FORMAT",
    "VARIABLES_FILE",
    "VARIABLES_FORMAT",
    "VERSION",
    "canonical",
    "ArrayRef",
    "Document",
    "FnRef",
    "Function",
    "OLD_PREFIX",
    "OP_NAME",
    "OP_TAGS",
    "RANDOM_OPS",
    "RANDOM_RUNTIME_ATTRS",
    "Op",
    "VarRef",
    "Variable",
    "digest",
    "document_digest",
    "from_storage",
    "parse_json",
    "storage_spec",
    "to_storage",
]

FORMAT: Final = "scopeflow.saved_model"
VERSION: Final = 1
DOCUMENT: Final = "saved_model.json"
VARIABLES_FILE: Final = "variables.safetensors"
CONSTANTS_FILE: Final = "constants.safetensors"
VARIABLES_FORMAT: Final = "scopeflow.saved_model.variables"
CONSTANTS_FORMAT: Final = "scopeflow.saved_model.constants"
# The directory a save moves an existing saved model into while it renames the new one
# into place; a reader that finds the model missing while one exists retries.
OLD_PREFIX: Final = ".old-saved-model-"

MAX_DOCUMENT_BYTES: Final = 256 * 2**20
MAX_FUNCTION_NESTING: Final = 32  # a branch inside a loop body inside a function ...
MAX_VALUE_DEPTH: Final = 32  # nesting of attribute values and output structures
MAX_RANK: Final = 32
MAX_DIM: Final = 2**40

DTYPES: Final[dict[str, np.dtype[Any]]] = {
    name: np.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    )
}  # fmt: skip
# safetensors has no complex dtype: a complex array is stored as its (real, imag) pairs.
_COMPLEX_PARTS: Final[dict[str, np.dtype[Any]]] = {
    "complex64": np.dtype("float32"),
    "complex128": np.dtype("float64"),
}
OP_NAME: Final = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")
# A variable's name may also start with "_": an eager variable made in the name scope of a
# module whose class is private (``_Block`` -> ``_block/w``); graph op names may not.
VARIABLE_NAME: Final = re.compile(r"[A-Za-z0-9._][A-Za-z0-9_.\\/>-]*")
RESERVED_ATTRIBUTES: Final = frozenset({"signatures", "variables", "trainable_variables"})
# Tags only some attributes may use: where a tensor getitem key reads an input, and the
# markers of a print template. Anywhere else they are unknown tags.
OP_TAGS: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("TensorGetItem", "key"): frozenset({"slot"}),
    ("TensorGetItemGrad", "key"): frozenset({"slot"}),
    ("PrintV2", "template"): frozenset({"marker"}),
}
# Attributes a random op holds at run time and that are never saved: its draw source,
# rebuilt from its "seed" on load, and the mark its rule leaves once the op is built.
RANDOM_OPS: Final = frozenset(
    {"RandomStandardNormal", "TruncatedNormal", "RandomUniform", "RandomUniformInt",
     "RandomShuffle", "Multinomial"}
)  # fmt: skip
RANDOM_RUNTIME_ATTRS: Final = frozenset({"rng", "built"})

Shape = tuple[int | None, ...]
Ref = tuple[int, int]  # (op index, output index) in one function


class ArrayRef(NamedTuple):
    """An attribute value that is an array of the constants file."""

    key: str


class VarRef(NamedTuple):
    """An attribute value that is a variable, by object path."""

    path: str


class FnRef(NamedTuple):
    """An attribute value that is a function graph, by name."""

    name: str


class Variable(NamedTuple):
    path: str
    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    trainable: bool


class Op(NamedTuple):
    name: str
    type: str
    inputs: list[Ref]
    control_inputs: list[int]
    attrs: dict[str, Any]  # decoded; references are ArrayRef / VarRef / FnRef
    outputs: list[tuple[np.dtype[Any], Shape | None]]


class Function(NamedTuple):
    name: str
    outer: str | None  # the function whose tensors the captures are, if any
    label: str | None  # set for cond branches and loop graphs
    inputs: list[int]  # placeholder op indexes of the arguments
    captures: list[
        tuple[int, tuple[str, Any]]
    ]  # (placeholder, ("constant", key) | ("tensor", ref))
    ops: list[Op]
    outputs: list[Ref]
    control_outputs: list[int]
    structure: Any  # the output template (see _nest)


class Document(NamedTuple):
    variables: list[Variable]
    constants: dict[str, tuple[np.dtype[Any], tuple[int, ...]]]
    functions: dict[str, Function]
    order: list[str]  # functions, each after every function it references
    signatures: dict[str, tuple[str, list[str]]]
    methods: dict[str, list[tuple[str, list[str]]]]


# -- hashing and JSON ------------------------------------------------------------------


def digest(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex (the integrity check of each file)."""
    return hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def document_digest(doc: dict[str, Any]) -> str:
    """The digest of a document: its canonical JSON without ``integrity.document``."""
    integrity = dict(doc.get("integrity") or {})
    integrity.pop("document", None)
    return digest(canonical({**doc, "integrity": integrity}))


def _no_constant(name: str) -> Any:
    msg = f"{name} is not valid JSON"
    raise ValueError(msg)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            msg = f"the key {key!r} appears twice in one object"
            raise ValueError(msg)
        out[key] = value
    return out


def parse_json(data: bytes, source: str) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys; ``ValueError`` naming the file."""
    try:
        return json.loads(
            data.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        msg = f"Cannot read {source!r}: not a valid JSON document ({err})"
        raise ValueError(msg) from None


# -- array storage ---------------------------------------------------------------------


def storage_spec(
    dtype: np.dtype[Any], shape: tuple[int, ...]
) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """The dtype and shape an array of ``dtype`` and ``shape`` has in a safetensors file."""
    parts = _COMPLEX_PARTS.get(dtype.name)
    if parts is not None:
        return parts, (*shape, 2)
    return dtype, shape


def to_storage(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``arr`` as safetensors stores it: C-contiguous, little-endian, complex as pairs."""
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    out = arr if arr.flags.c_contiguous and arr.dtype == dtype else np.array(arr, dtype, order="C")
    parts = _COMPLEX_PARTS.get(out.dtype.name)
    if parts is not None:
        out = out.reshape(-1).view(parts).reshape((*arr.shape, 2))
    return out


def from_storage(
    stored: np.ndarray[Any, Any], dtype: np.dtype[Any], shape: tuple[int, ...]
) -> np.ndarray[Any, Any]:
    """The array ``to_storage`` stored (its dtype and shape were checked already)."""
    if dtype.name in _COMPLEX_PARTS:
        stored = np.array(stored, order="C").reshape(-1).view(dtype).reshape(shape)
    return np.array(stored, dtype=dtype, copy=True)
