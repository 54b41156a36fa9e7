#!/usr/bin/env python3
"""A/B: one scenario against two checkouts of Bazar, run side by side and alternated.

    .venv/bin/python loadtests/ab.py --before addf2b6                # HEAD vs addf2b6
    .venv/bin/python loadtests/ab.py --before addf2b6 --rounds 8 --scenarios cached,buy
    .venv/bin/python loadtests/ab.py --tls                           # TLS off vs on, HEAD
    .venv/bin/python loadtests/ab.py --before addf2b6 --scenarios uncached-buying

On a shared 2-core VM two runs of the same code differ by up to 20%, which
hides a 5% cost. Here both builds run at once (each idle while the other is
measured) and the short wrk runs alternate A, B, B, A, ..., so drift hits
both alike. Each round prints req/s of both and their ratio; the summary is
the median ratio per scenario, and the CPU time the whole cluster spent per
request (every node's processes, from /proc), which drifts less than req/s.
The "before" checkout is a git worktree made for the run and removed after.
With --tls both sides run this working tree, "before" with [tls] off and "after"
with it on: customers (wrk) speak HTTPS to the front-end over keep-alive
connections, and every call between nodes is mutual TLS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import BUY_LUA, TUNING, _children, write_script, wrk  # noqa: E402
from benchkit import ANY_BOOK_LUA, stock_up  # noqa: E402

from common.ops import procs  # noqa: E402
from tests.support.cluster import ROOT, LocalCluster  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    label: str
    cluster: LocalCluster
    rps: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # per request, whole cluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="git revision to compare with")
    parser.add_argument("--tls", action="store_true", help="compare [tls] off with on instead")
    parser.add_argument("--after", help="git revision (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=6, help="pairs of runs per scenario")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--scenarios",
        default="cached,buy",
        help="cached, uncached, buy, uncached-buying (uncached lookups measured while as many "
        "connections buy)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("ab: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    if bool(args.before) == args.tls:
        parser.error("give either --before REVISION or --tls")
    scenarios = args.scenarios.split(",")
    trees = {
        "before": checkout(args.before) if args.before else ROOT,
        "after": checkout(args.after) if args.after else ROOT,
    }
    sides: list[Side] = []
    try:
        sides = [
            start(f"before ({args.before or 'TLS off'})", trees["before"]),
            start(
                f"after ({args.after or 'working tree'}{', TLS on' * args.tls})",
                trees["after"],
                args.tls,
            ),
        ]
        for scenario in scenarios:
            run_scenario(scenario, sides, args)
        summary(sides, scenarios, args)
    finally:
        for side in sides:
            side.cluster.down()
            shutil.rmtree(side.cluster.root, ignore_errors=True)
        for tree in trees.values():
            if tree != ROOT:
                git("worktree", "remove", "--force", str(tree))
                shutil.rmtree(tree.parent, ignore_errors=True)
    return 0


def checkout(revision: str) -> Path:
    """A git worktree of `revision` in a temporary folder (removed by main)."""
    tree = Path(tempfile.mkdtemp(prefix="bazar-ab-")) / "tree"
    git("worktree", "add", "--detach", str(tree), revision)
    return tree


def git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True)  # noqa: S603 S607  # nosec


def start(label: str, code: Path, tls: bool = False) -> Side:
    root = Path(tempfile.mkdtemp(prefix="bazar-ab-cluster-"))
    cluster = LocalCluster(root, tuning=TUNING, code=code, tls=tls).up()
    stock_up(cluster)
    print(f"{label}: {cluster.api.url}", flush=True)
    return Side(label, cluster)


def run_scenario(scenario: str, sides: list[Side], args) -> None:
    buy_script = write_script(BUY_LUA, sides[0].cluster.root)  # removed with that cluster
    any_book = write_script(ANY_BOOK_LUA, sides[0].cluster.root)
    # Any seed book, as `make bench` asks: one book alone measures mostly coalescing.
    uncached = (["-H", "Cache-Control: no-cache"], any_book, "")
    plan = {
        "cached": ([], None, "/lookup/1"),
        "uncached": uncached,
        "buy": ([], buy_script, ""),
        # Reads of books being bought: the writer's reads wait for the buys they may have
        # seen (catalog.doubt). CPU per request here counts the buys' CPU too.
        "uncached-buying": uncached,
    }
    extra, script, path = plan[scenario]
    beside = buy_script if scenario == "uncached-buying" else None
    print(f"\n{scenario}: {args.rounds} rounds of {args.seconds} s per side", flush=True)
    for n in range(args.rounds):
        order = sides if n % 2 == 0 else sides[::-1]  # A B, then B A: no side always goes first
        figures = {}
        for side in order:
            side.cluster.api.lookup(1)  # warm the cache and the pools
            cpu_before = cluster_cpu_seconds(side.cluster)
            result = _measured(side, scenario, path, extra, script, beside, args)
            requests = result.rps * args.seconds
            cpu = (cluster_cpu_seconds(side.cluster) - cpu_before) * 1000 / max(requests, 1)
            side.rps.setdefault(scenario, []).append(result.rps)
            side.cpu_ms.setdefault(scenario, []).append(cpu)
            figures[side.label] = (result.rps, cpu, result.p99_ms)
        (a_rps, a_cpu, a_p99), (b_rps, b_cpu, b_p99) = (figures[s.label] for s in sides)
        print(
            f"  round {n + 1}: before {a_rps:6.0f} req/s {a_cpu:5.2f} ms CPU/req p99 {a_p99:.0f} ms"
            f"   after {b_rps:6.0f} req/s {b_cpu:5.2f} ms CPU/req p99 {b_p99:.0f} ms"
            f"   after/before {b_rps / a_rps:.3f}",
            flush=True,
        )


def _measured(side: Side, scenario: str, path: str, extra, script, beside, args):
    """wrk's result for the scenario; with `beside`, that script runs alongside (unmeasured)."""
    url = side.cluster.api.url
    if beside is None:
        return wrk(scenario, url + path, extra, script, args, "")
    background = threading.Thread(target=wrk, args=("beside", url, [], beside, args, ""))
    background.start()
    try:
        return wrk(scenario, url + path, extra, script, args, "")
    finally:
        background.join()


def cluster_cpu_seconds(cluster: LocalCluster) -> float:
    """User + system CPU of every node's processes (gunicorn master and worker)."""
    total = 0.0
    for node in cluster.cluster.nodes.values():
        master = procs.running_pid(cluster.cluster, node)
        if master:
            total += sum(_cpu_seconds(pid) for pid in [master, *_children(master)])
    return total


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def summary(sides: list[Side], scenarios: list[str], args) -> None:
    before, after = sides
    print(f"\nsummary (median of {args.rounds} rounds; ratio = after / before, per round)")
    print(f"{'scenario':<10}{'before req/s':>14}{'after req/s':>13}{'ratio':>8}{'CPU ms/req':>16}")
    for s in scenarios:
        ratios = [b / a for a, b in zip(before.rps[s], after.rps[s], strict=True)]
        cpu_before, cpu_after = (statistics.median(side.cpu_ms[s]) for side in sides)
        cpu = f"{cpu_before:.2f} -> {cpu_after:.2f}"
        print(
            f"{s:<10}{statistics.median(before.rps[s]):>14.0f}"
            f"{statistics.median(after.rps[s]):>13.0f}"
            f"{statistics.median(ratios):>8.3f}{cpu:>16}"
        )


if __name__ == "__main__":
    sys.exit(main())
