"""Cache hits answered before Flask: the front-end's most frequent request, cheaply.

A plain `GET /lookup/<id>` (no Cache-Control header, a canonical decimal id)
whose book is cached and fresh is answered here, in the WSGI call, with the
bytes and headers the Flask view sends for it (`encoded_book` is shared, and a
test compares both paths). Everything else goes to Flask unchanged: another
method or path, any Cache-Control header, a miss, an odd id like `/lookup/01`.
The request hooks around this still time, count and log the request and give it
its X-Request-Id; `ROUTE_ENVIRON` tells them which route served it.

Why: Flask's request context, routing and response objects were most of the
cost of a hit, about as much as the whole bare Flask view the bench measures
against (docs/performance.md, "Speed per core").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from common.observe.requestlog import ROUTE_ENVIRON
from frontend.cache import BookCache

LOOKUP = "/lookup/<id:book_id>"  # the Flask rule of the same view (frontend.routes)
PATH = re.compile(r"/lookup/([1-9][0-9]{0,17})")  # below 10**18: a row id (< 2**63) for sure
PUBLIC_FIELDS = ("id", "title", "topic", "cost", "quantity")


def encoded_book(dumps: Callable[[dict], str], book: dict) -> bytes:
    """A book's public JSON as the view sends it (`dumps`: the app's JSON provider's)."""
    return _encoded(dumps, *(book[k] for k in PUBLIC_FIELDS))


@functools.lru_cache(maxsize=4096, typed=True)
def _encoded(dumps: Callable[[dict], str], *fields) -> bytes:
    """Encoded once per distinct value: the same book is asked for again and again
    between changes."""
    return (dumps(dict(zip(PUBLIC_FIELDS, fields, strict=True))) + "\n").encode()


class CachedLookups:
    """WSGI middleware in front of the Flask app (inside the request hooks)."""

    def __init__(self, wsgi_app, cache: BookCache, dumps: Callable[[dict], str]):
        self.wsgi_app = wsgi_app
        self.cache = cache
        self.dumps = dumps

    def __call__(self, environ: dict, start_response):
        body = self._hit(environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_ENVIRON] = LOOKUP
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    def _hit(self, environ: dict) -> bytes | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_CACHE_CONTROL"):
            return None
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        book = self.cache.get(int(match[1]))
        return None if book is None else encoded_book(self.dumps, book)
