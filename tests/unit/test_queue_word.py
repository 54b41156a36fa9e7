"""A peer we queued for is told so; a node reads its queue when told, else on the backstop.

Between real nodes the partition and frozen-node suites show a cut-off order server
converging; its timing cannot be told apart there (a frozen node's backstop timer runs
out while it is frozen), so the mechanism is checked here.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from common.replication import replicator as module
from common.replication.replicator import Replicator, RoundHooks


class Peer:
    """What RoundHooks.send uses of a Replicator: pushes that fail until `reachable`."""

    def __init__(self):
        self.owed: set[str] = set()
        self.push_timeout = (1.0, 1.0)
        self.reachable = False
        self.pushed: list[dict] = []
        self.queued: list[list[dict]] = []

    def push(self, target, body, timeout):
        self.pushed.append(body)
        return {"applied": True} if self.reachable else None

    def queue(self, target, entries, epoch=None):
        self.queued.append(entries)
        return {"queued": len(entries)}


def test_a_peer_we_queued_for_hears_it_on_the_next_push_that_reaches_it():
    hooks, rep = RoundHooks(), Peer()
    assert hooks.send(rep, "order-2", [{"n": 1}], pulse=True)  # queued instead
    assert rep.queued == [[{"n": 1}]] and rep.owed == {"order-2"}
    assert hooks.send(rep, "order-2", [], pulse=True)  # still cut off: nothing to queue
    assert rep.queued == [[{"n": 1}]] and rep.owed == {"order-2"}
    rep.reachable = True
    assert hooks.send(rep, "order-2", [], pulse=True)  # an empty push only to tell it
    assert rep.pushed[-1] == {"entries": [], "queued": True}
    assert rep.owed == set()
    count = len(rep.pushed)
    assert hooks.send(rep, "order-2", [], pulse=True)  # told: an idle round sends nothing
    assert len(rep.pushed) == count


def _replicator(period: float) -> Replicator:
    tuning = SimpleNamespace(sender_period=period, connect_timeout=0.5, read_lease=1.0)
    ctx = SimpleNamespace(
        peers=lambda: [SimpleNamespace(name="order-2")],
        cluster=SimpleNamespace(tuning=tuning, recovery=None),
        node=SimpleNamespace(name="order-1"),
        write_lock=threading.Lock(),
    )
    rep = Replicator(ctx, engine=None, outbox=None, apply=lambda entries: None)
    rep._backlog = False  # nothing waits in an outbox: an idle node
    return rep


def test_an_idle_node_reads_its_queue_when_told_and_otherwise_on_the_backstop(monkeypatch):
    period = 0.02
    backstop = period * module.QUEUE_POLL_ROUNDS
    rep, reads = _replicator(period), []
    monkeypatch.setattr(rep, "drain_queue", lambda: reads.append(time.monotonic()) or True)
    rep.start()
    try:
        time.sleep(backstop * 2.5)  # idle: only the backstop polls
        assert len(reads) <= 3, reads  # not a poll every round
        polled = len(reads)
        while len(reads) == polled:  # just after a backstop poll: the next is a backstop away
            time.sleep(0.002)
        before = len(reads)
        told = time.monotonic()
        rep.drain_soon()
        deadline = told + backstop / 2
        while len(reads) == before and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(reads) > before, "not read when told"
        assert reads[before] - told < backstop / 2
    finally:
        rep.stop()
