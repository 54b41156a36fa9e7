"""Public request and response schemas of the front-end (design §4)."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, post_load, validate

from common.fields import MAX_PRICE, MAX_QUANTITY, SQLITE_MAX_INT, StrictInteger, StrictNumber


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


def book_id_key(text: str) -> None:
    """A book id as a JSON object key: decimal digits, 0 to 2^63 - 1."""
    if not (re.fullmatch(r"[0-9]{1,19}", text) and int(text) <= SQLITE_MAX_INT):
        raise ValidationError(f"book id must be decimal digits up to {SQLITE_MAX_INT}")


class LeaseSchema(Schema):
    """The catalog primary's round to a front-end (design §7 rule 7)."""

    epoch = StrictInteger(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "the primary's epoch; older than the newest seen: 409"},
    )
    until = StrictNumber(
        load_default=None,
        allow_none=True,
        metadata={"description": "read lease: valid until this wall-clock time (s); null: none"},
    )
    invalidate = fields.Dict(
        keys=fields.String(validate=book_id_key),
        values=StrictInteger(validate=validate.Range(min=1)),
        load_default=dict,
        metadata={
            "description": "book id (decimal digits) -> its new version: drop the book, "
            "refill it no older than that"
        },
    )

    @post_load
    def _book_ids(self, data: dict, **kwargs) -> dict:
        data["invalidate"] = {int(key): version for key, version in data["invalidate"].items()}
        return data


class LeaseAnswerSchema(Schema):
    epoch = fields.Integer(required=True, metadata={"description": "the newest epoch seen"})


class InvalidatedSchema(Schema):
    invalidated = fields.Integer(required=True)
    epoch = fields.Integer(required=True, metadata={"description": "the newest epoch seen"})


class ErrorSchema(Schema):
    message = fields.String(required=True)
