#!/usr/bin/env python3
"""Buys under load: req/s, latency and CPU per buy at several connection counts, and
where a buy's time goes hop by hop at the first count (needs wrk).

    .venv/bin/python loadtests/buy_hops.py                       # 16 connections
    .venv/bin/python loadtests/buy_hops.py --connections 16,32,48
    .venv/bin/python loadtests/buy_hops.py --connections 1,2,4,8,16    # one buy alone first

One cluster for every count, `wrk` for `--seconds` each. The hop table is the p50 of
each node's `POST` answers in its `requests.jsonl` (what `bazar trace` reads) during
the first count's run: what each hop took as its server saw it, queueing included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench  # noqa: E402
from benchkit import node_cpu_seconds, node_masters, stock_up, write_script  # noqa: E402

from tests.support.cluster import LocalCluster  # noqa: E402


def hop_times(logs: Path) -> dict[tuple[str, str], list[float]]:
    """(node, route) -> durations in ms of the POSTs each node answered."""
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted(logs.glob("*.requests.jsonl")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["method"] == "POST":
                found[(entry["node"], entry["route"])].append(entry["duration_ms"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="16", help="comma-separated counts")
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    counts = [int(n) for n in args.connections.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bazar-buy-hops-"))
    cluster = LocalCluster(work / "cluster", tuning=bench.TUNING)
    try:
        cluster.up()
        masters = node_masters(cluster)
        stock_up(cluster)
        path, extra, lua = bench.SCENARIOS["buy"]
        script = write_script(lua, work)
        logs = cluster.cluster.data_dir / "logs"
        url, token = cluster.api.url + path, cluster.cluster.staff_token
        cpu = lambda: node_cpu_seconds(masters)  # noqa: E731
        for n, connections in enumerate(counts):
            run = SimpleNamespace(connections=connections, threads=2, seconds=args.seconds)
            r = bench.timed("buy", url, extra, script, run, token, cpu)
            print(
                f"{connections:>3} connections: {r.ok_rps:6.0f} buys/s  p50 {r.p50_ms:5.1f} ms"
                f"  p99 {r.p99_ms:5.1f} ms  {r.cpu_ms_per_ack:.2f} ms CPU a buy (every node)"
            )
            if n == 0:
                first = hop_times(logs)
        print(f"\nhops at {counts[0]} connections (p50 as each server saw it):")
        for (node, route), times in sorted(first.items(), key=lambda kv: -len(kv[1])):
            if len(times) >= 50:
                p50 = statistics.median(times)
                print(f"  {node:<12} POST {route:<18} {len(times):>6}  {p50:6.2f} ms")
    finally:
        cluster.discard()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
