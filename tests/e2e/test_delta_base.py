"""A new holder's base is a delta (docs/scale.md §6): only the rows of its last commit
travel, and a replica of that base at that position takes it without a snapshot."""

from __future__ import annotations

from tests.e2e.test_heal import catalog_health, queued
from tests.support.cluster import wait_until


def test_a_failover_sends_only_what_changed_since_the_last_base(fresh_cluster):
    c = fresh_cluster
    c.kill("catalog-2")
    for book_id in (1, 2, 3):  # epoch 1: queued for catalog-2
        assert c.api.set_price(book_id, 60.0 + book_id).status_code == 200
    c.kill("catalog-1")
    c.start("catalog-2")  # replays its queue, takes the lease (epoch 2), queues its base
    assert catalog_health(c, "catalog-2")["lease"]["epoch"] == 2

    bases = [e["entry"] for e in queued(c, "catalog-1") if e["entry"].get("epoch") == 2]
    delta = next(entry for entry in bases if "delta" in entry)
    assert delta["base_from"] == 1 and "base" not in delta
    # Only the last commit travels (a replica at the same position may hold half of it),
    # not the other books nor the earlier commits.
    assert [book["id"] for book in delta["delta"]["books"]] == [3]

    c.start("catalog-1")  # a replica of base 1: takes the delta from its queue
    wait_until(lambda: catalog_health(c, "catalog-1")["data_epoch"] == 2, timeout=15)
    assert catalog_health(c, "catalog-1")["snapshots"] == 0  # no snapshot was needed
    checked = c.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_replica_at_another_position_catches_up_on_rows_not_a_snapshot(fresh_cluster):
    c = fresh_cluster
    assert c.api.set_price(5, 55.0).status_code == 200  # both catalogs: position (1, 1)
    c.kill("catalog-2")
    for book_id in (1, 2, 3):  # epoch 1: queued for catalog-2...
        assert c.api.set_price(book_id, 60.0 + book_id).status_code == 200
    entries = queued(c, "catalog-2")
    upto = entries[-1]["seq"]  # ...and lost from its queue: catalog-2 lacks them
    assert (
        c.call("recovery-1", "POST", "/queue/catalog-2/ack", json={"upto": upto}).status_code == 200
    )
    c.kill("catalog-1")
    c.start("catalog-2")  # takes the lease (epoch 2) without them
    assert catalog_health(c, "catalog-2")["lease"]["epoch"] == 2
    assert c.api.set_price(4, 44.0).status_code == 200  # epoch 2

    c.start("catalog-1")  # holds writes the holder never had: the delta does not fit
    wait_until(lambda: catalog_health(c, "catalog-1")["data_epoch"] == 2, timeout=15)
    health = catalog_health(c, "catalog-1")
    assert (health["caught_up"], health["snapshots"]) == (1, 0)
    checked = c.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert c.book_row("catalog-1", 4)[3] == 44.0
