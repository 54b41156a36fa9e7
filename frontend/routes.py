"""Public REST API of the front-end (design §4), plus the signed /lease and /invalidate."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from common.fields import KEY_RULE, SQLITE_MAX_INT
from common.identity.roles import CLERK, MANAGER
from common.openapi import doc
from common.shapes import OrderSchema
from common.web import ApiError, QueryInt, load_body, protect_internal
from frontend import freshness, services
from frontend.cache import Answer
from frontend.hits import LOOKUP, encoded_book
from frontend.identity import actor, staff_role
from frontend.schemas import (
    BookSchema,
    BuyBodySchema,
    BuyResultSchema,
    InvalidatedSchema,
    LeaseAnswerSchema,
    LeaseSchema,
    OrderBodySchema,
    PriceSchema,
    QuantitySchema,
)

public = Blueprint("public", __name__)
internal = Blueprint("internal", __name__)
protect_internal(internal)
BOOK_ID = "<id:book_id>"
KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": KEY_RULE.regex.pattern}
CACHE_CONTROL = {"Cache-Control": freshness.HEADER_SCHEMA}
EPOCH = QueryInt("epoch", 0, 1, SQLITE_MAX_INT)  # 0: not given
VERSION = QueryInt("version", 0, 1, SQLITE_MAX_INT)


def _deps():
    ext = current_app.extensions
    return ext["frontend.router"], ext["frontend.cache"]


def _order_deps():
    ext = current_app.extensions
    return ext["frontend.orders"], ext["frontend.cache"]


def _answer(answer: Answer, encoded: bytes | None = None):
    """JSON of an answer; a stale one says how old it is (RFC 9111 Age)."""
    if encoded is None:
        response = jsonify(answer.value)
    else:
        response = current_app.response_class(encoded, mimetype="application/json")
    if answer.age is not None:
        response.headers["Age"] = str(answer.age)
    return response


@doc(responses={200: BookSchema}, errors=(404, 503), headers=CACHE_CONTROL)
@public.get(LOOKUP)  # a hit, a miss, no-cache: answered before Flask (frontend/hits.py)
def lookup(book_id: int):
    """One book: id, title, topic, cost, quantity (Cache-Control: no-cache, max-stale[=N]; Age).

    A cached copy is served only while the catalog primary's read lease holds;
    otherwise a catalog replica is read. `no-cache` always reads a replica.
    `max-stale[=N]`: if no replica can answer (503), the last known value,
    stale by at most N seconds (no N: any), with `Age` in whole seconds.
    """
    want = freshness.parse(request.headers.get("Cache-Control"))
    ext = current_app.extensions
    answer = services.lookup(ext["frontend.reads"], ext["frontend.cache"], book_id, want)
    return _answer(answer, encoded_book(current_app.json.dumps, answer.value))


@doc(
    body=BuyBodySchema,
    body_required=False,
    responses={201: BuyResultSchema},
    errors=(404, 410, 422, 503),
    headers={"Idempotency-Key": KEY_SCHEMA},
)
@public.route(f"/buy/{BOOK_ID}", methods=["PUT", "POST"])
def buy(book_id: int):
    """Buy a book (optional body {"quantity": n}); Idempotency-Key makes retries safe."""
    quantity = load_body(BuyBodySchema, optional=True)["quantity"]
    order = services.buy(*_order_deps(), book_id, quantity, idempotency_key())
    return jsonify(bought(order)), 201


def bought(order: dict) -> dict:
    """What a buy answers of its order."""
    return {k: order[k] for k in ("order_id", "book_id", "quantity", "total")}


@doc(
    body=OrderBodySchema,
    responses={201: OrderSchema},
    errors=(404, 410, 422, 503),
    headers={"Idempotency-Key": KEY_SCHEMA},
)
@public.post("/orders")
def place_order():
    """Order 1-50 books at once, all or nothing; 404/410 name the books (`books`)."""
    lines = load_body(OrderBodySchema)["items"]
    return jsonify(services.place(*_order_deps(), lines, idempotency_key())), 201


def idempotency_key() -> str | None:
    """The client's Idempotency-Key header, if any (400 if malformed)."""
    return checked_key(request.headers.get("Idempotency-Key"))


def checked_key(key: str | None) -> str | None:
    """An Idempotency-Key header's value as is, if absent or well formed; else a 400."""
    if key is not None:
        try:
            KEY_RULE(key)
        except ValidationError:
            raise ApiError(
                400, "Idempotency-Key: must be 1-200 printable ASCII characters"
            ) from None
    return key


@doc(body=PriceSchema, responses={200: BookSchema}, errors=(404, 503), auth="staff")
@public.put(f"/update/price/{BOOK_ID}")
@staff_role(MANAGER)
def update_price(book_id: int):
    """Manager: set a book's price."""
    change = {**load_body(PriceSchema), "by": actor()}
    return jsonify(services.update(*_deps(), book_id, change))


@doc(body=QuantitySchema, responses={200: BookSchema}, errors=(404, 503), auth="staff")
@public.put(f"/update/item/{BOOK_ID}")
@staff_role(CLERK)
def update_item(book_id: int):
    """Staff: set a book's quantity in stock."""
    change = {**load_body(QuantitySchema), "by": actor()}
    return jsonify(services.update(*_deps(), book_id, change))


@doc(responses={200: OrderSchema}, errors=(404, 503))
@public.get("/orders/<order_id>")
def get_order(order_id: str):
    """One order by id: its lines (`unit_price`), exact `total` and status."""
    if len(order_id) > 200:
        raise ApiError(404, "no such order")
    router, _ = _deps()
    return jsonify(services.order(router, order_id))


def _lease_deps():
    ext = current_app.extensions
    cache = ext["frontend.cache"]
    if cache.lease.retired:
        # Handing over to a new process on the same port (`bazar rolling-restart`): a
        # message for this front-end may reach either process, so this one takes none;
        # the primary treats the 503 as a miss and waits out the read lease.
        raise ApiError(503, "this front-end process is handing over to its successor")
    return cache, ext["frontend.fence"]


@doc(body=LeaseSchema, responses={200: LeaseAnswerSchema}, errors=(409,), auth="cluster")
@internal.post("/lease")
def lease():
    """The catalog primary's read lease and invalidations; 409 if its epoch is older."""
    body = load_body(LeaseSchema)
    cache, fence = _lease_deps()
    newest = services.accept_lease(cache, fence, **body)
    return jsonify({"epoch": newest, "stamp": cache.lease.stamp()})


@doc(
    responses={200: InvalidatedSchema},
    errors=(400, 409),
    query={"epoch": EPOCH.schema, "version": VERSION.schema},
    auth="cluster",
)
@internal.delete(f"/invalidate/{BOOK_ID}")
def invalidate(book_id: int):
    """A catalog changed this book (to `version`, in `epoch`): drop it from the cache."""
    epoch, version = EPOCH.read() or None, VERSION.read() or None
    newest = services.invalidate(*_lease_deps(), book_id, epoch, version)
    return jsonify({"invalidated": book_id, "epoch": newest})
