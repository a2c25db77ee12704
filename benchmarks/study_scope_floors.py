"""Where a scope's enter+exit goes: the floors under bench_scopes.py's rows, same run.

bench_scopes.py compares every scope with F, a minimal class whose ``__enter__`` does one
``ContextVar.set`` and whose ``__exit__`` one ``reset``. F sets the value its variable
already holds, so CPython's context map is not copied; a scope sets a new frame. This study
adds, one step at a time, what every scopeflow scope must do, and times the real scopes
written two ways (``sf.init_scope()`` and ``init_scope()`` by a plain global name):

- ``push new frame``: F, but setting a new 9-field frame tuple built from the current one
  (the set and the reset each copy the context's map);
- ``+ __init__``: the same with an ``__init__`` that stores one slot (a scope's object must
  start with its entry slot empty);
- ``+ nesting protocol``: a ``Scope`` subclass pushing the frame of an eager init_scope: the
  first-entry slots on enter, the nesting check on exit (SPEC section 12.5);
- the real scopes: init_scope (eager), control_dependencies([op]) and name_scope('a/') in a
  graph, name_scope('a') in a fresh graph (a new unique name per entry).

A second table times the mode queries against G (``ContextVar.get()``), each called as
``sf.executing_eagerly()`` and by a plain global name.

Reading: a frame push alone is about 1.6 x F and the nesting protocol with its ``__init__``
brings any scope to about 2.1 x F before it does anything of its own, so "init_scope eager
≤ 2 x F" is below the floor of this design. ``sf.X`` costs more than a global name on
CPython 3.11-3.13: the lazy-import ``__getattr__`` of ``scopeflow/__init__.py`` keeps
``LOAD_ATTR`` on the module from being specialized (CPython specializes attribute loads
on a module only if its dict has no ``__getattr__``). Compare each pair of rows.

Run: ``python benchmarks/study_scope_floors.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

import scopeflow as sf
from _common import Case, Floor, Row, print_table, ratio_row, time_cases
from scopeflow._context import _STATE, Scope, executing_eagerly, state_get, state_reset, state_set
from scopeflow._graph import get_default_graph
from scopeflow._init_scope import init_scope
from scopeflow._scopes import control_dependencies, name_scope


class PushNew:
    """F, setting a new frame: what every scope sets."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        cur = state_get()
        self._token = state_set((cur, self, cur[2], cur[3], cur[4], cur[5], cur[6], True, None))

    def __exit__(self, *exc: object) -> None:
        state_reset(self._token)


class PushNewInit(PushNew):
    """PushNew with an ``__init__`` storing one slot."""

    __slots__ = ("_frame",)

    def __init__(self) -> None:
        self._frame = None


class NestingProtocol(Scope):
    """The frame of an eager init_scope pushed with the Scope protocol, nothing else."""

    __slots__ = ()

    def __init__(self) -> None:
        self._frame = None

    def __enter__(self) -> None:
        cur = state_get()
        frame = (cur, self, cur[2], cur[3], cur[4], cur[5], cur[6], True, None)
        token = state_set(frame)
        if self._frame is None:
            self._frame = frame
            self._token = token
        else:
            self._push_more(frame, token)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25, help="timing rounds (min is kept)")
    args = parser.parse_args(argv)

    graph = sf.Graph()
    with graph.as_default():
        op = sf.constant(1.0, name="dep").op
        with sf.name_scope("a"):
            pass
    ns: dict[str, Any] = {
        "sf": sf,
        "Floor": Floor,
        "PushNew": PushNew,
        "PushNewInit": PushNewInit,
        "NestingProtocol": NestingProtocol,
        "init_scope": init_scope,
        "control_dependencies": control_dependencies,
        "name_scope": name_scope,
        "op": op,
        "V": _STATE,
        "executing_eagerly": executing_eagerly,
        "get_default_graph": get_default_graph,
    }

    def fresh() -> contextlib.AbstractContextManager[Any]:
        return sf.Graph().as_default()

    in_graph = graph.as_default
    rows = [
        ("F", "with Floor(): pass", None),
        ("push new frame", "with PushNew(): pass", None),
        ("+ __init__", "with PushNewInit(): pass", None),
        ("+ nesting protocol", "with NestingProtocol(): pass", None),
        ("init_scope(), eager", "with init_scope(): pass", None),
        ("sf.init_scope(), eager", "with sf.init_scope(): pass", None),
        ("control_dependencies([op])", "with control_dependencies([op]): pass", in_graph),
        ("sf.control_dependencies([op])", "with sf.control_dependencies([op]): pass", in_graph),
        ("name_scope('a/')", "with name_scope('a/'): pass", in_graph),
        ("sf.name_scope('a/')", "with sf.name_scope('a/'): pass", in_graph),
        ("name_scope('a'), fresh graph", "with name_scope('a'): pass", fresh),
        ("sf.name_scope('a'), fresh graph", "with sf.name_scope('a'): pass", fresh),
    ]
    queries = [
        ("G", "V.get()"),
        ("executing_eagerly()", "executing_eagerly()"),
        ("sf.executing_eagerly()", "sf.executing_eagerly()"),
        ("get_default_graph()", "get_default_graph()"),
        ("sf.get_default_graph()", "sf.get_default_graph()"),
    ]
    cases = [Case(label, stmt, ns, env=env) for label, stmt, env in rows]
    cases += [Case(label, stmt, ns) for label, stmt in queries]
    t, overhead = time_cases(cases, rounds=args.rounds)
    f_ns, g_ns = t["F"], t["G"]
    table: list[Row] = [ratio_row(label, t[label], "F", f_ns, None) for label, _, _ in rows[1:]]
    table += [ratio_row(label, t[label], "G", g_ns, None) for label, _ in queries[1:]]
    print_table(
        "study_scope_floors: what a scope's enter+exit is made of (vs F), mode queries (vs G)",
        table,
        notes=[
            f"F = {f_ns:.1f} ns, G = {g_ns:.1f} ns (scopeflow's own variable); min of "
            f"{args.rounds} interleaved rounds, net of timeit's empty loop "
            f"({overhead:.1f} ns/iteration)"
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
