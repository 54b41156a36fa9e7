"""Headquarters' revenue reports through a real front-end (issue 12): by UTC day and by
book, JSON and CSV, exact sums of confirmed orders only, the same from every order
replica.

The module's cluster sees only the orders placed here, so the expected
report is Σ quantity × unit_price over the confirmed orders' answers.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from tests.support.shop import Shop


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


@pytest.fixture(scope="module")
def shop(cluster) -> Shop:
    return Shop(cluster.api)


@pytest.fixture(scope="module")
def sales(cluster, shop):
    """Confirmed orders (several books, single buys), one rejected and one refused order;
    returns the confirmed orders as their 201 bodies and the books by id."""
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
    days = {order["created_at"][:10] for order in confirmed}
    return confirmed, books, days


def expected_by_book(confirmed: list[dict]) -> tuple[list[dict], dict]:
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


def the_day(sales) -> str:
    days = sales[2]
    if len(days) != 1:
        pytest.skip("the orders straddle UTC midnight")
    return next(iter(days))


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    message = response.json()["message"]
    for word in words:
        assert word in message, message


# -- JSON -------------------------------------------------------------------------------
def test_revenue_by_book_is_the_exact_sum_of_confirmed_lines(shop, sales):
    confirmed, books, _ = sales
    day = the_day(sales)
    response = shop.revenue(start=day, end=day, by="book")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    report = response.json()
    rows, total = expected_by_book(confirmed)
    assert [
        {k: r[k] for k in ("book_id", "orders", "copies", "revenue")} for r in report["rows"]
    ] == rows
    assert [r["title"] for r in report["rows"]] == [books[r["book_id"]]["title"] for r in rows]
    assert report["total"] == total
    assert (report["from"], report["to"], report["by"]) == (day, day, "book")
    assert report["complete"] is True and report["notes"] == []


def test_revenue_by_day_has_one_row_for_the_day(shop, sales):
    confirmed, _, _ = sales
    day = the_day(sales)
    report = shop.revenue(start=day, end=day, by="day").json()
    _, total = expected_by_book(confirmed)
    assert report["rows"] == [{"day": day, **total}]
    assert report["total"] == total
    # 60.04 + 2489.12 + 1234.56 (orders) + 0.05 + 39.98 (buys), to the cent
    assert report["total"]["revenue"] == "3823.75"


def test_rejected_and_refused_orders_are_not_counted(shop, sales):
    confirmed, books, _ = sales
    day = the_day(sales)
    report = shop.revenue(start=day, end=day, by="book").json()
    counted = {row["book_id"] for row in report["rows"]}
    only_rejected = [
        b for b in books if b not in {x["book_id"] for o in confirmed for x in o["items"]}
    ]
    assert only_rejected and not counted & set(only_rejected)
    assert report["total"]["orders"] == len(confirmed)


def test_a_period_reaches_over_several_days_and_a_day_without_orders_is_empty(shop, sales):
    day = date.fromisoformat(the_day(sales))
    before = (day - timedelta(days=1)).isoformat()
    empty = shop.revenue(start=before, end=before).json()
    assert empty["rows"] == []
    assert empty["total"] == {"orders": 0, "copies": 0, "revenue": "0.00"}
    span = shop.revenue(
        start=(day - timedelta(days=30)).isoformat(), end=(day + timedelta(days=1)).isoformat()
    )
    assert (
        span.json()["total"]
        == shop.revenue(start=day.isoformat(), end=day.isoformat()).json()["total"]
    )
    assert [r["day"] for r in span.json()["rows"]] == [day.isoformat()]


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
def test_revenue_as_csv_by_accept_header_and_by_csv_route(shop, sales):
    day = the_day(sales)
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
        expected = [
            {"book_id": str(r["book_id"]),
             "title": ("'" + r["title"]) if r["title"].startswith("=") else r["title"],
             "orders": str(r["orders"]), "copies": str(r["copies"]), "revenue": r["revenue"]}
            for r in report["rows"]
        ]  # fmt: skip
        assert table == expected
    assert any(row["title"].startswith("'=SUM") for row in table)  # formula escaped


def test_revenue_csv_by_day(shop, sales):
    day = the_day(sales)
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
    day = the_day(sales)
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
    day = the_day(sales)
    report = shop.revenue(start=day, end=day, by="book").json()
    for name in cluster.names("order"):
        lines = cluster.rows(
            name,
            "SELECT i.book_id, i.quantity, i.unit_price FROM order_items i "
            "JOIN orders o ON o.order_id = i.order_id WHERE o.status = 'confirmed'",
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
