"""Signed internal POSTs answered before Flask: the hops every buy makes.

A buy crosses four internal requests (a front-end's batch to an order server,
its batch to the catalog primary, and each one's push to its peer), and
Flask's request context, routing, hooks and response objects were about a
fifth of the CPU of each (py-spy, catalog-2 serving /sync). The routes given
here are served in the WSGI call instead, doing what the Flask route does in
its order: the cluster signature (`protect_internal`), the body parsed by the
same schema, tolerant of fields a newer node sends (`load_body` of an internal
call), then the route's own function, answered as JSON with status 200.

Errors are rendered as the app's handlers render them. Anything else goes to
Flask unchanged: another path or method, a body sent chunked or without a
Content-Length. The request hooks around this still time, count, log and
trace the request (`ROUTE_ENVIRON` names its rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import EnvironHeaders

from common.auth import AuthError, signed_target
from common.observe.requestlog import ROUTE_ENVIRON
from common.web import (
    INTERNAL_MAX_BODY,
    ApiError,
    api_error_response,
    as_api_error,
    parse_body,
    tolerant,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedRoute:
    """A POST route's body schema and what it does: (body, environ) -> its answer;
    `admit`: what its blueprint checks between the signature and the body."""

    shape: type[Schema]
    serve: Callable[[dict, dict], Any]
    admit: Callable[[], None] | None = None


class SignedBeforeFlask:
    """WSGI middleware in front of a node's Flask app (inside the request hooks)."""

    def __init__(self, wsgi_app, app, routes: dict[str, SignedRoute]):
        self.wsgi_app = wsgi_app
        self.app = app
        self.routes = routes  # path -> route, for POST

    def __call__(self, environ: dict, start_response):
        path = environ.get("PATH_INFO", "")
        route = self.routes.get(path) if environ.get("REQUEST_METHOD") == "POST" else None
        length = body_length(environ, INTERNAL_MAX_BODY) if route else None
        if route is None or length is None:
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_ENVIRON] = path
        raw = environ["wsgi.input"].read(length) if length else b""
        return respond(
            self.app, environ, start_response, lambda: self._serve(route, path, environ, raw)
        )

    def _serve(self, route: SignedRoute, path: str, environ: dict, raw: bytes):
        verifier = self.app.extensions["bazar.verifier"]
        target = signed_target(path, environ.get("QUERY_STRING", ""))
        verifier.verify("POST", target, EnvironHeaders(environ), raw)
        if route.admit is not None:
            route.admit()
        body = parse_body(tolerant(route.shape), raw, mimetype_of(environ), signed=True)
        return route.serve(body, environ)


def respond(app, environ: dict, start_response, work: Callable[[], Any], status="200 OK"):
    """`work()`'s answer as the app's JSON with `status`, or its error as the app's
    handlers render it: a refused signature, a body its schema refuses, an ApiError,
    a bug (500)."""
    try:
        answer = work()
    except (ApiError, AuthError, ValidationError) as e:
        return send_error(app, environ, start_response, as_api_error(e))
    except Exception:  # noqa: BLE001 - a bug: answered as the app's handler would
        log.exception(
            "unhandled error on %s %s (before Flask)",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
        return send_error(app, environ, start_response, ApiError(500, "internal error"))
    body = (app.json.dumps(answer) + "\n").encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def body_length(environ: dict, most: int) -> int | None:
    """The request body's Content-Length, if given plainly and at most `most`; None
    when Flask should read it (chunked, absent, malformed or too large: its answers)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if environ.get("HTTP_TRANSFER_ENCODING") or not (length.isascii() and length.isdigit()):
        return None
    return int(length) if int(length) <= most else None


def mimetype_of(environ: dict) -> str:
    """The Content-Type without parameters, lower case (as Flask's `request.mimetype`)."""
    return environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()


def send_error(app, environ: dict, start_response, e: ApiError):
    """The error as the app's handler of ApiError answers it."""
    with app.app_context():
        response = api_error_response(e)
    return response(environ, start_response)
