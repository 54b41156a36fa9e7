"""Order request and response schemas (marshmallow)."""

from __future__ import annotations

from flask_marshmallow import Marshmallow
from marshmallow import Schema, fields, validate

from common.fields import KEY_RULE, MAX_QUANTITY, StrictInteger
from order.models import Order

ma = Marshmallow()


class OrderSchema(ma.SQLAlchemyAutoSchema):
    class Meta:
        model = Order


class BuySchema(Schema):
    quantity = StrictInteger(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=KEY_RULE)
