"""The validator of the exported-model document (format version 1).

:func:`check_document` checks the whole parsed ``saved_model.json`` against the schema in
``docs/saved_model_format.md``: types and required keys, names, dtypes and shapes, that
every array entry exists in its safetensors file with the recorded dtype and shape, that
tensor references point at earlier ops and output indexes are in range, that every
Placeholder is fed, and that function references resolve, form no cycle and nest at most
``MAX_FUNCTION_NESTING`` deep. It returns plain records for the builder; it builds
nothing. Every failure is a ``ValueError`` naming the file and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, NoReturn

import numpy as np

from ._saved_model_format import (
    CONSTANTS_FILE,
    DTYPES,
    FORMAT,
    MAX_DIM,
    MAX_FUNCTION_NESTING,
    MAX_RANK,
    MAX_VALUE_DEPTH,
    OP_NAME,
    OP_TAGS,
    RESERVED_ATTRIBUTES,
    VARIABLE_NAME,
    VARIABLES_FILE,
    VERSION,
    ArrayRef,
    Document,
    FnRef,
    Function,
    Op,
    Ref,
    Shape,
    Variable,
    VarRef,
    storage_spec,
)
from ._saved_model_markers import MARKERS, Slot

__all__ = ["check_document"]

_TOP_KEYS: Final = frozenset(
    {"format", "version", "integrity", "variables", "constants", "functions", "signatures",
     "methods"}
)  # fmt: skip
_IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*|__call__")
_ID: Final = re.compile(r"[A-Za-z0-9_.\-/]{1,512}")
_OP_NAME: Final = OP_NAME


# -- the validator ---------------------------------------------------------------------


class _Checker:
    """Checks one document; every error names the file and the entry."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.where = "the document"

    def fail(self, what: str) -> NoReturn:
        """Raise the ``ValueError`` for ``what`` at the current entry."""
        msg = f"Invalid saved model {self.source!r}: {self.where}: {what}"
        raise ValueError(msg)

    def obj(self, value: Any, what: str, keys: frozenset[str] | set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(f"{what} must be a JSON object, got {_kind(value)}")
        missing = sorted(set(keys) - value.keys())
        extra = sorted(value.keys() - set(keys))
        if missing or extra:
            self.fail(
                f"{what} must have the keys {sorted(keys)}; missing {missing}, unknown {extra}"
            )
        return value

    def lst(self, value: Any, what: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(f"{what} must be a JSON list, got {_kind(value)}")
        return value

    def string(self, value: Any, what: str, pattern: re.Pattern[str] = _ID) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(f"{what} must be a name matching {pattern.pattern!r}, got {value!r}")
        return value

    def integer(self, value: Any, what: str, lo: int = 0, hi: int = MAX_DIM) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            self.fail(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
        return value

    def dtype(self, value: Any, what: str) -> np.dtype[Any]:
        if not isinstance(value, str) or value not in DTYPES:
            self.fail(f"{what} must be one of {sorted(DTYPES)}, got {value!r}")
        return DTYPES[value]

    def full_shape(self, value: Any, what: str) -> tuple[int, ...]:
        return tuple(self.integer(d, what) for d in self.shape(value, what, partial=False) or ())

    def shape(self, value: Any, what: str, *, partial: bool) -> Shape | None:
        if value is None and partial:
            return None
        dims = self.lst(value, what)
        if len(dims) > MAX_RANK:
            self.fail(f"{what} has rank {len(dims)}, more than {MAX_RANK}")
        if partial:
            return tuple(None if d is None else self.integer(d, what) for d in dims)
        return tuple(self.integer(d, what) for d in dims)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else f"a {type(value).__name__}"
    )


def check_document(
    doc: Any,
    source: str,
    variable_specs: dict[str, tuple[np.dtype[Any], tuple[int, ...]]],
    constant_specs: dict[str, tuple[np.dtype[Any], tuple[int, ...]]],
    known_op: Callable[[str], bool],
) -> Document:
    """Validate ``doc`` against the version-1 schema and decode it.

    Args:
        doc: the parsed JSON.
        source: the document's path, for messages.
        variable_specs, constant_specs: (stored dtype, stored shape) of each entry of the
            two safetensors files.
        known_op: whether an op type is registered.

    Raises:
        ValueError: anything is missing, unknown, mistyped, out of range or inconsistent.
    """
    c = _Checker(source)
    c.obj(doc, "the top level", _TOP_KEYS)
    if doc["format"] != FORMAT:
        c.fail(f"format must be {FORMAT!r}, got {doc['format']!r}")
    if doc["version"] != VERSION or isinstance(doc["version"], bool):
        c.fail(
            f"version {doc['version']!r} is not supported; this scopeflow reads version {VERSION}"
        )
    c.obj(doc["integrity"], "integrity", {"document", "variables", "constants"})

    variables: list[Variable] = []
    seen_paths: set[str] = set()
    for i, entry in enumerate(c.lst(doc["variables"], "variables")):
        c.where = f"variables[{i}]"
        e = c.obj(entry, "a variable", {"path", "name", "dtype", "shape", "trainable"})
        path = c.string(e["path"], "path")
        if path in seen_paths:
            c.fail(f"the path {path!r} appears twice")
        seen_paths.add(path)
        dtype = c.dtype(e["dtype"], "dtype")
        shape = c.full_shape(e["shape"], "shape")
        if not isinstance(e["trainable"], bool):
            c.fail(f"trainable must be true or false, got {e['trainable']!r}")
        _check_entry(c, variable_specs, path, dtype, shape, VARIABLES_FILE)
        name = c.string(e["name"], "name", VARIABLE_NAME)
        variables.append(Variable(path, name, dtype, shape, e["trainable"]))
    c.where = "variables"
    extra = sorted(variable_specs.keys() - seen_paths)
    if extra:
        c.fail(f"{VARIABLES_FILE} has an entry {extra[0]!r} that no variable names")

    constants: dict[str, tuple[np.dtype[Any], tuple[int, ...]]] = {}
    c.where = "constants"
    table = doc["constants"]
    if not isinstance(table, dict):
        c.fail(f"constants must be a JSON object, got {_kind(table)}")
    for key, entry in table.items():
        c.where = f"constants[{key!r}]"
        c.string(key, "a constant id")
        e = c.obj(entry, "a constant", {"dtype", "shape"})
        dtype = c.dtype(e["dtype"], "dtype")
        shape = c.full_shape(e["shape"], "shape")
        _check_entry(c, constant_specs, key, dtype, shape, CONSTANTS_FILE)
        constants[key] = (dtype, shape)
    c.where = "constants"
    extra = sorted(constant_specs.keys() - constants.keys())
    if extra:
        c.fail(f"{CONSTANTS_FILE} has an entry {extra[0]!r} that no constant names")

    c.where = "functions"
    raw_fns = doc["functions"]
    if not isinstance(raw_fns, dict):
        c.fail(f"functions must be a JSON object, got {_kind(raw_fns)}")
    functions: dict[str, Function] = {}
    refs: dict[str, list[tuple[str, int]]] = {}  # function -> [(referencing function, op index)]
    for name, entry in raw_fns.items():
        c.where = f"functions[{name!r}]"
        c.string(name, "a function name")
        fn = _check_function(c, name, entry, seen_paths, constants, known_op, raw_fns, refs)
        functions[name] = fn
    order = _check_nesting(c, functions, refs)

    signatures: dict[str, tuple[str, list[str]]] = {}
    c.where = "signatures"
    sigs = doc["signatures"]
    if not isinstance(sigs, dict):
        c.fail(f"signatures must be a JSON object, got {_kind(sigs)}")
    for name, entry in sigs.items():
        c.where = f"signatures[{name!r}]"
        c.string(name, "a signature name")
        signatures[name] = _check_entry_point(c, entry, functions)
    methods: dict[str, list[tuple[str, list[str]]]] = {}
    c.where = "methods"
    raw_methods = doc["methods"]
    if not isinstance(raw_methods, dict):
        c.fail(f"methods must be a JSON object, got {_kind(raw_methods)}")
    for name, entries in raw_methods.items():
        c.where = f"methods[{name!r}]"
        c.string(name, "a method name", _IDENTIFIER)
        if name in RESERVED_ATTRIBUTES:
            c.fail(f"{name!r} is reserved for the loaded object's own attribute")
        if not c.lst(entries, "a method's traces"):
            c.fail("a method needs at least one trace")
        methods[name] = [_check_entry_point(c, e, functions) for e in entries]
    return Document(variables, constants, functions, order, signatures, methods)


def _check_entry(
    c: _Checker,
    specs: dict[str, tuple[np.dtype[Any], tuple[int, ...]]],
    key: str,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    filename: str,
) -> None:
    if key not in specs:
        c.fail(f"{filename} has no entry {key!r}")
    want = storage_spec(dtype, shape)
    got = specs[key]
    if got[0] != want[0] or tuple(got[1]) != want[1]:
        c.fail(
            f"{filename} entry {key!r} has dtype {got[0].name} and shape {tuple(got[1])}, but "
            f"the document says {dtype.name} {shape} (stored as {want[0].name} {want[1]})"
        )


def _check_entry_point(
    c: _Checker, entry: Any, functions: dict[str, Function]
) -> tuple[str, list[str]]:
    e = c.obj(entry, "an entry point", {"function", "input_names"})
    fname = e["function"]
    if not isinstance(fname, str) or fname not in functions:
        c.fail(f"function {fname!r} is not defined in functions")
    fn = functions[fname]
    if fn.outer is not None or fn.label is not None:
        c.fail(f"function {fname!r} is nested in another function and cannot be called alone")
    names = [c.string(n, "an input name", _OP_NAME) for n in c.lst(e["input_names"], "input_names")]
    if len(names) != len(fn.inputs) or len(set(names)) != len(names):
        c.fail(
            f"input_names must name each of the {len(fn.inputs)} inputs of {fname!r} once, "
            f"got {names}"
        )
    return fname, names


def _ref(c: _Checker, value: Any, by_name: dict[str, int], ops: list[Op], what: str) -> Ref:
    if not isinstance(value, str) or ":" not in value:
        c.fail(f"{what} must be a tensor reference 'op_name:index', got {value!r}")
    op_name, _, index = value.rpartition(":")
    if op_name not in by_name:
        c.fail(f"{what} {value!r} names no earlier op of this function")
    if not index.isdigit() or len(index) > 6:
        c.fail(f"{what} {value!r} has no valid output index")
    op = by_name[op_name]
    i = int(index)
    if i >= len(ops[op].outputs):
        c.fail(f"{what} {value!r}: op {op_name!r} has {len(ops[op].outputs)} outputs")
    return op, i


def _check_function(
    c: _Checker,
    name: str,
    entry: Any,
    var_paths: set[str],
    constants: dict[str, Any],
    known_op: Callable[[str], bool],
    all_fns: dict[str, Any],
    refs: dict[str, list[tuple[str, int]]],
) -> Function:
    keys = {
        "outer",
        "label",
        "inputs",
        "captures",
        "ops",
        "outputs",
        "control_outputs",
        "structure",
    }
    e = c.obj(entry, "a function", keys)
    outer = e["outer"]
    if outer is not None and (not isinstance(outer, str) or outer not in all_fns or outer == name):
        c.fail(f"outer must be null or another function's name, got {outer!r}")
    label = e["label"]
    if label is not None and (not isinstance(label, str) or len(label) > 1024):
        c.fail(f"label must be null or a short string, got {label!r}")
    if label is not None and outer is None:
        c.fail("a control-flow graph (with a label) needs an outer function")
    ops: list[Op] = []
    by_name: dict[str, int] = {}
    base = c.where
    for i, raw in enumerate(c.lst(e["ops"], "ops")):
        c.where = f"{base} ops[{i}]"
        o = c.obj(raw, "an op", {"name", "type", "inputs", "control_inputs", "attrs", "outputs"})
        op_name = c.string(o["name"], "name", _OP_NAME)
        if op_name in by_name:
            c.fail(f"the op name {op_name!r} appears twice")
        op_type = o["type"]
        if not isinstance(op_type, str) or not known_op(op_type):
            c.fail(f"unknown op type {op_type!r} (op {op_name!r})")
        c.where = f"{base} op {op_name!r} ({op_type})"
        inputs = [_ref(c, r, by_name, ops, "input") for r in c.lst(o["inputs"], "inputs")]
        control: list[int] = []
        for r in c.lst(o["control_inputs"], "control_inputs"):
            if not isinstance(r, str) or r not in by_name:
                c.fail(f"control input {r!r} names no earlier op of this function")
            control.append(by_name[r])
        raw_attrs = o["attrs"]
        if not isinstance(raw_attrs, dict):
            c.fail(f"attrs must be a JSON object, got {_kind(raw_attrs)}")
        attrs = {}
        for key, value in raw_attrs.items():
            tags = OP_TAGS.get((op_type, key), frozenset())
            attrs[key] = _decode(c, value, f"attr {key!r}", 0, var_paths, constants, all_fns, tags)
        for fn_ref in _fn_refs(attrs):
            refs.setdefault(fn_ref, []).append((name, i))
        outputs = []
        for spec in c.lst(o["outputs"], "outputs"):
            pair = c.lst(spec, "an output spec")
            if len(pair) != 2:
                c.fail(f"an output spec is [dtype, shape], got {spec!r}")
            outputs.append(
                (c.dtype(pair[0], "output dtype"), c.shape(pair[1], "output shape", partial=True))
            )
        by_name[op_name] = i
        ops.append(Op(op_name, op_type, inputs, control, attrs, outputs))
    c.where = base
    placeholders = {i for i, op in enumerate(ops) if op.type == "Placeholder"}
    arg_inputs = [_ref(c, r, by_name, ops, "input")[0] for r in c.lst(e["inputs"], "inputs")]
    captures: list[tuple[int, tuple[str, Any]]] = []
    for raw in c.lst(e["captures"], "captures"):
        cap = c.obj(raw, "a capture", {"placeholder", "constant", "tensor"})
        ph = _ref(c, cap["placeholder"], by_name, ops, "capture placeholder")[0]
        if (cap["constant"] is None) == (cap["tensor"] is None):
            c.fail("a capture has exactly one of constant and tensor")
        if cap["constant"] is not None:
            if cap["constant"] not in constants:
                c.fail(f"capture constant {cap['constant']!r} is not in constants")
            captures.append((ph, ("constant", cap["constant"])))
        else:
            if outer is None:
                c.fail("a capture of a tensor needs an outer function")
            if not isinstance(cap["tensor"], str):
                c.fail(f"capture tensor must be a reference, got {cap['tensor']!r}")
            captures.append((ph, ("tensor", cap["tensor"])))  # resolved in the outer function
    fed = arg_inputs + [ph for ph, _ in captures]
    if len(set(fed)) != len(fed) or set(fed) != placeholders:
        c.fail("inputs and captures must name every Placeholder op of the function exactly once")
    results = [_ref(c, r, by_name, ops, "output") for r in c.lst(e["outputs"], "outputs")]
    control_outputs = []
    for r in c.lst(e["control_outputs"], "control_outputs"):
        if not isinstance(r, str) or r not in by_name:
            c.fail(f"control output {r!r} names no op of this function")
        control_outputs.append(by_name[r])
    structure = _check_structure(c, e["structure"], len(results))
    return Function(
        name, outer, label, arg_inputs, captures, ops, results, control_outputs, structure
    )


def _decode(
    c: _Checker,
    value: Any,
    what: str,
    depth: int,
    var_paths: set[str],
    constants: dict[str, Any],
    functions: dict[str, Any],
    tags: frozenset[str] = frozenset(),
) -> Any:
    """An attribute value from its JSON encoding (see the format document); ``tags`` are
    the op-specific tags this attribute may use (see ``OP_TAGS``)."""
    if depth > MAX_VALUE_DEPTH:
        c.fail(f"{what} is nested more than {MAX_VALUE_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            c.fail(f"{what}: the integer {value} is out of the 64-bit range")
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        return [
            _decode(c, v, what, depth + 1, var_paths, constants, functions, tags) for v in value
        ]
    if not isinstance(value, dict) or len(value) != 1:
        c.fail(
            f"{what} must be a JSON scalar, a list or a one-key tagged object, got {value!r:.80}"
        )
    ((tag, body),) = value.items()
    if tag == "tuple":
        items = c.lst(body, what)
        return tuple(
            _decode(c, v, what, depth + 1, var_paths, constants, functions, tags) for v in items
        )
    if tag == "float":
        if body not in ("nan", "inf", "-inf"):
            c.fail(f"{what}: a tagged float is 'nan', 'inf' or '-inf', got {body!r}")
        return float(body)
    if tag == "dtype":
        return c.dtype(body, what)
    if tag == "slice":
        parts = c.lst(body, what)
        if len(parts) != 3 or not all(
            p is None
            or (isinstance(p, int) and not isinstance(p, bool) and -(2**63) <= p < 2**63)
            or ("slot" in tags and isinstance(p, dict) and p.keys() == {"slot"})
            for p in parts
        ):
            c.fail(f"{what}: a slice is [start, stop, step] of integers or null, got {body!r}")
        return slice(
            *(_decode(c, p, what, depth + 1, var_paths, constants, functions, tags) for p in parts)
        )
    if tag in tags:
        if tag == "slot":
            return Slot(c.integer(body, f"{what}: a slot", 1, 2**31))
        if not isinstance(body, str) or body not in MARKERS:
            c.fail(f"{what}: a marker is one of {sorted(MARKERS)}, got {body!r:.40}")
        return MARKERS[body]
    if tag == "ellipsis" and body is None:
        return Ellipsis
    if tag == "array":
        if not isinstance(body, str) or body not in constants:
            c.fail(f"{what}: array {body!r} is not in constants")
        return ArrayRef(body)
    if tag == "variable":
        if not isinstance(body, str) or body not in var_paths:
            c.fail(f"{what}: variable {body!r} is not in variables")
        return VarRef(body)
    if tag == "function":
        if not isinstance(body, str) or body not in functions:
            c.fail(f"{what}: function {body!r} is not in functions")
        return FnRef(body)
    c.fail(f"{what}: unknown tag {tag!r}")


def _fn_refs(value: Any) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, FnRef):
            found.append(v.name)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)) and not isinstance(v, (ArrayRef, VarRef)):
            stack.extend(v)
    return found


def _check_structure(c: _Checker, value: Any, n_outputs: int) -> Any:
    """The output template; its leaves must be 0..n_outputs-1, each once."""
    leaves: list[int] = []

    def walk(v: Any, depth: int) -> Any:
        if depth > MAX_VALUE_DEPTH:
            c.fail(f"structure is nested more than {MAX_VALUE_DEPTH} levels deep")
        if not isinstance(v, dict) or len(v) != 1:
            c.fail(f"structure entries are one-key objects, got {v!r:.80}")
        ((tag, body),) = v.items()
        if tag == "leaf":
            leaves.append(c.integer(body, "a structure leaf", 0, max(n_outputs - 1, 0)))
            return body
        if tag == "none" and body is None:
            return ("const", None)
        if tag in ("list", "tuple"):
            kind = list if tag == "list" else tuple
            return (kind, [walk(x, depth + 1) for x in c.lst(body, "structure")])
        if tag == "dict":
            items = []
            for pair in c.lst(body, "structure"):
                kv = c.lst(pair, "a structure item")
                if len(kv) != 2 or not isinstance(kv[0], (str, int)) or isinstance(kv[0], bool):
                    c.fail(
                        f"a dict structure item is [key, value] with a string or integer "
                        f"key, got {pair!r:.80}"
                    )
                items.append((kv[0], walk(kv[1], depth + 1)))
            if len({k for k, _ in items}) != len(items):
                c.fail("a dict structure has a key twice")
            return (dict, items)
        c.fail(f"unknown structure tag {tag!r}")

    template = walk(value, 0)
    if sorted(leaves) != list(range(n_outputs)):
        c.fail(f"structure must place each of the {n_outputs} outputs exactly once")
    return template


def _check_nesting(
    c: _Checker, functions: dict[str, Function], refs: dict[str, list[tuple[str, int]]]
) -> list[str]:
    """Check function references: acyclic, nested graphs used only by their outer function,
    nesting bounded. Returns the functions in build order (callees first)."""
    for name, fn in functions.items():
        c.where = f"functions[{name!r}]"
        users = refs.get(name, [])
        if fn.outer is not None:
            if not users:
                c.fail(f"a nested function must be used by its outer function {fn.outer!r}")
            if any(user != fn.outer for user, _ in users):
                c.fail(f"a nested function may only be used by its outer function {fn.outer!r}")
            first = min(i for _, i in users)
            outer_ops = functions[fn.outer].ops
            by_name = {op.name: j for j, op in enumerate(outer_ops[:first])}
            resolved = []
            for ph, (kind, ref) in fn.captures:
                if kind == "tensor":
                    ref = _ref(c, ref, by_name, outer_ops, "capture tensor")
                resolved.append((ph, (kind, ref)))
            fn.captures[:] = resolved
    # Depth-first over the reference graph, iteratively: a cycle or too deep a nesting fails.
    callees: dict[str, set[str]] = {name: set() for name in functions}
    for callee, users in refs.items():
        for user, _ in users:
            callees[user].add(callee)
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for root in functions:
        if root in state:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(callees[root]))]
        state[root] = 1
        while stack:
            node, pending = stack[-1]
            if len(stack) > MAX_FUNCTION_NESTING:
                c.where = f"functions[{node!r}]"
                c.fail(f"functions are nested more than {MAX_FUNCTION_NESTING} levels deep")
            if not pending:
                stack.pop()
                state[node] = 2
                order.append(node)
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                c.where = f"functions[{nxt!r}]"
                c.fail("functions reference each other in a cycle")
            if nxt not in state:
                state[nxt] = 1
                stack.append((nxt, sorted(callees[nxt])))
    return order
