"""A catalog replica that lost the base of the writer's updates heals from its snapshot
(design §7 rule 9), and a bad snapshot is refused and changes nothing."""

from __future__ import annotations

import time
import uuid

import requests

from common.auth import SignedAuth
from common.ops import procs
from tests.support.cluster import wait_until

SQLITE_TYPE = "application/vnd.sqlite3"
CONVERGE_WITHIN = 10.0  # seconds after the fault ends (design §7 rule 9)


def queued(cluster, target: str) -> list[dict]:
    response = cluster.call("recovery-1", "GET", f"/queue/{target}", params={"limit": 5000})
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def put_snapshot(cluster, name: str, body: bytes, content_type: str = SQLITE_TYPE):
    """PUT /snapshot with a raw body, signed as another node would sign it."""
    session = requests.Session()
    session.trust_env = False  # no proxy between the test and loopback
    return session.put(
        cluster.url_of(name) + "/snapshot",
        data=body,
        headers={"Content-Type": content_type},
        auth=SignedAuth(cluster.cluster.cluster_secret),
        timeout=30,
    )


def catalog_health(cluster, name: str) -> dict:
    return procs.health(cluster.node(name))[1]


def test_a_replica_that_lost_its_base_heals_from_the_writers_snapshot(fresh_cluster):
    c = fresh_cluster
    c.kill("catalog-2")
    assert c.api.buy(3, key=f"t-{uuid.uuid4()}").status_code == 201  # epoch 1
    c.kill("catalog-1")
    c.start("catalog-2")  # it takes the lease (epoch 2) and queues its base for catalog-1
    assert catalog_health(c, "catalog-2")["lease"]["epoch"] == 2
    assert c.api.set_price(1, 77.0).status_code == 200  # epoch 2, queued after the base

    # catalog-1's queue loses the base of epoch 2 (a queue that did not keep it).
    entries = queued(c, "catalog-1")
    bases = [e["seq"] for e in entries if {"base", "delta"} & set(e["entry"])]
    assert bases and any(e["seq"] > max(bases) for e in entries)
    acked = c.call("recovery-1", "POST", "/queue/catalog-1/ack", json={"upto": max(bases)})
    assert acked.status_code == 200, acked.text

    # It comes back with the base of epoch 1 and replays an update of epoch 2.
    c.start("catalog-1", wait=False)
    wait_until(lambda: procs.health(c.node("catalog-1"))[0] != "down", 30, "catalog-1 to answer")
    started = time.monotonic()
    wait_until(
        lambda: c.check().returncode == 0 and c.state("catalog-1") == "up",
        CONVERGE_WITHIN,
        "catalog-1 to heal and serve",
    )
    assert time.monotonic() - started < CONVERGE_WITHIN
    assert c.book_row("catalog-1", 1)[3] == 77.0
    health = catalog_health(c, "catalog-1")
    assert health["role"] == "backup" and health["data_epoch"] == 2
    assert health["snapshots"] == 1 and health["reason"] is None
    metrics = c.call("catalog-1", "GET", "/metrics").text
    assert "bazar_replica_behind 0.0" in metrics
    assert "bazar_snapshots_installed_total 1.0" in metrics

    # And it takes the writer's next updates like any other replica.
    assert c.api.set_price(1, 78.0).status_code == 200
    assert c.check().returncode == 0
    assert c.book_row("catalog-1", 1)[3] == 78.0


def test_a_replica_with_a_new_empty_database_joins_through_a_snapshot(shared_cluster, shop):
    """On the shared cluster: the backup loses its files and comes back whole, as the
    modules after this one need it (and the lease never moves)."""
    c = shared_cluster
    book = shop.new_book(cost=41.0)["id"]
    assert c.api.set_price(book, 42.0).status_code == 200
    c.kill("catalog-2")
    path = c.cluster.db_path("catalog-2")
    for extra in ("", "-wal", "-shm"):  # a new disk: it seeds itself, data epoch 0
        path.with_name(path.name + extra).unlink(missing_ok=True)
    entries = queued(c, "catalog-2")
    if entries:  # and nothing of its past waits for it
        upto = {"upto": entries[-1]["seq"]}
        assert c.call("recovery-1", "POST", "/queue/catalog-2/ack", json=upto).status_code == 200

    c.start("catalog-2", wait=False)
    wait_until(lambda: procs.health(c.node("catalog-2"))[0] != "down", 30, "catalog-2 to answer")
    started = time.monotonic()
    wait_until(
        lambda: c.check().returncode == 0 and c.state("catalog-2") == "up",
        CONVERGE_WITHIN,
        "catalog-2 to join and serve",
    )
    assert time.monotonic() - started < CONVERGE_WITHIN
    assert c.book_row("catalog-2", book)[3] == 42.0
    assert catalog_health(c, "catalog-2")["snapshots"] == 1


def test_a_bad_snapshot_is_refused_and_changes_nothing(shared_cluster):
    c = shared_cluster
    before = c.check().stdout
    row = c.book_row("catalog-2", 1)
    for body, status, words in [
        (b"not a database", 400, "not a SQLite database"),
        (b"SQLite format 3\x00" + b"\x07" * 500, 400, "not a readable SQLite database"),
    ]:
        response = put_snapshot(c, "catalog-2", body)
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        assert words in response.json()["message"]
    as_json = put_snapshot(c, "catalog-2", b'{"books": []}', "application/json")
    assert as_json.status_code == 415, as_json.text
    assert c.book_row("catalog-2", 1) == row
    assert c.check().stdout == before
    assert c.state("catalog-2") == "up"


def test_only_the_writer_hands_out_a_snapshot(shared_cluster):
    c = shared_cluster
    backup = c.call("catalog-2", "GET", "/snapshot")
    assert backup.status_code == 421 and backup.json()["primary"] == "catalog-1"
    snap = c.call("catalog-1", "GET", "/snapshot")
    assert snap.status_code == 200
    assert snap.headers["Content-Type"] == "application/vnd.sqlite3"
    assert snap.content.startswith(b"SQLite format 3\x00")
    epoch = int(snap.headers["X-Bazar-Data-Epoch"])
    # The writer refuses to take one; a replica takes the writer's as it is (merged).
    refused = put_snapshot(c, "catalog-1", snap.content)
    assert refused.status_code == 409, refused.text
    taken = put_snapshot(c, "catalog-2", snap.content)
    assert taken.status_code == 200, taken.text
    assert taken.json() == {"installed": "merged", "data_epoch": epoch}
    assert c.check().returncode == 0
