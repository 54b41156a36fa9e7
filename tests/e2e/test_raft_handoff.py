"""A graceful stop of the voter that leads the lease's Raft group hands the lead on
first, so the lease holder's renewals go on with no gap (found by the rolling-restart
test in CI: recovery-1 led the group, stopped without handing on, and the holder's
renewals failed for 2.5 s; its lease lapsed and buys got 503s).

Whichever voter other than the holder leads is stopped (a catalog backup or the
recovery node, which decides; each hands on the same way) while the holder's view
of the lease is read every 50 ms: its `seq` moves with every renewal (each 0.4 s).
Measured: 0.9 s at most with the hand-on, 1.6-2.6 s without it (an election).
"""

from __future__ import annotations

import threading
import time
from itertools import pairwise

import pytest
import requests

from tests.support.cluster import LocalCluster, wait_until
from tests.support.threads import Workers

VOTERS = ("catalog-1", "catalog-2", "recovery-1")
LONGEST_GAP = 1.5  # seconds between renewals the holder saw; the lease lasts 2.5 s


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path / "c").up()
    yield c
    c.discard()


def lease(c: LocalCluster, name: str) -> dict:
    return c.call(name, "GET", "/health", timeout=2).json()["lease"]


def raft_leader(c: LocalCluster) -> str:
    """The voter that leads, once the same one has led for a second (not mid-election)."""
    seen: list[tuple[float, str]] = []

    def settled() -> bool:
        leaders = [n for n in VOTERS if lease(c, n).get("raft_leader")]
        if len(leaders) != 1 or (seen and seen[-1][1] != leaders[0]):
            seen.clear()
        if len(leaders) == 1:
            seen.append((time.monotonic(), leaders[0]))
        return bool(seen) and seen[-1][0] - seen[0][0] >= 1.0

    wait_until(settled, 15, "one settled Raft leader")
    return seen[-1][1]


def holder(c: LocalCluster) -> str:
    return next(n for n in c.names("catalog") if c.role(n) == "primary")


class SeqWatch:
    """The holder's lease as it saw it, every 50 ms: (monotonic time, epoch, seq)."""

    def __init__(self, c: LocalCluster, name: str):
        self.c, self.name = c, name
        self.seen: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                view = lease(self.c, self.name)
                self.seen.append((time.monotonic(), view["epoch"], view["seq"]))
            except requests.RequestException:
                pass
            time.sleep(0.05)

    def longest_gap(self) -> tuple[float, float]:
        """The longest time the seq stood still, and when (monotonic) it ended."""
        changes = [t for (_, _, before), (t, _, seq) in pairwise(self.seen) if seq != before]
        return max(((b - a, b) for a, b in pairwise(changes)), default=(float("inf"), 0))


def test_a_graceful_stop_of_the_raft_leader_keeps_the_holders_lease(cluster):
    c = cluster
    for _ in range(4):
        writer, leader = holder(c), raft_leader(c)
        if leader != writer:
            break
        # Its own stop would hand the lease over too; a restart moves the lead elsewhere
        # (to either other voter, so possibly to the next holder: then again).
        c.stop(writer)
        c.start(writer)
        wait_until(lambda w=writer: c.role(w) == "backup", 15, f"{writer} to back up")
    assert leader != writer, f"{writer} kept both the lease and the Raft lead"
    watch = SeqWatch(c, writer)
    workers = Workers()
    workers.spawn(watch.run, name="seq-watch")
    time.sleep(1.0)
    marks = {"stop": time.monotonic()}
    c.stop(leader)
    marks["stopped"] = time.monotonic()
    time.sleep(2.0)
    marks["start"] = time.monotonic()
    c.start(leader)  # a voter coming back must not upset the group either
    marks["up"] = time.monotonic()
    time.sleep(3.0)
    watch.stop.set()
    workers.join_or_fail(10)

    epochs = {epoch for _, epoch, _ in watch.seen}
    assert len(epochs) == 1, f"the lease changed hands: epochs {sorted(epochs)}"
    gap, ended = watch.longest_gap()
    when = ", ".join(f"{what} {at - ended:+.2f}" for what, at in marks.items())
    print(f"stopped {leader} (the Raft leader); {writer}'s longest renewal gap {gap:.2f} s")
    assert gap < LONGEST_GAP, f"{writer}'s renewals stalled {gap:.2f} s; from its end: {when}"
    log = (c.cluster.data_dir / "logs" / f"{leader}.log").read_text()
    assert "stopping: hands the Raft lead on" in log
