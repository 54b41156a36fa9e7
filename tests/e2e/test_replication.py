"""Replication and recovery with real processes killed by SIGKILL (design §7 rules 1-3).

The tests run one after the other on one cluster while each leaves it whole (every
node up, one primary, replicas identical); a test that finds it otherwise (the last
but one kills three nodes for good) gets a new one. So each test writes to books of
its own, and names the primary and the backup by their roles, not by their names.
Returning nodes wait 1 s, not 3, for an unreachable recovery node before they go on
without it: only the last test starts a node while recovery-1 is down.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.cluster import LocalCluster, Reused, wait_until
from tests.support.shop import Shop

OUTBOX_DEPTH = "SELECT COUNT(*) FROM outbox"


@pytest.fixture(scope="module")
def reused(tmp_path_factory):
    clusters = Reused(lambda: tmp_path_factory.mktemp("replication"), tuning={"startup_grace": 1.0})
    yield clusters
    clusters.discard()


@pytest.fixture
def cluster(reused) -> LocalCluster:
    """The cluster the previous test left, if it left it whole; else a new one."""
    return reused.take()


def roles(c: LocalCluster) -> tuple[str, str]:
    """(the catalog primary, the backup catalog)."""
    primary = next(n for n in c.names("catalog") if c.role(n) == "primary")
    return primary, next(n for n in c.names("catalog") if n != primary)


def new_book(c: LocalCluster, quantity: int = 900, cost: float = 40.0) -> int:
    return Shop(c.api).new_book(cost=cost, quantity=quantity)["id"]


def buy_some(api, book_id: int, n: int, patience: float = 0.0) -> list[str]:
    """`n` buys. `patience`: seconds a client retries a 503 with the same key, as
    design §4 tells it to (right after a primary is killed, until the next takes over)."""
    order_ids = []
    for _ in range(n):
        key, deadline = f"t-{uuid.uuid4()}", time.monotonic() + patience
        response = api.buy(book_id, key=key)
        while response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            response = api.buy(book_id, key=key)
        assert response.status_code == 201, response.text
        order_ids.append(response.json()["order_id"])
    return order_ids


def queue_depth(cluster, target: str) -> int:
    status = cluster.call("recovery-1", "GET", "/health").json()
    return status["queues"].get(target, 0)


def test_writes_reach_every_replica(cluster):
    c = cluster
    bought, priced = new_book(c), new_book(c)
    _, backup = roles(c)
    buy_some(c.api, bought, 5)
    assert c.api.set_price(priced, 41.0).status_code == 200
    assert c.check().returncode == 0, c.check().stdout
    assert c.book_row(backup, bought)[4] == 895
    assert c.book_row(backup, priced)[3] == 41.0
    assert len(c.rows("order-2", f"SELECT * FROM orders WHERE book_id = {bought}")) == 5


def test_killed_backup_catches_up_from_the_recovery_queue(cluster):
    c = cluster
    bought, restocked = new_book(c), new_book(c)
    _, backup = roles(c)
    c.kill(backup)
    c.kill("order-2")
    orders = buy_some(c.api, bought, 4)
    assert c.api.set_quantity(restocked, 50).status_code == 200
    assert queue_depth(c, backup) >= 5
    assert queue_depth(c, "order-2") == 4
    assert c.check().returncode == 1  # honest: the dead replicas are behind

    for name in (backup, "order-2"):  # both come back at once, each from its queue
        c.start(name, wait=False)
    for name in (backup, "order-2"):
        c.wait_state(name, "up")
    assert queue_depth(c, backup) == 0
    assert c.check().returncode == 0, c.check().stdout
    assert c.call(backup, "GET", f"/lookup/{restocked}").json()["quantity"] == 50
    for order_id in orders:
        assert c.call("order-2", "GET", f"/orders/{order_id}").json()["status"] == "confirmed"


def test_backup_and_recovery_down_together_stop_writes_and_lose_nothing(cluster):
    c = cluster
    book = new_book(c)
    primary, backup = roles(c)
    before = c.book_row(primary, book)
    c.kill("recovery-1")
    c.kill(backup)
    # Two of the three voters are gone: no lease, so no writer and no acknowledged write.
    wait_until(lambda: c.role(primary) == "backup", what=f"{primary} to lose the lease")
    assert c.api.buy(book, key=f"t-{uuid.uuid4()}").status_code == 503
    assert c.api.set_price(book, 55.0).status_code == 503

    c.start("recovery-1")
    c.start(backup)
    buy_some(c.api, book, 3)
    assert c.api.set_price(book, 55.0).status_code == 200
    c.wait_converged()
    wait_until(lambda: c.rows(primary, OUTBOX_DEPTH)[0][0] == 0, what="outbox drained")
    row = c.book_row(backup, book)
    assert row[3] == 55.0
    assert before[4] - row[4] == len(
        c.rows("order-1", f"SELECT * FROM orders WHERE status = 'confirmed' AND book_id = {book}")
    )


def test_primary_killed_then_backup_takes_writes_and_old_primary_rejoins(cluster):
    c = cluster
    book = new_book(c)
    old, new = roles(c)
    c.kill(old)
    buy_some(c.api, book, 3, patience=5.0)
    assert c.api.set_price(book, 60.0).status_code == 200
    assert c.role(new) == "primary"
    assert c.api.lookup(book).json()["cost"] == 60.0

    c.start(old)
    # A returning catalog does not take the lease from a healthy holder: it follows.
    c.wait_state(old, "up")
    assert c.role(old) == "backup" and c.role(new) == "primary"
    assert c.book_row(old, book)[3:5] == (60.0, 897)
    buy_some(c.api, book, 2)
    assert c.api.lookup(book).json()["quantity"] == 895
    c.wait_converged()


def test_order_server_killed_buys_go_on_and_killed_nodes_leave_sound_files(cluster):
    """One cluster for both (each started its own). Leaves three nodes dead: the next
    test gets a new cluster."""
    c = cluster
    first, second = new_book(c), new_book(c)
    c.kill("order-1")
    orders = buy_some(c.api, first, 6)  # every one answered, none lost
    c.start("order-1")
    c.wait_converged()
    confirmed = f"SELECT * FROM orders WHERE status = 'confirmed' AND book_id = {first}"
    assert len(c.rows("order-1", confirmed)) == 6
    assert all(c.api.order(o).status_code == 200 for o in orders)
    buy_some(c.api, second, 3)
    primary, _ = roles(c)
    for name in (primary, "order-1", "recovery-1"):  # SIGKILL mid-life: files still sound
        c.kill(name)
        assert c.rows(name, "PRAGMA integrity_check") == [("ok",)]


def test_an_order_is_found_through_the_front_end_even_where_it_has_not_arrived(cluster):
    """Each start with recovery-1 down waits out the cluster's 1 s startup grace."""
    c = cluster
    c.kill("order-2")
    (order_id,) = buy_some(c.api, new_book(c), 1)  # order-1 has it; order-2's waits in its queue
    c.kill("order-1")
    c.kill("recovery-1")
    c.start("order-2")  # nobody to catch up from: it comes up without the order
    c.start("order-1")  # catches up from order-2, keeps its own
    assert c.call("order-2", "GET", f"/orders/{order_id}").status_code == 404
    for _ in range(4):  # round robin asks order-2 first at least once
        assert c.api.order(order_id).status_code == 200
    assert c.api.order("no-such-order").status_code == 404
