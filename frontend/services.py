"""What the front-end does for a customer or a staff member, in plain functions.

Each takes the router (replica choice and failover) and the cache; routes
only parse and serialize. A catalog or order answer that is an error for the
client is relayed as such; no reachable replica is a 503.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import requests

from common.cluster import NoReplica, Router
from common.web import ApiError
from frontend.cache import BookCache

PUBLIC_FIELDS = ("id", "title", "topic", "cost", "quantity")


def public(book: dict) -> dict:
    return {k: book[k] for k in PUBLIC_FIELDS}


def _relay(response: requests.Response, ok: tuple[int, ...] = (200,)) -> dict | list:
    if response.status_code in ok:
        return response.json()
    try:
        message = response.json().get("message", "")
    except (ValueError, AttributeError):
        message = ""
    if 400 <= response.status_code < 500:
        raise ApiError(response.status_code, message or "rejected")
    raise ApiError(503, f"backend error: {message or response.status_code}")


def _call(router: Router, kind: str, service: str, method: str, path: str, **kw):
    try:
        return getattr(router, kind)(service, method, path, **kw)
    except NoReplica as e:
        raise ApiError(503, str(e)) from None


def search(router: Router, cache: BookCache, topic: str) -> list[dict]:
    hits = cache.get_search(topic)
    if hits is None:
        hits = cache.flights.run(
            ("search", topic.lower()), lambda: _fetch_search(router, cache, topic)
        )
    if not hits:
        raise ApiError(404, f"no book under topic {topic!r}")
    return hits


def _fetch_search(router: Router, cache: BookCache, topic: str) -> list[dict]:
    ticket = cache.ticket()
    hits = _relay(_call(router, "read", "catalog", "GET", f"/search/{quote(topic, safe='')}"))
    cache.put_search(topic, hits, ticket)
    return hits


def lookup(router: Router, cache: BookCache, book_id: int, fresh: bool = False) -> dict:
    """A book from the cache, or from a catalog replica (always, when `fresh`)."""
    book = None if fresh else cache.get(book_id)
    if book is None:
        book = cache.flights.run(("book", book_id), lambda: _fetch_book(router, cache, book_id))
    return public(book)


def _fetch_book(router: Router, cache: BookCache, book_id: int) -> dict:
    ticket = cache.ticket()
    book = _relay(_call(router, "read", "catalog", "GET", f"/lookup/{book_id}"))
    cache.put(book, ticket)
    return book


def buy(router: Router, cache: BookCache, book_id: int, quantity: int, key: str | None) -> dict:
    """Buy through any order server; a retry elsewhere reuses the key, so it is safe."""
    key = key or f"fe-{uuid.uuid4().hex}"
    try:
        response = _call(
            router,
            "read",
            "order",
            "POST",
            f"/buy/{book_id}",
            json={"quantity": quantity, "idempotency_key": key},
        )
    finally:
        cache.invalidate(book_id)
    return _relay(response, ok=(201,))


def update(router: Router, cache: BookCache, book_id: int, change: dict) -> dict:
    """A staff change at the catalog primary; our own cache drops the book at once."""
    try:
        response = _call(router, "write", "catalog", "PUT", f"/update/{book_id}", json=change)
    finally:
        cache.invalidate(book_id)
    return public(_relay(response))


def order(router: Router, order_id: str) -> dict:
    return _relay(_call(router, "read", "order", "GET", f"/orders/{quote(order_id, safe='')}"))
