"""A recovery queue past `[retention] queue_cap` is dropped, and its target takes the
snapshot path when it returns (docs/scale.md §5): a catalog heals from the writer's
snapshot, an order server merges its peers' orders; then every replica is identical."""

from __future__ import annotations

import json
import uuid

import pytest

from common.ops import procs
from tests.support.cluster import LocalCluster, wait_until

CAP = 5
WRITES = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("queue-cap"), retention={"queue_cap": CAP}).up()
    yield c
    c.discard()


def queue_answer(c: LocalCluster, target: str) -> dict:
    response = c.call("recovery-1", "GET", f"/queue/{target}")
    assert response.status_code == 200, response.text
    return response.json()


def recovery_row(c: LocalCluster) -> dict:
    rows = c.api.get("/cluster.json").json()["nodes"]
    return next(r for r in rows if r["name"] == "recovery-1")


def overflowed(c: LocalCluster) -> dict:
    return procs.health(c.node("recovery-1"))[1]["overflowed"]


def test_a_backup_catalog_past_the_cap_heals_from_the_writers_snapshot(cluster):
    c = cluster
    backup = next(name for name in c.names("catalog") if c.role(name) == "backup")
    c.stop(backup)
    for i in range(WRITES):
        assert c.api.set_price(2, 40.0 + i).status_code == 200
    assert queue_answer(c, backup) == {"entries": [], "overflowed": True}
    assert overflowed(c)[backup] > CAP
    status = json.loads(c.bazar("status", "--json").stdout)
    assert backup in next(r for r in status if r["node"] == "recovery-1")["overflowed"]
    wait_until(
        lambda: backup in (recovery_row(c)["overflowed"] or {}), 10, "/cluster.json to show it"
    )
    assert (
        f'bazar_recovery_queue_overflowed{{node="{backup}"}}'
        in c.call("recovery-1", "GET", "/metrics").text
    )

    c.start(backup)
    wait_until(lambda: c.check().returncode == 0, 30, f"{backup} to heal")
    assert c.book_row(backup, 2)[3] == 40.0 + WRITES - 1
    assert procs.health(c.node(backup))[1]["snapshots"] >= 1
    assert backup not in overflowed(c)  # acknowledged
    assert c.api.set_price(2, 99.0).status_code == 200  # and it takes updates again
    c.wait_converged()
    assert c.book_row(backup, 2)[3] == 99.0


def test_an_order_server_past_the_cap_merges_its_peers_orders(cluster):
    c = cluster
    c.stop("order-2")
    ids = []
    for _ in range(WRITES):
        bought = c.api.buy(3, key=f"cap-{uuid.uuid4()}")
        assert bought.status_code == 201, bought.text
        ids.append(bought.json()["order_id"])
    assert queue_answer(c, "order-2") == {"entries": [], "overflowed": True}

    c.start("order-2")
    wait_until(lambda: c.check().returncode == 0, 30, "order-2 to merge its peers' orders")
    listed = ", ".join(f"'{i}'" for i in ids)
    query = f"SELECT count(*) FROM orders WHERE order_id IN ({listed})"  # noqa: S608  # nosec B608
    assert c.rows("order-2", query) == [(WRITES,)]
    assert "order-2" not in overflowed(c)
    assert c.state("order-2") == "up"
