"""SPEC §11, serving row: the example app on uvicorn against the same app in plain NumPy.

Both servers (``examples/serving/app.py`` and ``examples/serving/numpy_app.py``) run at
once, each a uvicorn subprocess on a free 127.0.0.1 port loading the same exported model;
rounds alternate between them so machine drift hits both. Each round fires the same mixed
requests (``/predict``, ``/explain``, ``/build``, ``/predict_sync``, batches of 1-16 rows)
at concurrency 200 and checks every answer against NumPy. Per round and server: server CPU
per request (the process's user + system time from ``/proc``, so the client is not
counted), throughput, p50/p99 latency, and RSS after the round.

Target: scopeflow's server CPU per request ≤ 1.2 x NumPy's (the minimum over rounds of
each), and RSS flat: the last round's RSS within 5 % (and 8 MiB) of the second round's
(the first round warms caches and pools).

Run: ``python benchmarks/bench_serving.py [--rounds 5] [--requests 2000] [--check]``;
needs the ``serve`` extra.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

from _common import Row, add_common_args, expect, finish, print_table

SERVING = Path(__file__).resolve().parent.parent / "examples" / "serving"
sys.path.insert(0, str(SERVING))

import harness  # noqa: E402
import model  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (and its reaped children: none here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    msg = f"no VmRSS for pid {pid}"
    raise RuntimeError(msg)


def one_round(
    server: harness.Server, requests: list[harness.Request], concurrency: int
) -> dict[str, float]:
    """Fire ``requests`` at ``server``; its CPU, throughput, latency and RSS figures."""
    pid = server.process.pid
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    errors, latencies, _ = anyio.run(harness.fire, server.url, requests, concurrency)
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    expect(errors == [], f"every answer right ({len(errors)} wrong: {errors[:3]})")
    ms = np.asarray(latencies) * 1000
    return {
        "cpu_us": cpu / len(requests) * 1e6,
        "rps": len(requests) / wall,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rss": rss_mib(pid),
    }


def main() -> int:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    add_common_args(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp"
        weights = model.export(path, seed=0)
        requests = harness.mixed_requests(weights, args.requests, seed=1)
        results: dict[str, list[dict[str, float]]] = {"scopeflow": [], "numpy": []}
        with (
            harness.run_server(path, app="app:app") as sf_server,
            harness.run_server(path, app="numpy_app:app") as np_server,
        ):
            servers = {"scopeflow": sf_server, "numpy": np_server}
            for n in range(args.rounds):
                order = ("scopeflow", "numpy") if n % 2 == 0 else ("numpy", "scopeflow")
                for name in order:
                    results[name].append(one_round(servers[name], requests, args.concurrency))
                    print(f"round {n + 1} {name}: {results[name][-1]}", flush=True)

    def best(name: str, key: str) -> float:
        return min(r[key] for r in results[name])

    rows: list[Row] = []
    sf_cpu, np_cpu = best("scopeflow", "cpu_us"), best("numpy", "cpu_us")
    rows.append(
        Row(
            "server CPU per request (min over rounds)",
            f"{sf_cpu:.0f} µs",
            f"NumPy app = {np_cpu:.0f} µs",
            f"{sf_cpu / np_cpu:.2f}x",
            "≤ 1.2x",
            sf_cpu / np_cpu <= 1.2,
        )
    )
    for key, label, unit in (("rps", "throughput", "req/s"), ("p50", "p50 latency", "ms"),
                             ("p99", "p99 latency", "ms")):  # fmt: skip
        pick = max if key == "rps" else min
        sf_v = pick(r[key] for r in results["scopeflow"])
        np_v = pick(r[key] for r in results["numpy"])
        rows.append(Row(label, f"{sf_v:.1f} {unit}", f"NumPy app = {np_v:.1f} {unit}",
                        f"{sf_v / np_v:.2f}x", "—", None))  # fmt: skip
    for name in ("scopeflow", "numpy"):
        rss = [r["rss"] for r in results[name]]
        base = rss[1] if len(rss) > 1 else rss[0]
        flat = rss[-1] <= max(base * 1.05, base + 8)
        rows.append(
            Row(
                f"{name} server RSS by round",
                " → ".join(f"{x:.0f}" for x in rss) + " MiB",
                f"round 2 = {base:.0f} MiB",
                f"{rss[-1] / base:.2f}x",
                "flat (≤ 1.05x or +8 MiB)",
                flat,
            )
        )
    print_table(
        f"Serving: {args.rounds} rounds x {args.requests} mixed requests at concurrency "
        f"{args.concurrency}, every answer checked",
        rows,
        [
            "CPU is the server process's user + system time (/proc), the client excluded",
            "per round: "
            + "; ".join(
                f"{name} " + ", ".join(f"{r['cpu_us']:.0f}" for r in results[name]) + " µs"
                for name in results
            ),
        ],
    )
    return finish(args, "serving", rows)


if __name__ == "__main__":
    raise SystemExit(main())
