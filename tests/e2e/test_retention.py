"""Idempotency records are kept by cluster age and compacted alike on every replica
(docs/scale.md §5); a key replayed past its window (about 9 s here) acts as documented
in docs/api.md."""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.cluster import LocalCluster, wait_until
from tests.support.shop import Shop

RETENTION = {"keys_days": 0.0001, "compact_every_seconds": 1}  # a window of 8.64 s


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("retention"), retention=RETENTION).up()
    yield c
    c.discard()


def primary(c: LocalCluster) -> str:
    return next(name for name in c.names("catalog") if c.role(name) == "primary")


def figure(c: LocalCluster, node: str, name: str) -> float | None:
    text = c.call(node, "GET", "/metrics").text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


def kept(c: LocalCluster, table: str, column: str, value: str) -> list[bool]:
    """On each catalog: whether the row is still there."""
    query = f"SELECT age FROM {table} WHERE {column} = '{value}'"  # noqa: S608  # nosec B608
    return [bool(c.rows(name, query)) for name in c.names("catalog")]


def test_keys_past_their_window_are_compacted_and_replays_act_as_documented(cluster):
    c, shop = cluster, Shop(cluster.api)
    book_key, buy_key = f"book-{uuid.uuid4()}", f"buy-{uuid.uuid4()}"
    fields = {"title": f"Kept {uuid.uuid4().hex[:8]}", "topic": "retention", "cost": 5.0}
    made = shop.add_book({**fields, "quantity": 10}, key=book_key)
    assert made.status_code == 201, made.text
    again = shop.add_book({**fields, "quantity": 10}, key=book_key)
    assert again.json()["id"] == made.json()["id"]  # within the window: the first answer
    bought = c.api.buy(made.json()["id"], quantity=2, key=buy_key)
    assert bought.status_code == 201, bought.text
    order_id = bought.json()["order_id"]
    stamped = c.rows(primary(c), f"SELECT age FROM order_decisions WHERE order_id = '{order_id}'")
    assert stamped and stamped[0][0] is not None and stamped[0][0] > 0

    wait_until(
        lambda: (
            not any(kept(c, "order_decisions", "order_id", order_id))
            and not any(kept(c, "book_keys", "key", book_key))
        ),
        60,
        "the decision and the book key to be compacted on every catalog",
    )
    assert c.check().returncode == 0  # compacted alike
    writer = primary(c)
    assert figure(c, writer, 'bazar_idempotency_records_compacted_total{table="book_keys"}') >= 1
    assert figure(c, writer, "bazar_cluster_age_seconds") > RETENTION["keys_days"] * 86400

    # POST /books with a key past its window makes a new book.
    late = shop.add_book({**fields, "quantity": 10}, key=book_key)
    assert late.status_code == 201, late.text
    assert late.json()["id"] != made.json()["id"]
    # A buy replayed past its window: the order server still has the order (its id comes
    # from the key), so the first order is the answer and no stock is taken again.
    replay = c.api.buy(made.json()["id"], quantity=2, key=buy_key)
    assert replay.status_code == 201, replay.text
    assert replay.json()["order_id"] == order_id
    assert c.api.lookup(made.json()["id"]).json()["quantity"] == 8
    assert not any(kept(c, "order_decisions", "order_id", order_id))
    c.wait_converged()


def test_an_order_pending_past_the_window_is_fenced_aborted_its_stock_stays_taken(cluster):
    """As an order server down longer than the window leaves it: the catalog took the
    stock, the order server had the order pending and never heard back, and the
    decision was compacted meanwhile. (The catalog is asked directly, and the pending
    order written into order-1's file as the order server itself would have.)"""
    c, shop = cluster, Shop(cluster.api)
    book = shop.new_book(quantity=10)["id"]
    order_id = f"late{uuid.uuid4().hex}"
    took = c.call(primary(c), "POST", f"/buy/{book}", json={"order_id": order_id, "quantity": 3})
    assert took.status_code == 200 and took.json()["outcome"] == "applied", took.text
    wait_until(
        lambda: not any(kept(c, "order_decisions", "order_id", order_id)),
        60,
        "the decision to be compacted",
    )
    long_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="milliseconds")
    conn = sqlite3.connect(c.cluster.db_path("order-1"), timeout=30)
    with conn:
        conn.execute(
            "INSERT INTO orders (order_id, book_id, quantity, total, status, created_at)"
            " VALUES (?, ?, 3, 0.0, 'pending', ?)",
            (order_id, book, long_ago),
        )
        conn.execute("INSERT INTO order_items VALUES (?, ?, 3, NULL)", (order_id, book))
    conn.close()
    status = f"SELECT status FROM orders WHERE order_id = '{order_id}'"  # noqa: S608  # nosec B608
    wait_until(lambda: c.rows("order-1", status) == [("rejected",)], 30, "the reconciler")
    decided = c.rows(
        primary(c), f"SELECT status FROM order_decisions WHERE order_id = '{order_id}'"
    )
    assert decided == [("aborted",)]  # fenced: it can never apply again
    assert c.api.lookup(book).json()["quantity"] == 7  # the stock stays taken: never oversold
    assert figure(c, "order-1", "bazar_orders_fenced_after_window_total") == 1.0
    c.wait_converged()  # order-2 has it too, rejected


def test_a_new_writer_carries_the_cluster_age_on(cluster):
    c = cluster
    bought = c.api.buy(1, key=f"age-{uuid.uuid4()}")
    assert bought.status_code == 201, bought.text
    old = primary(c)
    query = f"SELECT age FROM order_decisions WHERE order_id = '{bought.json()['order_id']}'"
    stamped = c.rows(old, query)[0][0]
    backup = next(name for name in c.names("catalog") if name != old)
    assert figure(c, backup, "bazar_cluster_age_seconds") is None  # only the writer counts
    c.kill(old)
    wait_until(lambda: c.role(backup) == "primary", 30, f"{backup} to take over")
    assert figure(c, backup, "bazar_cluster_age_seconds") >= stamped
    c.start(old)
    c.wait_converged()
