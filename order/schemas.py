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


class OrderRowSchema(Schema):
    """An order as replicas exchange it (every column of `orders`)."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    book_id = StrictInteger(required=True, validate=validate.Range(min=0, max=2**63 - 1))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
    total = StrictNumber(required=True, validate=validate.Range(min=0))
    status = fields.String(
        required=True, validate=validate.OneOf(["pending", "confirmed", "rejected"])
    )
    created_at = fields.String(required=True, validate=validate.Length(min=1, max=64))


class OrderEntrySchema(Schema):
    order = fields.Nested(OrderRowSchema, required=True)


OrderPushSchema, OrderStateSchema = entries_schemas(OrderEntrySchema, {})
