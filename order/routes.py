"""Order HTTP routes (internal, signed): parse, call the store, serialize."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from common.http import ORIGIN_HEADER
from common.node import NodeContext, context
from common.openapi import doc
from common.period import QUERY as PERIOD
from common.period import read_period
from common.replication.routes import add_sync_routes
from common.shapes import OrderSchema, RevenueSchema
from common.web import ApiError, load_body, protect_internal
from common.webkit.early import SignedRoute
from order import reports, sync
from order.models import CONFIRMED
from order.rows import present
from order.schemas import (
    BuySchema,
    ManyAnswerSchema,
    ManySchema,
    OrderPushSchema,
    OrderStateSchema,
    PlaceSchema,
)
from order.store import OrderStore

ORDER_OUT = OrderSchema()  # one instance: building one per request costs more than dumping

bp = Blueprint("order", __name__)
protect_internal(bp)
ALWAYS_OPEN = {"order.sync_in", "order.sync_out"}


def store() -> OrderStore:
    return current_app.extensions["order.store"]


@bp.before_request
def _only_when_up():
    if request.endpoint not in ALWAYS_OPEN:
        refuse_unless_up(context())


def refuse_unless_up(ctx: NodeContext) -> None:
    if ctx.status != "up":
        raise ApiError(503, f"order replica is {ctx.status}", status=ctx.status)


@doc(body=BuySchema, body_required=False, responses={201: OrderSchema}, errors=(404, 410, 422, 503))
@bp.post("/buy/<id:book_id>")
def buy(book_id: int):
    """Buy `quantity` copies once per idempotency key: 201 confirmed, 410 rejected."""
    body = load_body(BuySchema, optional=True)
    origin = request.headers.get(ORIGIN_HEADER)
    order = store().buy(book_id, body["quantity"], body["idempotency_key"], origin)
    return _placed(order)


@doc(body=PlaceSchema, responses={201: OrderSchema}, errors=(404, 410, 422, 503))
@bp.post("/orders")
def place():
    """Order 1-50 books at once, all or nothing: 201 confirmed, 410 naming the books short."""
    body = load_body(PlaceSchema)
    origin = request.headers.get(ORIGIN_HEADER)
    return _placed(store().place(body["items"], body["idempotency_key"], origin))


@doc(body=ManySchema, responses={200: ManyAnswerSchema}, errors=(503,))
@bp.post("/batch/orders")
def place_many():
    """Orders a front-end received together, placed together (one transaction to open
    them, one catalog batch, one to record them); one answer per order, with the code
    it alone would have got."""
    origin = request.headers.get(ORIGIN_HEADER)
    return jsonify(placed_many(store(), load_body(ManySchema), origin))


def placed_many(orders: OrderStore, body: dict, origin: str | None) -> dict:
    return {"results": [_answer(r) for r in orders.place_many(body["orders"], origin)]}


def _answer(result: dict | ApiError) -> dict:
    if isinstance(result, ApiError):
        return result.answer()
    try:
        return {"code": 201, **_confirmed(result)}
    except ApiError as e:  # rejected: the 410 naming its books
        return e.answer()


def _placed(order: dict):
    return jsonify(_confirmed(order)), 201


def _confirmed(order: dict) -> dict:
    """A confirmed order as clients see it; a rejected one is the 410 naming its books."""
    if order["status"] == CONFIRMED:
        return ORDER_OUT.dump(present(order))
    short = order.get("short") or [line["book_id"] for line in order["items"]]
    names = ", ".join(str(book_id) for book_id in short)
    books = f"book {names} is" if len(short) == 1 else f"books {names} are"
    raise ApiError(
        410,
        f"{books} out of stock (not enough copies for this order)",
        order_id=order["order_id"],
        books=short,
    )


@doc(responses={200: OrderSchema}, errors=(404, 503))
@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    """One order by id, with its lines and exact total."""
    return jsonify(ORDER_OUT.dump(present(store().get(order_id))))


@doc(responses={200: RevenueSchema}, errors=(400, 503), query=PERIOD)
@bp.get("/reports/revenue")
def revenue():
    """Revenue of confirmed orders by UTC day or book; `complete`: this replica vouches."""
    start, end, by = read_period()
    notes = reports.completeness(context(), store().replicator)
    report = reports.revenue(store().engine, start, end, by)
    return jsonify({**report, "complete": not notes, "notes": notes, "node": context().node.name})


add_sync_routes(bp, store, OrderPushSchema, OrderStateSchema, query=sync.QUERY)


def early_routes(orders: OrderStore) -> dict[str, SignedRoute]:
    """The routes every buy crosses, served before Flask (common.webkit.early); each as
    its view above serves it (a push is taken in any state, as `ALWAYS_OPEN` says)."""
    origin_key = "HTTP_" + ORIGIN_HEADER.upper().replace("-", "_")

    def place_batch(body: dict, environ: dict) -> dict:
        return placed_many(orders, body, environ.get(origin_key))

    return {
        "/batch/orders": SignedRoute(ManySchema, place_batch, lambda: refuse_unless_up(orders.ctx)),
        "/sync": SignedRoute(OrderPushSchema, lambda body, _: orders.receive(body)),
    }
