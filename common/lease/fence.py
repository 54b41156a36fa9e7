"""Fencing: every node remembers the newest epoch it has seen and refuses older ones.

An epoch is the lease's fencing token (design §7 rule 0). It travels with
every catalog push, recovery-queue entry, invalidation and buy decision; a
message from an older epoch comes from a deposed primary and gets a 409.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from common.web import ApiError

log = logging.getLogger(__name__)


class EpochFence:
    def __init__(self, known: Callable[[], int] = lambda: 0):
        self._newest = 0
        self._known = known  # a voter also knows the epoch from its own Raft log
        self._lock = threading.Lock()
        self._order = threading.RLock()
        self.refused = 0

    @property
    def newest(self) -> int:
        return max(self._newest, self._known())

    def observe(self, epoch: int) -> None:
        with self._lock:
            self._newest = max(self._newest, epoch)

    def ordered(self) -> threading.RLock:
        """Hold while admitting and acting on a message, so an observe cannot slip between."""
        return self._order

    def admit(self, epoch: int, what: str) -> None:
        """Raise 409 if `epoch` is older than the newest seen; else remember it."""
        with self._lock:
            newest = max(self._newest, self._known())
            if epoch < newest:
                self.refused += 1
                log.warning("refused %s from epoch %d (newest seen %d)", what, epoch, newest)
                raise ApiError(409, f"{what}: epoch {epoch} is older than {newest}", epoch=newest)
            self._newest = epoch
