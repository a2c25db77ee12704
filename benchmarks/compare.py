"""Before/after table: every benchmark against two source trees, in one run.

For each ``bench_*.py`` this runs the *current* benchmark script twice, back to back, in
fresh interpreters: once with ``PYTHONPATH`` pointing at the ``src/`` of a checkout of the
``--before`` revision (made with ``git worktree add`` in a temporary directory) and once
with this tree's ``src/``. Alternating per benchmark keeps both sides under the same
machine load, so the ratios (each against floors measured in its own process) compare.
Rows that the old code cannot run (a benchmark using an API added later) show "—".

Run: ``python benchmarks/compare.py --before 90675c9 [--quick] [--check] [--only NAME ...]``;
it prints one Markdown table ready for ``benchmarks/README.md``; ``--check`` judges this
tree's rows as ``run_all.py --check`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from run_all import BENCHES, QUICK_ARGS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_bench(name: str, src: Path, quick: bool, json_path: Path) -> dict[str, Any] | None:
    """Run ``bench_<name>.py`` against the package in ``src``; its ``--json`` output."""
    cmd = [sys.executable, str(HERE / f"bench_{name}.py"), "--json", str(json_path)]
    if quick:
        cmd += QUICK_ARGS.get(name, [])
    env = dict(os.environ, PYTHONPATH=str(src))
    status = subprocess.run(cmd, check=False, env=env).returncode
    if status != 0 or not json_path.exists():
        print(f"note: bench_{name}.py exited {status} against {src}", file=sys.stderr)
        return None
    with json_path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def table(pairs: list[tuple[str, dict[str, Any] | None, dict[str, Any]]]) -> str:
    """One Markdown table: each after-row beside the before-row of the same figure."""
    lines = [
        "| bench | figure | before | before ratio | after | after ratio | floor (after) "
        "| target | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for bench, before, after in pairs:
        old = {r["figure"].strip(): r for r in (before or {}).get("rows", [])}
        for row in after["rows"]:
            figure = row["figure"].strip()
            prev = old.get(figure, {})
            verdict = row["verdict"]
            cells = [
                bench,
                figure,
                prev.get("value", "—"),
                prev.get("ratio", "—"),
                row["value"],
                row["ratio"],
                row["floor"],
                row["target"],
                f"**{verdict}**" if verdict.startswith("MISS") else verdict,
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Check out ``--before``, run every benchmark on both sides, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' side")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 1,000 tasks")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if this tree misses a target (documented misses excepted), as run_all",
    )
    args = parser.parse_args(argv)

    pairs: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="sf-compare-") as tmp:
        old_tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree), args.before],
            check=True,
        )
        try:
            for name in args.only or BENCHES:
                before = run_bench(name, old_tree / "src", args.quick, Path(tmp) / "b.json")
                after = run_bench(name, ROOT / "src", args.quick, Path(tmp) / "a.json")
                if after is None:
                    print(f"ERROR: bench_{name}.py failed on this tree", file=sys.stderr)
                    return 2
                pairs.append((after["bench"], before, after))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
                check=False,
            )
    print(table(pairs))
    misses = [
        f"{bench}: {row['figure'].strip()}"
        for bench, _, after in pairs
        for row in after["rows"]
        if row["verdict"] == "MISS"
    ]
    print(f"\n{len(misses)} target(s) missed on this tree" + (":" if misses else "."))
    for miss in misses:
        print(f"  - {miss}")
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
