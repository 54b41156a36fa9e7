"""Public request and response schemas of the front-end (design §4)."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, post_load, validate

from common.fields import (
    MAX_QUANTITY,
    SQLITE_MAX_INT,
    Price,
    StrictBoolean,
    StrictInteger,
    order_lines,
)
from common.lease.shapes import StampSchema, read_grant_field


class BookSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    topic = fields.String(required=True)
    cost = fields.Float(required=True)
    quantity = fields.Integer(required=True)


class SearchHitSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)


class WordHitSchema(SearchHitSchema):
    topic = fields.String(required=True)


class BuyBodySchema(Schema):
    quantity = StrictInteger(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))


class BuyResultSchema(Schema):
    order_id = fields.String(required=True)
    book_id = fields.Integer(required=True)
    quantity = fields.Integer()
    total = fields.String(metadata={"description": "exact, e.g. '100.00'"})


class OrderBodySchema(Schema):
    items = order_lines(required=True, metadata={"description": "1-50 lines, one per book"})


class PriceSchema(Schema):
    price = Price(required=True)


class QuantitySchema(Schema):
    quantity = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_QUANTITY))


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
    lease = read_grant_field()
    invalidate = fields.Dict(
        keys=fields.String(validate=book_id_key),
        values=StrictInteger(validate=validate.Range(min=1)),
        load_default=dict,
        metadata={
            "description": "book id (decimal digits) -> its new version: drop the book, "
            "refill it no older than that"
        },
    )

    searches = StrictBoolean(
        load_default=False,
        metadata={"description": "books were added, withdrawn or retitled: drop searches"},
    )

    @post_load
    def _book_ids(self, data: dict, **kwargs) -> dict:
        data["invalidate"] = {int(key): version for key, version in data["invalidate"].items()}
        return data


class LeaseAnswerSchema(Schema):
    epoch = fields.Integer(required=True, metadata={"description": "the newest epoch seen"})
    stamp = fields.Nested(
        StampSchema, required=True, metadata={"description": "for the primary's next grant"}
    )


class InvalidatedSchema(Schema):
    invalidated = fields.Integer(required=True)
    epoch = fields.Integer(required=True, metadata={"description": "the newest epoch seen"})


class ErrorSchema(Schema):
    message = fields.String(required=True)
