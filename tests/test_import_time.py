"""examples/import_time: a library's import-time state lands in the importer's outer context."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import numpy as np
import pytest

import scopeflow as sf

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "import_time"


@pytest.fixture(autouse=True)
def _on_path() -> Any:
    sys.path.insert(0, str(EXAMPLE))
    yield
    sys.path.remove(str(EXAMPLE))
    sys.modules.pop("lookup_lib", None)


def fresh_import() -> ModuleType:
    sys.modules.pop("lookup_lib", None)
    return importlib.import_module("lookup_lib")


def _expected(word_ids: list[int]) -> np.ndarray[Any, Any]:
    values = np.arange(12, dtype=np.float32).reshape(4, 3) / np.float32(10.0)
    return values[word_ids] * 2.0


def test_top_level_import_is_eager() -> None:
    lib = fresh_import()
    assert isinstance(lib.TABLE, sf.Tensor) is False
    np.testing.assert_allclose(lib.embed([2, 1]).numpy(), _expected([2, 1]))


def test_import_in_a_graph_lands_in_that_graph_without_its_control_dependencies() -> None:
    g = sf.Graph()
    with g.as_default(), sf.name_scope("caller"):
        gate = sf.no_op(name="gate")
        with sf.control_dependencies([gate]):
            lib = fresh_import()
            after = sf.constant(0.0, name="after")
        out = lib.embed(sf.constant([3]))
    assert lib.TABLE.graph is g
    assert lib.TABLE.op.name == "lookup_lib/table"  # absolute: the caller's scope is ignored
    assert lib.TABLE.op.control_inputs == ()
    assert [op.name for op in after.op.control_inputs] == ["caller/gate"]  # still in force
    np.testing.assert_allclose(sf.Session(g).run(out), _expected([3]))


def test_import_while_tracing_lands_outside_the_function() -> None:
    made: list[ModuleType] = []

    @sf.function
    def lookup(word_ids: Any) -> Any:
        made.append(fresh_import())
        return made[-1].embed(word_ids)

    result = lookup(sf.constant([1, 0]))
    np.testing.assert_allclose(result.numpy(), _expected([1, 0]))
    (lib,) = made
    assert not isinstance(lib.TABLE, sf.Tensor)  # eager: lifted out of the function graph
    concrete = lookup.get_concrete_function(sf.constant([1, 0]))
    assert "Const" not in [op.type for op in concrete.graph.get_operations()]
    assert len(concrete.captured_inputs) == 2  # the table and the scale, captured


def test_import_while_tracing_inside_a_graph_lands_in_that_graph() -> None:
    g = sf.Graph()
    made: list[ModuleType] = []

    @sf.function
    def lookup(word_ids: Any) -> Any:
        made.append(fresh_import())
        return made[-1].embed(word_ids)

    with g.as_default():
        out = lookup(sf.constant([2]))
    assert made[0].TABLE.graph is g
    np.testing.assert_allclose(sf.Session(g).run(out), _expected([2]))


def test_import_under_a_tape_is_not_recorded() -> None:
    x = sf.constant(1.0)
    with sf.GradientTape() as tape:
        tape.watch(x)
        lib = fresh_import()
        y = x * lib.SCALE
    assert tape.gradient(y, x).numpy() == 2.0
    assert tape.gradient is not None  # the tape still works after the import


@pytest.mark.anyio
async def test_imports_inside_running_tasks_land_in_each_tasks_outer_context() -> None:
    results: dict[str, Any] = {}

    async def in_graph(name: str) -> None:
        g = sf.Graph(name=name)
        with g.as_default():
            await anyio.sleep(0)
            lib = fresh_import()
            await anyio.sleep(0)
            assert sf.get_default_graph() is g
            out = lib.embed(sf.constant([1]))
        results[name] = (lib.TABLE.graph is g, sf.Session(g).run(out))

    async def tracing() -> None:
        @sf.function
        async def lookup(word_ids: Any) -> Any:
            await anyio.sleep(0)
            lib = fresh_import()
            await anyio.sleep(0)
            results["traced_lib"] = lib
            return lib.embed(word_ids)

        results["traced"] = (await lookup(sf.constant([3]))).numpy()

    async def eager() -> None:
        await anyio.sleep(0)
        results["eager"] = fresh_import().embed([0]).numpy()

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(in_graph, f"g{i}")
        tg.start_soon(tracing)
        tg.start_soon(eager)
    for i in range(3):
        landed, value = results[f"g{i}"]
        assert landed
        np.testing.assert_allclose(value, _expected([1]))
    assert not isinstance(results["traced_lib"].TABLE, sf.Tensor)
    np.testing.assert_allclose(results["traced"], _expected([3]))
    np.testing.assert_allclose(results["eager"], _expected([0]))
    assert not sf.has_default_graph()


def test_the_example_script_prints_where_the_state_landed() -> None:
    src = Path(sf.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE / "main.py")],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "top level: table is eager",
        "in a graph: table is graph 'outer', named 'lookup_lib/table'",
        "while tracing: the function graph holds no table constant: True",
        "embeddings of ['dog', 'cat']: [[1.2, 1.4, 1.6], [0.6, 0.8, 1.0]]",
        "inside a running task building its graph: table is graph 'task'",
    ]
