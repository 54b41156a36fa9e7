"""An order server whose recovery queue was dropped past its cap (docs/scale.md §5).

The orders it missed are in no queue now, only on its peers: it marks its
database like a file `bazar restore` put in place (durably, before the
overflow is acknowledged), stops serving ("recovering"), and merges every
peer's state and that peer's queue (`rejoin.merge_catch_up`), which clears
the mark. At start that is the rejoin's own next step; a running node does
it in the background.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from common.node import NodeContext
from common.replication.rejoin import NotWhole, merge_catch_up
from common.replication.replicator import Replicator
from common.storage import restored

log = logging.getLogger(__name__)


def on_overflow(ctx: NodeContext, replicator: Replicator) -> None:
    """Mark, then (a running node) merge the peers' orders in the background."""
    why = f"recovery queue overflowed at {datetime.now(UTC).isoformat(timespec='seconds')}"
    with ctx.write_lock, replicator.engine.begin() as conn:
        restored.mark_lacking(conn, why)
    log.warning("%s: merging every peer's orders", why)
    if ctx.status == "up":
        ctx.status = "recovering"
        threading.Thread(
            target=_merge, args=(ctx, replicator), name="overflow", daemon=True
        ).start()


def _merge(ctx: NodeContext, replicator: Replicator) -> None:
    while True:
        try:
            merge_catch_up(ctx, replicator)
            break
        except NotWhole as e:
            log.warning("%s; trying again", e)
        except Exception:
            log.exception("merging the peers' orders failed; trying again")
        time.sleep(1.0)
    ctx.status = "up"
