"""frontend/hits.py: which lookups are answered before Flask, and with what."""

from __future__ import annotations

import json

import pytest

from common.lease.clock import FakeClock
from common.lease.reads import ReadLease
from common.observe.requestlog import ROUTE_ENVIRON
from frontend.cache import BookCache
from frontend.hits import LOOKUP, LookupsBeforeFlask

BOOK = {"id": 7, "title": "T", "topic": "t", "cost": 9.5, "quantity": 3, "version": 2}


def flask_stand_in(environ, start_response):
    """Where everything not answered before Flask goes: says so."""
    start_response("299 Passed On", [])
    return [b"flask"]


@pytest.fixture
def lookups():
    cache = BookCache(size=10, ttl=60.0, lease=ReadLease(FakeClock(), 0.5))
    cache.grant(1, {**cache.lease.stamp(), "length": 5.0})
    assert cache.put(dict(BOOK), cache.ticket())
    return LookupsBeforeFlask(flask_stand_in, cache, lambda obj: json.dumps(obj))


def call(app, path="/lookup/7", method="GET", **headers):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, **headers}
    seen = {}
    body = b"".join(app(environ, lambda status, hdrs: seen.update(status=status, headers=hdrs)))
    return seen["status"], dict(seen["headers"]), body, environ


def test_a_fresh_cached_book_is_answered_with_its_public_json_and_the_route_named(lookups):
    status, headers, body, environ = call(lookups)
    assert status == "200 OK"
    assert json.loads(body) == {k: BOOK[k] for k in ("id", "title", "topic", "cost", "quantity")}
    assert body.endswith(b"\n")  # as Flask's jsonify writes it
    assert headers == {"Content-Type": "application/json", "Content-Length": str(len(body))}
    assert environ[ROUTE_ENVIRON] == LOOKUP


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/lookup/8", "GET", {}),  # not cached
        ("/lookup/7", "HEAD", {}),
        ("/lookup/7", "GET", {"HTTP_CACHE_CONTROL": "max-stale=5"}),
        ("/lookup/07", "GET", {}),  # Flask's converter decides what that means
        ("/lookup/7/", "GET", {}),
        ("/lookup/0", "GET", {}),
        ("/lookup/" + "9" * 19, "GET", {}),  # past 2^63 - 1: Flask's 404
        ("/search/7", "GET", {}),
    ],
)
def test_anything_else_goes_to_flask(lookups, path, method, headers):
    assert call(lookups, path, method, **headers)[0] == "299 Passed On"


def test_a_book_whose_lease_lapsed_goes_to_flask(lookups):
    lookups.cache.clock.advance(10.0)
    assert call(lookups)[0] == "299 Passed On"
