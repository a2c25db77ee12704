"""Import cost: ``import scopeflow`` against ``import numpy``, each in a fresh process.

SPEC §11 asks for an import time ≤ 1.5 x NumPy's and a peak memory ≤ NumPy's + 10 MiB.
NumPy is the floor because scopeflow cannot be imported without it.

Method: for each run, start ``sys.executable`` for scopeflow, for numpy (the order
alternates between runs) and for nothing. The child measures the import statement alone
(interpreter start-up, the same for all, is not part of the figure) in CPU time of the
importing thread (``time.thread_time``: neither other processes on a shared 2-core
machine nor the BLAS worker threads NumPy starts are counted) and in wall time, then
reads its own peak resident set size (``VmHWM`` in ``/proc/self/status``, or
``ru_maxrss``). Times shown are minima over the runs, peak RSS the median. The verdict
takes the larger of two ratios: the ratio of the minima, and the median over runs of
scopeflow's time over numpy's in the same run (the two children start back to back, so
load from other processes that comes and goes hits both).

Children find the bytecode of both packages in a warmed ``PYTHONPYCACHEPREFIX``, as an
installed package finds its ``.pyc`` files. Shown for reference: the same figure with this
environment's own bytecode (``-B``; with ``PYTHONDONTWRITEBYTECODE`` set and no
``__pycache__`` in the source tree, scopeflow is compiled on every import), and the wall
time of the whole child process.

A breakdown from ``python -X importtime`` follows the table: the modules that
``import scopeflow`` loads and ``import numpy`` does not, by self time (minimum over a few
runs), i.e. where the time above NumPy's goes.

Run: ``python benchmarks/bench_import.py [--runs N] [--json PATH] [--check]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from _common import Row, add_common_args, finish, print_table

_CHILD = """\
import time
c0 = time.thread_time()
t0 = time.perf_counter()
{statement}
t1 = time.perf_counter()
c1 = time.thread_time()
try:
    with open("/proc/self/status") as f:
        hwm = int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
except OSError:
    import resource
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(t1 - t0, c1 - c0, hwm)
"""

_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def child_env(pycache: str | None) -> dict[str, str]:
    """The environment of a child: bytecode cached under ``pycache``, or as inherited."""
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def run_child(module: str | None, env: dict[str, str]) -> tuple[float, float, float, float]:
    """(import CPU s, peak RSS MiB, process wall s, import wall s) of a fresh interpreter.

    Without a cache prefix the child runs with ``-B`` so it never writes ``__pycache__``
    next to the sources.
    """
    statement = f"import {module}" if module else "pass"
    flags = [] if "PYTHONPYCACHEPREFIX" in env else ["-B"]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *flags, "-c", _CHILD.format(statement=statement)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        msg = f"the child running {statement!r} failed:\n{proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    out = proc.stdout
    wall = time.perf_counter() - start
    seconds, cpu, hwm_kib = out.split()
    return float(cpu), int(hwm_kib) / 1024, wall, float(seconds)


def importtime(module: str, runs: int, env: dict[str, str]) -> dict[str, int]:
    """Self time in µs of every module ``import module`` loads (min over ``runs``)."""
    best: dict[str, int] = {}
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stderr
        seen: dict[str, int] = {}
        for line in err.splitlines():
            m = _IMPORTTIME.match(line)
            if m:
                seen[m.group(4)] = int(m.group(1))
        for name, us in seen.items():
            best[name] = min(best.get(name, us), us)
    return best


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and the breakdown, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per module")
    add_common_args(parser)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sf-bench-pycache-") as pycache:
        modes = {"cached": child_env(pycache), "as-is": child_env(None)}
        for module in ("scopeflow", "numpy"):
            run_child(module, modes["cached"])  # warm-up: write both packages' bytecode
        results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
        for i in range(args.runs):
            order = ["scopeflow", "numpy", ""] if i % 2 == 0 else ["numpy", "scopeflow", ""]
            for mode, env in modes.items():
                for module in order:
                    results.setdefault((mode, module), []).append(run_child(module or None, env))
        sf_mods = importtime("scopeflow", 5, modes["cached"])
        np_mods = importtime("numpy", 5, modes["cached"])

    def best(mode: str, module: str, field: int) -> float:
        return min(r[field] for r in results[mode, module]) * 1e3

    def median_rss(module: str) -> float:
        return statistics.median(r[1] for r in results["cached", module])

    def paired_ratio(mode: str, field: int) -> float:
        # Run i started its scopeflow and numpy children back to back: the ratio within a
        # pair is immune to load that comes and goes over seconds; take the median pair.
        pairs = zip(results[mode, "scopeflow"], results[mode, "numpy"], strict=True)
        return statistics.median(a[field] / b[field] for a, b in pairs)

    sf_ms, np_ms = best("cached", "scopeflow", 0), best("cached", "numpy", 0)
    # Judge conservatively: load inflates numpy's import (and so the floor) more than the
    # Python code scopeflow adds, so under load the paired ratio reads low; the ratio of the
    # minima reads low when only scopeflow's runs met a quiet moment. Take the larger.
    ratio = max(paired_ratio("cached", 0), sf_ms / np_ms)
    raw_sf_ms, raw_np_ms = best("as-is", "scopeflow", 0), best("as-is", "numpy", 0)
    sf_mib, np_mib, bare_mib = median_rss("scopeflow"), median_rss("numpy"), median_rss("")
    sf_wall, np_wall = best("cached", "scopeflow", 2), best("cached", "numpy", 2)
    sf_iwall, np_iwall = best("cached", "scopeflow", 3), best("cached", "numpy", 3)
    bare_wall = best("cached", "", 2)
    dont_write = os.environ.get("PYTHONDONTWRITEBYTECODE")
    rows = [
        Row(
            figure="import scopeflow, CPU time of the import (bytecode cached)",
            value=f"{sf_ms:.1f} ms",
            floor=f"import numpy = {np_ms:.1f} ms",
            ratio=f"{ratio:.2f}x",
            target="≤ 1.5x",
            ok=ratio <= 1.5,
        ),
        Row(
            figure="import scopeflow, peak RSS of the process",
            value=f"{sf_mib:.1f} MiB",
            floor=f"import numpy = {np_mib:.1f} MiB",
            ratio=f"{sf_mib - np_mib:+.1f} MiB",
            target="≤ +10 MiB",
            ok=sf_mib <= np_mib + 10,
        ),
        Row(
            figure="import scopeflow, wall time of the import (bytecode cached)",
            value=f"{sf_iwall:.1f} ms",
            floor=f"import numpy = {np_iwall:.1f} ms",
            ratio=f"{paired_ratio('cached', 3):.2f}x",
            target="—",
            ok=None,
        ),
        Row(
            figure="import scopeflow, CPU time, this environment's bytecode (-B)",
            value=f"{raw_sf_ms:.1f} ms",
            floor=f"import numpy = {raw_np_ms:.1f} ms",
            ratio=f"{paired_ratio('as-is', 0):.2f}x",
            target="—",
            ok=None,
        ),
        Row(
            figure="python -c 'import scopeflow', process wall time (cached)",
            value=f"{sf_wall:.1f} ms",
            floor=f"numpy = {np_wall:.1f} ms",
            ratio=f"{paired_ratio('cached', 2):.2f}x",
            target="—",
            ok=None,
        ),
    ]
    print_table(
        "bench_import: import scopeflow vs import numpy, fresh processes",
        rows,
        notes=[
            f"{args.runs} runs each, order alternating; times shown = min, RSS = median; the "
            f"info ratios are medians over runs of scopeflow / numpy within one run (the two "
            f"children start back to back, so both see the same machine load)",
            f"the verdict uses the importing thread's CPU time (time.thread_time in the child; "
            f"on an idle machine about the wall time) and the larger of the paired median "
            f"({paired_ratio('cached', 0):.2f}x) and the ratio of the minima "
            f"({sf_ms / np_ms:.2f}x; wall: {sf_iwall / np_iwall:.2f}x)",
            "bytecode cached: children use a warmed PYTHONPYCACHEPREFIX, as an installed "
            "package uses its .pyc files (the SPEC row)",
            "this environment's bytecode: the inherited environment, run with -B; "
            f"PYTHONDONTWRITEBYTECODE={dont_write!r} here, so a source tree without "
            "__pycache__ is compiled on every import",
            f"a child importing nothing: {bare_wall:.1f} ms wall, {bare_mib:.1f} MiB peak RSS",
        ],
    )

    extra = {name: us for name, us in sf_mods.items() if name not in np_mods}
    total = sum(extra.values())
    print(
        f"\n-X importtime (bytecode cached): {len(extra)} modules imported by scopeflow "
        f"beyond numpy's, {total / 1e3:.1f} ms self time in total; the largest:"
    )
    for name, us in sorted(extra.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {us / 1e3:6.2f} ms  {name}")
    sys.stdout.flush()
    return finish(args, "import", rows)


if __name__ == "__main__":
    sys.exit(main())
