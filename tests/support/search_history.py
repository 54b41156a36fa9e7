"""Searches in the fault suites, and the check that none was stale (docs/scale.md §3).

A librarian withdraws, restores and renames a few books of its own, one
request at a time; readers search for them (topic pages, walked to the last,
and word searches) through every front-end, with and without the cache. A
book as a search can show it is (listed, title). The check, per book and
attribute, on this process's monotonic clock: a search that *started* after a
write of that attribute was acknowledged shows the value of that write, or of
one the librarian began after it and before the search ended (its outcome may
be unknown); never an older one. For a query, the book must be in the answer
with one such title if some allowed state lists it under that title and
matches the query, and absent only if some allowed state does not list it
there.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

WORD = re.compile(r"[^\W_]+")
ATTRIBUTES = ("listed", "title")


@dataclass(frozen=True)
class Change:
    book_id: int
    attribute: str  # listed or title
    value: object  # True/False, or the new title
    started: float
    ended: float
    acked: bool


@dataclass(frozen=True)
class Search:
    kind: str  # "topic" or "words"
    query: str
    shown: dict  # watched book id -> title, for the watched books the answer listed
    started: float
    ended: float
    via: str


@dataclass
class SearchHistory:
    topic: str = ""  # the watched books' topic (it never changes)
    initial: dict[int, str] = field(default_factory=dict)  # book id -> title, listed at start
    changes: list[Change] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    origin: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def changed(self, book_id: int, attribute: str, value, started: float, acked: bool):
        with self._lock:
            self.changes.append(Change(book_id, attribute, value, started, time.monotonic(), acked))

    def searched(self, kind: str, query: str, shown: dict, started: float, via: str):
        with self._lock:
            self.searches.append(Search(kind, query, shown, started, time.monotonic(), via))

    def at(self, s: Search) -> str:
        return "" if self.origin is None else f"t+{s.started - self.origin:.2f}s "


def matches(query: str, title: str, topic: str) -> bool:
    """As word search matches: every word of the query starts a word of title or topic."""
    have = [w.lower() for w in WORD.findall(f"{title} {topic}")]
    return all(any(h.startswith(w.lower()) for h in have) for w in WORD.findall(query))


def allowed(history: SearchHistory, book_id: int, attribute: str, s: Search) -> set:
    """The values `attribute` of the book may show in search `s`: the last acknowledged
    one before it began (or the initial one), and any begun after it and before `s` ended."""
    initial = True if attribute == "listed" else history.initial[book_id]
    mine = [c for c in history.changes if c.book_id == book_id and c.attribute == attribute]
    acked = [c for c in mine if c.acked and c.ended < s.started]
    last = max(acked, key=lambda c: c.started, default=None)
    values = {initial if last is None else last.value}
    since = last.started if last is not None else float("-inf")
    values |= {c.value for c in mine if since < c.started < s.ended}
    return values


def stale_searches(history: SearchHistory) -> list[str]:
    """Every search that showed a watched book as it was before an acknowledged change,
    or left it out when it had to list it (see the module docstring)."""
    problems = []
    for s in history.searches:
        for book_id in history.initial:
            problem = _seen_wrong(history, book_id, s)
            if problem:
                problems.append(
                    f"{history.at(s)}{s.kind} search {s.query!r} via {s.via}: {problem}"
                )
    return problems


def _seen_wrong(history: SearchHistory, book_id: int, s: Search) -> str | None:
    listed = allowed(history, book_id, "listed", s)
    titles = allowed(history, book_id, "title", s)

    def hit(title: str) -> bool:
        if s.kind == "topic":
            return s.query.lower() == history.topic.lower()
        return matches(s.query, title, history.topic)

    if book_id in s.shown:
        title = s.shown[book_id]
        if True not in listed:
            return f"showed book {book_id}, withdrawn before the search began"
        if title not in titles:
            return f"showed book {book_id} as {title!r}; it could only be one of {sorted(titles)}"
        if not hit(title):
            return f"showed book {book_id} as {title!r}, which the search does not match"
        return None
    if False in listed or any(not hit(t) for t in titles):
        return None  # some state it may have been in does not list it here
    return f"left out book {book_id}, listed as one of {sorted(titles)}"
