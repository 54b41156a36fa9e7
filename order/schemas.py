"""Order request and response schemas (marshmallow)."""

from __future__ import annotations

from flask_marshmallow import Marshmallow
from marshmallow import Schema, fields, validate

from common.fields import (
    KEY_RULE,
    MAX_LINES,
    MAX_QUANTITY,
    RowIdLineSchema,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    batch_of,
    order_lines,
)
from common.replication.routes import entries_schemas

ma = Marshmallow()

MONEY = r"^\d{1,13}\.\d{2}$"  # exact decimal text, two places: '19.99'


class BuySchema(Schema):
    quantity = StrictInteger(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=KEY_RULE)


class PlaceSchema(Schema):
    """An order of 1-50 books, all or nothing."""

    items = order_lines(required=True)
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=KEY_RULE)


class ManyOrderSchema(Schema):
    """One of the orders a front-end sends together (a single buy is one line; any row
    id, as on /buy/<id>: book 0 is a 404 naming it)."""

    items = order_lines(RowIdLineSchema, required=True)
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=KEY_RULE)


MAX_MANY = 64  # orders in one request from a front-end (it sends at most 32)


class ManySchema(Schema):
    orders = batch_of(ManyOrderSchema, MAX_MANY)


class ManyAnswerSchema(Schema):
    """One answer per order, in order: `code` is what the order alone would have got."""

    results = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": "201: the order (as GET /orders/<id>) plus code; else code, message "
            "and order_id/books where the single routes give them"
        },
    )


# The one form `now_iso()` writes: replicas compare these as strings (the reconciler's
# cutoff, the newest-wins merge), which is right only if every row has this form. A
# pattern (not a parse) so the OpenAPI document states it exactly.
UTC_MILLIS = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}\+00:00$"
)


class OrderRowSchema(Schema):
    """An order as replicas exchange it (every column of `orders`)."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    book_id = StrictInteger(
        required=True, allow_none=True, validate=validate.Range(min=0, max=2**63 - 1)
    )
    quantity = StrictInteger(
        required=True, validate=validate.Range(min=1, max=MAX_QUANTITY * MAX_LINES)
    )
    total = StrictNumber(required=True, validate=validate.Range(min=0))
    status = fields.String(
        required=True, validate=validate.OneOf(["pending", "confirmed", "rejected"])
    )
    created_at = fields.String(
        required=True,
        validate=validate.Regexp(
            UTC_MILLIS, error="must be a UTC time like 2026-01-02T03:04:05.678+00:00"
        ),
    )


class OrderLineRowSchema(Schema):
    """One line of an order as replicas exchange it (`order_items` without order_id)."""

    book_id = StrictInteger(required=True, validate=validate.Range(min=0, max=2**63 - 1))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
    unit_price = fields.String(
        required=True, allow_none=True, validate=validate.Regexp(MONEY, error="must be like 19.99")
    )


class OrderEntrySchema(Schema):
    order = fields.Nested(OrderRowSchema, required=True)
    items = fields.List(
        fields.Nested(OrderLineRowSchema),
        load_default=list,
        validate=validate.Length(max=MAX_LINES),
    )


OrderPushSchema, OrderStateSchema = entries_schemas(
    OrderEntrySchema,
    {
        "queued": StrictBoolean(
            metadata={"description": "the pusher queued entries for us: read our queue now"}
        )
    },
)
