"""What the writer holds but has not acknowledged: no read may return it (design §7).

The writer commits a write locally, then pushes it. Until the write is
acknowledged its value may still vanish: if it fails and another catalog
takes over, the new holder never had it (docs/consistency.md, "Writes").
A reader who saw it, and then an older value, would have gone back in time.
So a read at the writer of a book, a decision or a listing waits for the
answer of every write to it that the read may have seen (committed at or
before the position the writer had reached once the read was done); if
such a write failed it answers 503 (another replica is asked) until the
write's rows have reached every catalog or its recovery queue and every copy
that missed them has seen its read lease run out, which is what
acknowledging it would have waited for.

Keys: a book id (int), ("order", order id) for a decision, and LISTING for
any change of what a search lists (a new, renamed or withdrawn book).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.web import ApiError

LISTING = "listing"
RECHECK = 0.02  # s between looks at a failed write's rows (a later round delivers them)


@dataclass(frozen=True)
class Write:
    """A write committed here at `position` (`catalog.rows.stamp`), changing `keys`."""

    position: int
    keys: frozenset
    rows: tuple = ()  # its outbox rows, once it failed
    epoch: int = 0


def keys_of(entries: Iterable[dict], listing: bool) -> frozenset:
    """The keys a write's replicated entries change."""
    keys: set = {LISTING} if listing else set()
    for entry in entries:
        keys.update(book["id"] for book in entry.get("books", ()))
        if entry.get("order"):
            keys.add(("order", entry["order"]["order_id"]))
    return frozenset(keys)


class Doubts:
    """A read waits only for writes at or before what it read (their positions), never
    for writes that came after it: a book bought all the time is still read at once."""

    def __init__(self, landed: Callable[[tuple, int], bool], patience: float):
        self._landed = landed  # (rows, epoch) -> no longer in doubt here
        self.patience = patience  # how long a read waits for a write's answer
        self._cond = threading.Condition()
        self._flying: dict[int, frozenset] = {}  # position -> keys: committed, unanswered
        self._failed: list[Write] = []

    def begin(self, write: Write) -> None:
        """Call before the write commits (under the write lock)."""
        if write.keys:
            with self._cond:
                self._flying[write.position] = write.keys

    def answered(self, write: Write, failed: bool = False) -> None:
        """The write was answered; `failed`: with a 503, so its keys stay in doubt."""
        if not write.keys:
            return
        with self._cond:
            self._flying.pop(write.position, None)
            if failed:
                self._failed.append(write)
            self._cond.notify_all()

    def unsure(self, keys: Iterable, upto: int) -> bool:
        """Whether a write at or before position `upto` that may still vanish changed any
        of `keys`."""
        if not self._flying and not self._failed:  # the usual answer, without the lock
            return False
        with self._cond:
            return self._unsure(tuple(keys), upto)

    def settled(self, read: Callable, keys: Iterable, position: Callable[[], int]):
        """`read()`, once no write it may have seen (at or before `position()`, read after
        it) is in doubt; a 503 if that takes over `patience`."""
        keys = tuple(keys)
        result = read()
        upto = position()
        if not self.unsure(keys, upto):
            return result
        deadline = time.monotonic() + self.patience
        with self._cond:
            while self._unsure(keys, upto):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ApiError(
                        503,
                        "a write to what was asked is not acknowledged yet; ask another replica",
                        status="unsure",
                    )
                self._cond.wait(min(left, RECHECK) if self._failed else left)
        return result

    def _unsure(self, keys: tuple, upto: int) -> bool:  # holding the lock
        if self._failed:
            self._failed = [w for w in self._failed if not self._landed(w.rows, w.epoch)]
        flying = (ks for position, ks in self._flying.items() if position <= upto)
        failed = (w.keys for w in self._failed if w.position <= upto)
        return any(not ks.isdisjoint(keys) for ks in (*flying, *failed))
