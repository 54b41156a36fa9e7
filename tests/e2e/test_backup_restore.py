"""`bazar backup` under load, a replica's file lost, `bazar restore` from the old backup:
the replica catches up and the cluster converges with nothing acknowledged lost
(design §3, §7 rules 2, 9; docs/backup.md).

The second test runs on the cluster the first one left, when it left it whole: it
compares stock with what it read at its own start, and counts only its own buys."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from common.http import Unreachable
from common.ops import procs
from tests.support.cluster import Api, Reused, wait_until
from tests.support.threads import Workers

BOOKS = (1, 2, 3)  # bought under load; book 6's price changes once, after the backups
CONVERGE_WITHIN = 20.0


class Buyers:
    """Buy in the background, each buy with its own key and retried with it until its
    outcome is known (201 or 410), so every decrement is one acknowledged order."""

    def __init__(self, cluster, threads: int = 2, limit: int = 2000, seconds: float = 90.0):
        self.cluster = cluster
        self.stop = threading.Event()
        self.acked: dict[str, tuple[int, int]] = {}  # order id -> (book id, quantity)
        self.failures = Counter()  # answers other than 201 on the way (retried)
        self.lock = threading.Lock()
        self.limit, self.deadline = limit, time.monotonic() + seconds
        self.workers = Workers()
        for i in range(threads):
            self.workers.spawn(self._buy, i, name=f"buyer-{i}")

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def wait_for(self, more: int, timeout: float = 20.0) -> None:
        goal = self.count() + more
        wait_until(lambda: self.count() >= goal, timeout, f"{goal} acknowledged buys")

    def _buy(self, i: int) -> None:
        api = Api(self.cluster.api.url, self.cluster.cluster.staff_token)  # a session each
        n = 0
        while not self.stop.is_set() and self.count() < self.limit:
            if time.monotonic() > self.deadline:
                return
            book = BOOKS[(n + i) % len(BOOKS)]
            n += 1
            self._until_known(api, book, f"bk-{i}-{n}-{uuid.uuid4()}")
            time.sleep(0.02)  # a steady load, not a flood: the test is about what is kept

    def _until_known(self, api: Api, book: int, key: str) -> None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            response = api.buy(book, key=key)
            if response.status_code == 201:
                with self.lock:
                    self.acked[response.json()["order_id"]] = (book, 1)
                return
            if response.status_code == 410:
                return
            with self.lock:
                self.failures[response.status_code] += 1
            time.sleep(0.1)
        raise AssertionError(f"buy {key} never got a known outcome")

    def finish(self) -> None:
        self.stop.set()
        self.workers.join_or_fail(45.0)


def stock(cluster, name: str) -> dict[int, int]:
    return dict(cluster.rows(name, "SELECT id, quantity FROM books"))


def serves_no_stale_read(cluster, name: str) -> bool:
    """Whether the restored catalog is up; meanwhile no read it answers may miss the
    price set after its backup (the lost file had it)."""
    try:
        response = cluster.call(name, "GET", "/lookup/6")
    except Unreachable:  # not listening yet
        return False
    if response.status_code == 200:
        assert response.json()["cost"] == 61.5, response.json()
    return cluster.state(name) == "up"


@pytest.fixture(scope="module")
def reused(tmp_path_factory):
    clusters = Reused(lambda: tmp_path_factory.mktemp("backup"))
    yield clusters
    clusters.discard()


def lose_file(cluster, name: str) -> None:
    path = cluster.cluster.db_path(name)
    for extra in ("", "-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)


def test_a_replica_restored_from_an_old_backup_converges_with_nothing_lost(reused, tmp_path):
    """On a new cluster: every confirmed order on a replica must be one it saw."""
    c = reused.fresh()
    primary = next(n for n in c.names("catalog") if c.role(n) == "primary")
    catalog = next(n for n in c.names("catalog") if n != primary)
    order = c.names("order")[-1]
    initial = stock(c, primary)
    folder = tmp_path / "backups"
    folder.mkdir()

    buyers = Buyers(c)
    try:
        buyers.wait_for(20)
        timings = {}
        for name in (catalog, order):  # taken while both serve the buyers
            started = time.monotonic()
            out = c.bazar("backup", name, str(folder)).stdout
            timings[name] = time.monotonic() - started
            assert f"backed up {name} to {folder}/{name}-" in out and "integrity ok" in out, out
        at_backup = buyers.count()
        refused = c.bazar("restore", catalog, str(next(folder.glob(f"{catalog}-*"))), check=False)
        assert refused.returncode == 1 and "is running" in refused.stderr, refused.stderr

        # Updates that reach both replicas directly, after their backups: in no queue.
        buyers.wait_for(40)
        assert c.api.set_price(6, 61.5).status_code == 200
        for name in (catalog, order):
            c.kill(name)
            lose_file(c, name)
        buyers.wait_for(10)  # and some that the recovery node queues for them
        for name in (catalog, order):
            backup = next(folder.glob(f"{name}-*"))
            out = c.bazar("restore", name, str(backup)).stdout
            assert f"restored {name}" in out and f"bazar start {name}" in out, out
            c.start(name, wait=False)
        started = time.monotonic()
        wait_until(lambda: serves_no_stale_read(c, catalog), CONVERGE_WITHIN, f"{catalog} up")
        c.wait_state(order, "up", CONVERGE_WITHIN)
        back_up = time.monotonic() - started
        buyers.wait_for(10)  # the restored ones take part again
    finally:
        buyers.finish()

    started = time.monotonic()
    c.wait_converged(CONVERGE_WITHIN)
    converged = time.monotonic() - started
    acked = buyers.acked
    print(
        f"\nbackups {', '.join(f'{n} {s:.2f} s' for n, s in timings.items())}; "
        f"acknowledged buys: {at_backup} at the backups, {len(acked)} in all; "
        f"retried answers {dict(buyers.failures)}; restored nodes up {back_up:.1f} s "
        f"after start; check passed {converged:.1f} s after the load stopped"
    )
    for name in c.names("order"):
        confirmed = {
            oid for (oid,) in c.rows(name, "SELECT order_id FROM orders WHERE status='confirmed'")
        }
        assert set(acked) <= confirmed, f"{name} lacks {len(set(acked) - confirmed)} orders"
        assert len(confirmed) == len(acked)  # every confirmed order is one the client saw
    bought = Counter()
    for book, quantity in acked.values():
        bought[book] += quantity
    for name in c.names("catalog"):
        assert stock(c, name) == {b: q - bought[b] for b, q in initial.items()}, name
        assert c.book_row(name, 6)[3] == 61.5  # the staff write only the lost file had
    health = procs.health(c.node(catalog))[1]
    assert health["snapshots"] >= 1 and health["restored"] is None, health
    assert c.check().returncode == 0


def test_a_primary_restored_from_its_backup_heals_from_the_new_primary(reused, tmp_path):
    """The backup holds an older epoch's data and outbox; the lease moved on meanwhile."""
    c = reused.take()
    old = next(n for n in c.names("catalog") if c.role(n) == "primary")
    initial = stock(c, old)
    buyers = Buyers(c)
    try:
        buyers.wait_for(20)
        c.bazar("backup", old, str(tmp_path / "old-primary.sqlite3"))
        buyers.wait_for(20)
        assert c.api.set_price(5, 55.5).status_code == 200
        c.kill(old)
        lose_file(c, old)
        new = wait_until(
            lambda: next((n for n in c.names("catalog") if c.role(n) == "primary"), None),
            what="another catalog to take the lease",
        )
        buyers.wait_for(20)  # written by the new primary, queued for the old one
        c.bazar("restore", old, str(tmp_path / "old-primary.sqlite3"))
        c.start(old, wait=False)
        c.wait_state(old, "up", CONVERGE_WITHIN)
        buyers.wait_for(10)
    finally:
        buyers.finish()
    c.wait_converged(CONVERGE_WITHIN)
    assert c.role(old) == "backup" and c.role(new) == "primary"  # it did not take over
    bought = Counter(book for book, _ in buyers.acked.values())
    for name in c.names("catalog"):
        assert stock(c, name) == {b: q - bought[b] for b, q in initial.items()}, name
        assert c.book_row(name, 5)[3] == 55.5
    health = procs.health(c.node(old))[1]
    assert health["restored"] is None and health["data_epoch"] == health["lease"]["epoch"]
