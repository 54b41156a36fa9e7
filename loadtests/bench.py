#!/usr/bin/env python3
"""Benchmark: every route against the fastest bare Flask endpoint, in one run.

    make bench          # or: .venv/bin/python loadtests/bench.py --seconds 10
    .venv/bin/python loadtests/bench.py --only buy,order-3 --seconds 5
    .venv/bin/python loadtests/bench.py --only none --soak 10    # memory under buys

First the ceilings: loadtests/ceiling.py under gunicorn, one worker, with each worker
class (sync, gthread, gevent), before the cluster starts. Then a fresh cluster, and
wrk against its front-end for each scenario, reading the CPU time of every node's
processes (/proc) before and after. Then the ceilings again, once the cluster is gone:
each ceiling is the two runs together (requests, time and CPU summed), since one
run's CPU per request varied by a third between back-to-back benches on this VM.
Prints req/s, the ratio to the best ceiling, p50/p99, CPU per acknowledged request,
every node's RSS, the idle cluster's CPU and issue 23's targets (multiples of the
best ceiling, docs/scale.md §7); writes bench.csv and bench.png (and bench_soak.csv)
to loadtests/results/.
Exits 0 whether or not the targets are met: it is a report.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests import benchreport, scale, scalereport  # noqa: E402
from loadtests.benchkit import (  # noqa: E402  # BUY_LUA, _children, write_script, wrk: ab.py
    ANY_BOOK_LUA,
    BUY_LUA,
    ORDER_LUA,
    UPDATE_LUA,
    Ceiling,
    MemorySampler,
    Result,
    _children,
    cluster_cpu_seconds,
    combined,
    frontend_reads,
    node_cpu_seconds,
    node_masters,
    node_rss,
    node_wakeups,
    paced_cpu_ms,
    stock_up,
    write_script,
    wrk,
)
from tests.support.cluster import LocalCluster  # noqa: E402

__all__ = ["BUY_LUA", "TUNING", "_children", "main", "write_script", "wrk"]

RESULTS = Path(__file__).resolve().parent / "results"
TUNING = {"health_period": 0.5, "sender_period": 0.5, "startup_grace": 5.0, "cache_ttl": 60.0}
WORKER_CLASSES = ("sync", "gthread", "gevent")
SCENARIOS = {  # name -> (path on the front-end, extra wrk arguments, Lua script)
    "lookup-cached": ("/lookup/1", [], None),
    "lookup-uncached": ("/", ["-H", "Cache-Control: no-cache"], ANY_BOOK_LUA),
    "search": ("/search/distributed%20systems", [], None),
    "buy": ("/", [], BUY_LUA),
    "order-3": ("/", [], ORDER_LUA),
    "staff-update": ("/", [], UPDATE_LUA),
}
SOAK_CONNECTIONS = 16
SOAK_PERIOD_S = 10.0
SETTLE_S = 0.5  # after wrk stops, before the CPU is read: requests in flight finish
IDLE_SETTLE_S = 3.0  # after the start and the stock writes, before the idle CPU is read
# How long the idle cluster's CPU is measured. /proc counts CPU in 10 ms ticks, read
# twice for each of 12 processes: over 5 s that alone moved the sum by several ms/s.
IDLE_S = 15.0
PACED_GAPS_S = (0.02, 0.002)  # pauses between a paced ceiling's requests
PACED_S = 2.0  # how long each paced run lasts


@dataclass
class Soak:
    result: Result
    samples: list  # [(seconds, {node: (worker MB, node MB)})], every SOAK_PERIOD_S

    def growth(self) -> dict[str, tuple[float, float, float]]:
        """node -> (MB at start, MB at end, growth as a fraction of the start)."""
        first, last = self.samples[0][1], self.samples[-1][1]
        return {
            name: (first[name][1], last[name][1], last[name][1] / first[name][1] - 1)
            for name in first
            if name in last and first[name][1]
        }


@dataclass
class Run:
    ceilings: list[Result]
    scenarios: list[Result] = field(default_factory=list)
    memory_start: dict = field(default_factory=dict)  # node -> (worker MB, node MB)
    memory_end: dict = field(default_factory=dict)
    peaks: dict = field(default_factory=dict)  # node -> node MB
    idle_cpu_ms_per_s: float | None = None  # the whole cluster, idle
    idle_by_node: dict = field(default_factory=dict)  # node -> ms CPU per second, idle
    idle_s: float = IDLE_S
    check_ok: bool = True
    soak: Soak | None = None
    scale: scale.Scale | None = None  # with --titles

    @property
    def best(self) -> Result:
        return max(self.ceilings, key=lambda r: r.ok_rps)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated, or 'none' (the ceilings always run): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help=f"then buy for MINUTES ({SOAK_CONNECTIONS} connections); RSS every {SOAK_PERIOD_S:g}s",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the CSV and PNG go")
    parser.add_argument(
        "--titles",
        type=int,
        default=0,
        help="then the same at this many titles (loadtests/scale.py)",
    )
    parser.add_argument("--orders", type=int, default=0, help="with --titles: orders loaded")
    args = parser.parse_args(argv)
    args.only = [] if args.only == "none" else [s for s in args.only.split(",") if s]
    if args.titles and args.titles < 1000:
        parser.error("--titles: at least 1000")
    unknown = [s for s in args.only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("bench: wrk not found (apt-get install wrk, or use `make bench`)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bazar-bench-"))
    cluster = LocalCluster(work / "cluster", tuning=TUNING)
    print(header(args), flush=True)
    try:
        run = measure(cluster, work, args)
    finally:
        cluster.discard()
        shutil.rmtree(work, ignore_errors=True)
    print("\nceilings again, the cluster gone (each ceiling below is both runs together):")
    again = [
        run_ceiling(kind, cluster.cluster.tuning.threads, args, paced=False)
        for kind in WORKER_CLASSES
    ]
    run.ceilings = [combined([one, two]) for one, two in zip(run.ceilings, again, strict=True)]
    at_scale = [*run.scale.scenarios, *run.scale.seeds, *run.scale.spreads] if run.scale else []
    soaked = [run.soak.result] if run.soak else []
    for result in [*run.ceilings, *run.scenarios, *at_scale, *soaked]:
        result.ratio = result.ok_rps / run.best.ok_rps if run.best.ok_rps else 0.0
    benchreport.report(run, args)
    if run.scale:
        found = scalereport.report(run.scale, args.out)
        met = sum(1 for *_, ok in found if ok)
        print(f"scale targets met: {met} of {len(found)}")
    return 0


def header(args) -> str:
    machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return (
        f"Bazar benchmark {time.strftime('%Y-%m-%d %H:%M')} on {machine}\n"
        f"wrk {args.threads} threads, {args.connections} connections, {args.seconds} s each"
    )


def measure(cluster: LocalCluster, work: Path, args) -> Run:
    threads = cluster.cluster.tuning.threads
    print("\nceilings (bare Flask JSON endpoint, gunicorn, 1 worker), before the cluster starts:")
    run = Run([run_ceiling(kind, threads, args) for kind in WORKER_CLASSES])
    cluster.up()
    masters = node_masters(cluster)
    stock_up(cluster)
    run.idle_by_node = idle_cpu(masters)
    run.idle_cpu_ms_per_s = sum(run.idle_by_node.values())
    run.memory_start = node_rss(masters)
    sampler = MemorySampler(masters, 1.0)
    sampler.start()
    try:
        print(f"\nscenarios against the front-end ({cluster.api.url}):")
        for name in args.only:
            run.scenarios.append(run_scenario(name, cluster, masters, work, args))
        if args.titles:
            scenario_for = lambda c, m: scale_scenario(c, m, args)  # noqa: E731
            run.scale = scale.run(cluster, work, args, scenario_for, masters, TUNING)
        if args.soak:
            run.soak = run_soak(cluster, masters, work, args)
    finally:
        sampler.stop()
    run.memory_end = node_rss(masters)
    run.peaks = sampler.peaks()
    check = cluster.check()
    run.check_ok = check.returncode == 0
    print("\nbazar check after the run:", "replicas identical" if run.check_ok else "DIFFER")
    if not run.check_ok:
        print(check.stdout)
    return run


def scale_scenario(cluster: LocalCluster, masters: dict, args):
    """What scale.run calls to run one scenario under wrk for `seconds` on `cluster` (its
    nodes' masters: `masters`), CPU read around it."""
    staff = cluster.cluster.staff_token
    reads = lambda: frontend_reads(cluster)  # noqa: E731

    def one(name: str, path: str, extra: list, script: str, seconds: int) -> Result:
        cpu = lambda: node_cpu_seconds(masters)  # noqa: E731
        timing = argparse.Namespace(**{**vars(args), "seconds": seconds})
        url = cluster.api.url + path
        result = timed(name, url, extra, script, timing, staff, cpu, reads=reads)
        progress(result)
        return result

    return one


def run_ceiling(worker_class: str, threads: int, args, paced: bool = True) -> Result:
    ceiling = Ceiling(worker_class, threads)
    try:
        result = timed(
            f"ceiling-{worker_class}",
            ceiling.url + "/lookup/1",
            [],
            None,
            args,
            "",
            ceiling.cpu_seconds,
        )
        progress(result)
        if paced and worker_class == "gevent":  # every node's worker class but the recovery's
            print_paced(ceiling)
    finally:
        ceiling.stop()
    return result


def print_paced(ceiling: Ceiling) -> None:
    """The same endpoint asked one request at a time with a pause between: the process
    sleeps in between, as a node between the messages of a buy or an idle cluster's checks.
    A multiple of the back-to-back cost here is paid for waking up, not for our code."""
    for gap in PACED_GAPS_S:
        ms = paced_cpu_ms(ceiling.url + "/lookup/1", ceiling.cpu_seconds, gap, PACED_S)
        print(f"    paced, one request every {gap * 1000:g} ms: {ms:.2f} ms CPU/req", flush=True)


def idle_cpu(masters: dict[str, int]) -> dict[str, float]:
    """What each node spends idle (Raft ticks, leases, health checks, polls): ms of CPU
    per second over IDLE_S, once the start and the stock writes have settled."""
    time.sleep(IDLE_SETTLE_S)
    before, woke = node_cpu_seconds(masters), node_wakeups(masters)
    time.sleep(IDLE_S)
    after, awake = node_cpu_seconds(masters), node_wakeups(masters)
    idle = {node: (after[node] - before.get(node, 0.0)) * 1000 / IDLE_S for node in after}
    wakes = {node: (awake[node] - woke.get(node, 0)) / IDLE_S for node in awake}
    shares = ", ".join(f"{node} {ms:.0f}" for node, ms in sorted(idle.items()))
    print(f"\nidle cluster, {IDLE_S:g} s: {sum(idle.values()):.0f} ms CPU/s ({shares})", flush=True)
    # Each wake-up of a sleeping process costs CPU of its own (docs/performance.md, "What an
    # idle cluster pays for"): the count says where an idle cluster's CPU goes.
    shares = ", ".join(f"{node} {n:.0f}" for node, n in sorted(wakes.items()))
    print(f"  wake-ups per second: {sum(wakes.values()):.0f} ({shares})", flush=True)
    return idle


def run_scenario(name: str, cluster: LocalCluster, masters: dict, work: Path, args) -> Result:
    path, extra, lua = SCENARIOS[name]
    script = write_script(lua, work) if lua else None
    cluster.api.lookup(1)  # warm the cache (and the connection pools)
    result = timed(
        name,
        cluster.api.url + path,
        extra,
        script,
        args,
        cluster.cluster.staff_token,
        lambda: node_cpu_seconds(masters),
        lambda: node_wakeups(masters),
        lambda: frontend_reads(cluster),
    )
    progress(result)
    return result


def timed(name, url, extra, script, args, token, cpu, wakeups=None, reads=None) -> Result:
    """wrk, with `cpu()` (the measured processes' CPU seconds, or node -> seconds) read
    around it, `wakeups()` (node -> wake-ups so far) and `reads()` (the front-end's
    catalog reads so far, `benchkit.frontend_reads`) if given."""
    before, woke = cpu(), wakeups() if wakeups else {}
    read_before = reads() if reads else (0, 0)
    result = wrk(name, url, extra, script, args, token)
    time.sleep(SETTLE_S)
    after = cpu()
    if reads:
        result.reads = tuple(now - then for now, then in zip(reads(), read_before, strict=True))
    if wakeups:
        result.wakeups_by_node = {n: count - woke.get(n, 0) for n, count in wakeups().items()}
    if isinstance(after, dict):
        result.cpu_by_node = {node: after[node] - before.get(node, 0.0) for node in after}
        result.cpu_s = sum(result.cpu_by_node.values())
    else:
        result.cpu_s = after - before
    return result


def progress(result: Result) -> None:
    cpu = result.cpu_ms_per_ack
    print(
        f"  {result.name:<18}{result.ok_rps:>8.0f} req/s  p99 {result.p99_ms:7.1f} ms"
        f"  {cpu if math.isfinite(cpu) else float('nan'):6.2f} ms CPU/req"
        f"  {result.errors} errors",
        flush=True,
    )
    if result.cpu_by_node and result.acknowledged:
        shares = (
            f"{node} {seconds * 1000 / result.acknowledged:.2f}"
            for node, seconds in sorted(result.cpu_by_node.items())
        )
        print(f"    ms CPU/req by node: {', '.join(shares)}", flush=True)
    if result.joined is not None:
        print(
            f"    front-end cache misses: {sum(result.reads)}, of which {result.joined:.0%}"
            " joined a catalog read of the same book or page already in flight",
            flush=True,
        )
    if result.wakeups_by_node and result.acknowledged:
        shares = (
            f"{node} {count / result.acknowledged:.2f}"
            for node, count in sorted(result.wakeups_by_node.items())
        )
        print(f"    wake-ups/req by node: {', '.join(shares)}", flush=True)


def run_soak(cluster: LocalCluster, masters: dict, work: Path, args) -> Soak:
    seconds = max(1, round(args.soak * 60))
    print(
        f"\nsoak: buys for {seconds} s at {SOAK_CONNECTIONS} connections, "
        f"every node's RSS every {SOAK_PERIOD_S:g} s",
        flush=True,
    )
    soak_args = argparse.Namespace(
        threads=args.threads, connections=SOAK_CONNECTIONS, seconds=seconds
    )
    sampler = MemorySampler(masters, SOAK_PERIOD_S)
    sampler.start()
    try:
        result = timed(
            "buy-soak",
            cluster.api.url + "/",
            [],
            write_script(BUY_LUA, work),
            soak_args,
            "",
            lambda: cluster_cpu_seconds(masters),
        )
    finally:
        samples = sampler.stop()
    progress(result)
    return Soak(result, samples)


if __name__ == "__main__":
    sys.exit(main())
