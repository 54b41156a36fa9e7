"""A replica that lacks what it needs to apply an update heals from the writer's snapshot.

Design §7 rule 9. A replica is stuck when an update of epoch E reaches it
and its data comes from an older base (the base of E was lost: its queue was
acknowledged away, it was away longer than its queue keeps, or it is new), or
when the writer of E offers it a lease or a catch-up and it still holds an
older base. Instead of refusing such updates forever, it asks the lease
holder for a snapshot (`GET /snapshot`; a catalog that is not the writer
answers 421), installs it (`catalog.snapshot`), and applies the update again.

Only the writer of an epoch at least E, and at least the newest this node's
Raft log knows, is trusted. Tries are spaced out (a short delay doubling
up to `MAX_DELAY`), so a replica that cannot reach the writer does not
hammer it; meanwhile it reports `behind` with the reason in /health.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from catalog import catchup, snapshot
from catalog.replica import set_data_epoch
from catalog.schemas import BaseSchema
from common.http import Unreachable
from common.replication.replicator import CannotApplyYet
from common.storage import restored
from common.web import ApiError, tolerant

log = logging.getLogger(__name__)

FIRST_DELAY = 0.25  # seconds before trying again after a failed heal, doubling...
MAX_DELAY = 3.0  # ...up to this, so a healed fault is followed by a heal within it
FETCH_READ_TIMEOUT = 30.0  # seconds without a byte of the writer's snapshot (a large one)


class Healer:
    def __init__(self, store, clock: Callable[[], float] = time.monotonic):
        self.store = store  # CatalogStore: the node's data, role and context
        self.clock = clock
        self.installed = 0  # snapshots installed (a statistic for /health and /metrics)
        self.caught_up = 0  # times it caught up on rows instead (`catalog.catchup`)
        self.failed = 0  # tries that did not end with a snapshot installed
        self._needed = 0  # the newest epoch this replica found itself without the base of
        self._why = ""
        self._delay = FIRST_DELAY
        self._next_try = 0.0
        self._lock = threading.Lock()  # one heal at a time; the others wait for its result

    @property
    def reason(self) -> str | None:
        """Why this replica cannot apply the writer's updates; None while it can."""
        if self.store.data_epoch >= self._needed:
            return None
        return self._why

    def heal(self, needed: int, why: str, base: tuple[int, int] | None = None) -> bool:
        """Catch up on rows (`catalog.catchup`: `base` is (made from, position) of the
        delta base that did not fit) or else get the writer's snapshot, unless this
        replica's base is already of `needed` or newer; True once it is. False (and
        `reason` says why) if that did not work now."""
        with self._lock:
            if self.store.data_epoch >= needed:
                return True
            if needed > self._needed or not self._why:
                self._needed, self._why = needed, why
            if self.clock() < self._next_try:
                return False
            try:
                if not (base and self._catch_up(needed, base)):
                    self._fetch_and_install(needed)
            except ApiError as e:
                self._failed(why, e.message)
                return False
            self._delay, self._next_try = FIRST_DELAY, 0.0
            return self.store.data_epoch >= needed

    def overflowed(self) -> None:
        """The recovery node dropped this replica's queue (past `[retention] queue_cap`):
        updates it missed are in no queue now, so its data counts as no base at all, like
        a file `bazar restore` put in place (marked so, durably, before the overflow is
        acknowledged). It serves no read and does not stand for the lease; the writer's
        next update or lease heals it from a snapshot, which clears the mark."""
        store = self.store
        why = f"recovery queue overflowed at {datetime.now(UTC).isoformat(timespec='seconds')}"
        with store.ctx.write_lock, store.engine.begin() as conn:
            set_data_epoch(conn, 0)
            restored.mark_lacking(conn, why)
            store.data_epoch, store.restored = 0, why
        store.role.read_lease.end()
        log.warning("%s: healing from the writer's snapshot", why)
        if store.role.epoch and store.ctx.peers():
            # A holder taking over without its queue lacks acknowledged writes: it must
            # not write (role.whole is now False, so it steps down; its takeover stops).
            raise CannotApplyYet(f"{why}: not whole, stepping down")

    def install(self, source, needed: int = 0) -> dict:
        """Verify and install a snapshot, its bytes or a function writing them into a file
        (`snapshot.received`); SnapshotError/ApiError if refused: nothing changed."""
        ctx, role = self.store.ctx, self.store.role
        folder = ctx.cluster.db_path(ctx.node.name).parent
        with snapshot.received(source, folder) as (path, epoch):
            if epoch < needed:
                raise snapshot.SnapshotError(
                    f"snapshot of epoch {epoch}, but epoch {needed} is needed", 409, epoch=epoch
                )
            role.fence.admit(epoch, "snapshot")  # 409 if a newer holder exists: W is deposed
            with ctx.write_lock:
                if role.epoch:  # a holder never takes another's data (its takeover merges)
                    raise ApiError(409, f"this catalog holds the lease of epoch {role.epoch}")
                how = snapshot.install(self.store.engine, path, epoch)
                self.store.data_epoch, self.store.restored = epoch, None
        self.installed += 1
        log.info("installed a snapshot of epoch %d (%s)", epoch, how)
        return {"installed": how, "data_epoch": epoch}

    def _catch_up(self, needed: int, base: tuple[int, int]) -> bool:
        """Ask the writer for the rows that differ (`catalog.catchup`); False if it cannot
        answer that way (the snapshot, then)."""
        ctx, role = self.store.ctx, self.store.role
        with self.store.engine.connect() as conn:
            asked = catchup.question(conn, *base)
        if asked is None:
            return False
        timeout = (ctx.cluster.tuning.connect_timeout, FETCH_READ_TIMEOUT)
        try:
            reply = ctx.client.request(
                self._writer(), "POST", "/sync/rows", json=asked, timeout=timeout, traced=False
            )
        except Unreachable:
            return False
        if reply.status_code != 200:
            log.info("no catch-up on rows (%s): %s", reply.status_code, _message(reply))
            return False
        answer = reply.json()
        answer["rows"] = tolerant(BaseSchema).load(answer["rows"])
        if answer["data_epoch"] < needed:
            return False
        role.fence.admit(answer["data_epoch"], "catch-up")  # 409 if a newer holder exists
        with ctx.write_lock:
            if role.epoch:  # a holder never takes another's data (its takeover merges)
                return False
            with self.store.engine.begin() as conn:
                epoch = catchup.install(conn, asked, answer)
            self.store.data_epoch, self.store.restored = epoch, None
        self.caught_up += 1
        rows = sum(len(part) for part in answer["rows"].values())
        log.info("caught up on %d rows to the base of epoch %d (no snapshot)", rows, epoch)
        return True

    def _writer(self):
        ctx = self.store.ctx
        holder = self.store.role.group.view().holder
        if not holder or holder == ctx.node.name:
            raise ApiError(503, f"no writer to ask (lease holder: {holder})")
        return ctx.cluster.node(holder)

    def _fetch_and_install(self, needed: int) -> None:
        ctx = self.store.ctx
        writer = self._writer()
        holder = writer.name
        timeout = (ctx.cluster.tuning.connect_timeout, FETCH_READ_TIMEOUT)

        def download(into):
            try:
                reply = ctx.client.download(writer, "/snapshot", into, timeout)
            except Unreachable as e:
                raise ApiError(503, f"{holder} unreachable ({e})") from None
            if reply.status_code != 200:
                raise ApiError(503, f"{holder} answered {reply.status_code}: {_message(reply)}")

        self.install(download, needed)

    def _failed(self, why: str, message: str) -> None:
        self.failed += 1
        self._why = f"{why}; no snapshot yet: {message}"
        self._next_try = self.clock() + self._delay
        log.warning("%s (next try in %.2f s)", self._why, self._delay)
        self._delay = min(MAX_DELAY, self._delay * 2)


def _message(reply) -> str:
    try:
        return str(reply.json().get("message", ""))[:200]
    except (ValueError, AttributeError):
        return reply.text[:200]
