"""Command line entry point: ``python -m scopeflow demo`` and ``python -m scopeflow graph``.

(Also installed as the ``scopeflow`` script.)

The demo exercises the scope machinery end to end and checks every result it prints:
many asyncio tasks build their own graphs while awaiting inside ``as_default()`` and
``name_scope()``, then ``init_scope`` lifts constants out of a function graph, once into
an outer graph and once into eager mode. The exit code is 0 only if every check passed.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

import scopeflow as sf

__all__ = ["main", "run_demo"]

N_TASKS: Final = 200
USAGE: Final = f"""\
usage: python -m scopeflow <command>

commands:
  demo    build graphs in {N_TASKS} concurrent asyncio tasks and lift constants out of a
          function graph with init_scope, checking every result (exit code 0 if all pass)
  graph   draw a graph, a traced function or a saved model as Graphviz DOT or Mermaid,
          or render it to SVG with Graphviz (`python -m scopeflow graph --help`)
"""
DEMO_HELP: Final = f"""\
usage: python -m scopeflow demo

Build graphs in {N_TASKS} concurrent asyncio tasks, each awaiting inside as_default() and
name_scope(), then lift constants out of a function graph with init_scope, once into an
outer graph and once into eager mode. Every check is printed; the exit code is 0 if all
of them pass and 1 otherwise.
"""
FEED: Final = 2.0
# The ops every task's graph must hold, in creation order. The name scope is "layer" in
# every graph (uniqueness is per graph); "Mul" and "Const" are generated names.
EXPECTED_OPS: Final = ("x", "layer/w", "layer/Mul", "layer/Const", "layer/y")


class Checks:
    """Prints one line per check and counts the failures."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.total = 0
        self.failed = 0

    def section(self, title: str) -> None:
        """Print a heading for the checks that follow."""
        print(f"\n{title}", file=self.out)

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        """Record one check; ``detail`` is shown only when it failed."""
        self.total += 1
        if ok:
            print(f"  ok    {what}", file=self.out)
        else:
            self.failed += 1
            suffix = f": {detail}" if detail else ""
            print(f"  FAIL  {what}{suffix}", file=self.out)
        return ok

    def run(self, title: str, section: Callable[[Checks], None]) -> None:
        """Run ``section`` under ``title``; an unexpected exception counts as a failure."""
        self.section(title)
        try:
            section(self)
        except Exception as exc:  # report it as a failed check and go on with the demo
            traceback.print_exc()
            self.check(False, f"{title!r} ran to the end", f"{type(exc).__name__}: {exc}")


# -- concurrent graph building ----------------------------------------------------------


@dataclass
class _Overlap:
    """How many tasks are inside their graph scopes right now, and the most at once."""

    current: int = 0
    peak: int = 0

    def enter(self) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        self.current -= 1


@dataclass(frozen=True)
class _Built:
    """What one task built, and what it saw while other tasks ran."""

    index: int
    graph: sf.Graph
    x: sf.Tensor
    y: sf.Tensor
    scope: str
    problems: tuple[str, ...]


def _own_view(graph: sf.Graph, name_scope: str) -> str | None:
    """A description of what is wrong with the calling task's scopes, or None."""
    if sf.get_default_graph() is not graph:
        return f"default graph is {sf.get_default_graph()!r}, not its own {graph!r}"
    if sf.get_name_scope() != name_scope:
        return f"name scope is {sf.get_name_scope()!r}, not {name_scope!r}"
    if sf.executing_eagerly():
        return "executing eagerly inside its graph"
    return None


async def _build_graph(index: int, overlap: _Overlap) -> _Built:
    """Build ``y = x * index + 1`` in a new graph, yielding to the other tasks between ops."""
    graph = sf.Graph()
    views: list[str | None] = []
    async with graph.as_default():
        overlap.enter()
        x = sf.placeholder(sf.float32, shape=(), name="x")
        await asyncio.sleep(0)
        views.append(_own_view(graph, ""))
        async with sf.name_scope("layer") as scope:
            w = sf.constant(float(index), name="w")
            await asyncio.sleep(0)
            views.append(_own_view(graph, "layer"))
            y = sf.add(x * w, 1.0, name="y")
            await asyncio.sleep(0)
            views.append(_own_view(graph, "layer"))
        await asyncio.sleep(0)
        views.append(_own_view(graph, ""))
        overlap.leave()
    problems = tuple(f"task {index}: {v}" for v in views if v is not None)
    return _Built(index, graph, x, y, scope, problems)


def _check_concurrent_graphs(checks: Checks) -> None:
    """Build one graph per asyncio task and verify every graph and the parent's state."""
    global_ops = len(sf.get_default_graph().get_operations())
    overlap = _Overlap()

    async def build_all() -> list[_Built]:
        return await asyncio.gather(*(_build_graph(i, overlap) for i in range(N_TASKS)))

    built = asyncio.run(build_all())

    distinct = len({id(b.graph) for b in built})
    checks.check(
        distinct == N_TASKS,
        f"{N_TASKS} tasks built {N_TASKS} distinct graphs",
        f"only {distinct} distinct graphs",
    )
    checks.check(
        overlap.peak > 1,
        f"up to {overlap.peak} tasks were inside their graph scopes at the same time",
        "the tasks never interleaved",
    )
    problems = [p for b in built for p in b.problems]
    checks.check(
        not problems,
        "after every await, each task still saw only its own default graph and name scope",
        "; ".join(problems[:3]),
    )
    wrong_scopes = [b.index for b in built if b.scope != "layer/"]
    checks.check(
        not wrong_scopes,
        "`async with sf.name_scope('layer') as scope` bound 'layer/' in every task",
        f"tasks {wrong_scopes[:5]}",
    )
    wrong_ops = [
        (b.index, names)
        for b in built
        if (names := tuple(op.name for op in b.graph.get_operations())) != EXPECTED_OPS
    ]
    checks.check(
        not wrong_ops,
        f"every graph holds exactly the ops {list(EXPECTED_OPS)}",
        f"first mismatch {wrong_ops[:1]}",
    )
    wrong_values = []
    for b in built:
        value = sf.Session(b.graph).run(b.y, feed_dict={b.x: FEED})
        if value != FEED * b.index + 1.0:
            wrong_values.append((b.index, value))
    checks.check(
        not wrong_values,
        f"sf.Session(g).run(y, feed_dict={{x: {FEED}}}) == {FEED} * i + 1 for every graph i",
        f"first mismatches {wrong_values[:3]}",
    )
    checks.check(
        sf.executing_eagerly() and not sf.has_default_graph() and sf.get_name_scope() == "",
        "the parent's state is untouched: eager, no graph entered, name scope ''",
    )
    after = len(sf.get_default_graph().get_operations())
    checks.check(
        after == global_ops,
        "no op leaked into the global default graph",
        f"it went from {global_ops} to {after} ops",
    )


# -- init_scope ---------------------------------------------------------------------------


def _check_init_scope_into_graph(checks: Checks) -> None:
    """``init_scope`` inside a FuncGraph puts ops in the outer graph, without control deps."""
    outer = sf.Graph()
    with outer.as_default():
        fn_graph = sf.FuncGraph("f", outer_graph=outer)
        with fn_graph.as_default(), sf.name_scope("layer"):
            gate = sf.no_op(name="gate")
            with sf.control_dependencies([gate]):
                inside = sf.constant(1.0, name="inside")
                with sf.init_scope():
                    body_graph = sf.get_default_graph()
                    body_in_function = sf.inside_function()
                    lifted = sf.constant(2.0, name="lifted")

    checks.check(
        inside.graph is fn_graph and inside.op.control_inputs == (gate,),
        "an op made in the function body stays in FuncGraph 'f', after its control input",
    )
    checks.check(
        body_graph is outer and not body_in_function,
        "inside init_scope the default graph is the outer graph, not the function graph",
    )
    checks.check(
        lifted.graph is outer and lifted.op.name == "layer/lifted",
        "init_scope lifted constant 'layer/lifted' into the outer graph, keeping its name scope",
        f"it is {lifted.op.name!r} in {lifted.graph!r}",
    )
    checks.check(
        lifted.op.control_inputs == (),
        "the lifted constant has no control inputs (init_scope clears them)",
        f"control inputs {lifted.op.control_inputs}",
    )
    names = [op.name for op in fn_graph.get_operations()]
    checks.check(
        names == ["layer/gate", "layer/inside"],
        "the function graph holds only the ops made in its body",
        f"it holds {names}",
    )
    value = sf.Session(outer).run(lifted)
    checks.check(
        value == 2.0,
        "sf.Session(outer).run(lifted) == 2.0",
        f"got {value!r}",
    )


def _check_init_scope_into_eager(checks: Checks) -> None:
    """``init_scope`` inside a FuncGraph entered from eager code runs ops eagerly."""
    log_before = sf.context_switches()
    fn_graph = sf.FuncGraph("g")
    with fn_graph.as_default():
        building = not sf.executing_eagerly() and sf.inside_function()
        with sf.init_scope():
            body_eager = sf.executing_eagerly()
            body_in_function = sf.inside_function()
            table = sf.constant([1.0, 2.0, 3.0])

    checks.check(building, "inside FuncGraph 'g' ops are being traced, not executed")
    checks.check(
        body_eager and not body_in_function,
        "inside init_scope the outer context is eager again (inside_function() is False)",
    )
    checks.check(
        isinstance(table, sf.EagerTensor) and table.numpy().tolist() == [1.0, 2.0, 3.0],
        "init_scope produced an eager tensor holding [1.0, 2.0, 3.0]",
        f"got {table!r}",
    )
    checks.check(
        not fn_graph.get_operations(),
        "nothing was added to the function graph",
        f"it holds {[op.name for op in fn_graph.get_operations()]}",
    )
    checks.check(
        sf.executing_eagerly() and sf.context_switches() == log_before,
        "after the scopes close, the context-switch log is back to what it was",
    )


# -- entry points -------------------------------------------------------------------------


def run_demo(out: TextIO | None = None) -> int:
    """Run the demo, printing each check to ``out`` (stdout); return the exit code."""
    stream = sys.stdout if out is None else out
    print(f"scopeflow {sf.__version__} demo", file=stream)
    start = time.perf_counter()
    checks = Checks(stream)
    sections = (
        (
            f"Concurrent graph building: {N_TASKS} asyncio tasks awaiting inside "
            f"as_default() and name_scope()",
            _check_concurrent_graphs,
        ),
        ("init_scope inside a FuncGraph built in an outer graph", _check_init_scope_into_graph),
        ("init_scope inside a FuncGraph entered from eager code", _check_init_scope_into_eager),
    )
    for title, section in sections:
        checks.run(title, section)
    elapsed = time.perf_counter() - start
    if checks.failed:
        print(f"\n{checks.failed} of {checks.total} checks FAILED ({elapsed:.2f} s)", file=stream)
        return 1
    print(f"\nall {checks.total} checks passed in {elapsed:.2f} s", file=stream)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Args:
        argv: the command line arguments without the program name.

    Returns:
        0 on success, 1 if a demo check failed or a picture could not be rendered, 2 for
        a missing or unknown command or target.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["demo"]:
        return run_demo()
    if args in (["demo", "-h"], ["demo", "--help"]):
        print(DEMO_HELP, end="")
        return 0
    if args[:1] == ["graph"]:
        from ._cli_graph import graph_command  # imports argparse: only for this command

        return graph_command(args[1:])
    if args in (["-h"], ["--help"], ["help"]):
        print(USAGE, end="")
        return 0
    if args:
        print(f"scopeflow: unknown command {' '.join(args)!r}", file=sys.stderr)
    print(USAGE, end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
