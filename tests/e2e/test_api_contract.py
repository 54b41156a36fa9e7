"""The public API of design §4, through a real front-end, every route and error code."""

from __future__ import annotations

import json
import socket
import uuid
from decimal import Decimal

import pytest

from tests.support.cluster import assert_error


@pytest.fixture(scope="module")
def api(shared_cluster):
    return shared_cluster.api


# -- search -------------------------------------------------------------------------
def test_search_lists_the_books_of_a_topic(api):
    response = api.search("distributed systems")
    assert response.status_code == 200
    assert response.json() == [
        {"id": 1, "title": "How to get a good grade in DOS in 20 minutes a day"},
        {"id": 2, "title": "RPCs for Dummies"},
    ]


def test_search_ignores_case(api):
    assert [b["id"] for b in api.search("UNDERGRADUATE School").json()] == [3, 4, 5, 6]


def test_search_unknown_topic_is_404(api):
    assert_error(api.search("cooking"), 404, "cooking")


# -- lookup -----------------------------------------------------------------------
def test_lookup_returns_the_public_fields(api):
    response = api.lookup(7)
    assert response.status_code == 200
    book = response.json()
    assert set(book) == {"id", "title", "topic", "cost", "quantity"}
    assert book["title"] == "Spring in the Pioneer Valley"
    assert book["topic"] == "spring"


@pytest.mark.parametrize("book_id", ["99", "0", "-1", "abc", "1.5", str(2**64)])
def test_lookup_of_no_such_book_is_404(api, book_id):
    assert_error(api.lookup(book_id), 404)


# -- buy --------------------------------------------------------------------------
def test_buy_takes_one_copy_and_records_a_confirmed_order(api):
    before = api.lookup(5).json()["quantity"]
    response = api.buy(5)
    assert response.status_code == 201
    body = response.json()
    assert body["book_id"] == 5
    assert api.lookup(5).json()["quantity"] == before - 1
    order = api.order(body["order_id"]).json()
    assert order["status"] == "confirmed"
    assert order["quantity"] == 1
    assert Decimal(order["total"]) == Decimal(str(api.lookup(5).json()["cost"]))  # exact text


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_buy_accepts_put_and_post_with_a_quantity(api, method):
    before = api.lookup(6).json()["quantity"]
    assert api.buy(6, quantity=3, method=method).status_code == 201
    assert api.lookup(6).json()["quantity"] == before - 3


def test_same_idempotency_key_never_buys_twice(api):
    key = f"test-{uuid.uuid4()}"
    before = api.lookup(4).json()["quantity"]
    first = api.buy(4, quantity=2, key=key)
    second = api.buy(4, quantity=2, key=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["order_id"] == second.json()["order_id"]
    assert api.lookup(4).json()["quantity"] == before - 2


def test_reusing_a_key_for_another_purchase_is_refused(api):
    key = f"test-{uuid.uuid4()}"
    assert api.buy(4, quantity=1, key=key).status_code == 201
    assert_error(api.buy(4, quantity=2, key=key), 422, "Idempotency-Key")


def test_buy_of_no_such_book_is_404(api):
    assert_error(api.buy(99), 404)


def test_buy_more_than_in_stock_is_410_and_takes_nothing(api):
    assert api.set_quantity(3, 2).status_code == 200
    assert_error(api.buy(3, quantity=3), 410, "out of stock")
    assert api.lookup(3).json()["quantity"] == 2
    assert api.buy(3, quantity=2).status_code == 201
    assert_error(api.buy(3), 410)
    assert api.lookup(3).json()["quantity"] == 0
    api.set_quantity(3, 900)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": 1, "colour": "red"}, "colour"),
        ([1], "object"),
    ],
)
def test_buy_with_a_bad_body_is_400_and_takes_nothing(api, body, field):
    before = api.lookup(2).json()["quantity"]
    assert_error(api.send("POST", "/buy/2", json=body), 400, field)
    assert api.lookup(2).json()["quantity"] == before


def test_buy_with_malformed_json_is_400(api):
    response = api.send(
        "POST", "/buy/2", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "JSON")


def test_buy_with_a_non_json_content_type_is_415(api):
    assert_error(api.send("POST", "/buy/2", data="quantity=1"), 415)


def test_buy_with_a_bad_idempotency_key_is_400(api):
    assert_error(api.buy(2, key="x" * 201), 400, "Idempotency-Key")


# -- staff updates -----------------------------------------------------------------
def test_update_price_needs_the_staff_token(api):
    response = api.staff("price", 1, {"price": 10}, token=None)
    assert_error(response, 401)
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert_error(api.staff("price", 1, {"price": 10}, token="not-the-token"), 401)
    assert api.lookup(1).json()["cost"] == 50


def test_update_price_changes_the_book(api):
    response = api.set_price(2, 44.5)
    assert response.status_code == 200
    assert response.json()["cost"] == 44.5
    assert api.lookup(2).json()["cost"] == 44.5
    api.set_price(2, 40)


def test_update_quantity_changes_the_book(api):
    response = api.set_quantity(7, 123)
    assert response.status_code == 200
    assert response.json()["quantity"] == 123
    assert api.lookup(7).json()["quantity"] == 123
    api.set_quantity(7, 900)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"price": 0}, "price"),
        ({"price": -3}, "price"),
        ({"price": "10"}, "price"),
        ({"price": True}, "price"),
        ({"price": None}, "price"),
        ({}, "price"),
        ({"price": 5, "quantity": 3}, "quantity"),
    ],
)
def test_update_price_with_a_bad_body_is_400(api, body, field):
    assert_error(api.staff("price", 1, body), 400, field)
    assert api.lookup(1).json()["cost"] == 50


@pytest.mark.parametrize(
    "body, field",
    [
        ({"quantity": -1}, "quantity"),
        ({"quantity": 2.5}, "quantity"),
        ({"quantity": "5"}, "quantity"),
        ({"quantity": False}, "quantity"),
        ({"quantity": 2**70}, "quantity"),
        ({}, "quantity"),
    ],
)
def test_update_quantity_with_a_bad_body_is_400(api, body, field):
    assert_error(api.staff("item", 1, body), 400, field)


def test_update_with_nan_is_400(api):
    response = api.send(
        "PUT",
        "/update/price/1",
        data='{"price": NaN}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api.staff_token}"},
    )
    assert_error(response, 400)


def test_update_of_no_such_book_is_404(api):
    assert_error(api.set_price(99, 10), 404)
    assert_error(api.set_quantity(99, 10), 404)


# -- orders, health, unknown routes -----------------------------------------------------
def test_unknown_order_is_404(api):
    assert_error(api.order("no-such-order"), 404)


def test_health_is_200(api):
    assert api.get("/health").status_code == 200


def test_unknown_route_is_404_json(api):
    assert_error(api.get("/nothing/here"), 404)


def test_wrong_method_is_405_json(api):
    assert_error(api.send("DELETE", "/lookup/1"), 405)


# -- requests gunicorn refuses before the app sees them ---------------------------------


def raw_exchange(shared_cluster, request: bytes) -> tuple[str, dict, bytes]:
    """Send bytes as they are (no client library would send these) and read the answer."""
    node = shared_cluster.node("frontend-1")
    with socket.create_connection((node.host, node.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return status_line, headers, body


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /search/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /health HTTP/1.1\r\n" + b"X-N: 1\r\n" * 120 + b"\r\n", 431),
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    ],
    ids=["long-request-line", "huge-header", "too-many-headers", "bad-line", "bad-header"],
)
def test_unparseable_request_gets_a_json_error(shared_cluster, request_bytes, status):
    status_line, headers, body = raw_exchange(shared_cluster, request_bytes)
    assert status_line.split(" ")[1] == str(status), status_line
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["message"]


def test_node_still_serves_after_unparseable_requests(shared_cluster):
    raw_exchange(shared_cluster, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
    assert shared_cluster.api.lookup(1).status_code == 200
