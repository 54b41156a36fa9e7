"""The front-end's lookup and search caches (design §7 rule 6).

Invalidation is the mechanism, the TTL only a safety net. A refill records
a ticket before it asks the catalog; if the book was invalidated after that
ticket, the (possibly old) answer is not stored: the "set after invalidate"
race. A refill never replaces a newer version either.
"""

from __future__ import annotations

import itertools
import threading

from cachetools import LRUCache, TTLCache

from frontend.coalesce import Coalescer


class BookCache:
    def __init__(self, size: int, ttl: float):
        self._books: TTLCache = TTLCache(maxsize=size, ttl=ttl)
        self._searches: TTLCache = TTLCache(maxsize=max(size // 10, 16), ttl=ttl)
        # book id -> ticket of its last invalidation; big enough that an entry
        # cannot be evicted while a refill that predates it is still in flight.
        self._invalidated: LRUCache = LRUCache(maxsize=100_000)
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()
        self.flights = Coalescer()  # concurrent misses share one catalog call
        self.hits = 0
        self.misses = 0

    def ticket(self) -> int:
        """Take before reading from the catalog; pass to `put`/`put_search`."""
        with self._lock:
            return next(self._tickets)

    def get(self, book_id: int) -> dict | None:
        with self._lock:
            book = self._books.get(book_id)
            if book is None:
                self.misses += 1
            else:
                self.hits += 1
            return book

    def put(self, book: dict, ticket: int) -> bool:
        """Store a book read under `ticket`, unless it went stale meanwhile."""
        with self._lock:
            if self._invalidated.get(book["id"], 0) >= ticket:
                return False
            cached = self._books.get(book["id"])
            if cached is not None and cached["version"] > book["version"]:
                return False
            self._books[book["id"]] = book
            return True

    def get_search(self, topic: str) -> list[dict] | None:
        with self._lock:
            return self._searches.get(topic.lower())

    def put_search(self, topic: str, hits: list[dict], ticket: int) -> bool:
        """Store a whole search answer unless one of its books changed meanwhile."""
        with self._lock:
            if any(self._invalidated.get(hit["id"], 0) >= ticket for hit in hits):
                return False
            self._searches[topic.lower()] = hits
            return True

    def invalidate(self, book_id: int) -> None:
        """Drop a book, and every cached search answer that lists it."""
        with self._lock:
            self._invalidated[book_id] = next(self._tickets)
            self._books.pop(book_id, None)
            stale = [
                t for t, hits in self._searches.items() if any(h["id"] == book_id for h in hits)
            ]
            for topic in stale:
                self._searches.pop(topic, None)
        # A fetch in flight may have read the old row: later callers must not join it.
        self.flights.forget(lambda key: key == ("book", book_id) or key[0] == "search")

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "size": len(self._books),
            "fetches": self.flights.leaders,
            "coalesced": self.flights.followers,
        }

    def clear(self) -> None:
        with self._lock:
            self._books.clear()
            self._searches.clear()
