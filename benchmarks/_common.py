"""Shared helpers for the benchmarks: interleaved min-of-N timing, result rows, the table.

Every benchmark measures a figure and its floor in the same process and the same run, so a
busy or throttled machine slows both. Timings use :mod:`timeit` (garbage collection off
while a statement runs, unless a case turns it back on) and take the minimum over many
rounds: noise only ever adds time, so the minimum is the best estimate of the cost.
Within a round the cases run one after another (round-robin), so slow drifts of the
machine hit the figure and its floor alike.

Per-call figures are reported *net of timeit's empty-loop overhead* (measured in the same
rounds as ``pass``), so a ratio compares the cost of the two statements, not of the loop.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import datetime
import json
import os
import platform
import sys
import timeit
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

__all__ = [
    "DOCUMENTED_MISSES",
    "Case",
    "Floor",
    "Row",
    "add_common_args",
    "documented_miss",
    "expect",
    "finish",
    "fmt_ns",
    "machine_line",
    "print_table",
    "ratio_row",
    "time_cases",
]

Env = Callable[[], contextlib.AbstractContextManager[Any]]

FLOOR_VAR: contextvars.ContextVar[object] = contextvars.ContextVar("floor")
FLOOR_VAR.set(None)  # G and F use a variable that holds a value, as scopeflow's does in scopes


class Floor:
    """Floor F: the least a class-based ContextVar scope can do (one set, one reset)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = FLOOR_VAR.set(None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        FLOOR_VAR.reset(self._token)


@dataclass
class Case:
    """One statement to time.

    Attributes:
        label: the key of the result.
        stmt: the statement, as for :func:`timeit.repeat`.
        namespace: the globals the statement runs in.
        env: entered around every round (not timed): e.g. a fresh graph's ``as_default``.
        setup: timeit setup, run untimed before each round (``"gc.enable()"``).
        number: executions per round; calibrated to about ``round_s`` when None.
    """

    label: str
    stmt: str
    namespace: dict[str, Any]
    env: Env | None = None
    setup: str = "pass"
    number: int | None = None
    _timer: timeit.Timer | None = field(default=None, repr=False)


# Rows whose target is known to be out of reach of the current design, each explained in
# benchmarks/README.md ("Documented misses"): keyed by the start of the row's figure. Such
# a row keeps its target and still prints MISS (as "MISS (documented)") when it misses;
# only ``--check`` lets it pass, so that the check guards every other row. Remove an entry
# when its row is met.
DOCUMENTED_MISSES: dict[str, str] = {
    "10,000 tasks x 100 ops": "an object per op alone is ~2.9 x (study_task_heap.py): ~4.5 x",
    "10,000 tasks x 100 steps of x = x + 1.0": "one tracked object per step, as the row above",
    "init_scope() enter+exit, eager": "a new frame 1.7 x F + nesting protocol: 2.1 x F floor",
    "name_scope('a') in a graph": "4.7-5.2 x: a 2.7 x F entry + lock, new name, 'a_N/' string",
    "control_dependencies(": "3.2-3.6 x: a 2.7 x F entry plus the input snapshot and chain link",
    "Checkpoint write + restore": "ext4 flushes a file renamed over another (auto_da_alloc)",
}


def documented_miss(figure: str) -> str | None:
    """The documented reason a row with this figure may miss, if it is one of those."""
    figure = figure.strip()
    for prefix, reason in DOCUMENTED_MISSES.items():
        if figure.startswith(prefix):
            return reason
    return None


@dataclass
class Row:
    """One line of a result table (also what ``--json`` writes)."""

    figure: str
    value: str
    floor: str
    ratio: str
    target: str
    ok: bool | None  # None: informational, no target

    @property
    def documented(self) -> bool:
        """A miss of this row is one explained in benchmarks/README.md."""
        return self.ok is False and documented_miss(self.figure) is not None

    @property
    def verdict(self) -> str:
        """PASS, MISS, "MISS (documented)", or "info" for rows without a target."""
        if self.ok is None:
            return "info"
        if self.ok:
            return "PASS"
        return "MISS (documented)" if self.documented else "MISS"


def expect(condition: bool, what: str) -> None:
    """Fail the benchmark unless ``condition`` holds (not ``assert``: it survives ``-O``)."""
    if not condition:
        msg = f"benchmark check failed: {what}"
        raise RuntimeError(msg)


def fmt_ns(ns: float) -> str:
    """A duration in ns, µs or ms with three significant digits."""
    if ns < 1_000:
        return f"{ns:.1f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000_000:.2f} ms"


def _env(case: Case) -> contextlib.AbstractContextManager[Any]:
    return case.env() if case.env is not None else contextlib.nullcontext()


def _calibrate(case: Case, round_s: float) -> int:
    """Executions per round so that a round takes about ``round_s`` (also warms up)."""
    assert case._timer is not None
    number = 1
    while True:
        with _env(case):
            t = case._timer.timeit(number)
        if t >= round_s / 5 or number >= 10_000_000:
            return max(1, int(number * round_s / max(t, 1e-9)))
        number *= 10


def time_cases(
    cases: Sequence[Case], *, rounds: int, round_s: float = 0.02
) -> tuple[dict[str, float], float]:
    """Time ``cases`` round-robin; return ({label: ns per execution}, loop overhead ns).

    Each value is the minimum over ``rounds`` rounds, minus the minimum per-iteration cost
    of timeit's empty loop measured in the same rounds.
    """
    empty = Case("(empty loop)", "pass", {}, number=1_000_000)
    everything = [*cases, empty]
    for case in everything:
        case._timer = timeit.Timer(case.stmt, case.setup, globals=case.namespace)
        if case.number is None:
            case.number = _calibrate(case, round_s)
    best = {case.label: float("inf") for case in everything}
    for _ in range(rounds):
        for case in everything:
            assert case._timer is not None
            assert case.number is not None
            with _env(case):
                t = case._timer.timeit(case.number)
            best[case.label] = min(best[case.label], t / case.number * 1e9)
    overhead = best.pop(empty.label)
    return {label: ns - overhead for label, ns in best.items()}, overhead


def ratio_row(figure: str, ns: float, floor_name: str, floor_ns: float, limit: float | None) -> Row:
    """A row comparing ``ns`` with ``limit`` x the floor (``limit`` None: informational)."""
    ratio = ns / floor_ns
    return Row(
        figure=figure,
        value=fmt_ns(ns),
        floor=f"{floor_name} = {fmt_ns(floor_ns)}",
        ratio=f"{ratio:.2f}x",
        target="—" if limit is None else f"≤ {limit:g}x",
        ok=None if limit is None else ratio <= limit,
    )


def machine_line() -> str:
    """Date, CPU count, Python and NumPy versions (and OPENBLAS_CORETYPE if set)."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    line = (
        f"{now}; {os.cpu_count()} cores; Python {platform.python_version()} "
        f"({platform.python_implementation()}); NumPy {np.__version__}"
    )
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        line += f"; OPENBLAS_CORETYPE={coretype}"
    return line


def print_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    """Print ``rows`` as an aligned plain-text table under ``title``."""
    header = ("figure", "measured", "floor", "ratio", "target", "result")
    cells = [header] + [(r.figure, r.value, r.floor, r.ratio, r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    print(f"\n{title}\n{machine_line()}")
    for n, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for note in notes:
        print(f"  * {note}")
    sys.stdout.flush()


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--json PATH`` (write the rows) and ``--check`` (exit 1 on any MISS)."""
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 if any target is missed"
    )


def finish(args: argparse.Namespace, bench: str, rows: Sequence[Row]) -> int:
    """Write ``--json`` output and return the exit status for ``--check``."""
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "bench": bench,
                    "machine": machine_line(),
                    "rows": [asdict(r) | {"verdict": r.verdict} for r in rows],
                },
                f,
                indent=2,
            )
    # --check fails on any miss that is not a documented one (see DOCUMENTED_MISSES).
    missed = any(r.ok is False and not r.documented for r in rows)
    return 1 if args.check and missed else 0
