"""A node of the next version may send fields this one does not know (docs/upgrading.md):
signed internal bodies drop them, at every depth; public bodies still refuse them."""

from __future__ import annotations

import pytest

from common.ops import procs

NEWER = {"sent_by_version": "next", "some_new_flag": True}  # fields no schema knows


def epoch(cluster) -> int:
    return procs.health(cluster.node("catalog-1"))[1]["lease"]["epoch"]


def test_a_catalog_push_with_new_fields_at_every_depth_is_applied(shared_cluster):
    """The writer's own row, pushed again to the backup with fields of a newer version:
    accepted (the same version, so nothing changes), not a 400."""
    state = shared_cluster.call("catalog-1", "GET", "/sync").json()
    row = next(e["book"] for e in state["entries"] if e.get("book", {}).get("id") == 1)
    entry = {"epoch": epoch(shared_cluster), "book": {**row, "isbn": "978-0"}, **NEWER}
    body = {"epoch": epoch(shared_cluster), "entries": [entry], **NEWER}
    response = shared_cluster.call("catalog-2", "POST", "/sync", json=body)
    assert response.status_code == 200, response.text
    assert shared_cluster.book_row("catalog-2", 1) == shared_cluster.book_row("catalog-1", 1)


@pytest.mark.parametrize(
    "name, path, body",
    [
        ("order-1", "/sync", {"entries": [], **NEWER}),
        ("recovery-1", "/queue/order-2", {"entries": [], **NEWER}),
    ],
)
def test_internal_bodies_with_new_fields_are_accepted(shared_cluster, name, path, body):
    response = shared_cluster.call(name, "POST", path, json=body)
    assert response.status_code == 200, response.text


def test_a_lease_round_with_new_fields_reaches_the_front_end(shared_cluster):
    body = {"epoch": epoch(shared_cluster), "invalidate": {}, **NEWER}
    response = shared_cluster.call("frontend-1", "POST", "/lease", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["epoch"] == epoch(shared_cluster)


def test_a_catalog_call_with_new_fields_is_parsed_not_refused(shared_cluster):
    """The backup answers 421 (not the primary) only after the body has been read: a
    body it could not read would be a 400."""
    body = {"price": 50, **NEWER}
    response = shared_cluster.call("catalog-2", "PUT", "/update/1", json=body)
    assert response.status_code == 421, response.text


def test_public_bodies_still_refuse_unknown_fields(shared_cluster):
    api = shared_cluster.api
    before = api.lookup(1).json()["quantity"]
    response = api.send("POST", "/buy/1", json={"quantity": 1, "coupon": "FREE"})
    assert response.status_code == 400
    assert "coupon" in response.json()["message"]
    assert api.lookup(1).json()["quantity"] == before
