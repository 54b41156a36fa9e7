"""Who writes and who may answer reads, among the catalogs (design §7 rules 0, 3, 7).

The writer is the holder of the Raft lease (`common.lease`). Before its
first write a new holder *takes over*: it replays its own recovery queue and
merges the reachable catalogs whose data comes from the newest base, then
makes that state the base of its epoch and delivers it to every other
catalog (or to its recovery queue). Every write any earlier holder
acknowledged is on each catalog or in its queue, so it is in this base.

A catalog that is not the writer answers reads only under a read lease from
the writer, given in heartbeats once it holds the writer's base and
everything after it.
"""

from __future__ import annotations

import logging
import threading
import time

from common.config import Cluster, Node
from common.lease.clock import Clock
from common.lease.fence import VoterFence
from common.lease.keeper import LeaseKeeper
from common.lease.raft import RaftLeaseGroup
from common.lease.reads import Grants, ReadLease
from common.node import NodeContext

log = logging.getLogger(__name__)


class CatalogRole:
    def __init__(self, ctx: NodeContext, clock: Clock | None = None):
        self.ctx = ctx
        tuning = ctx.cluster.tuning
        self.clock = clock or Clock()
        self.group = RaftLeaseGroup(ctx.cluster, ctx.node, timeout=tuning.lease_renew * 2)
        self.fence = VoterFence(known=lambda: self.group.view().epoch)
        self.keeper = LeaseKeeper(
            ctx.node.name,
            _rank(ctx.cluster, ctx.node),
            self.group,
            self.clock,
            tuning.lease_duration,
            tuning.lease_renew,
            tuning.clock_margin,
            on_gained=self._gained,
        )
        self.read_lease = ReadLease(self.clock, tuning.clock_margin)
        self.grants = Grants(self.clock, tuning.read_lease)
        self.gathered = 0  # the epoch whose takeover has finished
        self.takeover = None  # set by the app factory: callable(epoch) -> bool

    # -- view ---------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self.keeper.epoch

    def is_writer(self) -> bool:
        return self.keeper.holds() and self.gathered == self.keeper.epoch

    def serves_reads(self, data_epoch: int) -> bool:
        if self.is_writer():
            return True
        return self.read_lease.valid() and self.read_lease.epoch == data_epoch

    def lease_view(self) -> dict:
        """The lease as this catalog sees it, for /health and `bazar status`."""
        grant = self.group.view()
        return {
            "holder": grant.holder,
            "epoch": grant.epoch,
            "newest_seen": self.fence.newest,
            "mine": self.keeper.epoch or None,
            "remaining": round(self.keeper.remaining(), 2),
        }

    # -- epochs -----------------------------------------------------------------
    def saw(self, epoch: int) -> None:
        """A message from `epoch` was admitted: a newer holder deposes us and our lease."""
        if epoch != self.read_lease.epoch:
            self.read_lease.end()
        if self.keeper.epoch and epoch > self.keeper.epoch:
            self.keeper.tick()  # notices the newer epoch in the log

    # -- gaining the lease ------------------------------------------------------
    def _gained(self, epoch: int) -> None:
        self.fence.observe(epoch)
        self.grants.behind.clear()
        threading.Thread(target=self._take_over, args=(epoch,), daemon=True).start()

    def _take_over(self, epoch: int) -> None:
        while self.keeper.epoch == epoch:
            try:
                if self.takeover(epoch):
                    self.gathered = epoch
                    log.info("epoch %d: took over, now writing", epoch)
                    return
            except Exception:
                log.exception("epoch %d: takeover failed; trying again", epoch)
            time.sleep(0.2)

    def start(self) -> None:
        self.keeper.start()

    def stop(self) -> None:
        self.keeper.stop()
        self.group.stop()


def _rank(cluster: Cluster, node: Node) -> int:
    return [n.name for n in cluster.of("catalog")].index(node.name)
