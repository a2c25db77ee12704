"""Import ``lookup_lib`` in four places and show where its state lands each time.

Run it with ``python examples/import_time/main.py``.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from types import ModuleType

import scopeflow as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))


def fresh_import() -> ModuleType:
    """Import ``lookup_lib`` anew (as a first import would), wherever we are."""
    sys.modules.pop("lookup_lib", None)
    return importlib.import_module("lookup_lib")


def where(tensor: object) -> str:
    """'eager' or the name of the graph holding ``tensor``."""
    graph = getattr(tensor, "graph", None)
    return "eager" if graph is None else f"graph {graph.name!r}"


def main() -> None:
    """Import at top level, in a graph, while tracing and inside a running task."""
    lib = fresh_import()
    print(f"top level: table is {where(lib.TABLE)}")

    graph = sf.Graph(name="outer")
    with graph.as_default(), sf.name_scope("caller"):
        lib = fresh_import()
    print(f"in a graph: table is {where(lib.TABLE)}, named {lib.TABLE.op.name!r}")

    @sf.function
    def lookup(word_ids: object) -> object:
        return fresh_import().embed(word_ids)

    rows = (
        lookup(sf.constant(fresh_import().ids(["dog", "cat"])))
        .numpy()
        .astype(float)
        .round(2)
        .tolist()
    )
    fn_ops = [
        op.type for op in lookup.get_concrete_function(sf.constant([1])).graph.get_operations()
    ]
    print(f"while tracing: the function graph holds no table constant: {'Const' not in fn_ops}")
    print(f"embeddings of ['dog', 'cat']: {rows}")

    async def task() -> str:
        task_graph = sf.Graph(name="task")
        with task_graph.as_default():
            await asyncio.sleep(0)
            lib = fresh_import()
            await asyncio.sleep(0)
        return where(lib.TABLE)

    print(f"inside a running task building its graph: table is {asyncio.run(task())}")


if __name__ == "__main__":
    main()
