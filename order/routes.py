"""Order HTTP routes (internal, signed): parse, call the store, serialize."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from common.http import ORIGIN_HEADER
from common.node import context
from common.openapi import doc
from common.replication.routes import add_sync_routes
from common.web import ApiError, load_body, protect_internal
from order.models import CONFIRMED
from order.schemas import BuySchema, OrderPushSchema, OrderSchema, OrderStateSchema
from order.store import OrderStore

bp = Blueprint("order", __name__)
protect_internal(bp)
ALWAYS_OPEN = {"order.sync_in", "order.sync_out"}


def store() -> OrderStore:
    return current_app.extensions["order.store"]


@bp.before_request
def _only_when_up():
    if request.endpoint not in ALWAYS_OPEN and context().status != "up":
        raise ApiError(503, f"order replica is {context().status}", status=context().status)


@doc(body=BuySchema, body_required=False, responses={201: OrderSchema}, errors=(404, 410, 422, 503))
@bp.post("/buy/<int(max=9223372036854775807):book_id>")
def buy(book_id: int):
    """Buy `quantity` copies once per idempotency key: 201 confirmed, 410 rejected."""
    body = load_body(BuySchema(), optional=True)
    origin = request.headers.get(ORIGIN_HEADER)
    order = store().buy(book_id, body["quantity"], body["idempotency_key"], origin)
    if order["status"] == CONFIRMED:
        return jsonify(OrderSchema().dump(order)), 201
    raise ApiError(410, f"book {book_id} is out of stock", order_id=order["order_id"])


@doc(responses={200: OrderSchema}, errors=(404, 503))
@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    """One order by id."""
    return jsonify(OrderSchema().dump(store().get(order_id)))


add_sync_routes(bp, store, OrderPushSchema, OrderStateSchema)
