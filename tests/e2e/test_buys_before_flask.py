"""frontend/buys.py answers `POST /buy/<id>` and `POST /orders` before Flask; the same
request with its body sent chunked (which it leaves alone) reaches the Flask view, and so
does `/buy/0<id>`. Both must answer alike, good or bad."""

from __future__ import annotations

import json
import time

import pytest

from common.observe.requestlog import log_path
from tests.support.cluster import wait_until

JSON = {"Content-Type": "application/json"}
CASES = {
    "no body": (b"", {}),
    "two": (b'{"quantity": 2}', JSON),
    "not json": (b'{"quantity": ', JSON),
    "duplicate key": (b'{"quantity": 1, "quantity": 2}', JSON),
    "not an object": (b"[1]", JSON),
    "zero": (b'{"quantity": 0}', JSON),
    "a string": (b'{"quantity": "1"}', JSON),
    "unknown field": (b'{"quantity": 1, "gift": true}', JSON),
    "text/plain": (b'{"quantity": 1}', {"Content-Type": "text/plain"}),
    "bad key": (b"", {"Idempotency-Key": "k" * 201}),
    "charset": (b'{"quantity": 1}', {"Content-Type": "application/json; charset=utf-8"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_buy_before_flask_answers_as_the_view(shared_cluster, case):
    body, headers = CASES[case]
    fast = shared_cluster.api.send("POST", "/buy/4", data=body, headers=headers)
    viewed = shared_cluster.api.send("POST", "/buy/4", data=iter([body]), headers=headers)
    assert fast.status_code == viewed.status_code, (fast.text, viewed.text)
    assert fast.headers["Content-Type"] == viewed.headers["Content-Type"] == "application/json"
    if fast.status_code == 201:
        mine, theirs = fast.json(), viewed.json()
        assert mine.pop("order_id") != theirs.pop("order_id")
        assert mine == theirs
    else:
        assert fast.status_code in (400, 415), fast.text
        assert fast.json() == viewed.json()


ORDER_CASES = {
    "two books": b'{"items": [{"book_id": 4, "quantity": 1}, {"book_id": 5, "quantity": 2}]}',
    "no items": b'{"items": []}',
    "no body": b"",
    "unknown book": b'{"items": [{"book_id": 1000000000000, "quantity": 1}]}',
    "a line twice": b'{"items": [{"book_id": 4, "quantity": 1}, {"book_id": 4, "quantity": 1}]}',
    "not json": b'{"items": [',
}


@pytest.mark.parametrize("case", sorted(ORDER_CASES))
def test_an_order_before_flask_answers_as_the_view(shared_cluster, case):
    body = ORDER_CASES[case]
    fast = shared_cluster.api.send("POST", "/orders", data=body, headers=JSON)
    viewed = shared_cluster.api.send("POST", "/orders", data=iter([body]), headers=JSON)
    assert fast.status_code == viewed.status_code, (fast.text, viewed.text)
    mine, theirs = fast.json(), viewed.json()
    if fast.status_code == 201:
        assert mine.pop("order_id") != theirs.pop("order_id")
        assert mine.pop("created_at") and theirs.pop("created_at")
    else:
        assert fast.status_code in (400, 404), fast.text
    assert mine == theirs


def test_an_unknown_book_is_the_same_404_both_ways(shared_cluster):
    fast = shared_cluster.api.send("POST", f"/buy/{10**12}")
    viewed = shared_cluster.api.send("POST", f"/buy/0{10**12}")
    assert fast.status_code == viewed.status_code == 404
    assert fast.json() == viewed.json()


def test_a_key_used_before_flask_replays_through_the_view(shared_cluster):
    """Same key, same order: the two paths place orders through the same calls."""
    key = {"Idempotency-Key": f"both-ways-{time.time_ns()}"}
    first = shared_cluster.api.send("POST", "/buy/5", headers=key)
    again = shared_cluster.api.send("POST", "/buy/05", headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


def test_a_buy_before_flask_is_logged_under_the_views_route_with_its_order_server(
    shared_cluster,
):
    c = shared_cluster
    rid = f"buy-{time.time_ns()}"
    assert c.api.send("POST", "/buy/6", headers={"X-Request-Id": rid}).status_code == 201

    def logged():
        path = log_path(c.cluster.data_dir, "frontend-1")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return next((r for r in lines if r["request_id"] == rid), None)

    record = wait_until(logged, timeout=5, what="the buy's log line")
    assert (record["route"], record["status"], record["path"]) == ("/buy/{book_id}", 201, "/buy/6")
    assert any(b.startswith("order-") and b.endswith(" 201") for b in record["backends"])
