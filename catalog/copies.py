"""How the catalog writer talks to its copies in each replication round (design §7).

Every push carries the writer's epoch (peers refuse older ones). Heartbeat
rounds also carry read leases. A backup that missed an update is *behind*:
it gets no lease and no direct pushes (its updates go to its recovery queue,
in order) until a catch-up call has made it replay that queue, so its data
is always a prefix of the writer's. Front-ends get the changed books (with
their new versions) and, in heartbeats, their read leases.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from catalog.role import CatalogRole
from common.http import Unreachable
from common.node import NodeContext
from common.replication.replicator import Replicator, RoundHooks

log = logging.getLogger(__name__)


class CatalogCopies(RoundHooks):
    # The holder's rounds carry read leases and heartbeats every period; a backup's
    # stay at that pace too, so its first rounds as a new holder are not late.
    quiet_when_idle = False

    def __init__(self, ctx: NodeContext, role: CatalogRole):
        self.ctx = ctx
        self.role = role
        self.frontends = ctx.cluster.of("frontend")
        tuning = ctx.cluster.tuning
        # A push that takes longer than this counts as missed: the copy is then
        # caught up through its queue, and writes wait out its lease.
        self.timeout = (tuning.connect_timeout, max(0.5, tuning.read_lease * 0.75))
        self.queued_seq: dict[str, int] = {}  # last recovery-queue seq per behind backup
        self._target_locks: dict[str, threading.Lock] = {}
        self._catching_up: set[str] = set()
        # (book id, version, origin, whether which books a search lists changed)
        self._changed: list[tuple[int, int, str | None, bool]] = []
        self._changed_lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="catch-up")

    def note_change(self, book: dict | None, origin: str | None, listing: bool = False) -> None:
        """Called under the write lock: the next round tells the front-ends. No `book`:
        only that searches changed (an import's new books: none of them is cached, and
        dropping a thousand books would scan every cached search a thousand times)."""
        change = (book["id"], book["version"]) if book is not None else (None, 0)
        with self._changed_lock:
            self._changed.append((*change, origin, listing))

    def _lock(self, target: str) -> threading.Lock:
        return self._target_locks.setdefault(target, threading.Lock())

    # -- backups ------------------------------------------------------------
    def send(self, rep: Replicator, target: str, entries: list[dict], pulse: bool) -> bool:
        epoch = self.role.epoch
        if not epoch:  # not the holder: what waits here was never acknowledged, and stays
            # A backup's heartbeat round has nothing to deliver: saying so lets the
            # replicator see an empty outbox without querying it on every /health.
            return not entries
        grants = self.role.grants
        with self._lock(target):
            if target not in grants.behind:
                lease = self._offer(target) if pulse else None
                body = with_lease({"entries": entries, "epoch": epoch}, lease)
                answer = rep.push(target, body, self.timeout)
                if answer is not None:
                    grants.heard(target, answer.get("stamp"))
                    if pulse and lease is None:  # the first stamp from it: grant at once
                        self._first_grant(rep, target, epoch)
                    return True
                grants.miss(target)
                log.info(
                    "%s missed a push of epoch %d; it catches up through its queue", target, epoch
                )
            if entries:
                queued = rep.queue(target, entries, epoch)
                if queued is None:
                    return False
                self.queued_seq[target] = queued.get("last_seq", 0)
        if pulse:
            self._start_catch_up(rep, target, epoch)
        return True

    def _offer(self, copy: str) -> dict | None:
        """A read lease for `copy`, recorded before it is sent; None if none may be given."""
        return self.role.grants.offer(copy, self.role.may_grant_until())

    def _first_grant(self, rep: Replicator, target: str, epoch: int) -> None:
        """A copy just answered for the first time since we lacked its stamp: its lease
        need not wait for the next heartbeat (a read lease counts from its own stamp)."""
        lease = self._offer(target)
        if lease is not None:
            body = {"entries": [], "epoch": epoch, "lease": lease}
            answer = rep.push(target, body, self.timeout)
            if answer is not None:
                self.role.grants.heard(target, answer.get("stamp"))

    def _start_catch_up(self, rep: Replicator, target: str, epoch: int) -> None:
        if target in self._catching_up:
            return
        self._catching_up.add(target)
        self._background.submit(self._catch_up, rep, target, epoch)

    def _catch_up(self, rep: Replicator, target: str, epoch: int) -> None:
        """Have a behind backup replay its queue; it may get leases again once done.

        The bulk is replayed without blocking anyone. What writes queued for it
        meanwhile is replayed holding the target's lock, so nothing more can be
        queued: under a steady stream of writes the backup still catches up
        (comparing after the fact would find a newer entry almost every time).
        """
        try:
            upto = self.queued_seq.get(target, 0)
            if not self._drain(rep, target, epoch, upto, (self.timeout[0], 10.0)):
                return
            with self._lock(target):
                latest = self.queued_seq.get(target, 0)
                if latest != upto and not self._drain(rep, target, epoch, latest, self.timeout):
                    return
                if not rep.has_backlog(target):
                    self.role.grants.caught_up(target)
                    log.info("%s caught up with epoch %d", target, epoch)
        finally:
            self._catching_up.discard(target)

    def _drain(self, rep: Replicator, target: str, epoch: int, upto: int, timeout) -> bool:
        """The target replays its recovery queue up to `upto`; True if it holds our base."""
        answer = rep.push(target, {"entries": [], "epoch": epoch, "drain_upto": upto}, timeout)
        if answer is None or answer.get("data_epoch") != epoch:
            return False
        self.role.grants.heard(target, answer.get("stamp"))
        return True

    # -- front-ends ---------------------------------------------------------
    def side_jobs(self, rep: Replicator, batch, pulse: bool) -> list:
        with self._changed_lock:
            changed, self._changed = self._changed, []
        epoch = self.role.epoch
        if not epoch or not self.role.is_writer():
            return []
        jobs = []
        for node in self.frontends:
            theirs = [change for change in changed if change[2] != node.name]
            books = {str(b): v for b, v, _, _ in theirs if b is not None}
            listing = any(change[3] for change in theirs)
            if books or listing:  # a write waits for these: the round carries them
                jobs.append(
                    lambda n=node, b=books, s=listing: self._tell_frontend(n, epoch, b, pulse, s)
                )
            elif pulse:
                # A heartbeat only renews the lease: nothing waits for it, so the round
                # does not either. (A front-end whose threads all wait on this primary's
                # writes would otherwise hold every write until the call timed out.)
                self._background.submit(self._tell_frontend, node, epoch, {}, True)
        return jobs

    def _tell_frontend(
        self, node, epoch: int, books: dict, pulse: bool, listing: bool = False
    ) -> bool:
        grants = self.role.grants
        if node.name in grants.behind:
            # It missed something: no lease until the old one ran out (then it drops its
            # cache), and none offered before a call without one got through, since an
            # offer to a copy that is away would make writes wait out one more lease.
            if pulse and grants.lapsed(node.name):
                self._start_probe(node, epoch)
            return True
        lease = self._offer(node.name) if pulse else None
        body = with_lease({"epoch": epoch, "invalidate": books}, lease)
        if listing:
            body["searches"] = True
        if not self._post_lease(node, body):
            grants.miss(node.name)
        elif pulse and lease is None:  # the first stamp from it: grant at once
            lease = self._offer(node.name)
            if lease is not None:
                self._post_lease(node, {"epoch": epoch, "lease": lease, "invalidate": {}})
        return True  # a front-end holds nothing durable: the round did not fail for it

    def _start_probe(self, node, epoch: int) -> None:
        if node.name in self._catching_up:
            return
        self._catching_up.add(node.name)

        def probe():
            try:
                if self._post_lease(node, {"epoch": epoch, "invalidate": {}}):
                    self.role.grants.caught_up(node.name)
            finally:
                self._catching_up.discard(node.name)

        self._background.submit(probe)

    def _post_lease(self, node, body: dict) -> bool:
        try:
            response = self.ctx.client.request(
                node, "POST", "/lease", json=body, timeout=self.timeout, traced=False
            )
        except Unreachable:
            return False
        if response.status_code != 200:
            log.info("%s /lease answered %s", node.name, response.status_code)
            return False
        self.role.grants.heard(node.name, response.json().get("stamp"))
        return True


def with_lease(body: dict, lease: dict | None) -> dict:
    """A message, with a read lease if one is granted (no lease: no field)."""
    return {**body, "lease": lease} if lease is not None else body
