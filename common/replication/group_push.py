"""Group push: concurrent writers share one replication round instead of one each.

A writer `enqueue`s its freshly committed outbox rows while it still holds
the write lock (so rows reach rounds in commit order), then `wait`s outside
the lock until a round that carries them has finished. If no round is in
flight, the waiting writer leads the next one; writers arriving meanwhile
ride the round after. `pulse` runs a round with nothing new (the periodic
retry and heartbeat). One round at a time: the sender is single, so every
target sees its rows in order.
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
        self._next_round = 1  # the round that rows enqueued now will travel in
        self._done_round = 0  # every round up to this one has finished
        self.rounds = 0
        self.rows = 0

    def enqueue(self, rows: list[Row]) -> int:
        """Hand rows to the next round; returns the ticket to `wait` on."""
        with self._cond:
            self._waiting.extend(rows)
            return self._next_round

    def wait(self, ticket: int) -> None:
        """Return once round `ticket` (or a later one) has finished."""
        with self._cond:
            while self._done_round < ticket:
                if self._pushing:
                    self._cond.wait()
                else:
                    self._lead()

    def deliver(self, rows: list[Row]) -> None:
        if rows:
            self.wait(self.enqueue(rows))

    def pulse(self) -> None:
        """Run one round now, with whatever is waiting (possibly nothing)."""
        with self._cond:
            ticket = self._next_round
        self.wait(ticket)

    def _lead(self) -> None:
        """Run one round; called and returns holding the lock."""
        batch, self._waiting = self._waiting, []
        number, self._next_round = self._next_round, self._next_round + 1
        self._pushing = True
        self._cond.release()
        try:
            self._send(batch)
        finally:
            self._cond.acquire()
            self._pushing = False
            self._done_round = number
            self.rounds += 1
            self.rows += len(batch)
            self._cond.notify_all()
