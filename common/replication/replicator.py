"""Pushing updates to peer replicas, with the recovery node as the fallback.

Delivery order for an outbox row: the peer itself (POST /sync); if the peer
does not answer, the recovery node's queue for that peer; if neither answers,
the row stays in the outbox and the background sender tries again every
`sender_period`. A row leaves the outbox only once someone durable has it
(design §7 rule 2). Entries are applied by the receiving service's
`apply(entries)`, which must be idempotent and order-insensitive.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy.engine import Engine

from common.http import Unreachable
from common.node import NodeContext
from common.replication.group_push import GroupPush
from common.replication.outbox import Outbox, Row

log = logging.getLogger(__name__)

Apply = Callable[[list[dict]], None]
BATCH = 500


class Replicator:
    """One node's replication: stage, deliver, retry, and pull what it missed."""

    def __init__(self, ctx: NodeContext, engine: Engine, outbox: Outbox, apply: Apply):
        self.ctx = ctx
        self.engine = engine
        self.outbox = outbox
        self.apply = apply
        self.peers = {n.name: n for n in ctx.peers()}
        self._stop = threading.Event()
        self._delivered: set[int] = set()  # pushed on the write path, not yet deleted
        self._lock = threading.Lock()
        self.group = GroupPush(lambda rows: self._send(rows, remove_now=False))

    # -- the write path ----------------------------------------------------
    def stage(self, conn, entry: dict) -> list[Row]:
        """Call inside the write's transaction."""
        return self.outbox.stage(conn, entry, list(self.peers))

    def deliver(self, rows: list[Row]) -> None:
        """Push freshly staged rows now, before the client is answered (group push).

        Delivered rows are only noted here; the background round deletes them
        in one transaction. A crash before that re-sends them: harmless, since
        applying an entry twice changes nothing.
        """
        self.group.deliver(rows)

    # -- background --------------------------------------------------------
    def start(self) -> None:
        threading.Thread(target=self._loop, name="replicator", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        period = self.ctx.cluster.tuning.sender_period
        while not self._stop.wait(period):
            try:
                self.flush()
                self.drain_queue()
            except Exception:  # keep retrying whatever went wrong
                log.exception("replication round failed")

    def flush(self) -> int:
        """Forget delivered rows; retry every other row older than a moment."""
        with self._lock:
            done, self._delivered = self._delivered, set()
        if done:
            with self.ctx.write_lock, self.engine.begin() as conn:
                self.outbox.remove(conn, sorted(done))
        with self.engine.connect() as conn:
            rows = [r for r in self.outbox.rows(conn, older_than=1.0) if r[0] not in done]
        self._send(rows)
        return len(rows)

    def _send(self, rows: list[Row], remove_now: bool = True) -> None:
        by_target: dict[str, list[tuple[int, dict]]] = defaultdict(list)
        for seq, target, entry in rows:
            by_target[target].append((seq, entry))
        delivered: list[int] = []
        for target, items in by_target.items():
            entries = [entry for _, entry in items]
            if self._push(target, entries) or self._queue(target, entries):
                delivered.extend(seq for seq, _ in items)
        if delivered and remove_now:
            with self.ctx.write_lock, self.engine.begin() as conn:
                self.outbox.remove(conn, delivered)
        elif delivered:
            with self._lock:
                self._delivered.update(delivered)

    def _push(self, target: str, entries: list[dict]) -> bool:
        node = self.peers.get(target)
        if node is None:  # a node removed from the config: nobody to deliver to
            log.warning("dropping %d entries for unknown node %s", len(entries), target)
            return True
        return self._post(node, "/sync", entries)

    def _queue(self, target: str, entries: list[dict]) -> bool:
        return self._post(self.ctx.cluster.recovery, f"/queue/{target}", entries)

    def _post(self, node, path: str, entries: list[dict]) -> bool:
        try:
            response = self.ctx.client.request(node, "POST", path, json={"entries": entries})
        except Unreachable:
            return False
        if response.status_code != 200:
            log.warning("%s%s answered %s", node.name, path, response.status_code)
        return response.status_code == 200

    # -- catching up -------------------------------------------------------
    def drain_queue(self, apply: bool = True) -> bool:
        """Apply and acknowledge this node's queue on the recovery node.

        Entries are deleted there only after they are applied here, so a crash
        mid-replay loses nothing. With apply=False they are only acknowledged
        (a snapshot from the primary supersedes them). False if the recovery
        node did not answer.
        """
        me, recovery = self.ctx.node.name, self.ctx.cluster.recovery
        while True:
            try:
                response = self.ctx.client.request(
                    recovery, "GET", f"/queue/{me}", params={"limit": BATCH}
                )
                if response.status_code != 200:
                    return False
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

    def fetch_state(self, node) -> list[dict] | None:
        """A peer's whole state as entries, or None if it did not answer."""
        try:
            response = self.ctx.client.request(node, "GET", "/sync")
        except Unreachable:
            return None
        return response.json()["entries"] if response.status_code == 200 else None

    def catch_up(self) -> list[str]:
        """Pull the full state of every reachable peer and apply it; return who answered."""
        answered = []
        for node in self.peers.values():
            entries = self.fetch_state(node)
            if entries is not None:
                self.apply(entries)
                answered.append(node.name)
        return answered
