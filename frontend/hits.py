"""Lookups answered before Flask: the front-end's most frequent request, cheaply.

A plain `GET /lookup/<id>` (a canonical decimal id) with no Cache-Control
header whose book is cached and fresh is answered here, in the WSGI call, with
the bytes and headers the Flask view sends for it (`encoded_book` is shared,
and a test compares both paths). A miss, and a lookup with `Cache-Control:
no-cache`, is read here from a catalog the way the view reads it
(`services.read_book`), its error rendered as the view's error handler renders it.
Everything else goes to Flask unchanged: another method or path, any other
Cache-Control header (`max-stale`), an odd id like `/lookup/01`. The request
hooks around this still time, count and log the request and give it its
X-Request-Id; `ROUTE_ENVIRON` tells them which route served it.

Why: Flask's request context, routing and response objects were most of the
cost of a hit, about as much as the whole bare Flask view the bench measures
against, and a fifth of the front-end's CPU for an uncached lookup
(docs/performance.md, "Speed per core").
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from common.observe.requestlog import ROUTE_ENVIRON
from common.replication.group_call import GroupCall
from common.web import ApiError
from common.webkit.early import send_error
from frontend import services
from frontend.cache import Answer, BookCache
from frontend.freshness import ANY_FRESH, Freshness
from frontend.services import PUBLIC_FIELDS

LOOKUP = "/lookup/<id:book_id>"  # the Flask rule of the same view (frontend.routes)
PATH = re.compile(r"/lookup/([1-9][0-9]{0,17})")  # below 10**18: a row id (< 2**63) for sure
NO_CACHE = Freshness(no_cache=True)
log = logging.getLogger(__name__)


def encoded_book(dumps: Callable[[dict], str], book: dict) -> bytes:
    """A book's public JSON as the view sends it (`dumps`: the app's JSON provider's)."""
    return _encoded(dumps, *(book[k] for k in PUBLIC_FIELDS))


@functools.lru_cache(maxsize=4096, typed=True)
def _encoded(dumps: Callable[[dict], str], *fields) -> bytes:
    """Encoded once per distinct value: the same book is asked for again and again
    between changes."""
    return (dumps(dict(zip(PUBLIC_FIELDS, fields, strict=True))) + "\n").encode()


class LookupsBeforeFlask:
    """WSGI middleware in front of the Flask app (inside the request hooks). With `app`
    (the front-end: its batched catalog reads, `frontend.reads`, and its error
    responses), misses and `no-cache` too; without it, hits only."""

    def __init__(self, wsgi_app, cache: BookCache, dumps: Callable[[dict], str], app=None):
        self.wsgi_app = wsgi_app
        self.cache = cache
        self.dumps = dumps
        self.app = app

    def __call__(self, environ: dict, start_response):
        book_id, want = self._plain_lookup(environ)
        if book_id is None:
            return self.wsgi_app(environ, start_response)
        book = None if want.no_cache else self.cache.get(book_id)
        if book is not None:
            return self._send(environ, start_response, Answer(book))
        if self.app is None:
            return self.wsgi_app(environ, start_response)
        reads: GroupCall = self.app.extensions["frontend.reads"]
        try:
            answer = services.read_book(reads, self.cache, book_id, want)  # missed above
        except ApiError as e:
            return self._error(environ, start_response, e)
        except Exception:  # noqa: BLE001 - a bug: the view tries again and answers JSON
            log.exception("lookup of book %d before Flask failed; the view tries", book_id)
            return self.wsgi_app(environ, start_response)
        return self._send(environ, start_response, answer)

    def _error(self, environ: dict, start_response, e: ApiError):
        environ[ROUTE_ENVIRON] = LOOKUP
        return send_error(self.app, environ, start_response, e)

    def _plain_lookup(self, environ: dict) -> tuple[int | None, Freshness]:
        """The id of a GET /lookup/<id> answered here, and what the client wants of it."""
        if environ.get("REQUEST_METHOD") != "GET":
            return None, NO_CACHE
        control = environ.get("HTTP_CACHE_CONTROL")
        if control and control.strip().lower() != "no-cache":
            return None, NO_CACHE  # max-stale and the rest: the view's rules
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None, NO_CACHE
        return int(match[1]), NO_CACHE if control else ANY_FRESH

    def _send(self, environ: dict, start_response, answer: Answer):
        environ[ROUTE_ENVIRON] = LOOKUP
        body = encoded_book(self.dumps, answer.value)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if answer.age is not None:
            headers.append(("Age", str(answer.age)))
        start_response("200 OK", headers)
        return [body]
