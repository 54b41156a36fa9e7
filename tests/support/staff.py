"""Staff who change prices, a clerk who keeps stock, and readers who read the prices.

Staff are people with accounts (docs/staff.md): `StaffTraffic.start` makes
them as `admin` (the configured staff token, `POST /staff`), and each signs
in with `POST /login` and writes with its own token (`StaffMember`). One
manager per watched book sets strictly rising prices, one request at a time;
a clerk adds books of its own (an Idempotency-Key each, retried with the same
key while the answer is unknown) and changes their quantities, so no buyer's
book ever gets a quantity update and the stock ledger still holds. A 401 on
a write (a token that expired, or one signed by a front-end whose wall clock
is off by more than the leeway) is counted, never hidden: the member signs in
again and sends the write once more, as a new request.

Every request carries an `X-Request-Id` of its own and is kept in a
`StaffLog` with what it set and what came back, for the audit-trail checks
(tests/support/audit_trail.py). Reader threads look the watched books up
through each front-end, with and without `Cache-Control: no-cache`; every
reader walks through every (front-end, book, cache mode) combination in turn
(`read_plan`), so none is left unread; `unread` names any that no read
answered. Writers and readers record into a History for the stale-read checks.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
import uuid
from collections.abc import Iterator

import requests

from tests.support.cluster import LocalCluster
from tests.support.history import History
from tests.support.staff_member import ADMIN, StaffLog, StaffMember
from tests.support.threads import Workers

MODES = ("cache", "no-cache")
# Seconds a reader waits between reads: a stale copy answers for a lease (seconds),
# so reads this close still find it, and 4 readers do not take a core from the nodes.
READ_GAP = 0.05
WRITE_GAP = 0.05  # seconds a manager waits between two price writes
CLERK_GAP = 0.1  # and the clerk between two of its writes
CLERK_BOOKS = 3  # books the clerk keeps; one write in ADD_EVERY adds another
ADD_EVERY = 5


def read_plan(frontends: list[str], books: list[int], index: int) -> Iterator[tuple[str, int, str]]:
    """Reader `index`'s endless walk through every (front-end, book, mode), each once per
    lap; readers start at different places so they do not all read the same at once."""
    combos = list(itertools.product(frontends, books, MODES))
    for turn in itertools.count(index):
        yield combos[turn % len(combos)]


def via(url: str, mode: str) -> str:
    return f"{url} {mode}"


class PriceTraffic:
    """The staff's traffic: a manager per watched book, a clerk, and the price readers."""

    def __init__(self, cluster: LocalCluster, books: list[int], readers: int = 4, clerks: int = 1):
        self.cluster = cluster
        self.books = books
        self.readers = readers
        self.clerks = clerks if books else 0
        self.frontends = [cluster.url_of(n) for n in cluster.names("frontend")]
        self.history = History()
        self.log = StaffLog()
        self.read_failures = 0
        self.workers = Workers()
        self._stop = threading.Event()
        self.admin: StaffMember | None = None
        self.managers: dict[int, StaffMember] = {}  # the price writer of each watched book
        self.clerk_members: list[StaffMember] = []

    # -- the accounts -----------------------------------------------------------
    def make_staff(self) -> None:
        """Every account, made as admin before the faults begin, and signed in."""
        self._admin()
        for i, book_id in enumerate(self.books, 1):
            self.managers[book_id] = self._account(f"manager-{i}", "manager")
        self.clerk_members = [
            self._account(f"clerk-{i}", "clerk") for i in range(1, self.clerks + 1)
        ]
        for member in [*self.managers.values(), *self.clerk_members]:
            assert member.sign_in(self.frontends[0]), f"{member.name} could not sign in"

    def _admin(self) -> StaffMember:
        """admin: the configured staff token (a manager), for the accounts and the stock."""
        if self.admin is None:
            token = self.cluster.cluster.staff_token
            self.admin = StaffMember(self.cluster, ADMIN, self.log, self._stop, token=token)
        return self.admin

    def _account(self, name: str, role: str) -> StaffMember:
        password = secrets.token_urlsafe(12)
        body = {"name": name, "role": role, "password": password}
        write = self._admin().send(
            self.frontends[0],
            "POST",
            "/staff",
            body,
            "staff-add",
            None,
            {"name": name, "role": role},
        )
        assert write is not None and write.status == 201, f"staff add {name}: {write}"
        self.log.roles[name] = role
        return StaffMember(self.cluster, name, self.log, self._stop, password=password)

    def set_stock(self, book_id: int, quantity: int) -> None:
        """As admin, before the load: a book's stock (an audit entry like any write)."""
        path, body = f"/update/item/{book_id}", {"quantity": quantity}
        write = self._admin().send(
            self.frontends[0], "PUT", path, body, "quantity", book_id, {"quantity": quantity}
        )
        assert write is not None and write.status == 200, f"stock of book {book_id}: {write}"

    # -- running ----------------------------------------------------------------
    def start(self, initial: dict[int, float] | None = None) -> None:
        """`initial`: the watched books' prices before the first write (read-checks need them).
        The accounts are made first if `make_staff` was not called."""
        if self.books and not self.managers:
            self.make_staff()
        self.history.initial.update(initial or {})
        for book_id in self.books:
            self.workers.spawn(self._write_prices, book_id)
        for i, clerk in enumerate(self.clerk_members):
            self.workers.spawn(self._keep_stock, clerk, i)
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

    def clerk_books(self) -> set[int]:
        """The books the clerks added (acknowledged): nobody buys them."""
        return {
            w.book_id
            for w in self.log.writes
            if w.action == "add" and w.outcome == "acked" and w.book_id is not None
        }

    def _session(self) -> requests.Session:
        return self.cluster.session()

    def _write_prices(self, book_id: int) -> None:
        member = self.managers[book_id]
        urls = itertools.cycle(self.frontends)
        for step in itertools.count(1):
            if self._stop.is_set():
                return
            price = 100.0 + step
            path, body = f"/update/price/{book_id}", {"price": price}
            write = member.send(next(urls), "PUT", path, body, "price", book_id, {"cost": price})
            if write is None:  # stopped while signing in
                return
            self.history.wrote(book_id, price, write.started, write.outcome == "acked")
            self._stop.wait(WRITE_GAP)

    def _keep_stock(self, clerk: StaffMember, index: int) -> None:
        """Add a few books of the clerk's own, then change their quantities (each a new
        value), adding another now and then."""
        rng = random.Random(index)
        urls = itertools.cycle(self.frontends)
        own: list[int] = []
        for step in itertools.count(1):
            if self._stop.is_set():
                return
            if len(own) < CLERK_BOOKS or step % ADD_EVERY == 0:
                made = self._add_book(clerk, urls, step)
                own += [made] if made is not None else []
            else:
                book_id = rng.choice(own)
                quantity = 1000 + step
                path, body = f"/update/item/{book_id}", {"quantity": quantity}
                fields = {"quantity": quantity}
                if clerk.send(next(urls), "PUT", path, body, "quantity", book_id, fields) is None:
                    return
            self._stop.wait(CLERK_GAP)

    def _add_book(self, clerk: StaffMember, urls, step: int, patience: float = 20.0):
        """POST /books with an Idempotency-Key, sent again with the same key while the
        answer is unknown: the book's id once a 201 names it, else None."""
        key = f"{clerk.name}-book-{uuid.uuid4().hex[:12]}"
        book = {
            "title": f"Shelf {clerk.name} {step} {key[-6:]}",
            "topic": "fault run shelf",
            "cost": 12.5,
            "quantity": 40 + step,
        }
        deadline = time.monotonic() + patience
        for attempt in itertools.count():
            if self._stop.is_set() and attempt > 0:
                return None
            write = clerk.send(next(urls), "POST", "/books", book, "add", None, book, key=key)
            if write is None or write.outcome == "refused":
                return None
            if write.outcome == "acked":
                return write.book_id
            if time.monotonic() > deadline:
                return None
            self._stop.wait(min(0.2 * (attempt + 1), 1.0))
        return None

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
