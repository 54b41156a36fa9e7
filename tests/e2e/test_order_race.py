"""40 customers race multi-book orders for 10 copies of one book (issue 12): exactly
10 orders win, the 30 others are 410 naming that book, and no order is half-applied
on any catalog or order replica."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest

from tests.support.cluster import Api
from tests.support.shop import Shop

CUSTOMERS = 40
SCARCE_COPIES = 10
PLENTY = 1000


@pytest.fixture(scope="module")
def race(shared_cluster):
    """The books, the orders the customers sent, and the answers they got."""
    cluster = shared_cluster
    shop = Shop(cluster.api)
    scarce = shop.new_book(cost=29.99, quantity=SCARCE_COPIES)
    plenty = [shop.new_book(cost=cost, quantity=PLENTY) for cost in (0.01, 4.5, 19.99)]
    rng = random.Random(12)  # the same orders every run
    orders = []
    for i in range(CUSTOMERS):
        extra = rng.sample(plenty, rng.randint(1, 3))
        items = [{"book_id": scarce["id"], "quantity": 1}]
        items += [{"book_id": b["id"], "quantity": rng.randint(1, 3)} for b in extra]
        rng.shuffle(items)
        orders.append((f"race-{i}-{rng.getrandbits(64):x}", items))

    answers: list = [None] * CUSTOMERS
    start = threading.Barrier(CUSTOMERS)

    def customer(i: int) -> None:
        shop = Shop(Api(cluster.api.url, cluster.api.staff_token))  # a session each
        key, items = orders[i]
        start.wait(30)
        answers[i] = shop.order(items, key=key)

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(CUSTOMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(a is not None for a in answers), "a customer got no answer"
    return cluster, scarce, plenty, orders, answers


def winners(race) -> list[int]:
    return [i for i, a in enumerate(race[4]) if a.status_code == 201]


def test_exactly_ten_orders_win_and_thirty_are_410_naming_the_scarce_book(race):
    _, scarce, _, _, answers = race
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * SCARCE_COPIES + [410] * (CUSTOMERS - SCARCE_COPIES), [
        a.text for a in answers if a.status_code not in (201, 410)
    ]
    for answer in answers:
        if answer.status_code == 410:
            body = answer.json()
            assert body["books"] == [scarce["id"]], body
            assert str(scarce["id"]) in body["message"]


def test_stock_on_every_catalog_replica_moved_only_by_the_winners(race):
    cluster, scarce, plenty, orders, _ = race
    taken = {b["id"]: 0 for b in plenty}
    for i in winners(race):
        for line in orders[i][1]:
            if line["book_id"] in taken:
                taken[line["book_id"]] += line["quantity"]
    expected = {scarce["id"]: 0, **{book_id: PLENTY - n for book_id, n in taken.items()}}
    ids = ", ".join(str(book_id) for book_id in expected)
    for name in cluster.names("catalog"):
        rows = cluster.rows(name, f"SELECT id, quantity FROM books WHERE id IN ({ids})")
        assert dict(rows) == expected, name


def test_each_winner_got_every_line_priced_and_an_exact_total(race):
    cluster, _, _, orders, answers = race
    for i in winners(race):
        order = answers[i].json()
        wanted = sorted((x["book_id"], x["quantity"]) for x in orders[i][1])
        assert [(x["book_id"], x["quantity"]) for x in order["items"]] == wanted
        assert all(x["unit_price"] is not None for x in order["items"])
        total = sum(Decimal(x["unit_price"]) * x["quantity"] for x in order["items"])
        assert Decimal(order["total"]) == total
        assert cluster.api.order(order["order_id"]).json() == order


def test_no_order_is_half_applied_on_any_order_replica(race):
    cluster, _, _, orders, answers = race
    won = {answers[i].json()["order_id"] for i in winners(race)}
    lost = {a.json()["order_id"] for a in answers if a.status_code == 410}
    seen = []
    for name in cluster.names("order"):
        ids = ", ".join(f"'{order_id}'" for order_id in won | lost)
        rows = cluster.rows(name, f"SELECT order_id, status FROM orders WHERE order_id IN ({ids})")
        assert {o for o, s in rows if s == "confirmed"} == won, name
        assert {o for o, s in rows if s == "rejected"} == lost, name
        lines = cluster.rows(
            name,
            "SELECT order_id, book_id, quantity, unit_price FROM order_items "
            f"WHERE order_id IN ({ids}) ORDER BY order_id, book_id",
        )
        by_order: dict = {}
        for order_id, book_id, quantity, price in lines:
            by_order.setdefault(order_id, []).append((book_id, quantity, price))
        for i, (_, items) in enumerate(orders):
            order_id = answers[i].json()["order_id"]
            assert sorted((b, q) for b, q, _ in by_order[order_id]) == sorted(
                (x["book_id"], x["quantity"]) for x in items
            )
            assert all(price is not None for _, _, price in by_order[order_id]), order_id
        seen.append((sorted(rows), lines))
    assert all(s == seen[0] for s in seen)


def test_the_catalog_decided_each_order_whole(race):
    cluster, scarce, _, _, answers = race
    won = {answers[i].json()["order_id"] for i in winners(race)}
    for name in cluster.names("catalog"):
        decided = cluster.rows(
            name,
            "SELECT order_id, status FROM order_decisions WHERE order_id IN "
            f"({', '.join(repr(a.json()['order_id']) for a in answers)})",
        )
        assert len(decided) == CUSTOMERS, name
        assert {o for o, s in decided if s == "applied"} == won, name


def test_replicas_identical_after_the_race(race):
    result = race[0].check()
    assert result.returncode == 0, result.stdout
