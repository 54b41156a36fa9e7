"""Staff who change prices and readers who read them, through every front-end.

One writer thread per watched book sets strictly rising prices, one request
at a time; reader threads look those books up through each front-end, half
of them with `Cache-Control: no-cache`. Both record into a History for the
stale-read check.
"""

from __future__ import annotations

import itertools
import threading
import time

import requests

from tests.support.cluster import LocalCluster
from tests.support.history import History


class PriceTraffic:
    def __init__(self, cluster: LocalCluster, books: list[int], readers: int = 4):
        self.cluster = cluster
        self.books = books
        self.readers = readers
        self.frontends = [cluster.url_of(n) for n in cluster.names("frontend")]
        self.history = History()
        self.read_failures = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self.books:
            return
        for book_id in self.books:
            self._spawn(self._write_prices, book_id)
        for i in range(self.readers):
            self._spawn(self._read_prices, i)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _spawn(self, target, arg) -> None:
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        return session

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
        fresh = index % 2 == 1
        headers = {"Cache-Control": "no-cache"} if fresh else {}
        for turn in itertools.count():
            if self._stop.is_set():
                return
            url = self.frontends[(index + turn) % len(self.frontends)]
            book_id = self.books[turn % len(self.books)]
            started = time.monotonic()
            try:
                response = session.get(f"{url}/lookup/{book_id}", headers=headers, timeout=10)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 200:
                via = f"{url} {'no-cache' if fresh else 'cache'}"
                self.history.read(book_id, response.json()["cost"], started, via)
            else:
                self.read_failures += 1
                self._stop.wait(0.1)
