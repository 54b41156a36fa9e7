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
from collections.abc import Callable

from common.config import Cluster, Node
from common.lease.clock import Clock
from common.lease.fence import VoterFence
from common.lease.keeper import LeaseKeeper
from common.lease.raft import RaftLeaseGroup
from common.lease.reads import Grants, ReadLease
from common.node import NodeContext
from common.observe.clocks import cut_off_by_clock
from common.server import GRACEFUL_TIMEOUT

log = logging.getLogger(__name__)
# A holder whose takeover raised again and again for this long frees the lease and keeps
# off it as long, if another catalog could take over: a holder that cannot get the newest
# base (too big to fetch whole, `replica.WHOLE_STATE_ROWS`) would otherwise keep the
# cluster without a writer while a catalog that has that base waits.
TAKEOVER_PATIENCE = 10.0
RETRY_FIRST, RETRY_MOST = 0.2, 2.0  # seconds between takeover tries, doubling


class CatalogRole:
    def __init__(self, ctx: NodeContext, clock: Clock | None = None):
        self.ctx = ctx
        tuning = ctx.cluster.tuning
        self.clock = clock or Clock()
        self.group = RaftLeaseGroup(
            ctx.cluster, ctx.node, timeout=tuning.lease_renew * 2, clock=self.clock
        )
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
            max_drift=tuning.max_drift,
            unfit=self._unfit,
            before_release=lambda: self.grants.close(),
        )
        self.group.on_handover(self.keeper.poke)  # a released lease is taken at once
        self.read_lease = ReadLease(self.clock, tuning.max_drift, longest=tuning.read_lease)
        self.grants = Grants(self.clock, tuning.read_lease, tuning.max_drift)
        # Every copy that may hold a read lease: the other catalogs and the front-ends.
        self.copies = [n.name for n in ctx.peers()] + [n.name for n in ctx.cluster.of("frontend")]
        self.gathered = 0  # the epoch whose takeover has finished
        self.takeover = None  # set by the app factory: callable(epoch) -> bool
        # False while this catalog's data was restored from a backup and has not had a
        # writer's base since: it lacks writes it once held, so it must not take over
        # (set by the app factory; docs/backup.md).
        self.whole: Callable[[], bool] = lambda: True
        self.closing = False  # stopping: no new write starts here (`may_write`)
        self._aside_until = 0.0  # (monotonic) after a takeover that kept failing

    # -- view ---------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self.keeper.epoch

    def is_writer(self) -> bool:
        return self.keeper.holds() and self.gathered == self.keeper.epoch

    def may_write(self) -> bool:
        """A new write may start here: the writer, and not stepping down."""
        return self.is_writer() and not self.closing

    def serves_reads(self, data_epoch: int) -> bool:
        if self.is_writer():
            return True
        return self.read_lease.valid() and self.read_lease.epoch == data_epoch

    def read_mark(self) -> tuple:
        """What a read must still see when its answer goes out (`still_serves`)."""
        return (self.keeper.epoch if self.is_writer() else 0, self.read_lease.lapses)

    def still_serves(self, data_epoch: int, mark: tuple) -> bool:
        """Checked as an answer is given: the lease that let the read start held throughout.

        A node frozen mid-read (SIGSTOP, a VM pause) past its lease wakes up with
        the lease gone, or renewed after a lapse, and must not answer.
        """
        epoch, lapses = mark
        if epoch:
            return self.is_writer() and self.keeper.epoch == epoch
        return self.read_lease.lapses == lapses and self.serves_reads(data_epoch)

    def may_grant_until(self) -> float:
        """The moment (monotonic) up to which this node may grant read leases: 0 if none."""
        return self.keeper.holds_until() if self.is_writer() else 0.0

    def lease_view(self) -> dict:
        """The lease as this catalog sees it, for /health and `bazar status`."""
        grant = self.group.view()
        return {
            "holder": grant.holder,
            "epoch": grant.epoch,
            "seq": grant.seq,  # moves with every renewal: a voter that follows the log
            "newest_seen": self.fence.newest,
            "mine": self.keeper.epoch or None,
            "remaining": round(self.keeper.remaining(), 2),
            "raft_leader": self.group.leads(),  # who to watch when the lease stalls
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
        old = self.keeper.taken_from or self.keeper.released_by
        # The old holder answered reads as the writer, under the write lease that ran
        # out (or that it released) before ours began: only the other copies may hold a
        # read lease of its.
        self.grants.gained([c for c in self.copies if c != old])
        if old in self.copies:
            # Its lease went quiet, so it is most likely frozen or cut off: its base goes
            # to its recovery queue, and it catches up from there when it answers again.
            self.grants.miss(old)
        threading.Thread(target=self._take_over, args=(epoch,), daemon=True).start()

    def _unfit(self) -> str | None:
        """Why this catalog may not hold the lease now (the keeper's `unfit`), or None."""
        if cut_off_by_clock(self.ctx.clocks.offset()):
            return "its wall clock is too far from its peers'"
        if not self.whole():
            return "its data was restored and lacks writes it once held"
        if self.clock.mono() < self._aside_until:
            return "its takeover kept failing: another catalog may take over"
        return None

    def _take_over(self, epoch: int) -> None:
        """Try until the takeover is done or the lease is gone. A try that returns False
        waits for something (the recovery queue): tried again every RETRY_FIRST for as long
        as it takes. Tries that raise are spaced out, and after TAKEOVER_PATIENCE of them
        this catalog steps aside."""
        failing_since, pause = None, RETRY_FIRST
        while self.keeper.epoch == epoch:
            try:
                if self.takeover(epoch):
                    self.gathered = epoch
                    log.info("epoch %d: took over, now writing", epoch)
                    return
                failing_since, pause = None, RETRY_FIRST
            except Exception:
                log.exception("epoch %d: takeover failed; trying again", epoch)
                if failing_since is None:
                    failing_since = self.clock.mono()
                if self.clock.mono() - failing_since >= TAKEOVER_PATIENCE and self.ctx.peers():
                    self._step_aside(epoch)
                    return
            time.sleep(pause)
            if failing_since is not None:  # each failing try may cost a peer dearly
                pause = min(RETRY_MOST, pause * 2)

    def _step_aside(self, epoch: int) -> None:
        log.warning(
            "epoch %d: takeover failed for %g s; freeing the lease for another catalog",
            epoch,
            TAKEOVER_PATIENCE,
        )
        self._aside_until = self.clock.mono() + TAKEOVER_PATIENCE
        self.keeper.poke()  # its next step finds this catalog unfit and frees the lease

    def start(self) -> None:
        self.keeper.start()

    def step_down(self) -> None:
        """A graceful stop: stop renewing and trying, and free a lease we hold (after
        `closing` has let the writes in flight finish: `CatalogStore.hand_off`)."""
        self.closing = True
        self.keeper.stop()
        # The next holder's acquire finds a Raft leader, also while this node drains.
        self.group.lead_elsewhere(within=GRACEFUL_TIMEOUT)

    def stop(self) -> None:
        self.keeper.stop()
        self.group.stop()


def _rank(cluster: Cluster, node: Node) -> int:
    return [n.name for n in cluster.of("catalog")].index(node.name)
