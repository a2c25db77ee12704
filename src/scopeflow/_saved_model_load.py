"""Loading an exported model: read, verify, validate, build, then create variables.

The steps, in order, so that a bad file changes nothing:

1. read the three files once each (the document under a size limit) and check their
   SHA-256 digests, so corruption is caught before anything is parsed further;
2. validate the whole document (``_saved_model_format.check_document``);
3. build every function graph privately, running each op's shape/dtype rule and comparing
   it with the recorded output specs; variable attributes point at stand-ins meanwhile;
4. only then create the variables, under ``init_scope`` (so loading inside a graph or a
   traced function puts them in the outer context), and swap them in for the stand-ins.

Nothing runs except creating constants and variables.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from typing import Any, Final, NoReturn

import numpy as np

from ._call_keys import _arg_structure
from ._checkpoint import arrays_from_bytes
from ._concrete import ConcreteFunction, TensorSpec
from ._context import EAGER, _roots, state_get
from ._control_flow import ControlFlowGraph
from ._func_graph import FuncGraph
from ._graph import Tensor
from ._init_scope import init_scope
from ._ops._registry import REGISTRY
from ._saved_model_format import (
    CONSTANTS_FILE,
    CONSTANTS_FORMAT,
    DOCUMENT,
    MAX_DOCUMENT_BYTES,
    OLD_PREFIX,
    OP_NAME,
    VARIABLES_FILE,
    VARIABLES_FORMAT,
    ArrayRef,
    Document,
    FnRef,
    VarRef,
    digest,
    document_digest,
    from_storage,
    parse_json,
)
from ._saved_model_objects import LoadedModel
from ._saved_model_ops import check_op, prepare_attrs, specs_text
from ._saved_model_schema import check_document
from ._scopes import name_scope
from ._tensor import EagerTensor, wrap
from ._variables import Variable

__all__ = ["load"]


_FILE_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_DIR_FLAGS: Final = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_FILES: Final = (DOCUMENT, VARIABLES_FILE, CONSTANTS_FILE)
_ATTEMPTS: Final = 20  # a save replacing the directory meanwhile: read the new one


class _Replaced(Exception):
    """The directory was replaced by a concurrent save while it was being opened."""


def _read_fd(fd: int, path: str, limit: int | None) -> bytes:
    """The bytes of the open regular file ``fd``.

    Anything else is refused before a byte is read: a FIFO or a device (``/dev/zero``,
    also through a symlink) would block or never end, and a directory has no bytes.
    """
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            msg = f"Cannot read {path!r}: it is not a regular file"
            raise ValueError(msg)
        if limit is not None and info.st_size > limit:
            msg = f"Cannot read {path!r}: larger than the {limit}-byte limit for a document"
            raise ValueError(msg)
        chunks = []
        left = info.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break  # the file shrank meanwhile: its digest will not match
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as err:
        msg = f"Cannot read {path!r}: {err.strerror or err}"
        raise ValueError(msg) from None


def _replacing(root: str, dfd: int | None) -> bool:
    """Whether a save is replacing ``root``: it was renamed away since ``dfd`` was opened;
    or, when opening it failed (``dfd`` None), it is there now or is missing while a
    save's aside directory exists next to it."""
    try:
        now = os.stat(root)
    except OSError:
        parent = os.path.dirname(os.path.abspath(root))
        try:
            return any(n.startswith(OLD_PREFIX) for n in os.listdir(parent))
        except OSError:
            return False
    if dfd is None:
        return True  # missing a moment ago, there now: a save renamed it into place
    then = os.fstat(dfd)
    return (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino)


def _read_once(root: str) -> dict[str, bytes]:
    """The three files of one version of the directory: all are opened through one handle
    of the directory before any is read, so a concurrent save never mixes two versions."""
    paths = {name: os.path.join(root, name) for name in _FILES}
    try:
        dfd = os.open(root, _DIR_FLAGS)
    except OSError as err:
        if err.errno == errno.ENOENT and _replacing(root, None):
            raise _Replaced from None
        msg = f"Cannot read {paths[DOCUMENT]!r}: {err.strerror or err}"
        raise ValueError(msg) from None
    fds: dict[str, int] = {}
    try:
        for name in _FILES:
            try:
                if os.open in os.supports_dir_fd:
                    fds[name] = os.open(name, _FILE_FLAGS, dir_fd=dfd)
                else:  # pragma: no cover - platforms without openat
                    fds[name] = os.open(paths[name], _FILE_FLAGS)
            except OSError as err:
                if _replacing(root, dfd):
                    raise _Replaced from None
                msg = f"Cannot read {paths[name]!r}: {err.strerror or err}"
                raise ValueError(msg) from None
        return {
            name: _read_fd(fd, paths[name], MAX_DOCUMENT_BYTES if name == DOCUMENT else None)
            for name, fd in fds.items()
        }
    finally:
        for fd in fds.values():
            os.close(fd)
        os.close(dfd)


def _read_all(root: str) -> dict[str, bytes]:
    for attempt in range(_ATTEMPTS):
        try:
            return _read_once(root)
        except _Replaced:
            time.sleep(0.001 * attempt)  # the save renames twice in a row: soon done
    msg = (
        f"Cannot read {os.path.join(root, DOCUMENT)!r}: the directory kept being replaced "
        f"by concurrent saves"
    )
    raise ValueError(msg)


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Load the saved model in the directory ``path``; see ``sf.saved_model.load``."""
    root = os.fspath(path)
    doc_path = os.path.join(root, DOCUMENT)
    files = _read_all(root)
    raw = parse_json(files[DOCUMENT], doc_path)
    integrity = raw.get("integrity") if isinstance(raw, dict) else None
    if not isinstance(integrity, dict) or not all(
        isinstance(integrity.get(k), str) for k in ("document", "variables", "constants")
    ):
        msg = (
            f"Invalid saved model {doc_path!r}: integrity must hold the digests of the "
            f"document and both array files"
        )
        raise ValueError(msg)
    try:
        doc_digest = document_digest(raw)
    except (TypeError, ValueError) as err:  # pragma: no cover - parse_json already refused these
        msg = f"Invalid saved model {doc_path!r}: {err}"
        raise ValueError(msg) from None
    if doc_digest != integrity["document"]:
        msg = (
            f"Invalid saved model {doc_path!r}: the document does not match its digest "
            f"(corrupted or edited)"
        )
        raise ValueError(msg)
    arrays = {}
    for filename, fmt, key in (
        (VARIABLES_FILE, VARIABLES_FORMAT, "variables"),
        (CONSTANTS_FILE, CONSTANTS_FORMAT, "constants"),
    ):
        file_path = os.path.join(root, filename)
        data = files[filename]
        if digest(data) != integrity[key]:
            msg = (
                f"Invalid saved model {file_path!r}: the file does not match its digest in "
                f"{DOCUMENT} (corrupted or replaced)"
            )
            raise ValueError(msg)
        arrays[key] = arrays_from_bytes(data, file_path, fmt)
    document = check_document(
        raw,
        doc_path,
        {k: (a.dtype, a.shape) for k, a in arrays["variables"].items()},
        {k: (a.dtype, a.shape) for k, a in arrays["constants"].items()},
        REGISTRY.__contains__,
    )
    constants = {
        key: from_storage(arrays["constants"][key], dtype, shape)
        for key, (dtype, shape) in document.constants.items()
    }
    for arr in constants.values():
        arr.flags.writeable = False
    stand_ins = {v.path: _stand_in(v.name, v.dtype, v.shape) for v in document.variables}
    built = _Builder(doc_path, document, constants, stand_ins).build_all()
    values = {
        v.path: from_storage(arrays["variables"][v.path], v.dtype, v.shape)
        for v in document.variables
    }
    real = _create_variables(document, values)
    swap = {id(stand_ins[path]): var for path, var in real.items()}
    for concrete in built.values():
        for op in concrete.graph.get_operations():
            # A new dict: attrs dicts may be shared between ops (constants of scalars).
            op._attrs = {key: _swap(value, swap) for key, value in op._attrs.items()}
        concrete._reads = None
    return LoadedModel(root, document, built, real)


def _stand_in(name: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Variable:
    """A variable-shaped object for the shape rules while graphs are built and checked.

    It has no value and is in no graph or collection; every reference to it is replaced
    by the real variable once all graphs are built.
    """
    var = object.__new__(Variable)
    var._dtype, var._shape, var._name = dtype, shape, name
    var._graph = var._handle = var._initializer = var._snapshot = var._value = None
    var._trainable = False
    var._lock = threading.Lock()
    return var


def _swap(value: Any, swap: dict[int, Variable]) -> Any:
    if isinstance(value, Variable):
        return swap[id(value)]
    if isinstance(value, (list, tuple)) and any(isinstance(x, Variable) for x in value):
        return type(value)(swap[id(x)] if isinstance(x, Variable) else x for x in value)
    return value


def _create_variables(
    document: Document, values: dict[str, np.ndarray[Any, Any]]
) -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    with init_scope(), name_scope(None):
        eager = state_get(_roots[0])[EAGER]
        for v in document.variables:
            # A graph refuses a leading "_" at its root (see VARIABLE_NAME): drop it there.
            name = v.name if eager or OP_NAME.fullmatch(v.name) else v.name.lstrip("_")
            var = Variable(values[v.path], name=name, trainable=v.trainable, dtype=v.dtype)
            if eager:
                var._name = v.name  # exactly the saved name
            out[v.path] = var
    return out


class _Builder:
    """Builds the validated functions into private function graphs, callees first; a
    nested graph (branch, loop body) is built when its outer function reaches the first
    op that uses it, so its captures resolve to that function's tensors."""

    def __init__(
        self,
        source: str,
        document: Document,
        constants: dict[str, np.ndarray[Any, Any]],
        stand_ins: dict[str, Variable],
    ) -> None:
        self.source = source
        self.doc = document
        self.constants = constants
        self.eager_constants: dict[str, EagerTensor] = {}
        self.stand_ins = stand_ins
        self.built: dict[str, ConcreteFunction] = {}
        # The tensors of each function being built, for the captures of nested graphs.
        self.tensors: dict[str, list[tuple[Tensor, ...]]] = {}

    def fail(self, where: str, what: str) -> NoReturn:
        msg = f"Invalid saved model {self.source!r}: {where}: {what}"
        raise ValueError(msg)

    def build_all(self) -> dict[str, ConcreteFunction]:
        for name in self.doc.order:
            if self.doc.functions[name].outer is None and name not in self.built:
                self.build(name, None)
        return self.built

    def resolve(self, value: Any) -> Any:
        if isinstance(value, ArrayRef):
            return self.constants[value.key]
        if isinstance(value, VarRef):
            return self.stand_ins[value.path]
        if isinstance(value, FnRef):
            return self.built[value.name]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def build(self, name: str, outer: FuncGraph | None) -> ConcreteFunction:
        fn = self.doc.functions[name]
        where = f"functions[{name!r}]"
        if fn.label is not None:
            assert outer is not None
            graph: FuncGraph = ControlFlowGraph(name, outer, fn.label)
        else:
            graph = FuncGraph(name, outer_graph=outer)
        tensors: list[tuple[Tensor, ...]] = []
        self.tensors[name] = tensors
        frame = graph._capture_frame  # no scopes of the caller: names are kept verbatim
        for op in fn.ops:
            opwhere = f"{where} op {op.name!r} ({op.type})"
            for callee in _fn_names(op.attrs):
                if callee not in self.built:
                    nested = self.doc.functions[callee]
                    self.build(callee, graph if nested.outer == name else None)
            attrs = {k: self.resolve(v) for k, v in op.attrs.items()}
            inputs = tuple(tensors[j][k] for j, k in op.inputs)
            opdef = REGISTRY[op.type]
            try:
                prepare_attrs(op.type, attrs)
                check_op(op.type, attrs, inputs)  # first: its messages say more than a rule's
                inferred = opdef.infer(tuple((t._dtype, t._shape) for t in inputs), attrs)
                specs = _normal_specs(inferred)
            except Exception as err:  # a hostile file may make any rule fail; report it
                msg = f"Invalid saved model {self.source!r}: {opwhere}: {type(err).__name__}: {err}"
                raise ValueError(msg) from None
            recorded = list(op.outputs)
            if specs != recorded:
                self.fail(
                    opwhere,
                    f"the recorded outputs {specs_text(recorded)} differ from the op's rule "
                    f"{specs_text(specs)}",
                )
            try:
                created = graph._create_op(
                    op.type, inputs, attrs, specs, op.name + "/", frame, opdef.stateful
                )
            except (ValueError, TypeError) as err:
                msg = f"Invalid saved model {self.source!r}: {opwhere}: {err}"
                raise ValueError(msg) from None
            if op.type == "Placeholder":
                attrs["name"] = created.name
            created._control_inputs = tuple(_op_at(graph, j) for j in op.control_inputs)
            tensors.append(created._outputs)
        graph.control_outputs = [_op_at(graph, j) for j in fn.control_outputs]
        graph.inputs = [tensors[j][0] for j in fn.inputs]
        for ph_index, (kind, ref) in fn.captures:
            ph = tensors[ph_index][0]
            if kind == "constant":
                value: Any = self.eager_constant(ref)
            else:
                assert fn.outer is not None
                j, k = ref
                value = self.tensors[fn.outer][j][k]
            graph._captures[id(value) if kind == "tensor" else id(ph)] = (value, value, ph)
            graph.inputs.append(ph)
        graph.outputs = [tensors[j][k] for j, k in fn.outputs]
        graph._seal(name)
        specs_in = [TensorSpec(t.shape, t.dtype) for t in graph.inputs[: len(fn.inputs)]]
        # The key of a positional call, so the concrete function is callable directly too.
        arg_key = _arg_structure(tuple(specs_in), {}, [])
        concrete = ConcreteFunction(graph, arg_key, fn.structure, [])
        self.built[name] = concrete
        return concrete

    def eager_constant(self, key: str) -> EagerTensor:
        hit = self.eager_constants.get(key)
        if hit is None:
            hit = self.eager_constants[key] = wrap(self.constants[key])
        return hit


def _normal_specs(specs: Any) -> list[tuple[np.dtype[Any], tuple[int | None, ...] | None]]:
    """A rule's output specs, checked to be (dtype, shape) pairs (a hostile attribute may
    make a rule return anything)."""
    out: list[tuple[np.dtype[Any], tuple[int | None, ...] | None]] = []
    for dtype, shape in specs:
        if not isinstance(dtype, np.dtype):
            msg = f"the op's rule gave {dtype!r} as a dtype"
            raise TypeError(msg)
        if shape is not None:
            shape = tuple(shape)
            if not all(d is None or (type(d) is int and d >= 0) for d in shape):
                msg = f"the op's rule gave {shape!r} as a shape"
                raise TypeError(msg)
        out.append((dtype, shape))
    return out


def _fn_names(attrs: dict[str, Any]) -> list[str]:
    names: list[str] = []
    stack: list[Any] = list(attrs.values())
    while stack:
        v = stack.pop()
        if isinstance(v, FnRef):
            names.append(v.name)
        elif isinstance(v, (list, tuple)) and not isinstance(v, (ArrayRef, VarRef)):
            stack.extend(v)
    return names


def _op_at(graph: Any, index: int) -> Any:
    """Operation ``index`` of ``graph`` (a lean op stands in the list as its tensor)."""
    return graph._op_at(index)
