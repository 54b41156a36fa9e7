"""Staff who change prices and readers who read them, through every front-end.

One writer thread per watched book sets strictly rising prices, one request
at a time; reader threads look those books up through each front-end, with
and without `Cache-Control: no-cache`. Every reader walks through every
(front-end, book, cache mode) combination in turn (`read_plan`), so none is
left unread; `unread` names any that no read answered. Both record into a
History for the stale-read checks.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import requests

from tests.support.cluster import LocalCluster
from tests.support.history import History
from tests.support.threads import Workers

MODES = ("cache", "no-cache")
# Seconds a reader waits between reads: a stale copy answers for a lease (seconds),
# so reads this close still find it, and 4 readers do not take a core from the nodes.
READ_GAP = 0.05


def read_plan(frontends: list[str], books: list[int], index: int) -> Iterator[tuple[str, int, str]]:
    """Reader `index`'s endless walk through every (front-end, book, mode), each once per
    lap; readers start at different places so they do not all read the same at once."""
    combos = list(itertools.product(frontends, books, MODES))
    for turn in itertools.count(index):
        yield combos[turn % len(combos)]


def via(url: str, mode: str) -> str:
    return f"{url} {mode}"


class PriceTraffic:
    def __init__(self, cluster: LocalCluster, books: list[int], readers: int = 4):
        self.cluster = cluster
        self.books = books
        self.readers = readers
        self.frontends = [cluster.url_of(n) for n in cluster.names("frontend")]
        self.history = History()
        self.read_failures = 0
        self.workers = Workers()
        self._stop = threading.Event()

    def start(self, initial: dict[int, float] | None = None) -> None:
        """`initial`: the watched books' prices before the first write (read-checks need them)."""
        self.history.initial.update(initial or {})
        for book_id in self.books:
            self.workers.spawn(self._write_prices, book_id)
        for i in range(self.readers if self.books else 0):
            self.workers.spawn(self._read_prices, i)

    def stop(self) -> list[str]:
        """Stop every thread; what went wrong in one (an exception, a thread that hung)."""
        self._stop.set()
        return self.workers.join(timeout=60)

    def unread(self) -> list[str]:
        """The (front-end, book, mode) combinations no read answered."""
        read = {(r.book_id, r.via) for r in self.history.reads}
        wanted = itertools.product(self.frontends, self.books, MODES)
        return [f"book {b} via {via(u, m)}" for u, b, m in wanted if (b, via(u, m)) not in read]

    def _session(self) -> requests.Session:
        return self.cluster.session()

    def _write_prices(self, book_id: int) -> None:
        session, token = self._session(), self.cluster.cluster.staff_token
        urls = itertools.cycle(self.frontends)
        for step in itertools.count(1):
            if self._stop.is_set():
                return
            price = 100.0 + step
            started = time.monotonic()
            try:
                response = session.put(
                    f"{next(urls)}/update/price/{book_id}",
                    json={"price": price},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=15,
                )
                acked = response.status_code == 200
            except requests.RequestException:
                acked = False
            self.history.wrote(book_id, price, started, acked)
            self._stop.wait(0.05)

    def _read_prices(self, index: int) -> None:
        session = self._session()
        for url, book_id, mode in read_plan(self.frontends, self.books, index):
            if self._stop.is_set():
                return
            headers = {"Cache-Control": "no-cache"} if mode == "no-cache" else {}
            started = time.monotonic()
            try:
                response = session.get(f"{url}/lookup/{book_id}", headers=headers, timeout=10)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 200:
                self.history.read(book_id, response.json()["cost"], started, via(url, mode))
            else:
                self.read_failures += 1
            self._stop.wait(READ_GAP)
