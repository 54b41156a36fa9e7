"""order/store.py order_id_for: the order id made from an Idempotency-Key; order rows
as replicas exchange them."""

import pytest

from order.schemas import OrderRowSchema
from order.store import now_iso, order_id_for


def test_same_key_gives_same_order_id():
    assert order_id_for("client-42-attempt") == order_id_for("client-42-attempt")


def test_different_keys_give_different_order_ids():
    assert order_id_for("key-a") != order_id_for("key-b")


def test_no_key_gives_a_fresh_order_id_each_call():
    ids = {order_id_for(None) for _ in range(100)}
    assert len(ids) == 100


def test_keyed_and_fresh_ids_cannot_collide():
    # Fresh ids are hex; keyed ids start with a non-hex letter, so the two spaces are disjoint.
    fresh = order_id_for(None)
    keyed = order_id_for("key-a")
    assert all(c in "0123456789abcdef" for c in fresh)
    assert keyed[0] not in "0123456789abcdef"


def test_order_ids_fit_the_catalog_limit():
    # The catalog's BuySchema takes order ids of 1-200 characters.
    assert 1 <= len(order_id_for("x" * 200)) <= 200
    assert 1 <= len(order_id_for(None)) <= 200


@pytest.mark.parametrize(
    "created_at",
    ["0", "", "2026-13-01T00:00:00.000+00:00", "2026-01-01T00:00:00+00:00", "x" * 70],
)
def test_a_replicated_order_needs_the_one_time_format_replicas_compare(created_at):
    """Found by the fuzzer: a pushed row with created_at '0' broke /metrics (oldest age)."""
    row = {"order_id": "a", "book_id": 1, "quantity": 1, "total": 0, "status": "pending"}
    assert "created_at" in OrderRowSchema().validate({**row, "created_at": created_at})
    assert OrderRowSchema().validate({**row, "created_at": now_iso()}) == {}
