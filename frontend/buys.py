"""Buys answered before Flask: a customer's `POST|PUT /buy/<id>`, cheaply.

A buy of a canonical decimal id whose body has a Content-Length within
`max_body` is served here, in the WSGI call: its body is checked by the
view's own schema and parser (`parse_body`), its Idempotency-Key by the
view's own rule (`checked_key`), it is placed through the same batched order
calls (`services.buy`) and answered with the view's body (`bought`), or with
the error the app's handlers render. Anything else goes to Flask unchanged:
another path, an odd id like `/buy/01`, a body sent chunked or too large (the
view's 413). The request hooks around this still time, count, log and trace
it (`ROUTE_ENVIRON` names the view's rule).

Why: Flask's request context, routing and response objects were a fifth of
the front-end's CPU per buy (py-spy), the front-end is the busiest node of a
buy, and every buy passes it.

A buy that fails here in an unexpected way is answered 500 as the app's
handler would, never handed to the view: the order may have been placed, and
a buy without an Idempotency-Key would be placed again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from marshmallow import ValidationError

from common.observe.requestlog import ROUTE_ENVIRON
from common.web import ApiError, parse_body, public_schema, validation_message
from frontend import services
from frontend.hits import send_error
from frontend.routes import BOOK_ID, bought, checked_key
from frontend.schemas import BuyBodySchema

BUY = f"/buy/{BOOK_ID}"  # the Flask rule of the same view (frontend.routes)
PATH = re.compile(r"/buy/([1-9][0-9]{0,17})")  # below 10**18: a row id (< 2**63) for sure
METHODS = ("POST", "PUT")
log = logging.getLogger(__name__)


class BuysBeforeFlask:
    """WSGI middleware in front of the Flask app (inside the request hooks)."""

    def __init__(self, wsgi_app, app, dumps: Callable[[dict], str], max_body: int):
        self.wsgi_app = wsgi_app
        self.app = app
        self.dumps = dumps
        self.max_body = max_body

    def __call__(self, environ: dict, start_response):
        book_id, length = self._plain_buy(environ)
        if book_id is None:
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_ENVIRON] = BUY
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            order = self._buy(environ, book_id, raw)
        except ValidationError as e:
            invalid = ApiError(400, validation_message(e.messages))
            return self._error(environ, start_response, invalid)
        except ApiError as e:
            return self._error(environ, start_response, e)
        except Exception:  # noqa: BLE001 - a bug: answered as the app's handler would
            log.exception("buy of book %d before Flask failed", book_id)
            return self._error(environ, start_response, ApiError(500, "internal error"))
        body = (self.dumps(bought(order)) + "\n").encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("201 CREATED", headers)
        return [body]

    def _buy(self, environ: dict, book_id: int, raw: bytes) -> dict:
        """The view's checks, in its order, then the buy itself."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        quantity = parse_body(public_schema(BuyBodySchema), raw, mimetype, optional=True)
        key = checked_key(environ.get("HTTP_IDEMPOTENCY_KEY"))
        ext = self.app.extensions
        return services.buy(
            ext["frontend.orders"], ext["frontend.cache"], book_id, quantity["quantity"], key
        )

    def _plain_buy(self, environ: dict) -> tuple[int | None, int]:
        """The id of a buy answered here, and its body's length."""
        if environ.get("REQUEST_METHOD") not in METHODS:
            return None, 0
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None, 0
        length = environ.get("CONTENT_LENGTH") or "0"
        if not (length.isascii() and length.isdigit()) or int(length) > self.max_body:
            return None, 0  # the view's answer: 400 or 413
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None, 0  # chunked: Flask reads it
        return int(match[1]), int(length)

    def _error(self, environ: dict, start_response, e: ApiError):
        return send_error(self.app, environ, start_response, e)
