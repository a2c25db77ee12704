"""Scope machinery: mode/graph queries and scope enter+exit, against two floors (SPEC §11).

Floors, measured in the same run and rounds as the figures:

- **G**: a bare ``ContextVar.get()`` on a variable that holds a value. Figures
  ``sf.executing_eagerly()`` and ``sf.get_default_graph()`` (target ≤ 3 x G).
- **F**: ``with Floor(): pass`` where ``Floor`` is a minimal slotted class whose
  ``__enter__`` does one ``ContextVar.set`` and whose ``__exit__`` does one ``reset``. The
  object is built in the timed statement, as every scopeflow scope is built per use.
  Figures: ``init_scope`` enter+exit in eager mode (≤ 2 x F), in a graph and while tracing
  a function (≤ 5 x F); ``as_default``, ``name_scope``, ``control_dependencies``,
  ``device`` enter+exit (≤ 3 x F).

Every figure is written the way user code writes it (``with sf.name_scope("a"): pass``),
so it includes the factory call and the scope object's construction.

``name_scope("a")`` in a graph makes a new unique scope each time (``a``, ``a_1``, ...),
as real code that builds a layer repeatedly does; each round uses a fresh graph so the
graph's name table stays the size real graphs have. ``name_scope("a/")`` re-enters an
existing scope without uniquifying. Rows marked "info" have no SPEC target of their own.

Run: ``python benchmarks/bench_scopes.py [--rounds N] [--json PATH] [--check]``.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import scopeflow as sf
from _common import (
    FLOOR_VAR,
    Case,
    Floor,
    Row,
    add_common_args,
    finish,
    print_table,
    ratio_row,
    time_cases,
)

# Never set in this context, like scopeflow's variable in eager code outside every scope:
# setting an unset variable inserts into the context's map and resetting removes it again.
_UNSET_VAR: contextvars.ContextVar[object] = contextvars.ContextVar("unset")


def python_get() -> object:
    """G plus one Python-level call: the least any pure-Python query function can cost."""
    return FLOOR_VAR.get()


class FloorUnset:
    """Floor F on a variable without a value in the calling context (reported as a note)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _UNSET_VAR.set(None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _UNSET_VAR.reset(self._token)


@contextlib.contextmanager
def _tracing(outer: sf.Graph) -> Iterator[None]:
    """Inside ``outer`` and a function graph traced from it, as ``sf.function`` will be."""
    with outer.as_default(), sf.FuncGraph("f", outer).as_default():
        yield


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25, help="timing rounds (min is kept)")
    add_common_args(parser)
    args = parser.parse_args(argv)

    ns: dict[str, Any] = {
        "sf": sf,
        "V": FLOOR_VAR,
        "Floor": Floor,
        "FloorUnset": FloorUnset,
        "python_get": python_get,
    }
    graph = sf.Graph()  # for the scopes that need no fresh graph per round
    with graph.as_default():
        ns["op"] = sf.constant(1.0, name="dep").op
        with sf.name_scope("a"):
            pass
    outer = sf.Graph()

    def fresh() -> contextlib.AbstractContextManager[Any]:
        return sf.Graph().as_default()

    cases = [
        Case("G", "V.get()", ns),
        Case("G in a function", "python_get()", ns),
        Case("F", "with Floor(): pass", ns),
        Case("F unset", "with FloorUnset(): pass", ns),
        Case("executing_eagerly", "sf.executing_eagerly()", ns),
        Case("get_default_graph", "sf.get_default_graph()", ns),
        Case("get_default_graph in graph", "sf.get_default_graph()", ns, env=graph.as_default),
        Case("init eager", "with sf.init_scope(): pass", ns),
        Case("init graph", "with sf.init_scope(): pass", ns, env=graph.as_default),
        Case("init tracing", "with sf.init_scope(): pass", ns, env=lambda: _tracing(outer)),
        Case("as_default", "with g.as_default(): pass", {**ns, "g": graph}),
        Case("name_scope", "with sf.name_scope('a'): pass", ns, env=fresh),
        Case("name_scope a/", "with sf.name_scope('a/'): pass", ns, env=graph.as_default),
        Case("name_scope eager", "with sf.name_scope('a'): pass", ns),
        Case(
            "control_dependencies",
            "with sf.control_dependencies([op]): pass",
            ns,
            env=graph.as_default,
        ),
        Case("device", "with sf.device('/cpu:0'): pass", ns, env=graph.as_default),
        Case("device eager", "with sf.device('/cpu:0'): pass", ns),
    ]
    t, overhead = time_cases(cases, rounds=args.rounds)
    g_ns, f_ns = t["G"], t["F"]

    rows: list[Row] = [
        ratio_row("(reference) a Python function returning V.get()", t["G in a function"],
                  "G", g_ns, None),
        ratio_row("sf.executing_eagerly()", t["executing_eagerly"], "G", g_ns, 3),
        ratio_row("sf.get_default_graph() (eager, global graph)", t["get_default_graph"],
                  "G", g_ns, 3),
        ratio_row("sf.get_default_graph() inside g.as_default()",
                  t["get_default_graph in graph"], "G", g_ns, 3),
        ratio_row("init_scope() enter+exit, eager", t["init eager"], "F", f_ns, 2),
        ratio_row("init_scope() enter+exit, in a graph", t["init graph"], "F", f_ns, 5),
        ratio_row("init_scope() enter+exit, tracing (FuncGraph)", t["init tracing"],
                  "F", f_ns, 5),
        ratio_row("g.as_default() enter+exit", t["as_default"], "F", f_ns, 3),
        ratio_row("name_scope('a') in a graph (uniquified a, a_1, ...)", t["name_scope"],
                  "F", f_ns, 3),
        ratio_row("name_scope('a/') in a graph (re-entry)", t["name_scope a/"], "F", f_ns, 3),
        ratio_row("name_scope('a') eager", t["name_scope eager"], "F", f_ns, 3),
        ratio_row("control_dependencies([op]) in a graph", t["control_dependencies"],
                  "F", f_ns, 3),
        ratio_row("device('/cpu:0') in a graph", t["device"], "F", f_ns, 3),
        ratio_row("device('/cpu:0') eager", t["device eager"], "F", f_ns, 3),
    ]  # fmt: skip
    print_table(
        "bench_scopes: scope queries vs G = ContextVar.get(), scope enter+exit vs F",
        rows,
        notes=[
            f"G = {g_ns:.1f} ns, F = {f_ns:.1f} ns; min of {args.rounds} interleaved rounds, "
            f"net of timeit's empty loop ({overhead:.1f} ns/iteration)",
            "eager rows and 'get_default_graph() inside g.as_default()' are extra views of "
            "the same SPEC rows (same targets)",
            f"F on a variable with no value in this context: {t['F unset']:.1f} ns; eager rows "
            f"run outside every scope, where scopeflow's variable has no value either",
        ],
    )
    return finish(args, "scopes", rows)


if __name__ == "__main__":
    sys.exit(main())
