"""The front-end cache never serves a value older than the last acknowledged write (§7 rule 6)."""

from __future__ import annotations

import json
import threading
import time

from common.observe.requestlog import log_path
from tests.support.cluster import wait_until
from tests.support.history import History, read_problems
from tests.support.threads import Workers


def test_lookup_after_each_update_sees_it(shared_cluster):
    api = shared_cluster.api
    for i in range(20):
        assert api.lookup(1).status_code == 200  # fill the cache
        assert api.set_price(1, 10.0 + i).status_code == 200
        assert api.lookup(1).json()["cost"] == 10.0 + i
    api.set_price(1, 50)


def test_lookup_after_a_buy_sees_the_new_stock(shared_cluster):
    api = shared_cluster.api
    before = api.lookup(2).json()["quantity"]
    assert api.buy(2).status_code == 201
    assert api.lookup(2).json()["quantity"] == before - 1


def test_write_not_made_through_the_front_end_still_invalidates_it(shared_cluster):
    """The catalog pushes an invalidation; the 300 s TTL is not what refreshes it."""
    c = shared_cluster
    assert c.api.lookup(6).json()["cost"] == 45
    primary = wait_until(
        lambda: next((n for n in c.names("catalog") if c.role(n) == "primary"), None),
        timeout=10,
        what="a catalog primary",
    )
    response = c.call(primary, "PUT", "/update/6", json={"price": 46.0})
    assert response.status_code == 200
    wait_until(lambda: c.api.lookup(6).json()["cost"] == 46.0, timeout=3, what="invalidation")
    c.api.set_price(6, 45)


def test_concurrent_readers_never_go_back_in_time(shared_cluster):
    """Reads that start after a write is acknowledged return that write or a newer one,
    only prices that were written, and never go back (the checks of tests/support/history.py).
    A reader thread that dies fails the test."""
    api = shared_cluster.api
    history = History(initial={7: api.lookup(7).json()["cost"]})
    done, readers = threading.Event(), Workers()

    def reader():
        while not done.is_set():
            started = time.monotonic()
            history.read(7, api.lookup(7).json()["cost"], started, "frontend-1")

    for _ in range(4):
        readers.spawn(reader)
    try:
        for i in range(1, 41):
            started = time.monotonic()
            assert api.set_price(7, 100.0 + i).status_code == 200
            history.wrote(7, 100.0 + i, started, acked=True)
    finally:
        done.set()
    readers.join_or_fail()
    assert len(history.reads) > 40
    assert read_problems(history) == []
    api.set_price(7, 20)


def test_a_hit_answered_before_flask_is_what_the_flask_view_answers(shared_cluster):
    """frontend/hits.py answers a plain lookup of a cached book; with a Cache-Control
    header the Flask view serves the same hit. Same bytes, same headers, and the
    request is logged under the view's route with the id it was answered with."""
    c = shared_cluster
    wait_until(lambda: figure(c, "bazar_cache_lease_valid") == 1, timeout=10, what="a lease")
    assert c.api.lookup(3).status_code == 200  # cached now
    hits = figure(c, "bazar_cache_hits_total")
    plain = c.api.get("/lookup/3", headers={"X-Request-Id": f"hit-{time.time_ns()}"})
    routed = c.api.get("/lookup/3", headers={"Cache-Control": "max-stale=1"})
    assert figure(c, "bazar_cache_hits_total") == hits + 2  # both served from the cache
    assert plain.status_code == routed.status_code == 200
    assert plain.content == routed.content
    assert headers_but_date_and_id(plain) == headers_but_date_and_id(routed)
    assert plain.headers["X-Request-Id"] != routed.headers["X-Request-Id"]
    rid = plain.headers["X-Request-Id"]
    assert rid.startswith("hit-")

    def logged():
        path = log_path(c.cluster.data_dir, "frontend-1")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return next((r for r in lines if r["request_id"] == rid), None)

    record = wait_until(logged, timeout=5, what="the hit's log line")
    assert (record["route"], record["status"], record["path"]) == (
        "/lookup/{book_id}",
        200,
        "/lookup/3",
    )


def test_a_read_before_flask_is_what_the_flask_view_reads(shared_cluster):
    """A no-cache lookup and an unknown book are read before Flask (frontend/hits.py);
    with another Cache-Control header the view reads them. Same bytes, same headers."""
    c = shared_cluster
    for path in ("/lookup/3", f"/lookup/{10**12}"):
        fast = c.api.get(path, headers={"Cache-Control": "no-cache"})
        viewed = c.api.get(path, headers={"Cache-Control": "no-cache, max-stale=0"})
        assert (fast.status_code, viewed.status_code) in ((200, 200), (404, 404)), fast.text
        assert fast.json() == viewed.json()
        assert headers_but_date_and_id(fast) == headers_but_date_and_id(viewed)


def headers_but_date_and_id(response) -> dict:
    return {
        k.lower(): v
        for k, v in response.headers.items()
        if k.lower() not in ("date", "x-request-id")
    }


def figure(cluster, metric: str) -> float:
    for line in cluster.api.get("/metrics").text.splitlines():
        if line.startswith(metric + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {metric} on /metrics")
