#!/usr/bin/env python3
"""Benchmark: every route against the ceiling of a bare Flask endpoint, in one run.

    make bench          # or: .venv/bin/python loadtests/bench.py --seconds 10

Starts a fresh cluster and the ceiling app (same gunicorn settings as a node),
drives each with wrk (16 connections by default), samples every node's memory,
then prints a table and writes loadtests/results/bench.csv and bench.png.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.ops import procs  # noqa: E402
from tests.support.cluster import LocalCluster, wait_until  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TUNING = {"health_period": 0.5, "sender_period": 0.5, "startup_grace": 5.0, "cache_ttl": 60.0}
TARGETS = {"lookup (cached)": 0.7, "lookup (uncached)": 0.35, "buy": 0.08}
BUY_LUA = """
local counter, run = 0, os.getenv("BENCH_RUN")
local tid = 0
function setup(thread) tid = tid + 1; thread:set("tid", tid) end
request = function()
  counter = counter + 1
  local key = string.format("bench-%s-%d-%d", run, tid, counter)
  return wrk.format("POST", "/buy/" .. (counter % 7 + 1),
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, '{"quantity": 1}')
end
"""
UPDATE_LUA = """
local counter, auth = 0, "Bearer " .. os.getenv("BAZAR_STAFF_TOKEN")
request = function()
  counter = counter + 1
  local body = string.format('{"price": %d.5}', 10 + counter % 50)
  return wrk.format("PUT", "/update/price/" .. (counter % 7 + 1),
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
"""


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: float = 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench: wrk not found (apt-get install wrk, or use `make bench`)", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="bazar-bench-")), tuning=TUNING).up()
    ceiling = start_ceiling(cluster)
    memory = MemorySampler(cluster)
    memory.start()
    try:
        results = run_all(cluster, ceiling, args)
    finally:
        memory.stop()
        ceiling.terminate()
        cluster.down()
    ceiling_rps = results[0].rps
    for r in results:
        r.ratio = r.rps / ceiling_rps if ceiling_rps else 0.0
    report(results, memory.peaks, args)
    return 0


def start_ceiling(cluster: LocalCluster) -> subprocess.Popen:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(HERE),
        "-w",
        "1",
        "-k",
        "gthread",
        "--threads",
        str(cluster.cluster.tuning.threads),
        "--keep-alive",
        "5",
        "--no-control-socket",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "ceiling:app",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603  # nosec B603
    process.url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(process.url + "/lookup/1"), 30, "the ceiling app")
    return process


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # nosec B310
            return response.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_all(cluster: LocalCluster, ceiling, args) -> list[Result]:
    api = cluster.api
    for book_id in range(1, 8):  # stock high enough that no buy is refused
        assert api.set_quantity(book_id, 1_000_000_000).status_code == 200
    scripts = {"buy": write_script(BUY_LUA), "update": write_script(UPDATE_LUA)}
    fe = api.url
    plan = [
        ("ceiling (bare Flask)", ceiling.url + "/lookup/1", [], None),
        ("lookup (cached)", fe + "/lookup/1", [], None),
        ("lookup (uncached)", fe + "/lookup/1", ["-H", "Cache-Control: no-cache"], None),
        ("search", fe + "/search/distributed%20systems", [], None),
        ("buy", fe, [], scripts["buy"]),
        ("staff update", fe, [], scripts["update"]),
    ]
    results = []
    for name, url, extra, script in plan:
        api.lookup(1)  # warm the cache (and the connection pools)
        results.append(wrk(name, url, extra, script, args, cluster.cluster.staff_token))
        print(f"  {name:<22} {results[-1].rps:>9.0f} req/s", flush=True)
    check = cluster.check()
    print(
        "bazar check after the run:",
        "replicas identical" if check.returncode == 0 else "DIFFER\n" + check.stdout,
    )
    return results


def write_script(text: str) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    handle.write(text)
    handle.close()
    return handle.name


def wrk(name: str, url: str, extra: list[str], script: str | None, args, token: str) -> Result:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        *extra,
        *(["-s", script] if script else []),
        url,
    ]
    env = {**os.environ, "BENCH_RUN": uuid.uuid4().hex[:8], "BAZAR_STAFF_TOKEN": token}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout  # noqa: S603  # nosec B603
    return Result(
        name,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _latency(out, "50%"),
        _latency(out, "99%"),
        _errors(out),
    )


def _latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _errors(out: str) -> int:
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return (int(match.group(1)) if match else 0) + (
        sum(map(int, socket_errors.groups())) if socket_errors else 0
    )


class MemorySampler(threading.Thread):
    """Peak RSS of every node (gunicorn master + its worker) while the bench runs."""

    def __init__(self, cluster: LocalCluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.peaks: dict[str, tuple[float, float]] = {}  # node -> (worker MB, node MB)
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        while not self._done.wait(0.25):
            for node in self.cluster.cluster.nodes.values():
                master = procs.running_pid(self.cluster.cluster, node)
                if master:
                    worker = sum(_rss_mb(p) for p in _children(master))
                    total = worker + _rss_mb(master)
                    old = self.peaks.get(node.name, (0.0, 0.0))
                    self.peaks[node.name] = (max(old[0], worker), max(old[1], total))


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ValueError):
        return []


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def report(results: list[Result], peaks: dict, args) -> None:
    machine = f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nBazar benchmark {time.strftime('%Y-%m-%d %H:%M')} on {machine}")
    print(f"wrk {args.threads} threads, {args.connections} connections, {args.seconds}s each\n")
    print(f"{'scenario':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'x ceiling':>11}{'errors':>8}")
    for r in results:
        print(
            f"{r.name:<22}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.ratio:>11.2f}"
            f"{r.errors:>8}"
        )
    print(f"\n{'node':<14}{'worker MB':>10}{'node MB':>9}   (peak RSS; node = master + worker)")
    for name, (worker, total) in sorted(peaks.items()):
        print(f"{name:<14}{worker:>10.1f}{total:>9.1f}")
    print("\ntargets:")
    by_name = {r.name: r for r in results}
    for name, target in TARGETS.items():
        ratio = by_name[name].ratio
        verdict = "met" if ratio >= target else "MISSED"
        print(f"  {name:<20} >= {target:.2f} x ceiling: {ratio:.2f}  {verdict}")
    buy = by_name["buy"]
    print(
        f"  buy p99 < 100 ms at {args.connections} clients: {buy.p99_ms:.1f} ms  "
        f"{'met' if buy.p99_ms < 100 else 'MISSED'}"
    )
    worst = max((total for _, total in peaks.values()), default=0.0)
    print(f"  every node < 120 MB RSS: peak {worst:.1f} MB  {'met' if worst < 120 else 'MISSED'}")
    write_csv(results, peaks)
    plot(results)


def write_csv(results: list[Result], peaks: dict) -> None:
    with (RESULTS / "bench.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["scenario", "req_per_s", "p50_ms", "p99_ms", "ratio_to_ceiling", "errors"])
        for r in results:
            out.writerow(
                [
                    r.name,
                    f"{r.rps:.1f}",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    f"{r.ratio:.3f}",
                    r.errors,
                ]
            )
        out.writerow([])
        out.writerow(["node", "peak_worker_rss_mb", "peak_node_rss_mb"])
        for name, (worker, total) in sorted(peaks.items()):
            out.writerow([name, f"{worker:.1f}", f"{total:.1f}"])
    print(f"\nwrote {RESULTS / 'bench.csv'}")


def plot(results: list[Result]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install '.[bench]')")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r.name for r in results]
    left.barh(names, [r.rps for r in results], color="#4477aa")
    left.set_xlabel("requests/s")
    left.invert_yaxis()
    for i, r in enumerate(results):
        left.text(r.rps, i, f" {r.ratio:.2f}x", va="center", fontsize=8)
    right.barh(names, [r.p99_ms for r in results], color="#cc6677", label="p99")
    right.barh(names, [r.p50_ms for r in results], color="#228833", label="p50")
    right.set_xlabel("latency ms")
    right.invert_yaxis()
    right.legend()
    fig.suptitle("Bazar: throughput (ratio to a bare Flask endpoint) and latency")
    fig.tight_layout()
    fig.savefig(RESULTS / "bench.png", dpi=110)
    print(f"wrote {RESULTS / 'bench.png'}")


if __name__ == "__main__":
    sys.exit(main())
