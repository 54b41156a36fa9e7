"""Headquarters' revenue reports through a real front-end (issue 12): by UTC day and by
book, JSON and CSV, exact sums of confirmed orders only, the same from every order
replica.

The cluster may carry orders of modules that ran before (tests/conftest.py
hands a shared cluster on), so the fixture reads the day's report first:
the expected report is that one plus Σ quantity × unit_price over the
confirmed orders placed here, on books of their own.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from tests.support.cluster import assert_error


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


@dataclass
class Sales:
    confirmed: list[dict]  # the 201 bodies (single buys: their GET /orders)
    books: dict[int, dict]  # this module's books by id
    day: str  # the UTC day of all of them
    before: dict  # the day's report by book before these orders


@pytest.fixture(scope="module")
def sales(cluster, shop) -> Sales:
    """Confirmed orders (several books, single buys), one rejected and one refused order."""
    day = today()
    before = shop.revenue(start=day, end=day, by="book").json()
    tricky = shop.new_book(cost=19.99, quantity=50, title="=SUM(A1:A3), the sequel")
    cheap = shop.new_book(cost=0.01, quantity=50)
    dear = shop.new_book(cost=1234.56, quantity=50)
    only_rejected = shop.new_book(cost=7, quantity=1)
    books = {b["id"]: b for b in (tricky, cheap, dear, only_rejected)}
    confirmed = []
    for items in (
        [(tricky, 3), (cheap, 7)],
        [(cheap, 1), (dear, 2), (tricky, 1)],
        [(dear, 1)],
    ):
        response = shop.order([{"book_id": b["id"], "quantity": n} for b, n in items])
        assert response.status_code == 201, response.text
        confirmed.append(response.json())
    for book, n in ((cheap, 5), (tricky, 2)):
        response = shop.api.buy(book["id"], quantity=n)
        assert response.status_code == 201, response.text
        confirmed.append(shop.api.order(response.json()["order_id"]).json())
    rejected = shop.order(
        [{"book_id": only_rejected["id"], "quantity": 2}, {"book_id": dear["id"], "quantity": 1}]
    )
    assert rejected.status_code == 410, rejected.text
    refused = shop.order(
        [{"book_id": tricky["id"], "quantity": 1}, {"book_id": 10**12, "quantity": 1}]
    )
    assert refused.status_code == 404, refused.text
    if {order["created_at"][:10] for order in confirmed} != {day}:
        pytest.skip("the orders straddle UTC midnight")
    return Sales(confirmed, books, day, before)


def expected(sales: Sales) -> tuple[list[dict], dict]:
    """The day's report by book (without titles) and its total: before, plus these orders."""
    mine, total = placed(sales.confirmed)
    earlier = [{k: v for k, v in r.items() if k != "title"} for r in sales.before["rows"]]
    assert not {r["book_id"] for r in earlier} & {r["book_id"] for r in mine}
    rows = sorted(earlier + mine, key=lambda r: r["book_id"])
    old = sales.before["total"]
    return rows, {
        "orders": old["orders"] + total["orders"],
        "copies": old["copies"] + total["copies"],
        "revenue": str(Decimal(old["revenue"]) + Decimal(total["revenue"])),
    }


def placed(confirmed: list[dict]) -> tuple[list[dict], dict]:
    """Rows by book and the total of these confirmed orders alone."""
    groups = defaultdict(lambda: {"orders": set(), "copies": 0, "revenue": Decimal("0")})
    for order in confirmed:
        for line in order["items"]:
            group = groups[line["book_id"]]
            group["orders"].add(order["order_id"])
            group["copies"] += line["quantity"]
            group["revenue"] += Decimal(line["unit_price"]) * line["quantity"]
    rows = [
        {"book_id": book_id, "orders": len(g["orders"]), "copies": g["copies"],
         "revenue": str(g["revenue"].quantize(Decimal("0.01")))}
        for book_id, g in sorted(groups.items())
    ]  # fmt: skip
    total = {
        "orders": len(confirmed),
        "copies": sum(line["quantity"] for o in confirmed for line in o["items"]),
        "revenue": str(sum(Decimal(o["total"]) for o in confirmed).quantize(Decimal("0.01"))),
    }
    return rows, total


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# -- JSON -------------------------------------------------------------------------------
def test_revenue_by_book_is_the_exact_sum_of_confirmed_lines(shop, sales):
    day = sales.day
    response = shop.revenue(start=day, end=day, by="book")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    report = response.json()
    rows, total = expected(sales)
    assert [{k: v for k, v in r.items() if k != "title"} for r in report["rows"]] == rows
    titles = {r["book_id"]: r["title"] for r in report["rows"]}
    assert all(titles[book_id] == book["title"] for book_id, book in sales.books.items()
               if book_id in titles)  # fmt: skip
    assert report["total"] == total
    assert (report["from"], report["to"], report["by"]) == (day, day, "book")
    assert report["complete"] is True and report["notes"] == []


def test_these_orders_add_exactly_their_lines(sales):
    mine, total = placed(sales.confirmed)
    tricky, cheap, dear = list(sales.books)[:3]
    assert mine == [
        {"book_id": tricky, "orders": 3, "copies": 6, "revenue": "119.94"},
        {"book_id": cheap, "orders": 3, "copies": 13, "revenue": "0.13"},
        {"book_id": dear, "orders": 2, "copies": 3, "revenue": "3703.68"},
    ]
    # 60.04 + 2489.12 + 1234.56 (orders) + 0.05 + 39.98 (buys), to the cent
    assert total == {"orders": 5, "copies": 22, "revenue": "3823.75"}


def test_revenue_by_day_has_one_row_for_the_day(shop, sales):
    day = sales.day
    report = shop.revenue(start=day, end=day, by="day").json()
    _, total = expected(sales)
    assert report["rows"] == [{"day": day, **total}]
    assert report["total"] == total


def test_rejected_and_refused_orders_are_not_counted(shop, sales):
    report = shop.revenue(start=sales.day, end=sales.day, by="book").json()
    counted = {row["book_id"] for row in report["rows"]}
    only_rejected = list(sales.books)[3]
    assert only_rejected not in counted
    assert report["total"]["orders"] == sales.before["total"]["orders"] + len(sales.confirmed)


def test_a_period_reaches_over_several_days_and_a_day_without_orders_is_empty(shop, sales):
    day = date.fromisoformat(sales.day)
    before = (day - timedelta(days=1)).isoformat()
    empty = shop.revenue(start=before, end=before).json()
    assert empty["rows"] == []
    assert empty["total"] == {"orders": 0, "copies": 0, "revenue": "0.00"}
    span = shop.revenue(
        start=(day - timedelta(days=30)).isoformat(), end=(day + timedelta(days=1)).isoformat()
    ).json()
    assert span["total"] == shop.revenue(start=sales.day, end=sales.day).json()["total"]
    assert [r["day"] for r in span["rows"]] == [sales.day]


def test_the_default_period_is_today_utc_by_day(shop, sales):
    before = today()
    report = shop.revenue().json()
    if today() != before:
        pytest.skip("UTC midnight passed during the test")
    assert (report["from"], report["to"], report["by"]) == (before, before, "day")
    explicit = shop.revenue(start=before, end=before, by="day").json()
    assert {**report, "node": None} == {**explicit, "node": None}  # any replica may answer
    only_to = shop.revenue(end=before).json()
    assert (only_to["from"], only_to["to"]) == (before, before)


# -- CSV --------------------------------------------------------------------------------
def spreadsheet_safe(text: str) -> str:
    return "'" + text if text.startswith(("=", "+", "-", "@")) else text


def test_revenue_as_csv_by_accept_header_and_by_csv_route(shop, sales):
    day = sales.day
    report = shop.revenue(start=day, end=day, by="book").json()
    for response in (
        shop.revenue(start=day, end=day, by="book", accept="text/csv"),
        shop.revenue_csv(start=day, end=day, by="book"),
    ):
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/csv")
        assert response.headers["Bazar-Report-Complete"] == "true"
        assert "attachment" in response.headers["Content-Disposition"]
        table = parse_csv(response.text)
        assert list(table[0]) == ["book_id", "title", "orders", "copies", "revenue"]
        assert table == [
            {"book_id": str(r["book_id"]), "title": spreadsheet_safe(r["title"]),
             "orders": str(r["orders"]), "copies": str(r["copies"]), "revenue": r["revenue"]}
            for r in report["rows"]
        ]  # fmt: skip
    tricky = list(sales.books)[0]
    row = next(r for r in table if r["book_id"] == str(tricky))
    assert row["title"] == "'=SUM(A1:A3), the sequel"  # quoted, and no formula


def test_revenue_csv_by_day(shop, sales):
    day = sales.day
    report = shop.revenue(start=day, end=day).json()
    for response in (
        shop.revenue(start=day, end=day, accept="text/csv"),
        shop.revenue_csv(start=day, end=day, by="day"),
    ):
        assert response.status_code == 200
        table = parse_csv(response.text)
        assert table == [
            {"day": day, "orders": str(report["total"]["orders"]),
             "copies": str(report["total"]["copies"]), "revenue": report["total"]["revenue"]}
        ]  # fmt: skip


def test_json_is_preferred_when_the_client_takes_both(shop, sales):
    response = shop.revenue(accept="application/json, text/csv;q=0.5")
    assert response.headers["Content-Type"].startswith("application/json")
    response = shop.revenue(accept="text/csv, application/json;q=0.5")
    assert response.headers["Content-Type"].startswith("text/csv")


# -- bad requests ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, field",
    [
        ({"start": "2026-13-01"}, "from"),
        ({"start": "2026-02-30"}, "from"),
        ({"start": "yesterday"}, "from"),
        ({"end": "2026-1-5"}, "to"),
        ({"end": ""}, "to"),
        ({"end": "2026-01-05T00:00:00"}, "to"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "from"),
        ({"start": "1990-01-01", "end": "2026-01-01"}, "days"),
        ({"by": "week"}, "by"),
        ({"by": "BOOK"}, "by"),
        ({"by": ""}, "by"),
    ],
)
def test_bad_period_is_400(shop, params, field):
    assert_error(shop.revenue(**params), 400, field)
    assert_error(shop.revenue_csv(**params), 400, field)
    assert_error(shop.revenue(accept="text/csv", **params), 400, field)


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_reports_need_the_staff_token(shop, token):
    assert_error(shop.revenue(token=token), 401)
    assert_error(shop.revenue(token=token, accept="text/csv"), 401)
    assert_error(shop.revenue_csv(token=token), 401)
    assert_error(shop.revenue(token=token, by="week"), 401)  # the token comes first


# -- every order replica, the same answer ------------------------------------------------
def test_every_order_replica_gives_the_same_complete_report(cluster, shop, sales):
    day = sales.day
    for by in ("day", "book"):
        params = {"from": day, "to": day, "by": by}
        public = shop.revenue(start=day, end=day, by=by).json()
        answers = {}
        for name in cluster.names("order"):
            response = cluster.call(name, "GET", "/reports/revenue", params=params)
            assert response.status_code == 200, response.text
            report = response.json()
            assert report["node"] == name
            assert report["complete"] is True and report["notes"] == []
            answers[name] = report
        for name, report in answers.items():
            assert report["total"] == public["total"], name
            assert report["rows"] == [
                {k: v for k, v in row.items() if k != "title"} for row in public["rows"]
            ], name


def test_the_report_equals_the_sum_over_each_replicas_tables(cluster, shop, sales):
    day = sales.day
    report = shop.revenue(start=day, end=day, by="book").json()
    for name in cluster.names("order"):
        lines = cluster.rows(
            name,
            "SELECT i.book_id, i.quantity, i.unit_price FROM order_items i "
            "JOIN orders o ON o.order_id = i.order_id WHERE o.status = 'confirmed' "
            f"AND substr(o.created_at, 1, 10) = '{day}'",
        )
        revenue = defaultdict(Decimal)
        for book_id, quantity, price in lines:
            revenue[book_id] += Decimal(price) * quantity
        assert {r["book_id"]: Decimal(r["revenue"]) for r in report["rows"]} == dict(revenue)


def test_an_order_replica_serves_its_report_only_to_signed_calls(cluster):
    url = cluster.url_of(cluster.names("order")[0]) + "/reports/revenue"
    session = requests.Session()
    session.trust_env = False
    response = session.get(url, timeout=10)
    assert response.status_code in (401, 403), response.text
    assert response.headers["Content-Type"].startswith("application/json")
    staff = session.get(url, headers={"Authorization": f"Bearer {cluster.api.staff_token}"})
    assert staff.status_code in (401, 403)


def test_an_order_replicas_report_checks_its_period_too(cluster):
    name = cluster.names("order")[0]
    response = cluster.call(name, "GET", "/reports/revenue", params={"by": "month"})
    assert response.status_code == 400
    response = cluster.call(name, "GET", "/reports/revenue", params={"from": "2026-02-29"})
    assert response.status_code == 400
