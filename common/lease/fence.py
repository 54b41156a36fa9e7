"""Fencing: every node remembers the newest epoch it has seen and refuses older ones.

An epoch is the lease's fencing token (design §7 rule 0). It travels with
every catalog push, recovery-queue entry, invalidation and buy decision; a
message from an older epoch comes from a deposed primary and gets a 409.
"""

from __future__ import annotations

import logging
import threading
import time
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

    def _await(self, epoch: int) -> None:
        """A non-voter has no log to wait for: a message's epoch is believed."""

    def ordered(self) -> threading.RLock:
        """Hold while admitting and acting on a message, so an observe cannot slip between."""
        return self._order

    def admit(self, epoch: int, what: str) -> None:
        """Raise 409 if `epoch` is older than the newest seen; else remember it."""
        self._await(epoch)
        with self._lock:
            newest = self.newest
            if epoch < newest:
                self.refused += 1
                log.warning("refused %s from epoch %d (newest seen %d)", what, epoch, newest)
                raise ApiError(409, f"{what}: epoch {epoch} is older than {newest}", epoch=newest)
            self._newest = epoch


class VoterFence(EpochFence):
    """A voter's fence: epochs come from its own Raft log, never from a message.

    A message may name an epoch this voter's log has not applied yet (it lags
    the Raft leader a little): the fence waits up to `patience` for the log
    to catch up, and refuses (409) an epoch it still does not know. So no
    caller can push a voter's idea of "newest" past what Raft decided.
    """

    def __init__(self, known: Callable[[], int], patience: float = 1.0, sleep=time.sleep):
        super().__init__(known)
        self.patience = patience
        self._sleep = sleep

    @property
    def newest(self) -> int:
        return self._known()

    def observe(self, epoch: int) -> None:
        self._await(epoch)

    def _await(self, epoch: int) -> None:
        waited = 0.0
        while self._known() < epoch:
            if waited >= self.patience:
                # 409 like an old epoch: this voter cannot act for it (the sender
                # treats any refusal as a missed push and falls back to the queue).
                raise ApiError(409, f"epoch {epoch} is not in this voter's Raft log", epoch=epoch)
            self._sleep(0.01)
            waited += 0.01
