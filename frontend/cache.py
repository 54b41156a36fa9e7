"""The front-end's lookup and search caches (design §7 rules 6 and 7).

A cached answer is served as fresh only while the read lease from the
catalog primary is valid AND it was stored under that same lease (the
lease's generation, `ReadLease.lapses`, has not moved since). A lapse means
the primary may have acknowledged writes without reaching us, so everything
cached before it is stale for good.

Invalidation is the mechanism, the TTL only a safety net. A refill takes a
ticket before it asks the catalog, and is stored only if
  (a) the book was not invalidated after that ticket ("set after invalidate"),
  (b) its version is at least the book's floor (the newest version an
      invalidation announced), and
  (c) the lease is valid and its generation is the ticket's.
A refill never replaces a fresh, newer version either.

An invalidated or lapsed entry is not thrown away: it is kept, marked with
the moment it stopped being known fresh, for clients that accept stale
answers (`Cache-Control: max-stale`).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

from cachetools import LRUCache, TTLCache

from common.lease.clock import Clock
from common.lease.reads import ReadLease
from frontend.coalesce import Coalescer


class Ticket(NamedTuple):
    """Taken before a catalog read; orders refills against invalidations and lease changes."""

    seq: int
    generation: int  # the lease's generation when the read started
    epoch: int  # the newest epoch seen when the read started


@dataclass
class Entry:
    value: Any
    generation: int  # lease generation it was stored under
    fetched_at: float  # monotonic time it was stored
    stale_since: float | None = None  # monotonic time it stopped being known fresh


@dataclass(frozen=True)
class Answer:
    value: Any
    age: int | None = None  # whole seconds since fetched, on a stale answer only


class CountingTTLCache(TTLCache):
    """A TTLCache that counts what it drops: evicted for room, or expired."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.evictions = 0
        self.expirations = 0

    def popitem(self):
        self.evictions += 1
        return super().popitem()

    def expire(self, time=None):
        expired = super().expire(time)
        self.expirations += len(expired)
        return expired


class BookCache:
    def __init__(
        self,
        size: int,
        ttl: float,
        lease: ReadLease | None = None,
    ):
        self.lease = lease or ReadLease(Clock())
        self.clock = self.lease.clock
        timer = self.clock.mono
        self._books = CountingTTLCache(maxsize=size, ttl=ttl, timer=timer)
        self._searches = CountingTTLCache(maxsize=max(size // 10, 16), ttl=ttl, timer=timer)
        # book id -> ticket of its last invalidation; big enough that an entry
        # cannot be evicted while a refill that predates it is still in flight.
        self._invalidated: LRUCache = LRUCache(maxsize=100_000)
        self._floors: LRUCache = LRUCache(maxsize=100_000)  # book id -> (epoch, version)
        self._listing_changed = 0  # ticket of the last change to which books a search lists
        self._tickets = itertools.count(1)
        self._epoch = 0  # newest epoch seen
        self._lock = threading.Lock()
        self.flights = Coalescer()  # concurrent misses share one catalog call
        self.hits = 0
        self.misses = 0
        self.stale_served = 0
        self.invalidations = 0

    # -- the lease ------------------------------------------------------------
    def grant(self, epoch: int, lease: dict) -> bool:
        """Take the primary's read lease; True if it follows a lapse (old entries go stale)."""
        with self._lock:
            if epoch < self._epoch:
                return False  # overtaken by a newer primary while on its way
            self._observe(epoch)
            ended = self._lease_end()
            lapsed = self.lease.grant(epoch, lease)
            if lapsed:
                self._mark_all(ended)
            return lapsed

    def observe_epoch(self, epoch: int) -> None:
        with self._lock:
            self._observe(epoch)

    def _observe(self, epoch: int) -> None:
        # A newer primary exists: the old one's grant no longer vouches for anything.
        if epoch > self._epoch:
            self._epoch = epoch
            self._mark_all(self._lease_end())
            self.lease.end()

    def _lease_end(self) -> float:
        """When the current lease stopped (or will stop) being valid, capped at now."""
        return min(self.clock.mono(), self.lease.ended_at())

    def _mark_all(self, at: float) -> None:
        for store in (self._books, self._searches):
            for key in list(store.keys()):
                entry = store.get(key)
                if entry is not None and entry.stale_since is None:
                    entry.stale_since = at

    def lease_state(self) -> dict:
        return {
            "epoch": self.lease.epoch,
            "valid": self.lease.valid(),
            "remaining": round(self.lease.remaining(), 3),
            # handing over to a successor process (on-stop hook): only then, so the
            # usual view stays as it was
            **({"retired": True} if self.lease.retired else {}),
        }

    # -- refills --------------------------------------------------------------
    def ticket(self) -> Ticket:
        """Take before reading from the catalog; pass to `put`/`put_search`/`behind`."""
        with self._lock:
            return Ticket(next(self._tickets), self.lease.lapses, self._epoch)

    def coalesce(self, key: tuple, fetch: Callable[[], Any]) -> Any:
        """Run `fetch`, shared with concurrent callers only while the lease is valid.

        Without a lease the primary may acknowledge a write without telling us,
        so a caller must not join a fetch that may have read before that write.
        Under a lease every write reaches us first and `invalidate` forgets the
        flights it may have overtaken; the generation in the key keeps a flight
        from one lease apart from callers of the next.
        """
        with self._lock:
            generation = self.lease.lapses if self.lease.valid() else None
        if generation is None:
            return fetch()
        return self.flights.run((*key, generation), fetch)

    def behind(self, book: dict, ticket: Ticket) -> bool:
        """True if `book` is older than an invalidation that applies to this read.

        Checked when a fetch completes: a reader may have joined it after a
        write was acknowledged, and the replica read may predate that write.
        """
        with self._lock:
            return book["version"] < self._floor(book["id"], ticket)

    def _floor(self, book_id: int, ticket: Ticket) -> int:
        # A floor from an older epoch than the read's may name a write the deposed
        # primary never got acknowledged; reads that start after the new epoch was
        # seen begin after every write it did acknowledge, so they ignore it.
        epoch, version = self._floors.get(book_id, (0, 0))
        return version if epoch >= ticket.epoch else 0

    def _storable(self, ticket: Ticket) -> bool:
        return self.lease.valid() and self.lease.lapses == ticket.generation

    def put(self, book: dict, ticket: Ticket) -> bool:
        """Store a book read under `ticket`, unless it may be stale (rules a-c above)."""
        with self._lock:
            if not self._storable(ticket):
                return False
            if self._invalidated.get(book["id"], 0) >= ticket.seq:
                return False
            if book["version"] < self._floor(book["id"], ticket):
                return False
            held = self._books.get(book["id"])
            if held and self._fresh(held) and held.value["version"] > book["version"]:
                return False
            self._books[book["id"]] = Entry(book, ticket.generation, self.clock.mono())
            return True

    def put_search(self, key: tuple, page: dict, ticket: Ticket) -> bool:
        """Store a page of a search (topic or words), keyed by (route, query, limit,
        after), unless which books a search lists changed meanwhile. A price or stock
        change does not matter: a page carries neither."""
        with self._lock:
            if not self._storable(ticket):
                return False
            if self._listing_changed >= ticket.seq:
                return False
            self._searches[key] = Entry(page, ticket.generation, self.clock.mono())
            return True

    # -- reads ----------------------------------------------------------------
    def _fresh(self, entry: Entry) -> bool:
        return (
            entry.stale_since is None
            and entry.generation == self.lease.lapses
            and self.lease.valid()
        )

    def get(self, book_id: int) -> dict | None:
        """The book if it is cached and fresh, else None."""
        with self._lock:
            entry = self._books.get(book_id)
            if entry is None or not self._fresh(entry):
                self.misses += 1
                return None
            self.hits += 1
            return entry.value

    def get_search(self, key: tuple) -> dict | None:
        with self._lock:
            entry = self._searches.get(key)
            return entry.value if entry is not None and self._fresh(entry) else None

    def stale(self, book_id: int, max_stale: float | None) -> Answer | None:
        """The last known value of a book, if stale by at most `max_stale` seconds."""
        return self._last_known(self._books, book_id, max_stale)

    def stale_search(self, key: tuple, max_stale: float | None) -> Answer | None:
        return self._last_known(self._searches, key, max_stale)

    def _last_known(self, store: TTLCache, key: Hashable, max_stale: float | None):
        if max_stale is None:
            return None
        with self._lock:
            entry = store.get(key)
            if entry is None:
                return None
            if self._fresh(entry):
                return Answer(entry.value)
            now = self.clock.mono()
            since = entry.stale_since if entry.stale_since is not None else self._lease_end()
            if now - since > max_stale:
                return None
            self.stale_served += 1
            return Answer(entry.value, age=max(0, math.floor(now - entry.fetched_at)))

    # -- invalidation ---------------------------------------------------------
    def invalidate(self, book_id: int, version: int | None = None, epoch: int | None = None):
        """A book changed (to `version`, if known): it is stale here from now on, and
        fetches of it in flight are forgotten: they may have read the old row, so
        callers that start now must not join them. Search pages stay: a change that
        alters what they show comes with `invalidate_searches` (the catalog's
        `listing`), and a page shows no price or stock.
        """
        with self._lock:
            self.invalidations += 1
            if version is not None:
                self._raise_floor(book_id, version, self._epoch if epoch is None else epoch)
            self._invalidated[book_id] = next(self._tickets)
            entry = self._books.get(book_id)
            if entry is not None and entry.stale_since is None:
                entry.stale_since = self.clock.mono()
        self.flights.forget(lambda key: key[:2] == ("book", book_id))

    def invalidate_searches(self) -> None:
        """A book was added, withdrawn, restored, retitled or moved to another topic:
        any search page may now miss it or list it wrongly, so every one goes stale."""
        with self._lock:
            self._listing_changed = next(self._tickets)
            now = self.clock.mono()
            for entry in self._searches.values():
                if entry.stale_since is None:
                    entry.stale_since = now
        self.flights.forget(lambda key: key[0] == "search")

    def _raise_floor(self, book_id: int, version: int, epoch: int) -> None:
        old_epoch, old_version = self._floors.get(book_id, (0, 0))
        if epoch > old_epoch:
            self._floors[book_id] = (epoch, version)
        elif epoch == old_epoch:
            self._floors[book_id] = (epoch, max(old_version, version))

    def floor(self, book_id: int) -> int:
        """The newest version announced for this book in the newest epoch seen."""
        with self._lock:
            return self._floor(book_id, Ticket(0, 0, self._epoch))

    # -- housekeeping ---------------------------------------------------------
    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "size": len(self._books),
            "fetches": self.flights.leaders,
            "coalesced": self.flights.followers,
            "stale_served": self.stale_served,
            "lapses": self.lease.lapses,
            "invalidations": self.invalidations,
            "evictions": self._books.evictions + self._searches.evictions,
            "expirations": self._books.expirations + self._searches.expirations,
        }

    def clear(self) -> None:
        with self._lock:
            self._books.clear()
            self._searches.clear()
