"""Group commit at the catalog primary (POST /batch/orders, issue 13): several order
ids decided in one transaction, each with its own answer, exactly as if sent alone.

Sent straight to the primary as an order server would (signed); stock and decisions
are read from every catalog replica's SQLite file.
"""

from __future__ import annotations

import threading
import uuid

import pytest

MISSING = 10**12


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


def primary(cluster) -> str:
    return next(n for n in cluster.names("catalog") if cluster.role(n) == "primary")


def oid() -> str:
    return f"batch-{uuid.uuid4().hex}"


def stock(cluster, book_id: int) -> set[int]:
    return {
        cluster.rows(n, f"SELECT quantity FROM books WHERE id = {int(book_id)}")[0][0]
        for n in cluster.names("catalog")
    }


def decisions(cluster, order_id: str) -> set[tuple]:
    return {
        tuple(cluster.rows(n, f"SELECT status FROM order_decisions WHERE order_id = '{order_id}'"))
        for n in cluster.names("catalog")
    }


def batch(cluster, orders: list[dict]):
    return cluster.call(primary(cluster), "POST", "/batch/orders", json={"orders": orders})


def test_each_order_of_a_batch_gets_its_own_answer_and_only_applied_ones_take_stock(cluster, shop):
    plenty, scarce = shop.new_book(cost=12.5, quantity=10), shop.new_book(quantity=1)
    orders = [
        {"order_id": oid(), "items": [{"book_id": plenty["id"], "quantity": 3}]},
        {"order_id": oid(), "items": [{"book_id": MISSING, "quantity": 1}]},
        {"order_id": oid(), "items": [{"book_id": scarce["id"], "quantity": 2}]},
        {
            "order_id": oid(),
            "items": [
                {"book_id": plenty["id"], "quantity": 1},
                {"book_id": scarce["id"], "quantity": 1},
            ],
        },
    ]
    response = batch(cluster, orders)
    assert response.status_code == 200, response.text
    answers = response.json()["results"]
    assert [a["code"] for a in answers] == [200, 404, 200, 200]
    assert [a.get("outcome") for a in answers] == ["applied", None, "rejected", "applied"]
    assert answers[0]["total"] == "37.50" and answers[3]["total"] == "22.50"
    assert answers[1]["books"] == [MISSING]
    assert answers[2]["short"] == [scarce["id"]]
    assert stock(cluster, plenty["id"]) == {6} and stock(cluster, scarce["id"]) == {0}
    assert decisions(cluster, orders[1]["order_id"]) == {()}  # nothing recorded for a 404
    assert decisions(cluster, orders[0]["order_id"]) == {(("applied",),)}


def test_an_order_id_sent_twice_in_one_batch_is_decided_once(cluster, shop):
    book = shop.new_book(quantity=5)
    order = {"order_id": oid(), "items": [{"book_id": book["id"], "quantity": 2}]}
    answers = batch(cluster, [order, order]).json()["results"]
    assert [a["outcome"] for a in answers] == ["applied", "applied"]
    assert stock(cluster, book["id"]) == {3}


def test_a_batch_to_a_backup_is_421_and_takes_nothing(cluster, shop):
    book = shop.new_book(quantity=5)
    backup = next(n for n in cluster.names("catalog") if n != primary(cluster))
    order = {"order_id": oid(), "items": [{"book_id": book["id"], "quantity": 1}]}
    response = cluster.call(backup, "POST", "/batch/orders", json={"orders": [order]})
    assert response.status_code == 421
    assert stock(cluster, book["id"]) == {5}


@pytest.mark.parametrize(
    "body",
    [
        {"orders": []},
        {"orders": [{"order_id": "x", "items": []}]},
        {"orders": [{"order_id": "x", "items": [{"book_id": 1, "quantity": 1}]}] * 65},
        {"orders": "x"},
    ],
)
def test_a_malformed_batch_is_400(cluster, body):
    response = batch(cluster, body)
    assert response.status_code == 400, response.text
    assert "message" in response.json()


def test_customers_racing_through_the_front_end_share_batches_and_never_oversell(cluster, shop):
    """32 buyers at once for 20 copies: exactly 20 x 201, 12 x 410, and the order
    servers sent fewer catalog requests than orders (group commit happened)."""
    book = shop.new_book(quantity=20)
    before = _batches(cluster)
    codes, lock = [], threading.Lock()

    def buy():
        code = cluster.api.buy(book["id"]).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=buy) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] * 20 + [410] * 12
    assert stock(cluster, book["id"]) == {0}
    sent, carried = (after - was for after, was in zip(_batches(cluster), before, strict=True))
    assert carried == 32 and sent < carried
    front = cluster.api.send("GET", "/metrics").text
    assert _figure(front, "bazar_sent_orders_total") >= 32  # and this module's other orders
    assert _figure(front, "bazar_order_batches_total") < _figure(front, "bazar_sent_orders_total")


def _figure(text: str, metric: str) -> float:
    return sum(
        float(line.split()[1]) for line in text.splitlines() if line.startswith(metric + " ")
    )


def _batches(cluster) -> tuple[float, float]:
    """(batches, orders carried) summed over the order servers' /metrics."""
    totals = [0.0, 0.0]
    for name in cluster.names("order"):
        for line in cluster.call(name, "GET", "/metrics").text.splitlines():
            for i, metric in enumerate(
                ("bazar_catalog_batches_total", "bazar_batched_orders_total")
            ):
                if line.startswith(metric + " "):
                    totals[i] += float(line.split()[1])
    return tuple(totals)


def test_book_zero_in_a_batch_is_a_404_for_that_order_only(cluster, shop):
    """The catalog takes any row id from an order server, as /buy/<id> does."""
    book = shop.new_book(quantity=5)
    orders = [
        {"order_id": oid(), "items": [{"book_id": 0, "quantity": 1}]},
        {"order_id": oid(), "items": [{"book_id": book["id"], "quantity": 1}]},
    ]
    answers = batch(cluster, orders).json()["results"]
    assert [a["code"] for a in answers] == [404, 200]
    assert cluster.api.buy(0).status_code == 404


def test_an_order_server_batch_answers_each_order_as_if_it_came_alone(cluster, shop):
    """POST /batch/orders on an order server (what a front-end sends): 201 with the order,
    404 and 410 naming books, 422 for a key reused with other lines; one answer each."""
    plenty, scarce = shop.new_book(cost=7.25, quantity=10), shop.new_book(quantity=1)
    reused = f"key-{uuid.uuid4().hex}"
    first = {"items": [{"book_id": plenty["id"], "quantity": 1}], "idempotency_key": reused}
    placed = cluster.call("order-1", "POST", "/batch/orders", json={"orders": [first]})
    assert placed.status_code == 200 and placed.json()["results"][0]["code"] == 201
    orders = [
        {"items": [{"book_id": plenty["id"], "quantity": 2}], "idempotency_key": oid()},
        {"items": [{"book_id": MISSING, "quantity": 1}], "idempotency_key": oid()},
        {"items": [{"book_id": scarce["id"], "quantity": 5}], "idempotency_key": oid()},
        {"items": [{"book_id": plenty["id"], "quantity": 3}], "idempotency_key": reused},
        first,  # the same order again: the first answer
    ]
    response = cluster.call("order-2", "POST", "/batch/orders", json={"orders": orders})
    assert response.status_code == 200, response.text
    answers = response.json()["results"]
    assert [a["code"] for a in answers] == [201, 404, 410, 422, 201]
    assert answers[0]["total"] == "14.50" and answers[0]["status"] == "confirmed"
    assert answers[1]["books"] == [MISSING] and answers[2]["books"] == [scarce["id"]]
    assert answers[4]["order_id"] == answers[3]["order_id"]  # the key's order, once
    assert stock(cluster, plenty["id"]) == {7} and stock(cluster, scarce["id"]) == {1}


def test_an_order_server_batch_is_one_catalog_request_and_a_new_key_twice_is_one_order(
    cluster, shop
):
    """A front-end's batch is opened, decided and recorded together: one catalog batch
    for all its orders; a new key that comes twice in it is placed once."""
    book = shop.new_book(quantity=10)
    key = f"key-{uuid.uuid4().hex}"
    twice = {"items": [{"book_id": book["id"], "quantity": 2}], "idempotency_key": key}
    other = {"items": [{"book_id": book["id"], "quantity": 1}], "idempotency_key": oid()}
    sent_before = _order_server_batches(cluster, "order-2")
    response = cluster.call(
        "order-2", "POST", "/batch/orders", json={"orders": [twice, other, twice]}
    )
    answers = response.json()["results"]
    assert [a["code"] for a in answers] == [201, 201, 201], answers
    assert answers[0]["order_id"] == answers[2]["order_id"] != answers[1]["order_id"]
    assert _order_server_batches(cluster, "order-2") == sent_before + 1
    assert stock(cluster, book["id"]) == {7}


def _order_server_batches(cluster, name: str) -> float:
    return _figure(cluster.call(name, "GET", "/metrics").text, "bazar_catalog_batches_total")
