"""``sf.saved_model.load`` on hostile directories: each attack raises ``ValueError`` naming
the file, quickly, before anything is built.

Files that are not regular files (a FIFO, a symlink to ``/dev/zero``, a directory), giant
declared sizes, deep JSON, cycles between functions, and re-signed documents whose
attributes are of the wrong kind for the op (random seeds and sources, print templates,
tensor index keys, gather's batch_dims).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scopeflow as sf
from scopeflow import _saved_model_format as fmt

X = np.arange(6, dtype=np.float32).reshape(2, 3)


class Model(sf.Module):
    def __init__(self) -> None:
        super().__init__(name="model")
        self.w = sf.Variable(np.ones((3, 2), np.float32), name="w")

    @sf.function(input_signature=[sf.TensorSpec((2, 3), sf.float32, name="x")])
    def __call__(self, x: Any) -> Any:
        sf.print("row:", x[sf.constant(0)])
        sf.debugging.assert_greater(x, -100.0, message="too small")
        x = sf.debugging.check_numerics(x, "x")
        noise = sf.random.uniform((2, 2), seed=1)
        return sf.gather(sf.matmul(x, self.w), [1, 0]) + noise * 0.0


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    sf.saved_model.save(Model(), str(path))
    return path


def _doc(path: Path) -> dict[str, Any]:
    return json.loads((path / fmt.DOCUMENT).read_text())  # type: ignore[no-any-return]


def _write_signed(path: Path, doc: dict[str, Any]) -> None:
    doc["integrity"]["document"] = fmt.document_digest(doc)
    (path / fmt.DOCUMENT).write_bytes(fmt.canonical(doc))


def _op(doc: dict[str, Any], op_type: str) -> dict[str, Any]:
    for fn in doc["functions"].values():
        for op in fn["ops"]:
            if op["type"] == op_type:
                return op  # type: ignore[no-any-return]
    raise AssertionError(op_type)


def _refused(path: Path, filename: str, pattern: str) -> None:
    where = str(path / filename)
    with pytest.raises(ValueError, match=r"^[^\n]*" + pattern) as info:
        sf.saved_model.load(str(path))
    assert where in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(saved: Path) -> None:
    target = saved / fmt.CONSTANTS_FILE
    target.unlink()
    os.mkfifo(target)  # opening it for reading would wait for a writer forever
    _refused(saved, fmt.CONSTANTS_FILE, "it is not a regular file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_an_endless_device_is_refused(saved: Path) -> None:
    target = saved / fmt.VARIABLES_FILE
    target.unlink()
    target.symlink_to("/dev/zero")  # reading it would never end
    _refused(saved, fmt.VARIABLES_FILE, "it is not a regular file")
    (saved / fmt.DOCUMENT).unlink()
    (saved / fmt.DOCUMENT).mkdir()
    _refused(saved, fmt.DOCUMENT, "it is not a regular file")


def test_symlinks_to_regular_files_and_extra_files_are_fine(saved: Path, tmp_path: Path) -> None:
    # Model stores often link a snapshot's files to shared blobs; the digests still hold.
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for name in (fmt.VARIABLES_FILE, fmt.CONSTANTS_FILE):
        shutil.move(str(saved / name), str(blobs / name))
        (saved / name).symlink_to(blobs / name)
    (saved / "README.txt").write_text("not read")
    want = Model()(X).numpy()
    np.testing.assert_array_equal(sf.saved_model.load(str(saved))(X).numpy(), want)


def _safetensors(header: dict[str, Any], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_an_array_file_declaring_a_giant_array_is_refused(saved: Path) -> None:
    doc = _doc(saved)
    giant = [2**40, 2**40]
    doc["variables"][0]["shape"] = giant
    data = _safetensors(
        {
            "__metadata__": {"format": fmt.VARIABLES_FORMAT, "version": "1"},
            "w": {"dtype": "F32", "shape": giant, "data_offsets": [0, 4]},
        },
        b"\0\0\0\0",
    )
    (saved / fmt.VARIABLES_FILE).write_bytes(data)
    doc["integrity"]["variables"] = fmt.digest(data)
    _write_signed(saved, doc)
    _refused(saved, fmt.VARIABLES_FILE, "Cannot read")


def test_deeply_nested_json_is_refused(saved: Path) -> None:
    (saved / fmt.DOCUMENT).write_bytes(b"[" * 200_000 + b"]" * 200_000)
    _refused(saved, fmt.DOCUMENT, "not a valid JSON document")


def test_functions_calling_each_other_in_a_cycle_are_refused(tmp_path: Path) -> None:
    class Calls(sf.Module):
        @sf.function(input_signature=[sf.TensorSpec((), sf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            return inner(x) + 1.0

    @sf.function
    def inner(x: Any) -> Any:
        return x * 2.0

    path = tmp_path / "model"
    sf.saved_model.save(Calls(), str(path))
    doc = _doc(path)
    (outer_name,) = doc["signatures"].values()
    outer = outer_name["function"]
    (call,) = [op for op in doc["functions"][outer]["ops"] if op["attrs"].get("f")]
    callee = call["attrs"]["f"]["function"]
    # The callee now calls its caller: f -> g -> f.
    doc["functions"][callee]["ops"].append({**call, "name": "back"})
    _write_signed(path, doc)
    _refused(path, fmt.DOCUMENT, r"functions\[.*\]: functions reference each other in a cycle")


def _random_op(doc: dict[str, Any]) -> dict[str, Any]:
    return _op(doc, "RandomUniform")


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (
            lambda d: _random_op(d)["attrs"].update(seed="seven"),
            r"attribute 'seed' must be null or a pair of integers",
        ),
        (
            lambda d: _random_op(d)["attrs"].update(seed={"tuple": [1, 2, 3]}),
            r"attribute 'seed' must be null or a pair of integers",
        ),
        (
            lambda d: _random_op(d)["attrs"].update(rng="x"),
            r"attributes \['rng'\] are made by the loader, not saved",
        ),
        (
            lambda d: _random_op(d)["attrs"].update(built="x"),
            r"attributes \['built'\] are made by the loader, not saved",
        ),
        (
            lambda d: _random_op(d)["attrs"].update(dist="bogus"),
            r"attribute 'dist' must be one of \['normal', 'truncated', 'uniform'\]",
        ),
        (
            lambda d: _op(d, "PrintV2")["attrs"].update(
                template=[{"tuple": [{"marker": "tensor"}, 5]}]
            ),
            r"a print template entry must be text or a \(marker, value\) pair",
        ),
        (
            lambda d: _op(d, "PrintV2")["attrs"].update(output_stream="stderr"),
            r"attribute 'output_stream' must be null",
        ),
        (
            lambda d: _op(d, "PrintV2")["attrs"].update(sep=3),
            r"attributes 'sep' and 'end' must be strings",
        ),
        (
            lambda d: _op(d, "TensorGetItem")["attrs"].update(key={"tuple": [{"slot": 9}]}),
            r"attribute 'key' holds <input 9>",
        ),
        (
            lambda d: _op(d, "TensorGetItem")["attrs"].update(key={"tuple": [{"dtype": "int8"}]}),
            r"attribute 'key' holds dtype\('int8'\)",
        ),
        (
            lambda d: _op(d, "Gather")["attrs"].update(batch_dims=-(2**63)),
            r"attribute 'batch_dims' must be an integer in \[0, ",
        ),
        (
            lambda d: _op(d, "PrintV2")["attrs"].pop("output_stream"),
            r"a PrintV2 op needs the attributes \['end', 'output_stream', 'sep', 'summarize', "
            r"'template'\]",
        ),
        (
            lambda d: _op(d, "Assert")["attrs"].update(cmp=None),
            r"attribute 'cmp' must be one of \['equal', 'greater', 'less', 'non_negative'\]",
        ),
        (
            lambda d: _op(d, "Assert")["attrs"].update(names={"tuple": ["a"]}),
            r"'names' a pair of strings",
        ),
        (
            lambda d: _op(d, "CheckNumerics")["attrs"].update(message=[]),
            r"attribute 'message' must be a string",
        ),
        (
            lambda d: _op(d, "MatMul")["attrs"].update(transpose_a={"marker": "tensor"}),
            r"attr 'transpose_a': unknown tag 'marker'",
        ),
        (
            lambda d: _op(d, "MatMul")["attrs"].update(transpose_a={"slot": 1}),
            r"attr 'transpose_a': unknown tag 'slot'",
        ),
    ],
    ids=[
        "seed-type", "seed-arity", "rng", "built", "dist", "template-slot", "stream", "sep",
        "key-slot", "key-part", "batch-dims", "print-attr-missing", "assert-cmp",
        "assert-names", "numerics-message", "marker-elsewhere", "slot-elsewhere",
    ],
)  # fmt: skip
def test_re_signed_attributes_of_the_wrong_kind_are_refused(
    saved: Path, change: Any, pattern: str
) -> None:
    doc = _doc(saved)
    change(doc)
    _write_signed(saved, doc)
    g = sf.Graph()
    with g.as_default():
        _refused(saved, fmt.DOCUMENT, pattern)
    assert g.get_operations() == []


def test_the_hostile_model_itself_loads_and_runs(
    saved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = sf.saved_model.load(str(saved))
    np.testing.assert_array_equal(loaded(X).numpy(), Model()(X).numpy())
    assert "row: [0. 1. 2.]" in capsys.readouterr().out
    assert sys.getrecursionlimit() > 0  # nothing above changed interpreter state


class Filled(sf.Module):
    def __init__(self, value: float) -> None:
        super().__init__(name="filled")
        self.w = sf.Variable(np.full((16,), value, np.float32), name="w")

    @sf.function(input_signature=[])
    def get(self) -> Any:
        return self.w.read_value()


def test_a_reader_never_fails_while_a_writer_replaces_the_model(tmp_path: Path) -> None:
    path = str(tmp_path / "model")
    sf.saved_model.save(Filled(0.0), path)
    barrier = threading.Barrier(2)
    done = threading.Event()
    errors: list[BaseException] = []
    seen: list[float] = []

    def writer() -> None:
        try:
            barrier.wait()
            for i in range(1, 9):
                sf.saved_model.save(Filled(float(i)), path)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            done.set()

    def reader() -> None:
        barrier.wait()
        while not done.is_set() or not seen:
            try:
                value = sf.saved_model.load(path).get().numpy()
            except BaseException as err:
                errors.append(err)
                return
            assert (value == value[0]).all()  # one version, never a mix of two
            seen.append(float(value[0]))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seen == sorted(seen)
    assert set(seen) <= {float(i) for i in range(9)}


def test_concurrent_saves_to_one_path_each_land_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "model")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        barrier.wait()
        for i in range(100):
            try:
                sf.saved_model.save(Filled(float(100 * k + i)), path)
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    value = sf.saved_model.load(path).get().numpy()
    assert float(value[0]) in (99.0, 199.0)  # the last save of one of the writers
    assert os.listdir(tmp_path) == ["model"]  # no temporary directory left behind
