"""How a node (re)joins the cluster: recovering -> caught up -> up (design §7 rule 3)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.node import NodeContext
from common.replication.replicator import Replicator
from common.storage import restored

log = logging.getLogger(__name__)
CatchUp = Callable[[], list[str]]


class NotWhole(Exception):
    """A replica restored from a backup that could not yet pull a peer's updates."""


def merge_catch_up(ctx: NodeContext, replicator: Replicator) -> list[str]:
    """Replay the recovery queue, then merge the state of every reachable peer.

    Right for data that cannot conflict (orders are insert-once by id). A
    database `bazar restore` put in place lacks updates this node once held
    and no queue keeps for it: it is whole only once a peer's state and that
    peer's queue are merged (`Replicator.catch_up`), which clears the mark.
    """
    deadline = time.monotonic() + ctx.cluster.tuning.startup_grace
    while not replicator.drain_queue():
        if time.monotonic() > deadline:
            log.warning("recovery node unreachable; its queue will be replayed when it returns")
            break
        time.sleep(0.2)
    with replicator.engine.connect() as conn:
        marked = restored.restored_at(conn)
    if not marked:
        return replicator.catch_up()
    answered = replicator.catch_up(with_queues=True)
    if not answered and replicator.peers:  # a lone replica: what it holds is all there is
        raise NotWhole(
            f"restored from a backup ({marked}): no peer and its recovery queue answered yet"
        )
    with ctx.write_lock, replicator.engine.begin() as conn:
        restored.clear(conn)
    log.info("restored from a backup (%s): merged %s", marked, answered or "no peer (none)")
    return answered


def start_rejoin(ctx: NodeContext, replicator: Replicator, catch_up: CatchUp | None = None) -> None:
    """In the background: catch up (retrying until it works), then serve and replicate."""
    catch_up = catch_up or (lambda: merge_catch_up(ctx, replicator))

    def run():
        while True:
            try:
                answered = catch_up()
                break
            except NotWhole as e:  # no traceback every second: the state is plain
                log.warning("%s; trying again", e)
                time.sleep(1.0)
            except Exception:
                log.exception("catching up failed; trying again")
                ctx.status = "recovering"
                time.sleep(1.0)
        ctx.status = "up"
        log.info("up; caught up from %s", ", ".join(answered) or "no peer (none reachable)")
        replicator.start()

    threading.Thread(target=run, name="rejoin", daemon=True).start()
