#!/usr/bin/env python3
"""Failover scenario: the locust mix runs while nodes are killed or cut off on a schedule.

    .venv/bin/python loadtests/failover.py --start --duration 45 \
        --schedule 10:primary,20:order-1,30:recovery-1
    sudo .venv/bin/python loadtests/failover.py --start --netns --duration 60 \
        --schedule 10:isolate:primary,25:split:catalog-1+order-1/catalog-2+recovery-1,40:order-2

An event is SECOND:NODE (SIGKILL, restarted `--downtime` seconds later),
SECOND:isolate:NODE (cut NODE from every other node),
SECOND:split:A+B/C+D (cut every link between the groups; a cut is healed
`--downtime` seconds later and needs a cluster started with `--netns`), or
SECOND:rolling (`bazar rolling-restart`, every node in turn; its progress lines are
printed). The rolling restart's figures under the locust mix:

    .venv/bin/python loadtests/failover.py --start --duration 60 --schedule 10:rolling
`primary` means the catalog primary of that moment. Then the cluster heals,
`bazar check` runs, and the runner prints requests and failures by route,
p50/p95/p99 per route over time, the longest pause between acknowledged
writes, the time from each fault to the first acknowledged write after it,
and the invariants. Exit 1 when an invariant does not hold.

Besides locust's CSVs under the `--out` prefix, it writes the timeline
(loadtests/timeline.py): `<out>_timeline.csv` (per second and route:
requests, successes, errors, p50/p99 ms, faults in force),
`<out>_faults.csv` (per fault: start, end, recovery) and
`<out>_timeline.png`; `<out>_requests.csv` holds every request.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.config import Cluster, load_cluster  # noqa: E402
from common.ops import netns, procs  # noqa: E402
from common.ops.check import compare, read_rows  # noqa: E402
from loadtests import timeline  # noqa: E402

HERE = Path(__file__).resolve().parent
STOCK = "SELECT id, quantity FROM books ORDER BY id"
SOLD = (
    "SELECT i.book_id, SUM(i.quantity) FROM order_items i JOIN orders o USING (order_id) "
    "WHERE o.status = 'confirmed' GROUP BY i.book_id"
)
PENDING = "SELECT COUNT(*) FROM orders WHERE status = 'pending'"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    given = load_cluster(args.config)
    if args.start:
        bazar(given, "up", "--detach", *(["--netns"] if args.netns else []))
    try:
        return run(netns.effective(given), args)  # namespace addresses under --netns
    finally:
        if args.start:
            bazar(given, "down")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="cluster TOML (default: $BAZAR_CONFIG or config/cluster.toml)"
    )
    parser.add_argument(
        "--start", action="store_true", help="bring the cluster up first, down after"
    )
    parser.add_argument(
        "--netns", action="store_true", help="with --start: every node in its own namespace"
    )
    parser.add_argument("--duration", type=int, default=45, help="seconds of load")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--schedule",
        default="10:primary,20:order-1,30:recovery-1",
        help="SECOND:NODE (kill), SECOND:isolate:NODE, SECOND:split:A+B/C+D; comma-separated",
    )
    parser.add_argument("--downtime", type=float, default=5.0, help="seconds a victim stays dead")
    parser.add_argument("--window", type=int, default=5, help="seconds per row of the time table")
    parser.add_argument("--out", default=str(HERE / "results" / "failover"), help="CSV prefix")
    return parser


def bazar(cluster: Cluster, *args: str) -> None:
    command = [sys.executable, "-m", "common.ops.cli", *args, "--config", str(cluster.path)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603  # nosec B603


def run(cluster: Cluster, args) -> int:
    before = snapshot(cluster)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    locust = start_locust(cluster, args)
    events = Schedule(cluster, args.schedule, args.downtime)
    events.start()
    locust.wait()
    ended = time.monotonic()
    events.join()
    heal(cluster)
    after = snapshot(cluster)
    print_route_table(args.out)
    print_time_table(args.out, args.window)
    print("\nnemesis:", "; ".join(events.log) or "nothing")
    if events.roll_output:
        print("\n" + events.roll_output.rstrip())
    print_timeline(args, events, ended)
    problems = invariants(cluster, before, after)
    print("invariants:", "hold" if not problems else "VIOLATED")
    for problem in problems:
        print("  !", problem)
    return 1 if problems else 0


def start_locust(cluster: Cluster, args) -> subprocess.Popen:
    frontend = cluster.of("frontend")[0].url
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{HERE / 'locustfile.py'},{HERE / 'timeline.py'}",  # timeline.py: records requests
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.users),
        "-t",
        f"{args.duration}s",
        "--host",
        frontend,
        "--csv",
        args.out,
        "--csv-full-history",
        "--only-summary",
        "--exclude-tags",
        "restock",
        "--loglevel",
        "WARNING",
    ]
    env = {
        **os.environ,
        "BAZAR_CONFIG": str(cluster.path),
        "BAZAR_STAFF_TOKEN": cluster.staff_token,
        timeline.RAW_ENV: f"{args.out}_requests.csv",
    }
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: S603  # nosec B603


class Schedule(threading.Thread):
    """Runs each scheduled fault at its second and undoes it after the downtime."""

    def __init__(self, cluster: Cluster, spec: str, downtime: float):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.events = sorted(_event(item) for item in spec.split(",") if item)
        self.downtime = downtime
        self.log: list[str] = []
        self.faults: list[timeline.Fault] = []  # applied -> undone, monotonic times
        self.started = time.monotonic()  # the origin of the schedule's seconds
        self.roll_output = ""  # what `bazar rolling-restart` printed, if it ran

    def run(self) -> None:
        started = self.started = time.monotonic()
        for at, kind, target in self.events:
            time.sleep(max(0.0, started + at - time.monotonic()))
            if kind == "rolling":
                self._roll()
                continue
            undo = self._kill(target) if kind == "kill" else self._cut(kind, target)
            began = time.monotonic()  # the fault is in force (as scripts/write_pause.py times it)
            label = self.log[-1].replace("--isolate ", "")
            self.log.append(f"{time.monotonic() - started:.1f}s {self.log.pop()}")
            time.sleep(self.downtime)
            undo()
            self.faults.append(timeline.Fault(label, began, time.monotonic()))
            self.log.append(f"{time.monotonic() - started:.1f}s {self.log.pop()}")

    def _roll(self) -> None:
        """`bazar rolling-restart`, as an operator runs it: one fault from start to end."""
        began = time.monotonic()
        command = [sys.executable, "-m", "common.ops.cli", "rolling-restart"]
        done = subprocess.run(  # noqa: S603  # nosec B603
            [*command, "--config", str(self.cluster.path)], capture_output=True, text=True
        )
        self.faults.append(timeline.Fault("rolling-restart", began, time.monotonic()))
        self.log.append(f"{began - self.started:.1f}s rolling-restart (exit {done.returncode})")
        self.roll_output = done.stdout + done.stderr

    def _node_name(self, name: str) -> str:
        return primary(self.cluster) if name == "primary" else name

    def _kill(self, target: str):
        node = self.cluster.node(self._node_name(target))
        procs.kill(self.cluster, node)
        self.log.append(f"kill {node.name}")

        def undo():
            # what `bazar start` does, without a CLI's start-up time (seconds on a busy host)
            procs.start(self.cluster, node, netns.exec_prefix(self.cluster, node))
            self.log.append(f"start {node.name}")

        return undo

    def _cut(self, kind: str, target: str):
        if kind == "isolate":
            args = ["--isolate", self._node_name(target)]
        else:
            args = [
                ",".join(self._node_name(n) for n in group.split("+"))
                for group in target.split("/")
            ]
        bazar(self.cluster, "partition", *args)
        self.log.append(f"{kind} {' '.join(args)}")
        return lambda: (bazar(self.cluster, "heal"), self.log.append("heal"))


def _event(item: str) -> tuple[float, str, str]:
    """'10:order-1' -> (10, kill, order-1); '10:isolate:catalog-1'; '10:split:a+b/c+d'."""
    parts = item.split(":")
    if parts[1:] == ["rolling"]:
        return float(parts[0]), "rolling", ""
    if len(parts) == 2:
        return float(parts[0]), "kill", parts[1]
    if len(parts) == 3 and parts[1] in ("isolate", "split"):
        return float(parts[0]), parts[1], parts[2]
    raise SystemExit(f"failover: bad schedule item {item!r}")


def primary(cluster: Cluster) -> str:
    for node in cluster.of("catalog"):
        if procs.health(node)[1].get("role") == "primary":
            return node.name
    return cluster.of("catalog")[0].name


def heal(cluster: Cluster, timeout: float = 90.0) -> None:
    """Every link back, every node up, no order pending, replicas identical."""
    if netns.state_path(cluster).exists():
        bazar(cluster, "heal")
    for node in cluster.nodes.values():
        if procs.running_pid(cluster, node) is None:
            bazar(cluster, "start", node.name)  # in its namespace, if it has one
    pids = {n: pid for n in cluster.nodes.values() if (pid := procs.running_pid(cluster, n))}
    procs.wait_healthy(pids, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = sum(
            read_rows(cluster.db_path(n.name), PENDING)[0][0] for n in cluster.of("order")
        )
        if pending == 0 and compare(cluster)[0]:
            return
        time.sleep(0.5)


def snapshot(cluster: Cluster) -> dict:
    catalog, order = cluster.of("catalog")[0].name, cluster.of("order")[0].name
    return {
        "stock": dict(read_rows(cluster.db_path(catalog), STOCK)),
        "sold": dict(read_rows(cluster.db_path(order), SOLD)),
    }


def invariants(cluster: Cluster, before: dict, after: dict) -> list[str]:
    ok, report = compare(cluster)
    problems = [] if ok else [line for line in report if not line.startswith("same")]
    for book_id, stock in after["stock"].items():
        if stock < 0:
            problems.append(f"book {book_id}: stock {stock} < 0")
        fell = before["stock"].get(book_id, stock) - stock
        sold = after["sold"].get(book_id, 0) - before["sold"].get(book_id, 0)
        if fell != sold:
            problems.append(f"book {book_id}: stock fell {fell}, confirmed orders {sold}")
    pending = sum(read_rows(cluster.db_path(n.name), PENDING)[0][0] for n in cluster.of("order"))
    if pending:
        problems.append(f"{pending} orders still pending")
    return problems


def print_timeline(args, events: Schedule, ended: float) -> None:
    """Per-second CSV and PNG of every route with the faults; longest pause, recoveries."""
    raw = Path(f"{args.out}_requests.csv")
    if not raw.exists():
        print("\ntimeline: locust saved no requests")
        return
    outcomes = timeline.Recorder.load(raw).outcomes()
    span = (min((o.started for o in outcomes), default=events.started), ended)
    title = f"failover.py: {args.users} users, {args.duration} s, schedule {args.schedule}"
    print()
    for line in timeline.write_outputs(
        outcomes, events.faults, events.started, span, args.out, title
    ):
        print(line)
    print(f"requests: {raw}")


def print_route_table(prefix: str) -> None:
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    print(f"\n{'route':<24}{'requests':>10}{'failures':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for r in rows:
        print(
            f"{r['Name']:<24}{r['Request Count']:>10}{r['Failure Count']:>10}"
            f"{r['50%']:>9}{r['95%']:>9}{r['99%']:>9}"
        )
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        with failures.open(newline="") as f:
            for r in csv.DictReader(f):
                print(f"  failure {r['Name']}: {r['Error']} x{r['Occurrences']}")


def print_time_table(prefix: str, window: int) -> None:
    """p50/p95/p99 per route over time (locust's current-window percentiles)."""
    with open(f"{prefix}_stats_history.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] != "Aggregated"]
    if not rows:
        return
    start = int(rows[0]["Timestamp"])
    latest: dict[tuple[int, str], dict] = {}
    for r in rows:
        latest[((int(r["Timestamp"]) - start) // window, r["Name"])] = r
    routes = sorted({name for _, name in latest})
    print(f"\np50/p95/p99 ms per {window}s window")
    print(f"{'t':>5}  " + "".join(f"{name:<24}" for name in routes))
    for slot in sorted({s for s, _ in latest}):
        cells = []
        for name in routes:
            r = latest.get((slot, name))
            cells.append(f"{r['50%']}/{r['95%']}/{r['99%']}" if r else "-")
        print(f"{slot * window:>4}s  " + "".join(f"{c:<24}" for c in cells))


if __name__ == "__main__":
    sys.exit(main())
