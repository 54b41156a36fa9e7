"""Customers' searches, a page at a time (docs/scale.md §1-§3): by topic and by words.

A page is read from a catalog replica under its read lease and cached by
(route, query, limit, after) under the lookups' lease rules
(`frontend.cache`): fresh only under the lease it was stored under, and
dropped on every front-end before a write that changes what a search lists
is acknowledged. `Link: rel="next"` leads on while more remain.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request

from common.cluster import Router
from common.openapi import doc
from common.pages import CURSOR_SCHEMA, PAGE_LIMIT, as_page, link_next, read_cursor
from common.web import ApiError
from common.words import Q_SCHEMA, words
from frontend import freshness
from frontend.cache import Answer, BookCache
from frontend.freshness import Freshness
from frontend.schemas import SearchHitSchema, WordHitSchema
from frontend.services import _serve, call, relay

searches = Blueprint("searches", __name__)
PAGE_QUERY = {"limit": PAGE_LIMIT.schema, "after": CURSOR_SCHEMA}
WORDS_QUERY = {"q": {**Q_SCHEMA, "required": True}, **PAGE_QUERY}
CACHE_CONTROL = {"Cache-Control": freshness.HEADER_SCHEMA}


def _deps() -> tuple[Router, BookCache]:
    ext = current_app.extensions
    return ext["frontend.router"], ext["frontend.cache"]


@doc(
    responses={200: SearchHitSchema(many=True)},
    errors=(400, 404, 503),
    headers=CACHE_CONTROL,
    query=PAGE_QUERY,
)
@searches.get("/search/<path:topic>")
def search_topic(topic: str):
    """Books under a topic, by id, a page at a time (Link rel=next); 404 only when no
    book is under it (Cache-Control: no-cache, max-stale[=N]; Age)."""
    limit, after = PAGE_LIMIT.read(), read_cursor()
    key = ("topic", _ascii_lower(topic), limit, after)
    path = f"/search/{quote(topic, safe='')}"
    answer = fetch_page(*_deps(), key, path, {"limit": limit, "after": after}, _wanted())
    if not answer.value["entries"] and after is None:
        raise ApiError(404, f"no book under topic {topic!r}")
    return _page(answer)


@doc(
    responses={200: WordHitSchema(many=True)},
    errors=(400, 422, 503),
    headers=CACHE_CONTROL,
    query=WORDS_QUERY,
)
@searches.get("/search")
def search_words():
    """Books whose title or topic hold every word of `q` (each a word's start; a word of
    one character: that word), best first, a title hit before a topic hit; a page at a
    time (Link rel=next). 422: it matches too many titles to rank in time."""
    q = request.args.get("q")
    words(q)  # a bad q is a 400 here: no catalog is asked
    limit, after = PAGE_LIMIT.read(), read_cursor()
    params = {"q": q, "limit": limit, "after": after}
    return _page(fetch_page(*_deps(), ("words", q, limit, after), "/search", params, _wanted()))


def _wanted() -> Freshness:
    return freshness.parse(request.headers.get("Cache-Control"))


def _page(answer: Answer):
    """The page's rows as the body, its next page as a Link, its age if stale."""
    response = jsonify(answer.value["entries"])
    if answer.age is not None:
        response.headers["Age"] = str(answer.age)
    kept = {k: v for k, v in request.args.items() if k != "after"}  # every other one
    return link_next(response, kept, answer.value["next"])


def fetch_page(
    router: Router, cache: BookCache, key: tuple, path: str, params: dict, want: Freshness
) -> Answer:
    """A page: cached while fresh, else read from a replica (`frontend.services._serve`:
    `no-cache` always reads one, `max-stale` may take the last known page)."""

    def read() -> dict:
        ticket = cache.ticket()
        sent = {k: v for k, v in params.items() if v is not None}
        page = as_page(relay(call(router, "read", "catalog", "GET", path, params=sent)))
        cache.put_search(key, page, ticket)
        return page

    return _serve(
        cache,
        want,
        None if want.no_cache else cache.get_search(key),
        ("search", *key),
        read,
        lambda: cache.stale_search(key, want.max_stale),
    )


def _ascii_lower(text: str) -> str:
    """As the catalog compares topics (SQLite's lower(): ASCII letters only)."""
    return "".join(c.lower() if c.isascii() else c for c in text)
