"""Catalog request and response schemas (marshmallow)."""

from __future__ import annotations

from flask_marshmallow import Marshmallow
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from catalog.models import Book
from common.fields import MAX_PRICE, MAX_QUANTITY, StrictInteger, StrictNumber

ma = Marshmallow()


class BookSchema(ma.SQLAlchemyAutoSchema):
    class Meta:
        model = Book


class SearchHitSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)


class UpdateSchema(Schema):
    """A staff change: new price, new quantity, or both."""

    openapi_extra = {"minProperties": 1}
    price = StrictNumber(
        validate=validate.Range(min=0, max=MAX_PRICE, min_inclusive=False),
        metadata={"exclusiveMinimum": True},  # apispec leaves min_inclusive out
    )
    quantity = StrictInteger(validate=validate.Range(min=0, max=MAX_QUANTITY))

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("give price or quantity")


class BuySchema(Schema):
    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


class InStockSchema(Schema):
    id = fields.Integer(required=True)
    in_stock = fields.Boolean(required=True)
    quantity = fields.Integer(required=True)


class OutcomeSchema(Schema):
    """The catalog's decision on one order id."""

    outcome = fields.String(
        required=True, validate=validate.OneOf(["applied", "rejected", "aborted"])
    )
    total = fields.Float()
    book_id = fields.Integer()
    quantity = fields.Integer()
    epoch = fields.Integer(metadata={"description": "the lease epoch that decided it"})
