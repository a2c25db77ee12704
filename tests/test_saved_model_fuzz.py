"""Fuzzing ``sf.saved_model.load`` with mutated files (fixed seed, a few seconds).

Two kinds of damage:

- *Corruption*: bytes truncated, flipped or replaced in any of the three files, without
  fixing the digests. Every load must raise ``ValueError`` naming the damaged file, or
  succeed and compute exactly what the original does.
- *Deliberate edits*: a random node of the JSON document replaced, deleted or given a
  hostile value, or an op damaged where it means something (an attribute of the wrong
  kind, one input too many or too few, ops out of order, a duplicate name, a control
  input to nothing, a call to another function or its own caller, another op type), and
  the document signed again. Every load must raise ``ValueError``
  naming the document, or succeed; a model that loads must then compute or fail with an
  ordinary scopeflow error, never crash the interpreter's invariants.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _saved_model_format as fmt

FILES = ("saved_model.json", "variables.safetensors", "constants.safetensors")
BUDGET_S = 2.0  # per kind of damage; the loop stops early when it runs out
HOSTILE = [
    None, True, -1, 0, 3, 2**64, 10**30, 1.5, "", "x", "Bogus", "nope:0", "Const:7",
    [], [None], [10**12, 10**12], {}, {"tuple": []}, {"function": "missing"},
    {"variable": "nope"}, {"array": "c999"}, {"dtype": "object"}, {"leaf": 99},
    -(2**63), 2**63, {"float": "nan"}, {"tuple": [2**40, 2**40]}, {"tuple": [-1]},
    {"slot": 0}, {"slot": 1}, {"marker": "tensor"}, {"tuple": [{"marker": "tensor"}, 9]},
    {"slice": [None, None, 0]}, {"slice": [{"slot": 5}, None, None]}, {"ellipsis": None},
    {"tuple": [1, 2]}, {"dtype": "int8"}, {"dtype": "complex128"}, "normal", "Const:0",
]  # fmt: skip


class Small(sf.Module):
    def __init__(self) -> None:
        super().__init__(name="small")
        self.w = sf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 10, name="w")
        self.b = sf.Variable(np.array([0.5, -0.5], np.float32), name="b")

    @sf.function(input_signature=[sf.TensorSpec((None, 3), sf.float32, name="x")])
    def __call__(self, x: Any) -> Any:
        y = sf.matmul(x, self.w) + self.b
        sf.print("y:", y[sf.constant(0)], summarize=1)  # a print template, a tensor key
        y = sf.gather(y, [1, 0]) + sf.random.uniform((2, 2), seed=5) * 0.0
        y = sf.cond(sf.reduce_sum(y) > 0.0, lambda: y * 2.0, lambda: -y)
        _, y = sf.while_loop(lambda i, v: i < 2, lambda i, v: (i + 1, v + self.b), [0, y])
        return {"y": y, "mean": sf.reduce_mean(y)}


X = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], np.float32)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray[Any, Any]]:
    path = tmp_path_factory.mktemp("fuzz") / "model"
    sf.saved_model.save(Small(), str(path))
    want = sf.saved_model.load(str(path))(X)["y"].numpy()
    return path, want


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def _corrupt(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(4)
    if kind == 0 or not data:
        return data[: rng.randrange(len(data) + 1)]  # truncated
    buf = bytearray(data)
    if kind == 1:
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    elif kind == 2:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    else:
        i = rng.randrange(len(buf))
        buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(buf)


def test_corrupted_files_are_refused_naming_the_file(
    original: tuple[Path, np.ndarray[Any, Any]], tmp_path: Path
) -> None:
    src, want = original
    rng = random.Random(20261130)
    deadline = time.monotonic() + BUDGET_S
    tried = 0
    while time.monotonic() < deadline and tried < 1500:
        tried += 1
        work = _copy(src, tmp_path / "m")
        name = rng.choice(FILES)
        target = work / name
        target.write_bytes(_corrupt(rng, target.read_bytes()))
        try:
            loaded = sf.saved_model.load(str(work))
        except ValueError as err:
            message = str(err)
        else:
            np.testing.assert_array_equal(loaded(X)["y"].numpy(), want)
            continue
        assert str(work / name) in message, message
    assert tried >= 20


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every node of a JSON tree, iteratively."""
    out: list[tuple[Any, ...]] = []
    stack = [(path, value)]
    while stack:
        p, v = stack.pop()
        out.append(p)
        if isinstance(v, dict):
            stack.extend(((*p, k), x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend(((*p, i), x) for i, x in enumerate(v))
    return out


def _hostile(rng: random.Random) -> Any:
    # A copy: a later mutation may append to a list it put in the document.
    return copy.deepcopy(rng.choice(HOSTILE))


def _ops(doc: dict[str, Any]) -> list[tuple[list[Any], int]]:
    functions = doc.get("functions")
    return [
        (fn["ops"], i)
        for fn in (functions.values() if isinstance(functions, dict) else ())
        if isinstance(fn, dict) and isinstance(fn.get("ops"), list)
        for i in range(len(fn["ops"]))
    ]


def _mutate_graph(rng: random.Random, doc: dict[str, Any]) -> bool:
    """Damage aimed at what a graph means: an op's attributes, arity, order, names,
    control inputs and the functions it calls. False when the document has no op."""
    ops = [(fn_ops, i) for fn_ops, i in _ops(doc) if isinstance(fn_ops[i], dict)]
    if not ops:
        return False
    fn_ops, i = rng.choice(ops)
    op = fn_ops[i]
    attrs, inputs = op.get("attrs"), op.get("inputs")
    roll = rng.randrange(7)
    if roll == 0 and isinstance(attrs, dict) and attrs:
        attrs[rng.choice(sorted(attrs))] = _hostile(rng)  # an attribute of a wrong kind
    elif roll == 1 and isinstance(inputs, list):
        if inputs and rng.random() < 0.5:
            inputs.pop(rng.randrange(len(inputs)))  # one input too few
        else:
            inputs.append(rng.choice(inputs) if inputs else "x:0")  # one too many
    elif roll == 2 and i + 1 < len(fn_ops):
        j = rng.randrange(i + 1, len(fn_ops))
        fn_ops[i], fn_ops[j] = fn_ops[j], fn_ops[i]  # an op now reads a later one
    elif roll == 3:
        fn_ops.append(json.loads(json.dumps(op)))  # the same name twice
    elif roll == 4 and isinstance(op.get("control_inputs"), list):
        op["control_inputs"].append(rng.choice(["nowhere", op.get("name"), "Const"]))
    elif roll == 5 and isinstance(attrs, dict):
        # Point a call, branch or loop attribute at another function (maybe its caller).
        names = sorted(doc["functions"]) if isinstance(doc.get("functions"), dict) else []
        fn_keys = [k for k, v in attrs.items() if isinstance(v, dict) and "function" in v]
        if fn_keys and names:
            attrs[rng.choice(fn_keys)] = {"function": rng.choice(names)}
    else:
        op["type"] = rng.choice(["Reshape", "Fill", "Gather", "PrintV2", "While", "Const"])
    return True


def _mutate(rng: random.Random, doc: dict[str, Any]) -> None:
    if rng.random() < 0.4 and _mutate_graph(rng, doc):
        return
    paths = [p for p in _nodes(doc) if p and p[0] != "integrity"]
    path = rng.choice(paths)
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    roll = rng.random()
    if roll < 0.25 and isinstance(parent, dict):
        del parent[last]
    elif roll < 0.35 and isinstance(parent, list):
        parent.pop(last)
    elif roll < 0.45 and isinstance(parent, dict) and last == "type":
        parent[last] = "Unknown" + str(rng.randrange(100))
    elif roll < 0.55 and isinstance(parent[last], int) and not isinstance(parent[last], bool):
        parent[last] = parent[last] + rng.choice([-1, 1, 2**62])
    elif roll < 0.65 and isinstance(parent[last], str) and parent[last] in fmt.DTYPES:
        parent[last] = rng.choice(sorted(fmt.DTYPES))
    else:
        parent[last] = _hostile(rng)


def test_deliberately_edited_documents_are_validated(
    original: tuple[Path, np.ndarray[Any, Any]], tmp_path: Path
) -> None:
    src, _ = original
    base = json.loads((src / "saved_model.json").read_text())
    rng = random.Random(1130)
    deadline = time.monotonic() + BUDGET_S
    tried = refused = 0
    while time.monotonic() < deadline and tried < 1500:
        tried += 1
        work = _copy(src, tmp_path / "m")
        doc = json.loads(json.dumps(base))
        for _ in range(rng.randint(1, 3)):
            _mutate(rng, doc)
        doc.setdefault("integrity", {})
        if isinstance(doc["integrity"], dict):
            doc["integrity"]["document"] = fmt.document_digest(doc)
        (work / "saved_model.json").write_bytes(fmt.canonical(doc))
        try:
            loaded = sf.saved_model.load(str(work))
        except ValueError as err:
            message = str(err)
        else:
            # A re-signed edit may change what the model computes; it must still behave.
            with contextlib.suppress(TypeError, ValueError, sf.errors.ScopeflowError):
                loaded(X)
            continue
        assert str(work / "saved_model.json") in message, message
        refused += 1
    assert tried >= 20
    assert refused >= tried // 2
