"""Order servers read each other's decided orders in pages by a change sequence
(docs/scale.md §6): rejoining costs what changed, not what is stored."""

from __future__ import annotations

import uuid

from tests.support.cluster import wait_until


def pages(cluster, node: str, limit: int) -> tuple[list[dict], set[str]]:
    """Every page of a node's GET /sync: the entries in order, and the incarnations seen."""
    entries, made, after = [], set(), 0
    while True:
        answer = cluster.call(node, "GET", "/sync", params={"after": after, "limit": limit})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["entries"]) <= limit
        entries += page["entries"]
        made.add(page["incarnation"])
        after = page["after"]
        if not page["more"]:
            return entries, made


def test_pages_give_every_decided_order_once(shared_cluster):
    c = shared_cluster
    for _ in range(12):
        assert c.api.buy(7, key=f"sync-{uuid.uuid4()}").status_code == 201
    entries, made = pages(c, "order-1", limit=5)
    ids = [entry["order"]["order_id"] for entry in entries]
    assert len(ids) == len(set(ids)) >= 12
    assert len(made) == 1
    whole = c.call("order-1", "GET", "/sync").json()["entries"]  # an older peer's question
    assert sorted(ids) == sorted(e["order"]["order_id"] for e in whole)
    assert "seq" not in entries[0]["order"]  # this file's numbering stays here
    bad = c.call("order-1", "GET", "/sync", params={"after": -1, "limit": 5})
    assert bad.status_code == 400, bad.text


def test_a_returning_order_server_pulls_what_its_queue_lost(fresh_cluster):
    c = fresh_cluster
    c.kill("order-2")
    bought = [c.api.buy(2, key=f"lost-{uuid.uuid4()}") for _ in range(8)]
    assert all(r.status_code == 201 for r in bought)
    queue = c.call("recovery-1", "GET", "/queue/order-2", params={"limit": 5000}).json()
    assert queue["entries"]  # the queue loses them: only the pull from order-1 can bring them
    upto = queue["entries"][-1]["seq"]
    acked = c.call("recovery-1", "POST", "/queue/order-2/ack", json={"upto": upto})
    assert acked.status_code == 200, acked.text
    c.start("order-2")
    ids = {r.json()["order_id"] for r in bought}
    query = "SELECT order_id FROM orders WHERE status = 'confirmed'"
    wait_until(lambda: ids <= {row[0] for row in c.rows("order-2", query)}, timeout=15)
    checked = c.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr
