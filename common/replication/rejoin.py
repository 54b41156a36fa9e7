"""How a node (re)joins the cluster: recovering -> caught up -> up (design §7 rule 3)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.node import NodeContext
from common.replication.replicator import Replicator

log = logging.getLogger(__name__)
CatchUp = Callable[[], list[str]]


def merge_catch_up(ctx: NodeContext, replicator: Replicator) -> list[str]:
    """Replay the recovery queue, then merge the state of every reachable peer.

    Right for data that cannot conflict (orders are insert-once by id), and
    for a catalog that finds no serving peer to take a snapshot from.
    """
    deadline = time.monotonic() + ctx.cluster.tuning.startup_grace
    while not replicator.drain_queue():
        if time.monotonic() > deadline:
            log.warning("recovery node unreachable; its queue will be replayed when it returns")
            break
        time.sleep(0.2)
    return replicator.catch_up()


def start_rejoin(ctx: NodeContext, replicator: Replicator, catch_up: CatchUp | None = None) -> None:
    """In the background: catch up (retrying until it works), then serve and replicate."""
    catch_up = catch_up or (lambda: merge_catch_up(ctx, replicator))

    def run():
        while True:
            try:
                answered = catch_up()
                break
            except Exception:
                log.exception("catching up failed; trying again")
                ctx.status = "recovering"
                time.sleep(1.0)
        ctx.status = "up"
        log.info("up; caught up from %s", ", ".join(answered) or "no peer (none reachable)")
        replicator.start()

    threading.Thread(target=run, name="rejoin", daemon=True).start()
