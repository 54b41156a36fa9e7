"""Word search on every catalog replica agrees with the primary's (docs/scale.md §2):
the index is kept by triggers on `books`, so replication, a takeover's base and a
snapshot heal keep it right with no code of their own."""

from __future__ import annotations

import uuid

from common.ops import procs
from tests.support.cluster import wait_until
from tests.support.shop import Shop


def words_everywhere(c, q: str) -> dict[str, list[tuple[int, str]]]:
    """Each catalog's word search for `q`: (id, title) in its order."""
    found = {}
    for name in c.names("catalog"):
        response = c.call(name, "GET", "/search", params={"q": q, "limit": 1000})
        assert response.status_code == 200, f"{name}: {response.text}"
        found[name] = [(hit["id"], hit["title"]) for hit in response.json()["entries"]]
    return found


def agree(c, q: str) -> list[tuple[int, str]]:
    """The one answer every replica gives (after they converge)."""
    c.wait_converged()
    wait_until(lambda: all(c.state(n) == "up" for n in c.names("catalog")), 30, "catalogs up")
    found = words_everywhere(c, q)
    assert len(set(map(tuple, found.values()))) == 1, found
    return next(iter(found.values()))


def primary(c) -> str:
    return next(n for n in c.names("catalog") if c.role(n) == "primary")


def test_replication_failover_and_a_snapshot_heal_keep_word_search_alike(fresh_cluster):
    c, shop = fresh_cluster, Shop(fresh_cluster.api)
    word = f"rw{uuid.uuid4().hex[:8]}"
    a = shop.new_book(title=f"{word} alpha", topic="replicated")
    b = shop.new_book(title="beta", topic=f"{word} topic")
    assert agree(c, word) == [(a["id"], a["title"]), (b["id"], b["title"])]

    # Failover: the primary dies; the new one renames and withdraws; the old comes back.
    first = primary(c)
    c.kill(first)
    wait_until(lambda: c.api.lookup(a["id"]).status_code == 200, 30, "a new primary")
    assert wait_until(
        lambda: shop.edit(b["id"], {"title": f"{word} beta renamed"}).status_code == 200 or None,
        30,
        "a rename at the new primary",
    )
    assert shop.withdraw(a["id"], "failover test").status_code == 200
    c.start(first)
    assert agree(c, word) == [(b["id"], f"{word} beta renamed")]
    assert agree(c, "alpha") == []

    # A snapshot heal: a backup loses its file and joins again from the primary's copy.
    backup = next(n for n in c.names("catalog") if n != primary(c))
    assert shop.restore(a["id"]).status_code == 200
    c.kill(backup)
    path = c.cluster.db_path(backup)
    for extra in ("", "-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    entries = c.call("recovery-1", "GET", f"/queue/{backup}", params={"limit": 5000}).json()
    if entries["entries"]:
        upto = {"upto": entries["entries"][-1]["seq"]}
        assert c.call("recovery-1", "POST", f"/queue/{backup}/ack", json=upto).status_code == 200
    c.start(backup, wait=False)
    wait_until(lambda: procs.health(c.node(backup))[0] == "up", 30, f"{backup} to heal")
    assert procs.health(c.node(backup))[1]["snapshots"] == 1
    assert agree(c, word) == [(a["id"], a["title"]), (b["id"], f"{word} beta renamed")]
    assert agree(c, "dos")[0][0] == 1  # the seed books, indexed at the backup's seeding
