#!/usr/bin/env python3
"""How long writes pause when a node disappears: the cost of leases (issue 10).

    sudo .venv/bin/python scripts/write_pause.py [--hold 8] [--rounds 2]

Starts a `--netns` cluster with the default tuning (lease 2.5 s, read lease
2 s, heartbeats every 0.5 s), keeps a buyer and a staff price writer busy
through frontend-1, and for each fault (the primary isolated or killed, the
backup catalog, the recovery node or an order server isolated, the primary
frozen with SIGSTOP, the primary stopped gracefully: the lease hand-off of
`bazar stop` and `bazar rolling-restart`) measures the
time from the cut to the first acknowledged write that started after it,
the longest gap between acknowledged writes while the fault lasts, and how many
writes were refused (an error answer, which the customer sees) meanwhile. The
target: under 5 s from the cut to the first acknowledged write.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.ops import hostnet, procs  # noqa: E402
from tests.support import faults  # noqa: E402
from tests.support.cluster import LocalCluster  # noqa: E402
from tests.support.history import longest_gap  # noqa: E402

DEFAULTS = {"health_period": 0.5, "sender_period": 0.5, "startup_grace": 5.0, "cache_ttl": 60.0}
FAULTS = (
    "pause primary",  # SIGSTOP for `hold` s: a frozen process or VM, not a crash
    "isolate primary",
    "kill primary",
    "stop primary",  # graceful (SIGTERM): it steps down and releases the lease
    "isolate backup",
    "isolate recovery-1",
    "isolate order-1",
)


BOOK = 4  # the one the buyer buys, restocked before each fault


class Writers:
    """A buyer and a staff writer, back to back; each acknowledged write is (started, ended)."""

    def __init__(self, cluster: LocalCluster):
        self.url = cluster.url_of("frontend-1")
        self.token = cluster.cluster.staff_token
        self.acks: list[tuple[float, float]] = []
        self.refused: list[tuple[float, str]] = []  # (when, its status or "no answer")
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._buy, self._price)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _loop(self, send) -> None:
        session = requests.Session()
        session.trust_env = False
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = str(send(session))
            except requests.RequestException:
                status = "no answer"
            if status in ("200", "201"):
                self.acks.append((started, time.monotonic()))
            else:
                self.refused.append((started, status))
                self._stop.wait(0.05)

    def _buy(self) -> None:
        self._loop(
            lambda s: (
                s.post(
                    f"{self.url}/buy/{BOOK}",
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    timeout=15,
                ).status_code
            )
        )

    def _price(self) -> None:
        step = iter(range(1, 10**9))
        self._loop(
            lambda s: (
                s.put(
                    f"{self.url}/update/price/5",
                    json={"price": 10.0 + next(step) / 100},
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=15,
                ).status_code
            )
        )


def measure(cluster: LocalCluster, fault: str, hold: float) -> tuple[float, float, Counter]:
    """(cut -> first acknowledged write, longest gap, writes refused while it lasted)."""
    restock = cluster.api.set_quantity(BOOK, 100_000)
    assert restock.status_code == 200, restock.text  # a sold-out 410 is no write
    writers = Writers(cluster)
    writers.start()
    time.sleep(2.0)
    verb, who = fault.split(" ", 1)
    primary = next(n for n in cluster.names("catalog") if cluster.role(n) == "primary")
    backup = next(n for n in cluster.names("catalog") if n != primary)
    victim = {"primary": primary, "backup": backup}.get(who, who)
    pid = procs.running_pid(cluster.cluster, cluster.node(victim))
    began = time.monotonic()  # a graceful stop acts from its start, and returns seconds later
    if verb == "kill":
        cluster.kill(victim)
    elif verb == "stop":
        cluster.stop(victim)
    elif verb == "pause":
        os.killpg(pid, signal.SIGSTOP)  # the gunicorn master and its worker: one group
    else:
        cluster.bazar("partition", "--isolate", victim)
    cut = began if verb == "stop" else time.monotonic()  # once the command returned
    try:
        time.sleep(hold)
    finally:
        if verb == "pause":
            os.killpg(pid, signal.SIGCONT)
    end = time.monotonic()
    writers.stop()
    cluster.bazar("heal")
    if verb in ("kill", "stop"):
        cluster.start(victim)
    faults.heal(cluster)
    after = [ended for started, ended in writers.acks if started >= cut]
    first = (min(after) - cut) if after else float("inf")
    refused = Counter(status for started, status in writers.refused if cut <= started <= end)
    return first, longest_gap(sorted(e for _, e in writers.acks), cut, end), refused


def _statuses(refused: Counter) -> str:
    return ", ".join(f"{n} x {status}" for status, n in sorted(refused.items())) or "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=8.0, help="seconds each fault lasts")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated faults to run (default: all), e.g. 'pause primary'",
    )
    args = parser.parse_args()
    chosen = [f for f in FAULTS if not args.only or f in args.only.split(",")]
    why_not = hostnet.missing_requirement()
    if why_not:
        print(f"write_pause: needs `bazar up --netns`, which {why_not}", file=sys.stderr)
        return 2
    cluster = LocalCluster(
        Path(tempfile.mkdtemp(prefix="bazar-pause-")), netns=True, tuning=DEFAULTS
    )
    cluster.up()
    rows = []
    try:
        for _ in range(args.rounds):
            for fault in chosen:
                first, gap, refused = measure(cluster, fault, args.hold)
                rows.append((fault, first, gap, refused))
                print(
                    f"  {fault:<20} cut -> first ack {first:5.2f} s, longest gap {gap:5.2f} s,"
                    f" refused: {_statuses(refused)}"
                )
    finally:
        cluster.down()
        shutil.rmtree(cluster.root, ignore_errors=True)
    print(f"\n{'fault':<20} {'cut -> first ack':>17} {'longest gap':>12}  refused")
    for fault, first, gap, refused in rows:
        print(f"{fault:<20} {first:>15.2f} s {gap:>10.2f} s  {_statuses(refused)}")
    worst = max(first for _, first, *_ in rows)
    print(f"\nworst cut -> first acknowledged write: {worst:.2f} s (target < 5 s)")
    return 0 if worst < 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
