"""How a node (re)joins the cluster: recovering -> caught up -> up (design §7 rule 3)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.node import NodeContext
from common.replication.replicator import Replicator

log = logging.getLogger(__name__)


def rejoin(
    ctx: NodeContext, replicator: Replicator, join: Callable[[], None] | None = None
) -> None:
    """Replay the recovery queue, catch up from peers, then serve.

    `join` (the catalog's primary hand-off) runs once the bulk is caught up;
    a last drain and catch-up then pick up what peers wrote meanwhile.
    """
    deadline = time.monotonic() + ctx.cluster.tuning.startup_grace
    while not replicator.drain_queue():
        if time.monotonic() > deadline:
            log.warning("recovery node unreachable; its queue will be replayed when it returns")
            break
        time.sleep(0.2)
    answered = replicator.catch_up()
    if join is not None:
        join()
        replicator.drain_queue()
        answered = replicator.catch_up()
    ctx.status = "up"
    log.info("up; caught up from %s", ", ".join(answered) or "no peer (none reachable)")
    replicator.start()


def start_rejoin(ctx: NodeContext, replicator: Replicator, join=None) -> None:
    def run():
        try:
            rejoin(ctx, replicator, join)
        except Exception:
            log.exception("rejoin failed; staying recovering")

    threading.Thread(target=run, name="rejoin", daemon=True).start()
