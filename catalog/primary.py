"""Who takes catalog writes: the first healthy catalog in config order (design §7).

Each catalog watches the others. A returning catalog takes a snapshot of the
serving primary and replaces its own state with it: whatever it wrote that
the primary never got was never acknowledged (writes are pushed before the
answer), so dropping it undoes nothing a client saw. A returning catalog
that is earlier in the order first *announces* itself ("joining"); the
current primary marks it under its write lock, so every write it accepted is
in the snapshot, and takes no more writes. A refused connection means a
catalog is gone and the next in line takes over.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from common.cluster import Membership
from common.config import Node
from common.http import Unreachable
from common.node import NodeContext
from common.replication.rejoin import merge_catch_up
from common.replication.replicator import Replicator

log = logging.getLogger(__name__)
AHEAD = ("up", "joining")


class Election:
    def __init__(self, ctx: NodeContext, membership: Membership):
        self.ctx = ctx
        self.membership = membership
        order = ctx.cluster.of("catalog")
        me = [n.name for n in order].index(ctx.node.name)
        self.earlier = order[:me]
        self.later = order[me + 1 :]

    def is_primary(self) -> bool:
        return self.ctx.status == "up" and self._first_ahead() is None

    def confirm_primary(self) -> bool:
        """Like is_primary, but re-checks an earlier catalog that looks alive right now.

        A write that finds an earlier catalog "up" asks it directly, so a dead
        primary is noticed on the first write, not at the next health round.
        """
        if self.ctx.status != "up":
            return False
        ahead = self._first_ahead()
        while ahead is not None and self.membership.check(ahead) not in AHEAD:
            ahead = self._first_ahead()
        return ahead is None

    def primary_name(self) -> str | None:
        ahead = self._first_ahead()
        if ahead is not None:
            return ahead.name
        return self.ctx.node.name if self.ctx.status == "up" else None

    def _first_ahead(self) -> Node | None:
        return next((n for n in self.earlier if self.membership.status(n.name) in AHEAD), None)

    def on_announce(self, name: str, replicator: Replicator) -> None:
        """An earlier catalog is back: stop taking writes, after the ones in flight."""
        with self.ctx.write_lock:
            self.membership.mark(name, "joining")
        replicator.group.wait_idle()  # every write we acknowledged or will is pushed

    def announce(self) -> None:
        """Tell every later catalog that we take the writes from now on."""
        self.ctx.status = "joining"
        for node in self.later:
            try:
                self.ctx.client.request(
                    node, "POST", "/announce", json={"node": self.ctx.node.name}
                )
            except Unreachable:
                log.info("%s not reachable for the hand-off", node.name)


class CatalogRejoin:
    """A returning catalog: snapshot of the serving primary, or merge if none serves."""

    def __init__(self, ctx: NodeContext, election: Election, replicator: Replicator, install):
        self.ctx = ctx
        self.election = election
        self.replicator = replicator
        self.install = install

    def __call__(self) -> list[str]:
        self.ctx.status = "recovering"
        self.election.membership.check_all()
        serving = [
            n
            for n in self.election.earlier + self.election.later
            if self.election.membership.status(n.name) == "up"
        ]
        if not serving:
            return merge_catch_up(self.ctx, self.replicator)
        primary = serving[0]
        if primary in self.election.later:
            self.election.announce()
        self.replicator.drain_queue(apply=False)  # the snapshot supersedes it
        entries = self.replicator.fetch_state(primary)
        if entries is None:
            raise RuntimeError(f"no snapshot from {primary.name}")
        self.install(entries)
        self.replicator.drain_queue()  # what the primary queued for us meanwhile
        return [primary.name]


class FrontendNotifier:
    """Tells every front-end to drop a book from its cache, off the write path."""

    def __init__(self, ctx: NodeContext):
        self.ctx = ctx
        self.frontends = ctx.cluster.of("frontend")
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="invalidate")

    def __call__(self, book_id: int, skip: str | None = None) -> None:
        for node in self.frontends:
            if node.name != skip:  # the origin drops the book on its own write path
                self.pool.submit(self._send, node, book_id)

    def _send(self, node, book_id: int) -> None:
        try:
            self.ctx.client.request(node, "DELETE", f"/invalidate/{book_id}", timeout=1.0)
        except Unreachable:
            pass  # a front-end that is down has an empty cache when it returns
