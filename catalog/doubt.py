"""What the writer holds but has not acknowledged: no read may return it (design §7).

The writer commits a write locally, then pushes it. Until the write is
acknowledged its value may still vanish: if it fails and another catalog
takes over, the new holder never had it (docs/consistency.md, "Writes").
A reader who saw it, and then an older value, would have gone back in time.
So the writer's reads of a book, a decision or a listing with a write in
flight wait for that write's answer; after a write that failed they answer
503 (another replica is asked) until its rows have reached every catalog or
its recovery queue and every copy that missed them has seen its read lease
run out, which is what acknowledging would have waited for.

Keys: a book id (int), ("order", order id) for a decision, and LISTING for
any change of what a search lists (a new, renamed or withdrawn book).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.web import ApiError

LISTING = "listing"
RECHECK = 0.02  # s between looks at a failed write's rows (a later round delivers them)


@dataclass(frozen=True)
class Failed:
    """A write answered 503: its keys stay in doubt until `landed(rows, epoch)`."""

    keys: frozenset
    rows: tuple
    epoch: int


def keys_of(entries: Iterable[dict], listing: bool) -> frozenset:
    """The keys a write's replicated entries change."""
    keys: set = {LISTING} if listing else set()
    for entry in entries:
        keys.update(book["id"] for book in entry.get("books", ()))
        if entry.get("order"):
            keys.add(("order", entry["order"]["order_id"]))
    return frozenset(keys)


class Doubts:
    def __init__(self, landed: Callable[[tuple, int], bool], patience: float):
        self._landed = landed  # (rows, epoch) -> no longer in doubt here
        self.patience = patience  # how long a read waits for a write's answer
        self._cond = threading.Condition()
        self._writing: Counter = Counter()  # key -> writes committed, not yet answered
        self._failed: list[Failed] = []

    def begin(self, keys: frozenset) -> None:
        """Call before the write commits (under the write lock)."""
        with self._cond:
            self._writing.update(keys)

    def answered(self, keys: frozenset, failed: Failed | None = None) -> None:
        """The write was answered; `failed`: with a 503, so its keys stay in doubt."""
        with self._cond:
            self._writing.subtract(keys)
            for key in keys:
                if self._writing[key] <= 0:
                    del self._writing[key]
            if failed is not None:
                self._failed.append(failed)
            self._cond.notify_all()

    def unsure(self, keys: Iterable) -> bool:
        """Whether any of `keys` has a write here that may still vanish."""
        if not self._writing and not self._failed:  # the usual answer, without the lock
            return False
        with self._cond:
            return self._unsure(keys)

    def settled(self, read: Callable, keys: Iterable):
        """`read()`, done again after waiting while any of `keys` had a write in doubt
        (checked after the read, as a doubt begins before its write commits); a 503 if
        that is not so within `patience`."""
        keys = tuple(keys)
        result = read()
        if not self.unsure(keys):
            return result
        deadline = time.monotonic() + self.patience
        while True:
            self._settle(keys, deadline)
            result = read()
            if not self.unsure(keys):
                return result

    def _settle(self, keys: tuple, deadline: float) -> None:
        with self._cond:
            while self._unsure(keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(
                        503,
                        "a write to what was asked is not acknowledged yet; ask another replica",
                        status="unsure",
                    )
                self._cond.wait(min(left, RECHECK) if self._failed else left)

    def _unsure(self, keys: Iterable) -> bool:  # holding the lock
        if self._failed:
            self._failed = [f for f in self._failed if not self._landed(f.rows, f.epoch)]
        return any(key in self._writing or any(key in f.keys for f in self._failed) for key in keys)
