"""A librarian who withdraws, restores and renames books, and readers who search for
them, in the fault suites (docs/scale.md §3; the checks: tests/support/search_history.py).

The librarian is a manager with an account of its own (`librarian-1`), in the
staff's log like every member, so the audit-trail checks cover its writes
too. It adds WATCHED books under a topic of the run's own before the faults
begin, then, one request at a time, renames a book, withdraws one, restores
one. Readers walk every (front-end, cache mode, search kind) in turn: a topic
page walk (limit 2, following Link rel=next to the last page) or a word search
(one page) for the topic's word, a book's word or a book's word with one of its
title's edition words.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid

import requests

from tests.support.search_history import SearchHistory
from tests.support.staff import PriceTraffic
from tests.support.staff_member import StaffMember

WATCHED = 3  # books the librarian keeps
CHANGE_GAP = 0.15  # seconds between two of its writes
SEARCH_GAP = 0.05  # and between two searches of a reader
COMMENT = "fault run: withdrawn for a while"  # one text: a withdraw sent again leaves it
MODES = ("cache", "no-cache")
KINDS = ("topic", "words")


class SearchTraffic:
    def __init__(self, prices: PriceTraffic, readers: int = 1, seed: int = 0):
        self.prices = prices  # its staff log, stop event, threads and front-ends
        self.readers = readers
        self.rng = random.Random(seed)
        run = uuid.uuid4().hex[:8]
        self.history = SearchHistory(topic=f"searchable r{run}")
        self.tags: dict[int, str] = {}  # book id -> its own word
        self.editions: dict[int, int] = {}  # book id -> editions its title went through
        self.failures = 0
        self.librarian: StaffMember | None = None

    @property
    def frontends(self) -> list[str]:
        return self.prices.frontends

    # -- before the faults --------------------------------------------------------------
    def prepare(self) -> None:
        """The librarian's account, signed in, and its books (on a healthy cluster)."""
        self.librarian = self.prices._account("librarian-1", "manager")
        assert self.librarian.sign_in(self.frontends[0]), "librarian-1 could not sign in"
        for _ in range(WATCHED):
            tag = f"b{uuid.uuid4().hex[:8]}"
            book = {"title": _title(tag, 0), "topic": self.history.topic, "cost": 9.5,
                    "quantity": 10}  # fmt: skip
            key = f"librarian-{tag}"
            write = self.librarian.send(self.frontends[0], "POST", "/books", book, "add", None,
                                        book, key=key)  # fmt: skip
            assert write is not None and write.outcome == "acked", f"librarian add: {write}"
            self.tags[write.book_id] = tag
            self.editions[write.book_id] = 0
            self.history.initial[write.book_id] = book["title"]

    def start(self) -> None:
        self.history.origin = time.monotonic()
        self.prices.workers.spawn(self._change, name="librarian")
        for i in range(self.readers):
            self.prices.workers.spawn(self._search, i, name=f"searcher-{i}")

    def unsearched(self) -> list[str]:
        """The (front-end, mode, kind) combinations no search answered."""
        done = {(s.via, s.kind) for s in self.history.searches}
        wanted = itertools.product(self.frontends, MODES, KINDS)
        return [f"{k} search via {u} {m}" for u, m, k in wanted if (f"{u} {m}", k) not in done]

    # -- the librarian ------------------------------------------------------------------
    def _change(self) -> None:
        urls = itertools.cycle(self.frontends)
        books = itertools.cycle(sorted(self.tags))
        stop = self.prices._stop
        for step in itertools.count():
            if stop.is_set():
                return
            book_id = next(books)
            action = ("edit", "withdraw", "restore")[step // WATCHED % 3]
            if not self._one(next(urls), book_id, action):
                return
            stop.wait(CHANGE_GAP)

    def _one(self, url: str, book_id: int, action: str) -> bool:
        """One write and its change in the history; False if stopped before it was sent."""
        path = f"/books/{book_id}"
        if action == "edit":
            edition = self.editions[book_id] + 1
            title = _title(self.tags[book_id], edition)
            body, attribute, value = {"title": title}, "title", title
            method, fields = "PATCH", body
            self.editions[book_id] = edition
        elif action == "withdraw":
            body, attribute, value = {"comment": COMMENT}, "listed", False
            method, fields = "DELETE", body
        else:
            body, attribute, value = None, "listed", True
            method, path, fields = "POST", f"{path}/restore", {"comment": None}
        write = self.librarian.send(url, method, path, body, action, book_id, fields)
        if write is None:
            return False
        if write.outcome != "refused":  # a 404 (renaming a withdrawn book) changed nothing
            self.history.changed(book_id, attribute, value, write.started,
                                 write.outcome == "acked")  # fmt: skip
        return True

    # -- the readers --------------------------------------------------------------------
    def _search(self, index: int) -> None:
        session = self.prices.cluster.session()
        combos = list(itertools.product(self.frontends, MODES, KINDS))
        for turn in itertools.count(index):
            if self.prices._stop.is_set():
                return
            url, mode, kind = combos[turn % len(combos)]
            headers = {"Cache-Control": "no-cache"} if mode == "no-cache" else {}
            query = self.history.topic if kind == "topic" else self._words()
            started = time.monotonic()
            shown = self._walk(session, url, kind, query, headers)
            if shown is None:
                self.failures += 1
            else:
                self.history.searched(kind, query, shown, started, f"{url} {mode}")
            self.prices._stop.wait(SEARCH_GAP)

    def _words(self) -> str:
        book_id = self.rng.choice(sorted(self.tags))
        tag = self.tags[book_id]
        edition = self.rng.randint(0, self.editions[book_id] + 1)
        return self.rng.choice([self.history.topic.split()[1], tag, f"{tag} ed{edition}x"])

    def _walk(self, session, url: str, kind: str, query: str, headers: dict) -> dict | None:
        """The watched books every page of the search listed: {id: title}; None if a
        page could not be read."""
        if kind == "topic":
            first = f"{url}/search/{requests.utils.quote(query, safe='')}?limit=2"
        else:
            # One page: a rank moves when any book is added (bm25 weighs a word by how
            # many books hold it), so a walk over ranked pages may skip or repeat a book.
            first = f"{url}/search?{requests.compat.urlencode({'q': query})}"
        shown, link = {}, first
        while link:
            try:
                response = session.get(link, headers=headers, timeout=10)
            except requests.RequestException:
                return None
            if response.status_code == 404 and kind == "topic" and link == first:
                return {}  # every watched book withdrawn: none under the topic
            if response.status_code != 200:
                return None
            shown.update({h["id"]: h["title"] for h in response.json() if h["id"] in self.tags})
            link = response.links.get("next", {}).get("url")
        return shown


def _title(tag: str, edition: int) -> str:
    return f"{tag} ed{edition}x tale"
