"""Buys and orders answered before Flask: `POST|PUT /buy/<id>` and `POST /orders`.

A buy of a canonical decimal id, or an order, whose body has a Content-Length
within `max_body` is served here, in the WSGI call: its body is checked by
the view's own schema and parser (`parse_body`), its Idempotency-Key by the
view's own rule (`checked_key`), it is placed through the same batched order
calls (`services.buy`, `services.place`) and answered with the view's body,
or with the error the app's handlers render. Anything else goes to Flask
unchanged: another path, an odd id like `/buy/01`, a body sent chunked or
too large (the view's 413). The request hooks around this still time, count,
log and trace it (`ROUTE_ENVIRON` names the view's rule).

Why: Flask's request context, routing and response objects were a fifth of
the front-end's CPU per buy (py-spy), the front-end is the busiest node of a
buy, and every buy passes it.

A buy that fails here in an unexpected way is answered 500 as the app's
handler would, never handed to the view: the order may have been placed, and
a buy without an Idempotency-Key would be placed again.
"""

from __future__ import annotations

import re

from common.observe.requestlog import ROUTE_ENVIRON
from common.web import parse_body, public_schema
from common.webkit.early import body_length, mimetype_of, respond
from frontend import services
from frontend.routes import BOOK_ID, bought, checked_key
from frontend.schemas import BuyBodySchema, OrderBodySchema

BUY = f"/buy/{BOOK_ID}"  # the Flask rules of the same views (frontend.routes)
ORDERS = "/orders"
PATH = re.compile(r"/buy/([1-9][0-9]{0,17})")  # below 10**18: a row id (< 2**63) for sure


class OrdersBeforeFlask:
    """WSGI middleware in front of the Flask app (inside the request hooks)."""

    def __init__(self, wsgi_app, app, max_body: int):
        self.wsgi_app = wsgi_app
        self.app = app
        self.max_body = max_body

    def __call__(self, environ: dict, start_response):
        route, book_id, length = self._plain(environ)
        if route is None:
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_ENVIRON] = route
        raw = environ["wsgi.input"].read(length) if length else b""
        if book_id is None:
            work = lambda: self._order(environ, raw)  # noqa: E731
        else:
            work = lambda: self._buy(environ, book_id, raw)  # noqa: E731
        # Never handed to the view after a failure: the order may have been placed.
        return respond(self.app, environ, start_response, work, "201 CREATED")

    def _buy(self, environ: dict, book_id: int, raw: bytes) -> dict:
        """The buy view's checks, in its order, then the buy itself."""
        quantity = _body(BuyBodySchema, environ, raw, optional=True)["quantity"]
        key = checked_key(environ.get("HTTP_IDEMPOTENCY_KEY"))
        order = services.buy(*self._deps(), book_id, quantity, key)
        return bought(order)

    def _order(self, environ: dict, raw: bytes) -> dict:
        """The order view's checks, in its order, then the order itself."""
        lines = _body(OrderBodySchema, environ, raw)["items"]
        return services.place(
            *self._deps(), lines, checked_key(environ.get("HTTP_IDEMPOTENCY_KEY"))
        )

    def _deps(self):
        return self.app.extensions["frontend.orders"], self.app.extensions["frontend.cache"]

    def _plain(self, environ: dict) -> tuple[str | None, int | None, int]:
        """(route, book id of a buy, body length) of a request answered here."""
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        if method == "POST" and path == ORDERS:
            route, book_id = ORDERS, None
        elif method in ("POST", "PUT") and (match := PATH.fullmatch(path)):
            route, book_id = BUY, int(match[1])
        else:
            return None, None, 0
        length = body_length(environ, self.max_body)
        if length is None:
            return None, None, 0  # chunked, no length, or the view's 413
        return route, book_id, length


def _body(shape, environ: dict, raw: bytes, optional: bool = False) -> dict:
    return parse_body(public_schema(shape), raw, mimetype_of(environ), optional)
