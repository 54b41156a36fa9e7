"""Pushing updates to peer replicas, with the recovery node as the fallback.

Delivery of an outbox row: the peer itself (POST /sync); if the peer does
not take it, the recovery node's queue for that peer; if neither answers,
the row stays in the outbox and the next round (at most `sender_period`
later) tries again. One round runs at a time and sends each target every
row it has not got yet, in seq order, so a target never gets a row before
an earlier one (per-target FIFO). `sent_upto[target]` is the last seq
someone durable has for that target (design §7 rule 2). Entries are applied
by the receiving service, idempotently and in any order.

A service can shape the rounds (`RoundHooks`): the catalog adds its epoch
and read leases to every push, queues instead of pushing to a copy that is
behind, and tells the front-ends which books changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from common.http import Unreachable
from common.node import NodeContext
from common.observe.metrics import PUSH_FAILURES, PUSH_LATENCY
from common.replication import marks
from common.replication.group_push import GroupPush
from common.replication.outbox import Outbox, Row

log = logging.getLogger(__name__)

Apply = Callable[[list[dict]], object]
BATCH = 500
SYNC_PAGE = 1000  # orders per page of a peer's GET /sync
# A node reads its own recovery queue when a peer that queued for it says so (that
# peer's next push carries "queued", sent as soon as it reaches us again), on its
# start (rejoin), and otherwise only every QUEUE_POLL_ROUNDS sender rounds, a backstop
# for a peer that queued and then died before telling: an idle cluster's polls that
# found nothing were about a tenth of its wake-ups (docs/consistency.md, "Queues").
QUEUE_POLL_ROUNDS = 20
RETRY_ROUNDS = 4  # queued entries we cannot apply yet are tried again this much later
MAX_ROUND = 5000  # rows read back from the outbox for one round


class CannotApplyYet(Exception):
    """Entries a replica cannot apply yet (it lacks what they build on): they stay
    queued, and the service says why in its /health."""


class RoundHooks:
    """The plain behaviour: push every row, fall back to the recovery queue."""

    # A round with nothing to deliver (and nobody owed word of a queue) does nothing
    # here, so an idle node's loop wakes only for its backstop poll (every
    # QUEUE_POLL_ROUNDS periods): each wake of a sleeping process costs CPU of its own
    # (docs/performance.md, "waking up").
    quiet_when_idle = True

    def __init__(self) -> None:
        self._skip_until: dict[str, float] = {}  # a peer that just failed: queue at once

    def send(self, replicator: Replicator, target: str, entries: list[dict], pulse: bool) -> bool:
        """Deliver `entries` (maybe none) to `target`; True once someone durable has them.
        A target we queued for hears so with the next push that reaches it."""
        owed = target in replicator.owed
        if not entries and not owed:
            return True
        if pulse or time.monotonic() >= self._skip_until.get(target, 0.0):
            body = {"entries": entries, **({"queued": True} if owed else {})}
            if replicator.push(target, body, replicator.push_timeout) is not None:
                self._skip_until.pop(target, None)
                replicator.owed.discard(target)
                return True
            # Do not make the next rounds wait on a peer that does not answer.
            self._skip_until[target] = time.monotonic() + 1.0
        if not entries:
            return True
        if replicator.queue(target, entries) is None:
            return False
        replicator.owed.add(target)  # told by the next push that reaches it
        return True

    def side_jobs(self, replicator: Replicator, batch: list[Row], pulse: bool) -> list[Callable]:
        """More work for this round, run beside the pushes (the catalog's front-ends)."""
        return []


class Replicator:
    """One node's replication: stage, deliver in rounds, retry, and pull what it missed."""

    def __init__(
        self,
        ctx: NodeContext,
        engine: Engine,
        outbox: Outbox,
        apply: Apply,
        hooks: RoundHooks | None = None,
    ):
        self.ctx = ctx
        self.engine = engine
        self.outbox = outbox
        self.apply = apply
        self.hooks = hooks or RoundHooks()
        self.peers = {n.name: n for n in ctx.peers()}
        tuning = ctx.cluster.tuning
        # A push that takes this long is given up for the recovery queue: a peer busy
        # beyond it would otherwise hold every writer of this node.
        self.push_timeout = (tuning.connect_timeout, max(0.5, tuning.read_lease * 0.75))
        self.sent_upto: dict[str, int] = defaultdict(int)
        self._staged_upto: dict[str, int] = defaultdict(int)  # newest seq staged per target
        self._backlog = True  # rows may wait in the outbox (always so after a restart)
        self._pulse = False  # the next round talks to every target, even with nothing new
        self._pulsing = False  # the running round is such a round
        self._forgotten: dict[str, int] = {}  # marks whose rows are already deleted
        # One replay of our queue at a time: a long one (a big import missed) must not be
        # joined by the same replay again when the writer's catch-up call times out.
        self._draining = threading.Lock()
        self._stop = threading.Event()
        self._nudge = threading.Event()  # rows began to wait: back to the loop's pace
        # Peers we queued entries for and have not told yet (RoundHooks.send tells them).
        self.owed: set[str] = set()
        self._drain_due = False  # a peer said it queued for us: read our queue now
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="push")
        self.group = GroupPush(self._round)
        # The recovery node dropped this node's queue (past `[retention] queue_cap`): the
        # service marks itself, durably, for its snapshot path (docs/scale.md §5).
        self.on_overflow: Callable[[], None] = _no_snapshot_path

    # -- the write path ----------------------------------------------------
    def stage(self, conn, entry: dict) -> list[Row]:
        """Call inside the write's transaction, holding the write lock."""
        rows = self.outbox.stage(conn, entry, list(self.peers))
        for seq, target, _ in rows:
            self._staged_upto[target] = max(self._staged_upto[target], seq)
        return rows

    def enqueue(self, rows: list[Row]) -> int:
        """Call still holding the write lock, so rounds see rows in commit order."""
        return self.group.enqueue(rows)

    def wait(self, ticket: int, rows: list[Row]) -> list[str]:
        """Wait for the round; return the targets that have NOT got their rows durably."""
        self.group.wait(ticket)
        return sorted({target for seq, target, _ in rows if seq > self.sent_upto[target]})

    # -- rounds -------------------------------------------------------------
    def _round(self, batch: list[Row]) -> None:
        pulse, self._pulse = self._pulse, False
        self._pulsing = pulse
        backlog_before = self._backlog
        rows = self._pending(batch)
        by_target: dict[str, list[Row]] = {t: [] for t in self.peers}
        for row in rows:
            by_target.setdefault(row[1], []).append(row)
        jobs = [
            lambda t=t, items=items: self._send_target(t, items)
            for t, items in by_target.items()
            if items or pulse
        ]
        jobs += self.hooks.side_jobs(self, batch, pulse)
        if len(jobs) == 1:  # the usual round: one peer; a thread hand-off costs more than it
            results = [jobs[0]()]
        else:
            results = [future.result() for future in [self._pool.submit(job) for job in jobs]]
        if backlog_before and all(r is not False for r in results) and len(rows) < MAX_ROUND:
            self._backlog = False  # everything that waited has gone out

    def _pending(self, batch: list[Row]) -> list[Row]:
        """Rows to send this round: the batch, or everything undelivered if rows wait."""
        if not self._backlog:
            return batch
        floor = min((self.sent_upto[t] for t in self.peers), default=0)
        with self.engine.connect() as conn:
            rows = {r[0]: r for r in self.outbox.rows_after(conn, floor, MAX_ROUND)}
        rows.update((r[0], r) for r in batch)
        return [rows[seq] for seq in sorted(rows) if seq > self.sent_upto[rows[seq][1]]]

    def _send_target(self, target: str, items: list[Row]) -> bool:
        if target not in self.peers:  # a node removed from the config: nobody to deliver to
            log.warning("dropping %d entries for unknown node %s", len(items), target)
            self._mark(target, items)
            return True
        if self.hooks.send(self, target, [entry for _, _, entry in items], self._pulsing):
            self._mark(target, items)
            return True
        if not self._backlog:  # once, as rows start to wait: a failing loop keeps its pace
            self._backlog = True
            self._nudge.set()  # a quiet loop takes up the pace of retries at once
        return False

    def outbox_depths(self) -> dict[str, tuple[int, float | None]]:
        """Per peer: rows nobody durable has yet, and the oldest one's age in seconds."""
        if not self._backlog and all(
            self.sent_upto[t] >= self._staged_upto[t] for t in self.peers
        ):  # all that waited at the start and all staged since went out: no query
            return {target: (0, None) for target in self.peers}  # (every /health asks)
        with self.engine.connect() as conn:
            return {
                target: self.outbox.pending(conn, target, self.sent_upto[target])
                for target in self.peers
            }

    def has_backlog(self, target: str) -> bool:
        """Rows for `target` that nobody durable has yet (stuck in the outbox)."""
        if not self._backlog:
            return False
        with self.engine.connect() as conn:
            rows = self.outbox.rows_after(conn, self.sent_upto[target], MAX_ROUND)
        return any(r[1] == target for r in rows)

    def _mark(self, target: str, items: list[Row]) -> None:
        if items:
            self.sent_upto[target] = max(self.sent_upto[target], items[-1][0])

    # -- transport ------------------------------------------------------------
    def push(self, target: str, body: dict, timeout: float | None = None) -> dict | None:
        """POST /sync to a peer; its JSON answer, or None if it did not take it."""
        started = time.perf_counter()
        answer = self._post(self.peers[target], "/sync", body, timeout)
        if answer is None:
            PUSH_FAILURES.labels(target).inc()
        else:
            PUSH_LATENCY.labels(target).observe(time.perf_counter() - started)
        return answer

    def queue(self, target: str, entries: list[dict], epoch: int | None = None) -> dict | None:
        """Append to the recovery node's queue for `target`; its answer, or None."""
        body = {"entries": entries, **({"epoch": epoch} if epoch is not None else {})}
        return self._post(self.ctx.cluster.recovery, f"/queue/{target}", body, None)

    def drain_soon(self) -> None:
        """A peer queued entries for us: the loop reads our queue at once (not in the
        push's request: the pusher must not wait on our replay)."""
        self._drain_due = True
        self._nudge.set()

    def _post(self, node, path: str, body: dict, timeout: float | None) -> dict | None:
        try:
            response = self.ctx.client.request(
                node, "POST", path, json=body, timeout=timeout, traced=False
            )
        except Unreachable:
            return None
        if response.status_code != 200:
            log.info("%s%s answered %s", node.name, path, response.status_code)
            return None
        return response.json()

    # -- background --------------------------------------------------------
    def start(self) -> None:
        threading.Thread(target=self._loop, name="replicator", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._nudge.set()

    def _loop(self) -> None:
        period = self.ctx.cluster.tuning.sender_period
        rounds = 0
        while not self._stop.is_set():
            quiet = self.hooks.quiet_when_idle and not (
                self._backlog or self.owed or self._drain_due
            )
            woken = self._nudge.wait(period * QUEUE_POLL_ROUNDS if quiet else period)
            self._nudge.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
                # What a peer queued for us while we were cut off (not down: a node
                # that restarts replays its queue on the way up): when it tells us
                # (a behind catalog: `drain_upto`), else on the backstop's rounds.
                rounds = 0 if quiet and not woken else (rounds + 1) % QUEUE_POLL_ROUNDS
                if self._drain_due or rounds == 0:
                    self._drain_due = False  # a word that comes during the read stays
                    if self.drain_queue() is False:  # the recovery node did not answer
                        self._drain_due = True
            except CannotApplyYet as e:  # no traceback twice a second: /health says it
                log.warning("queued entries wait: %s", e)
                rounds = QUEUE_POLL_ROUNDS - RETRY_ROUNDS  # tried again RETRY_ROUNDS later
            except Exception:  # keep retrying whatever went wrong
                log.exception("replication round failed")

    def flush(self) -> None:
        """Forget delivered rows, then run a round: retries, and heartbeats if hooked."""
        self._forget_delivered()
        self._pulse = True
        self.group.pulse()

    def _forget_delivered(self) -> None:
        marks = {t: seq for t, seq in self.sent_upto.items() if seq}
        if marks and marks != self._forgotten:  # nothing new delivered: no transaction
            with self.ctx.write_lock, self.engine.begin() as conn:
                self.outbox.remove_upto(conn, marks)
            self._forgotten = marks

    # -- catching up -------------------------------------------------------
    def drain_queue(self, apply: bool = True, upto: int | None = None, epoch: int | None = None):
        """Apply and acknowledge this node's queue on the recovery node.

        Entries are deleted there only after they are applied here, so a crash
        mid-replay loses nothing. With apply=False they are only acknowledged
        (a snapshot supersedes them). Stops once past `upto` if given. False if
        the recovery node did not answer. A queue dropped past its cap: `on_overflow()`
        first, then the overflow is acknowledged and the queue read on.
        """
        with self._draining:
            return self._drain(apply, upto, epoch)

    def _drain(self, apply: bool, upto: int | None, epoch: int | None):
        me, recovery = self.ctx.node.name, self.ctx.cluster.recovery
        params = {"limit": BATCH, **({"epoch": epoch} if epoch is not None else {})}
        while True:
            try:
                response = self.ctx.client.request(recovery, "GET", f"/queue/{me}", params=params)
                if response.status_code != 200:
                    return False
                if response.json().get("overflowed"):
                    self.on_overflow()
                    done = self.ctx.client.request(recovery, "POST", f"/queue/{me}/overflow/ack")
                    if done.status_code != 200:
                        return False
                    continue
                items = response.json()["entries"]
                if not items:
                    return True
                if apply:
                    self.apply([item["entry"] for item in items])
                self.ctx.client.request(
                    recovery, "POST", f"/queue/{me}/ack", json={"upto": items[-1]["seq"]}
                )
            except Unreachable:
                return False
            if upto is not None and items[-1]["seq"] >= upto:
                return True

    def fetch_state(
        self, node, timeout: tuple | None = None, params: dict | None = None
    ) -> dict | None:
        """A peer's state ({"entries": [...], ...}; `params` may narrow it), or None if it
        did not answer."""
        try:
            response = self.ctx.client.request(node, "GET", "/sync", params=params, timeout=timeout)
        except Unreachable:
            return None
        return response.json() if response.status_code == 200 else None

    def catch_up(self, with_queues: bool = False) -> list[str]:
        """Pull what every reachable peer changed since we last read it, and apply it;
        return who answered.

        with_queues: also what waits for that peer on the recovery node (read, never
        acknowledged), read first, and the peer read from the start. Every acknowledged
        update is on each replica or in its queue, and a queue entry leaves only once
        applied, so one peer that answers both gives everything acknowledged (a replica
        restored from a backup)."""
        answered = []
        for node in self.peers.values():
            queued = self.read_queue(node.name) if with_queues else []
            if queued is not None and self._pull(node, queued, from_start=with_queues):
                answered.append(node.name)
        return answered

    def _pull(self, node, queued: list[dict], from_start: bool) -> bool:
        """Apply `queued`, then the peer's changes page by page from our mark of it
        (`common.replication.marks`), moving the mark as pages are applied. A peer of
        an older version answers its whole state at once. False: it stopped answering."""
        with self.engine.connect() as conn:
            mark = None if from_start else marks.read(conn, node.name)
        made, after = mark or (None, 0)
        while True:
            state = self.fetch_state(node, params={"after": after, "limit": SYNC_PAGE})
            if state is None:
                return False
            if "more" in state and state.get("incarnation") != made and after:
                made, after = state.get("incarnation"), 0  # another file now: from the start
                continue
            self.apply(queued + state["entries"])
            queued = []
            if "more" not in state:
                return True
            made, after = state["incarnation"], state["after"]
            with self.ctx.write_lock, self.engine.begin() as conn:
                marks.write(conn, node.name, made, after)
            if not state["more"]:
                return True

    def read_queue(self, target: str) -> list[dict] | None:
        """Every entry queued for `target` (left there), or None if the recovery node
        did not answer."""
        entries, after = [], 0
        while True:
            try:
                response = self.ctx.client.request(
                    self.ctx.cluster.recovery,
                    "GET",
                    f"/queue/{target}",
                    params={"limit": BATCH, "after": after},
                )
            except Unreachable:
                return None
            if response.status_code != 200 or response.json().get("overflowed"):
                return None  # an overflowed queue: what it held is gone
            items = response.json()["entries"]
            if not items:
                return entries
            entries += [item["entry"] for item in items]
            after = items[-1]["seq"]


def _no_snapshot_path() -> None:
    raise CannotApplyYet("the recovery queue overflowed and this service has no snapshot path")
