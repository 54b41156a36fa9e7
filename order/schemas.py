"""Order request and response schemas (marshmallow)."""

from __future__ import annotations

from flask_marshmallow import Marshmallow
from marshmallow import Schema, fields, validate

from common.fields import KEY_RULE, MAX_QUANTITY, StrictInteger, StrictNumber
from common.replication.routes import entries_schemas
from order.models import Order

ma = Marshmallow()


class OrderSchema(ma.SQLAlchemyAutoSchema):
    class Meta:
        model = Order


class BuySchema(Schema):
    quantity = StrictInteger(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=KEY_RULE)


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
    book_id = StrictInteger(required=True, validate=validate.Range(min=0, max=2**63 - 1))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
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


class OrderEntrySchema(Schema):
    order = fields.Nested(OrderRowSchema, required=True)


OrderPushSchema, OrderStateSchema = entries_schemas(OrderEntrySchema, {})
