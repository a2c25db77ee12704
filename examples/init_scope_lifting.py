"""A library creates its state once, outside whatever function graph is being built.

A library helper may be called while its caller is tracing a function: the default graph is
then a ``FuncGraph``. State the library wants to keep (a lookup table, an initial value)
belongs outside that function, so the helper creates it in ``sf.init_scope()``: the op goes
to the nearest enclosing context that is not building a function (an outer graph, or eager
mode), keeps the caller's name scope, and ignores the caller's control dependencies.

Run it with ``python examples/init_scope_lifting.py``.
"""

from __future__ import annotations

from typing import Any

import scopeflow as sf


def make_table(values: list[float]) -> Any:
    """The library helper: a constant table created outside any function graph."""
    with sf.init_scope():
        return sf.constant(values, name="table")


def traced_inside_a_graph() -> None:
    """The caller builds a function graph inside an ordinary graph."""
    outer = sf.Graph()
    with outer.as_default():
        fn_graph = sf.FuncGraph("embed", outer_graph=outer)
        with fn_graph.as_default(), sf.name_scope("embedding"):
            start = sf.no_op(name="start")
            with sf.control_dependencies([start]):
                table = make_table([0.5, 1.5, 2.5])
                local = sf.constant(1.0, name="local")

    print(f"table {table.op.name!r} landed in the outer graph: {table.graph is outer}")
    print(f"its control inputs: {list(table.op.control_inputs)}")
    print(f"ops of the function graph: {[op.name for op in fn_graph.get_operations()]}")
    print(f"control inputs of 'local': {[op.name for op in local.op.control_inputs]}")
    print(f"value from a session on the outer graph: {sf.Session(outer).run(table).tolist()}")


def traced_from_eager_code() -> None:
    """The caller builds a function graph straight from eager code."""
    fn_graph = sf.FuncGraph("embed")
    with fn_graph.as_default():
        print(f"inside the function graph, executing_eagerly() = {sf.executing_eagerly()}")
        table = make_table([0.5, 1.5, 2.5])
    print(f"the table is an eager tensor: {isinstance(table, sf.EagerTensor)}")
    print(f"its value: {table.numpy().tolist()}; doubled eagerly: {(table * 2).numpy().tolist()}")
    print(f"ops of the function graph: {[op.name for op in fn_graph.get_operations()]}")


def main() -> None:
    """Run both scenarios."""
    print("-- a function graph inside a graph --")
    traced_inside_a_graph()
    print("-- a function graph entered from eager code --")
    traced_from_eager_code()


if __name__ == "__main__":
    main()
