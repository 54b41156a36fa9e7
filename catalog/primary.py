"""Who takes catalog writes: the first healthy catalog in config order (design §7).

Each catalog watches the others. A returning catalog that is earlier in the
order *announces* itself once it has caught up ("joining"); the current
primary marks it under its write lock, so every write it accepted is
already pushed to the newcomer when the announcement returns, and it takes
no more writes after that. A refused connection means the earlier one is
gone and the next in line takes over.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from common.cluster import Membership
from common.http import Unreachable
from common.node import NodeContext

log = logging.getLogger(__name__)
AHEAD = ("up", "joining")


class Election:
    def __init__(self, ctx: NodeContext, membership: Membership):
        self.ctx = ctx
        self.membership = membership
        order = [n.name for n in ctx.cluster.of("catalog")]
        me = order.index(ctx.node.name)
        self.earlier = order[:me]
        self.later = [ctx.cluster.node(n) for n in order[me + 1 :]]

    def is_primary(self) -> bool:
        return self.ctx.status == "up" and not any(
            self.membership.status(name) in AHEAD for name in self.earlier
        )

    def primary_name(self) -> str | None:
        for name in self.earlier:
            if self.membership.status(name) in AHEAD:
                return name
        return self.ctx.node.name if self.ctx.status == "up" else None

    def on_announce(self, name: str) -> None:
        """An earlier catalog is back: stop taking writes, after the ones in flight."""
        with self.ctx.write_lock:
            self.membership.mark(name, "joining")

    def join(self) -> None:
        """Tell every later catalog that we take the writes from now on."""
        self.ctx.status = "joining"
        for node in self.later:
            try:
                self.ctx.client.request(
                    node, "POST", "/announce", json={"node": self.ctx.node.name}
                )
            except Unreachable:
                log.info("%s not reachable for the hand-off", node.name)


class FrontendNotifier:
    """Tells every front-end to drop a book from its cache, off the write path."""

    def __init__(self, ctx: NodeContext):
        self.ctx = ctx
        self.frontends = ctx.cluster.of("frontend")
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="invalidate")

    def __call__(self, book_id: int) -> None:
        for node in self.frontends:
            self.pool.submit(self._send, node, book_id)

    def _send(self, node, book_id: int) -> None:
        try:
            self.ctx.client.request(node, "DELETE", f"/invalidate/{book_id}", timeout=1.0)
        except Unreachable:
            pass  # a front-end that is down has an empty cache when it returns
