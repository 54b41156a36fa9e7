"""Catalog request and response schemas (marshmallow)."""

from __future__ import annotations

from flask_marshmallow import Marshmallow
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from catalog.models import Book
from common.fields import MAX_PRICE, MAX_QUANTITY, StrictInteger, StrictNumber
from common.replication.routes import entries_schemas

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


# -- what catalogs replicate (POST/GET /sync) --------------------------------
ROW_ID = validate.Range(min=0, max=2**63 - 1)
EPOCH = validate.Range(min=0, max=2**62)


class BookRowSchema(Schema):
    """A book row as replicas exchange it (every column of `books`)."""

    id = StrictInteger(required=True, validate=ROW_ID)
    title = fields.String(required=True, validate=validate.Length(max=10_000))
    topic = fields.String(required=True, validate=validate.Length(max=10_000))
    cost = StrictNumber(required=True, validate=validate.Range(min=0, max=MAX_PRICE))
    quantity = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_QUANTITY))
    version = StrictInteger(required=True, validate=EPOCH)


class DecisionRowSchema(Schema):
    """The catalog's decision on one order id (every column of `order_decisions`)."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    book_id = StrictInteger(required=True, validate=ROW_ID)
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
    status = fields.String(
        required=True, validate=validate.OneOf(["applied", "rejected", "aborted"])
    )
    total = StrictNumber(required=True, validate=validate.Range(min=0))


class BaseSchema(Schema):
    """A new primary's whole state: the base of its epoch."""

    books = fields.List(fields.Nested(BookRowSchema), required=True)
    decisions = fields.List(fields.Nested(DecisionRowSchema), required=True)


class CatalogEntrySchema(Schema):
    """One replicated change (a book and/or a decision), or a base; stamped with its epoch."""

    epoch = StrictInteger(load_default=0, validate=EPOCH)
    book = fields.Nested(BookRowSchema)
    order = fields.Nested(DecisionRowSchema)
    base = fields.Nested(BaseSchema)


CatalogPushSchema, CatalogStateSchema = entries_schemas(
    CatalogEntrySchema,
    {
        "epoch": StrictInteger(required=True, validate=validate.Range(min=1, max=2**62)),
        "until": StrictNumber(
            allow_none=True, metadata={"description": "read lease: wall-clock end (s)"}
        ),
        "drain_upto": StrictInteger(
            validate=validate.Range(min=0, max=2**63 - 1),
            metadata={"description": "first replay the recovery queue up to this seq"},
        ),
    },
)
