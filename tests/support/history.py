"""A client-side history of price writes and reads, and the check that no read was stale.

A staff writer per book sets strictly rising prices, one at a time, so "an
older value" is simply "a lower price". A read that *started* after some
write was acknowledged must return that price or a higher one (design §7,
the invariants). Writes that got no answer may or may not have happened:
they never make a read stale. Times are this process's monotonic clock.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Write:
    book_id: int
    price: float
    started: float
    ended: float
    acked: bool


@dataclass(frozen=True)
class Read:
    book_id: int
    price: float
    started: float
    ended: float
    via: str  # which front-end, and whether its cache could answer


@dataclass
class History:
    writes: list[Write] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrote(self, book_id: int, price: float, started: float, acked: bool) -> None:
        with self._lock:
            self.writes.append(Write(book_id, price, started, time.monotonic(), acked))

    def read(self, book_id: int, price: float, started: float, via: str) -> None:
        with self._lock:
            self.reads.append(Read(book_id, price, started, time.monotonic(), via))

    def acked_writes(self) -> int:
        return sum(w.acked for w in self.writes)

    def ack_times(self) -> list[float]:
        return sorted(w.ended for w in self.writes if w.acked)


def stale_reads(history: History) -> list[str]:
    """Reads that returned a price older than one acknowledged before the read began."""
    problems = []
    by_book: dict[int, list[tuple[float, float]]] = {}
    for w in sorted(history.writes, key=lambda w: w.ended):
        if w.acked:
            by_book.setdefault(w.book_id, []).append((w.ended, w.price))
    newest_upto: dict[int, tuple[list[float], list[float]]] = {}
    for book_id, acks in by_book.items():
        ends, best, top = [], [], float("-inf")
        for ended, price in acks:
            top = max(top, price)
            ends.append(ended)
            best.append(top)
        newest_upto[book_id] = (ends, best)
    for r in history.reads:
        ends, best = newest_upto.get(r.book_id, ([], []))
        i = bisect_left(ends, r.started)  # acks strictly before the read began
        if i and r.price < best[i - 1]:
            problems.append(
                f"stale read of book {r.book_id} via {r.via}: {r.price} after "
                f"{best[i - 1]} was acknowledged ({r.started - ends[i - 1]:.3f}s before)"
            )
    return problems


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch in [start, end] with no acknowledged write."""
    points = [start] + [t for t in times if start <= t <= end] + [end]
    return max((b - a for a, b in zip(points, points[1:], strict=False)), default=0.0)
