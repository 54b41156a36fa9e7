"""Orders of several books through a real front-end (design §4, §5): all or nothing,
exact money, the same key never twice, every order replica alike.

Each test makes books of its own (POST /books); stock is checked on every
catalog replica, orders and their lines in every order replica's SQLite file.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest

from order.store import order_id_for
from tests.support.cluster import Api, assert_error
from tests.support.shop import Shop

MISSING = 10**12  # no such book


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


def key() -> str:
    return f"order-{uuid.uuid4().hex}"


def stock(cluster, book_id: int) -> int:
    """The book's stock, the same on every catalog replica (an acknowledged write is
    on all of them)."""
    found = {
        cluster.rows(name, f"SELECT quantity FROM books WHERE id = {int(book_id)}")[0][0]
        for name in cluster.names("catalog")
    }
    assert len(found) == 1, found
    return found.pop()


def stocks(cluster, books) -> list[int]:
    return [stock(cluster, b["id"]) for b in books]


def order_rows(cluster, order_id: str) -> tuple:
    """(orders row, its order_items rows) on every order replica, checked to be the same."""
    found = []
    for name in cluster.names("order"):
        row = cluster.rows(
            name,
            "SELECT order_id, book_id, quantity, total, status FROM orders "
            f"WHERE order_id = '{order_id}'",
        )
        items = cluster.rows(
            name,
            "SELECT book_id, quantity, unit_price FROM order_items "
            f"WHERE order_id = '{order_id}' ORDER BY book_id",
        )
        found.append((row, items))
    assert all(f == found[0] for f in found), found
    return found[0]


def order_count(cluster) -> list[int]:
    return [cluster.rows(n, "SELECT count(*) FROM orders")[0][0] for n in cluster.names("order")]


def lines(*pairs) -> list[dict]:
    return [{"book_id": book["id"], "quantity": quantity} for book, quantity in pairs]


# -- the happy path ----------------------------------------------------------------
def test_an_order_of_several_books_takes_them_all_and_is_201(cluster, shop):
    a, b, c = shop.new_book(cost=12.5), shop.new_book(cost=40), shop.new_book(cost=7.25)
    response = shop.order(lines((c, 3), (a, 1), (b, 2)), key=key())
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "confirmed"
    assert order["book_id"] is None
    assert order["quantity"] == 6
    assert order["items"] == [
        {"book_id": a["id"], "quantity": 1, "unit_price": "12.50"},
        {"book_id": b["id"], "quantity": 2, "unit_price": "40.00"},
        {"book_id": c["id"], "quantity": 3, "unit_price": "7.25"},
    ]
    assert order["total"] == "114.25"
    assert stocks(cluster, (a, b, c)) == [99, 98, 97]
    assert [cluster.api.lookup(x["id"]).json()["quantity"] for x in (a, b, c)] == [99, 98, 97]

    row, items = order_rows(cluster, order["order_id"])
    assert row == [(order["order_id"], None, 6, 114.25, "confirmed")]
    assert items == [(a["id"], 1, "12.50"), (b["id"], 2, "40.00"), (c["id"], 3, "7.25")]


def test_get_order_shows_items_total_and_status(cluster, shop):
    a, b = shop.new_book(cost=3.5), shop.new_book(cost=1.25)
    placed = shop.order(lines((a, 2), (b, 4))).json()
    response = cluster.api.order(placed["order_id"])
    assert response.status_code == 200
    assert response.json() == placed
    assert set(placed) == {
        "order_id", "book_id", "quantity", "status", "created_at", "items", "total",
    }  # fmt: skip
    assert placed["created_at"].endswith("+00:00")  # UTC


def test_get_of_an_unknown_order_is_404(cluster):
    assert_error(cluster.api.order("no-such-order"), 404)
    assert_error(cluster.api.order("x" * 201), 404)


@pytest.mark.parametrize(
    "prices, expected",
    [
        ([("19.99", 3), ("0.01", 7)], "60.04"),
        ([("0.10", 1), ("0.20", 1)], "0.30"),
        ([("0.10", 3)], "0.30"),
        ([("33.33", 3), ("66.67", 3), ("0.07", 9)], "300.63"),
        ([("1234567.89", 9)], "11111111.01"),
    ],
)
def test_money_is_exact(cluster, shop, prices, expected):
    books = [(shop.new_book(cost=float(price), quantity=50), n) for price, n in prices]
    order = shop.order(lines(*books)).json()
    assert order["total"] == expected
    assert Decimal(order["total"]) == sum(Decimal(p) * n for p, n in prices)
    by_book = {line["book_id"]: line["unit_price"] for line in order["items"]}
    assert [by_book[b["id"]] for b, _ in books] == [p for p, _ in prices]
    _, items = order_rows(cluster, order["order_id"])
    assert sorted(price for _, _, price in items) == sorted(p for p, _ in prices)
    assert cluster.api.order(order["order_id"]).json()["total"] == expected


def test_unit_price_is_the_cost_when_the_order_was_decided(cluster, shop):
    book = shop.new_book(cost=20)
    first = shop.order(lines((book, 2))).json()
    assert shop.edit(book["id"], {"cost": 25.5}).status_code == 200
    second = shop.order(lines((book, 2))).json()
    assert (first["total"], second["total"]) == ("40.00", "51.00")
    again = cluster.api.order(first["order_id"]).json()
    assert (again["items"][0]["unit_price"], again["total"]) == ("20.00", "40.00")


# -- the same key, once --------------------------------------------------------------
def test_same_key_orders_once_and_returns_the_first_answer(cluster, shop):
    a, b = shop.new_book(cost=9.99, quantity=10), shop.new_book(cost=5, quantity=10)
    k = key()
    first = shop.order(lines((a, 2), (b, 3)), key=k)
    again = shop.order(lines((b, 3), (a, 2)), key=k)  # the same lines in another order
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert first.json()["order_id"] == order_id_for(k)
    assert stocks(cluster, (a, b)) == [8, 7]
    row, items = order_rows(cluster, first.json()["order_id"])
    assert len(row) == 1 and len(items) == 2


def test_same_key_sent_at_once_by_many_customers_orders_once(cluster, shop):
    a, b = shop.new_book(quantity=10), shop.new_book(quantity=10)
    k, body = key(), lines((a, 1), (b, 2))
    answers: list = []

    def place():
        answers.append(Shop(Api(cluster.api.url, cluster.api.staff_token)).order(body, key=k))

    threads = [threading.Thread(target=place) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [r.status_code for r in answers] == [201] * 8, [r.text for r in answers]
    assert len({r.json()["order_id"] for r in answers}) == 1
    assert stocks(cluster, (a, b)) == [9, 8]


def test_same_key_with_other_items_is_422_and_takes_nothing(cluster, shop):
    a, b = shop.new_book(quantity=10), shop.new_book(quantity=10)
    k = key()
    assert shop.order(lines((a, 1), (b, 1)), key=k).status_code == 201
    assert_error(shop.order(lines((a, 1), (b, 2)), key=k), 422, "Idempotency-Key")
    assert_error(shop.order(lines((a, 1)), key=k), 422)
    assert_error(cluster.api.buy(a["id"], key=k), 422)  # a buy under an order's key
    assert stocks(cluster, (a, b)) == [9, 9]
    row, items = order_rows(cluster, order_id_for(k))
    assert len(row) == 1 and [(i[0], i[1]) for i in items] == [(a["id"], 1), (b["id"], 1)]


# -- refused orders: nothing taken ---------------------------------------------------------
def test_unknown_and_withdrawn_books_are_404_naming_them_and_nothing_is_taken(cluster, shop):
    ok, gone = shop.new_book(quantity=10), shop.new_book(quantity=10)
    assert shop.withdraw(gone["id"], "withdrawn before the order").status_code == 200
    k = key()
    items = [
        {"book_id": ok["id"], "quantity": 1},
        {"book_id": MISSING, "quantity": 1},
        {"book_id": gone["id"], "quantity": 1},
    ]
    response = shop.order(items, key=k)
    assert_error(response, 404, str(MISSING), str(gone["id"]))
    assert sorted(response.json()["books"]) == sorted([MISSING, gone["id"]])
    assert stocks(cluster, (ok, gone)) == [10, 10]
    assert order_rows(cluster, order_id_for(k)) == ([], [])  # nothing recorded
    # the same key may order again once the books are right
    assert shop.order(lines((ok, 1)), key=k).status_code == 201


def test_short_books_are_410_naming_them_and_no_stock_is_taken(cluster, shop):
    plenty, short1, short2 = (
        shop.new_book(quantity=5),
        shop.new_book(quantity=2),
        shop.new_book(quantity=1),
    )
    response = shop.order(lines((plenty, 3), (short1, 3), (short2, 2)))
    assert_error(response, 410, str(short1["id"]), str(short2["id"]))
    body = response.json()
    assert sorted(body["books"]) == sorted([short1["id"], short2["id"]])
    assert stocks(cluster, (plenty, short1, short2)) == [5, 2, 1]
    assert [cluster.api.lookup(b["id"]).json()["quantity"] for b in (plenty, short1)] == [5, 2]

    order = cluster.api.order(body["order_id"]).json()
    assert (order["status"], order["total"]) == ("rejected", "0.00")
    row, _ = order_rows(cluster, body["order_id"])
    assert [(r[3], r[4]) for r in row] == [(0.0, "rejected")]
    # the books short of stock can still be ordered within their stock
    assert shop.order(lines((plenty, 3), (short1, 2), (short2, 1))).status_code == 201
    assert stocks(cluster, (plenty, short1, short2)) == [2, 0, 0]


def test_same_key_after_a_410_gets_the_same_410(cluster, shop):
    plenty, short = shop.new_book(quantity=5), shop.new_book(quantity=1)
    k = key()
    first = shop.order(lines((plenty, 1), (short, 2)), key=k)
    assert_error(first, 410)
    assert shop.edit(short["id"], {"quantity": 10}).status_code == 200  # restocked
    again = shop.order(lines((plenty, 1), (short, 2)), key=k)
    assert_error(again, 410)  # the first answer, not a second try
    assert again.json() == first.json()
    assert stocks(cluster, (plenty, short)) == [5, 10]


def test_one_short_book_names_only_it(cluster, shop):
    plenty, short = shop.new_book(quantity=5), shop.new_book(quantity=0)
    response = shop.order(lines((plenty, 1), (short, 1)))
    assert_error(response, 410, str(short["id"]))
    assert response.json()["books"] == [short["id"]]
    assert stocks(cluster, (plenty, short)) == [5, 0]


def test_fifty_books_pass_validation(cluster, shop):
    items = [{"book_id": MISSING + i, "quantity": 1} for i in range(50)]
    response = shop.order(items)
    assert_error(response, 404)  # past validation: the catalog names every one
    assert sorted(response.json()["books"]) == [MISSING + i for i in range(50)]


BAD = [
    ({"items": []}, "items"),
    ({"items": [{"book_id": 1, "quantity": 1}] * 2}, "items"),
    ({"items": [{"book_id": 1, "quantity": 1}, {"book_id": 1, "quantity": 2}]}, "items"),
    ({"items": [{"book_id": i, "quantity": 1} for i in range(1, 52)]}, "items"),
    ({"items": [{"book_id": 1, "quantity": 0}]}, "quantity"),
    ({"items": [{"book_id": 1, "quantity": -1}]}, "quantity"),
    ({"items": [{"book_id": 1, "quantity": 1.5}]}, "quantity"),
    ({"items": [{"book_id": 1, "quantity": "1"}]}, "quantity"),
    ({"items": [{"book_id": 1, "quantity": True}]}, "quantity"),
    ({"items": [{"book_id": 1, "quantity": None}]}, "quantity"),
    ({"items": [{"book_id": 1, "quantity": 10**10}]}, "quantity"),
    ({"items": [{"book_id": "1", "quantity": 1}]}, "book_id"),
    ({"items": [{"book_id": 0, "quantity": 1}]}, "book_id"),
    ({"items": [{"book_id": 1.0, "quantity": 1}]}, "book_id"),
    ({"items": [{"book_id": 1}]}, "quantity"),
    ({"items": [{"quantity": 1}]}, "book_id"),
    ({"items": [{"book_id": 1, "quantity": 1, "price": 0.01}]}, "price"),
    ({"items": [[1, 1]]}, "items"),
    ({"items": {"book_id": 1, "quantity": 1}}, "items"),
    ({"items": None}, "items"),
    ({}, "items"),
    ({"items": [{"book_id": 1, "quantity": 1}], "coupon": "FREE"}, "coupon"),
    ([{"book_id": 1, "quantity": 1}], "body"),
]


@pytest.mark.parametrize("body, field", BAD)
def test_bad_order_is_400_naming_the_field_and_records_nothing(cluster, shop, body, field):
    before = order_count(cluster), stock(cluster, 1)
    assert_error(shop.order_body(body, key=key()), 400, field)
    assert (order_count(cluster), stock(cluster, 1)) == before


def test_non_json_and_malformed_key_are_400(cluster, shop):
    before = order_count(cluster)
    headers = {"Content-Type": "application/json"}
    assert_error(cluster.api.send("POST", "/orders", data="{nope", headers=headers), 400)
    raw = '{"items": [{"book_id": 1, "quantity": 1}], "items": []}'
    assert_error(cluster.api.send("POST", "/orders", data=raw, headers=headers), 400)
    assert_error(shop.order([{"book_id": 1, "quantity": 1}], key="two words"), 400)
    assert_error(cluster.api.send("POST", "/orders", data="x", headers={}), 415)
    assert order_count(cluster) == before


# -- single buys and the order tables ------------------------------------------------------
def test_a_single_buy_also_gets_its_order_items_row(cluster, shop):
    book = shop.new_book(cost=4.99, quantity=10)
    response = cluster.api.buy(book["id"], quantity=3, key=key())
    assert response.status_code == 201, response.text
    assert response.json()["total"] == "14.97"
    order_id = response.json()["order_id"]
    row, items = order_rows(cluster, order_id)
    assert row == [(order_id, book["id"], 3, 14.97, "confirmed")]
    assert items == [(book["id"], 3, "4.99")]
    order = cluster.api.order(order_id).json()
    assert order["items"] == [{"book_id": book["id"], "quantity": 3, "unit_price": "4.99"}]
    assert (order["book_id"], order["total"]) == (book["id"], "14.97")


def test_an_order_of_one_book_is_like_a_single_buy(cluster, shop):
    book = shop.new_book(cost=2.5)
    order = shop.order(lines((book, 2))).json()
    assert (order["book_id"], order["quantity"], order["total"]) == (book["id"], 2, "5.00")
    row, items = order_rows(cluster, order["order_id"])
    assert row[0][1] == book["id"] and items == [(book["id"], 2, "2.50")]


def test_every_order_has_its_lines_and_multi_book_orders_no_book_id(cluster, shop):
    a, b = shop.new_book(), shop.new_book()
    assert shop.order(lines((a, 1), (b, 1))).status_code == 201
    assert cluster.api.buy(a["id"]).status_code == 201
    for name in cluster.names("order"):
        bare = cluster.rows(
            name,
            "SELECT o.order_id FROM orders o LEFT JOIN order_items i "
            "ON i.order_id = o.order_id WHERE i.order_id IS NULL",
        )
        assert bare == [], f"{name}: orders without lines"
        several = cluster.rows(
            name,
            "SELECT o.order_id, o.book_id FROM orders o JOIN order_items i "
            "ON i.order_id = o.order_id GROUP BY o.order_id HAVING count(*) > 1",
        )
        assert several and all(book_id is None for _, book_id in several)
        unpriced = cluster.rows(
            name,
            "SELECT i.order_id FROM order_items i JOIN orders o ON o.order_id = i.order_id "
            "WHERE o.status != 'pending' AND i.unit_price IS NULL",
        )
        assert unpriced == [], f"{name}: decided orders with unpriced lines"


def test_order_replicas_hold_identical_orders_after_the_run(cluster):
    result = cluster.check()
    assert result.returncode == 0, result.stdout
    assert "order order_items" in result.stdout
