"""Public request and response schemas of the front-end (design §4)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.fields import MAX_PRICE, MAX_QUANTITY, StrictInteger, StrictNumber


class BookSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    topic = fields.String(required=True)
    cost = fields.Float(required=True)
    quantity = fields.Integer(required=True)


class SearchHitSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)


class BuyBodySchema(Schema):
    quantity = StrictInteger(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))


class BuyResultSchema(Schema):
    order_id = fields.String(required=True)
    book_id = fields.Integer(required=True)
    quantity = fields.Integer()
    total = fields.Float()


class PriceSchema(Schema):
    price = StrictNumber(
        required=True,
        validate=validate.Range(min=0, max=MAX_PRICE, min_inclusive=False),
        metadata={"exclusiveMinimum": True},  # apispec leaves min_inclusive out
    )


class QuantitySchema(Schema):
    quantity = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_QUANTITY))


class OrderSchema(Schema):
    order_id = fields.String(required=True)
    book_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True)
    total = fields.Float(required=True)
    status = fields.String(required=True)
    created_at = fields.String(required=True)


class ErrorSchema(Schema):
    message = fields.String(required=True)
