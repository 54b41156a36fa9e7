"""A client-side history of price writes and reads, and the checks that no read was wrong.

A staff writer per book sets strictly rising prices, one at a time, so "an
older value" is simply "a lower price". Three checks, all on this process's
monotonic clock (`read_problems` runs them all):

- stale: a read that *started* after some write was acknowledged must return
  that price or a higher one (design §7, the invariants). Writes that got no
  answer may or may not have happened: they never make a read stale;
- unwritten: a read returns the book's initial price or one some write (answered
  or not) had begun to set before the read ended, never anything else;
- backward: a read that started after another read of the book had ended must
  not return a lower price than that one did: reads do not go back in time
  (once the write of that price was answered; see `backward_reads`).
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
    initial: dict[int, float] = field(default_factory=dict)  # each book's price before any write
    origin: float | None = None  # when set, problems say when the read began: "t+12.34s"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrote(self, book_id: int, price: float, started: float, acked: bool) -> None:
        with self._lock:
            self.writes.append(Write(book_id, price, started, time.monotonic(), acked))

    def read(self, book_id: int, price: float, started: float, via: str) -> None:
        with self._lock:
            self.reads.append(Read(book_id, price, started, time.monotonic(), via))

    def at(self, r: Read) -> str:
        return "" if self.origin is None else f"t+{r.started - self.origin:.2f}s "

    def acked_writes(self) -> int:
        return sum(w.acked for w in self.writes)

    def ack_times(self) -> list[float]:
        return sorted(w.ended for w in self.writes if w.acked)


def read_problems(history: History) -> list[str]:
    """Every read that was stale, read a value nobody wrote, or went back in time."""
    return stale_reads(history) + unwritten_reads(history) + backward_reads(history)


class _HighestBy:
    """Per book, the highest price among events that ended before a given moment."""

    def __init__(self, events: list[tuple[int, float, float, str]]):  # book, ended, price, what
        self._by_book: dict[int, tuple[list[float], list[tuple[float, float, str]]]] = {}
        for book_id, ended, price, what in sorted(events, key=lambda e: e[1]):
            ends, best = self._by_book.setdefault(book_id, ([], []))
            ends.append(ended)
            best.append(best[-1] if best and best[-1][0] >= price else (price, ended, what))

    def before(self, book_id: int, moment: float) -> tuple[float, float, str] | None:
        """(highest price, when that event ended, what it was), of events ended before."""
        ends, best = self._by_book.get(book_id, ([], []))
        i = bisect_left(ends, moment)  # events that ended strictly before `moment`
        return best[i - 1] if i else None


def stale_reads(history: History) -> list[str]:
    """Reads that returned a price older than one acknowledged before the read began."""
    acks = _HighestBy([(w.book_id, w.ended, w.price, "") for w in history.writes if w.acked])
    problems = []
    for r in history.reads:
        newest = acks.before(r.book_id, r.started)
        if newest and r.price < newest[0]:
            problems.append(
                f"{history.at(r)}stale read of book {r.book_id} via {r.via}: {r.price} after "
                f"{newest[0]} was acknowledged ({r.started - newest[1]:.3f}s before)"
            )
    return problems


def unwritten_reads(history: History) -> list[str]:
    """Reads of a price that was neither the book's initial price nor one a write had begun
    to set before the read ended (a made-up value, or one read from the future)."""
    first_set: dict[tuple[int, float], float] = {}
    for w in history.writes:
        key = (w.book_id, w.price)
        first_set[key] = min(first_set.get(key, w.started), w.started)
    problems = []
    for r in history.reads:
        began = first_set.get((r.book_id, r.price))
        if history.initial.get(r.book_id) == r.price or (began is not None and began <= r.ended):
            continue
        why = "nobody wrote" if began is None else f"first written {began - r.ended:.3f}s later"
        problems.append(
            f"{history.at(r)}read of book {r.book_id} via {r.via}: {r.price}, a price {why}"
        )
    return problems


def backward_reads(history: History, allow_in_flight: bool = True) -> list[str]:
    """Reads that returned a lower price than a read of the same book that ended before
    they began: once any reader has seen a value, no later read may see an older one.

    With `allow_in_flight`, not while the write of the higher value is still unanswered
    when the later read begins: until it is acknowledged, design §7 lets the writer (or a
    backup it reached) answer the new price while a copy with a valid lease answers the
    old one. Whatever went back after the write was answered is flagged: acknowledged
    (so stale too), or failed, its value seen once and then gone."""
    answered = {(w.book_id, w.price): w.ended for w in history.writes}

    def counts_from(r: Read) -> float:  # when a read's value binds every later read
        if not allow_in_flight:
            return r.ended
        return max(r.ended, answered.get((r.book_id, r.price), r.ended))

    seen = _HighestBy([(r.book_id, counts_from(r), r.price, r.via) for r in history.reads])
    problems = []
    for r in history.reads:
        newest = seen.before(r.book_id, r.started)
        if not newest or r.price >= newest[0]:
            continue
        problems.append(
            f"{history.at(r)}read of book {r.book_id} went back in time via {r.via}: "
            f"{r.price} after {newest[0]} was read via {newest[2]} "
            f"({r.started - newest[1]:.3f}s before)"
        )
    return problems


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch in [start, end] with no acknowledged write."""
    points = [start] + [t for t in times if start <= t <= end] + [end]
    return max((b - a for a, b in zip(points, points[1:], strict=False)), default=0.0)
