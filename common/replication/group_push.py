"""Group push: concurrent writers share one push per peer instead of one each.

A writer hands its freshly committed outbox rows to `deliver` and waits until
a push that carries them has finished. If no push is in flight, the writer
becomes the leader and pushes everything waiting; writers arriving
meanwhile wait for the next batch. Under load, one request carries many
entries; alone, a writer pushes its own at once. Nobody is answered before
its entries reached the peer (or the recovery node, or stay in the outbox).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from common.replication.outbox import Row


class GroupPush:
    def __init__(self, send: Callable[[list[Row]], None]):
        self._send = send
        self._cond = threading.Condition()
        self._waiting: list[Row] = []
        self._pushing = False
        self._next_batch = 1  # the batch that rows handed in now will travel in
        self._done_batch = 0  # every batch up to this one has been pushed
        self.batches = 0
        self.rows = 0

    def deliver(self, rows: list[Row]) -> None:
        """Return once a push carrying `rows` has completed."""
        if not rows:
            return
        with self._cond:
            self._waiting.extend(rows)
            mine = self._next_batch
            while self._done_batch < mine:
                if self._pushing:
                    self._cond.wait()
                else:
                    self._lead()

    def _lead(self) -> None:
        """Push everything waiting, as one batch; called and returns holding the lock."""
        batch, self._waiting = self._waiting, []
        number, self._next_batch = self._next_batch, self._next_batch + 1
        self._pushing = True
        self._cond.release()
        try:
            self._send(batch)
        finally:
            self._cond.acquire()
            self._pushing = False
            self._done_batch = number
            self.batches += 1
            self.rows += len(batch)
            self._cond.notify_all()

    def wait_idle(self) -> None:
        """Until nothing is waiting or in flight (the catalog's primary hand-off)."""
        with self._cond:
            while self._pushing or self._waiting:
                if self._pushing:
                    self._cond.wait()
                else:
                    self._lead()
