"""Strict marshmallow fields: JSON numbers only (no strings, no booleans), finite, bounded."""

from __future__ import annotations

import math

from marshmallow import Schema, ValidationError, fields, validate

from common.money import in_cents

SQLITE_MAX_INT = 2**63 - 1
MAX_QUANTITY = 1_000_000_000  # copies in one buy or one stock level
MAX_PRICE = 1_000_000_000.0
# Idempotency keys: printable ASCII, no spaces, bounded length.
KEY_RULE = validate.Regexp(
    r"^[\x21-\x7e]{1,200}$", error="must be 1-200 printable ASCII characters"
)


class StrictInteger(fields.Integer):
    """A JSON integer: 3 is fine; "3", 3.5, true are not."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"must be an integer, got {type(value).__name__}")
        if abs(value) > SQLITE_MAX_INT:
            raise ValidationError("is too large")
        return value


class StrictBoolean(fields.Boolean):
    """A JSON true or false: not "true", 1 or null."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError(f"must be true or false, got {type(value).__name__}")
        return value


class StrictNumber(fields.Float):
    """A finite JSON number: 3 or 3.5; not "3", true, NaN or Infinity."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"must be a number, got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            raise ValidationError("is too large") from None
        if not math.isfinite(number):
            raise ValidationError("must be a finite number")
        return number


class Price(StrictNumber):
    """A price: a JSON number above 0, at most MAX_PRICE, in whole cents (19.99, not 19.999)."""

    def __init__(self, **kwargs):
        super().__init__(
            validate=validate.Range(min=0, max=MAX_PRICE, min_inclusive=False),
            metadata={"exclusiveMinimum": True, "multipleOf": 0.01},  # apispec drops min_inclusive
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        cents = in_cents(super()._deserialize(value, attr, data, **kwargs))
        if cents is None:
            raise ValidationError("must be in whole cents (at most two decimals)")
        return cents


class Label(fields.String):
    """One line of text a person typed: not blank, no control characters, bounded."""

    def __init__(self, max_length: int, **kwargs):
        super().__init__(
            validate=[
                validate.Length(min=1, max=max_length),
                # The visible character is no control character either (\S alone let
                # one NUL or ESC through). (?![\s\S]) ends the text in Python and in
                # JSON Schema alike; Python's $ would let a trailing newline through.
                validate.Regexp(
                    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*(?![\s\S])",
                    error="must have visible characters and no control characters",
                ),
            ],
            **kwargs,
        )


TITLE_MAX, TOPIC_MAX, COMMENT_MAX = 300, 100, 500


# -- order lines: [{"book_id", "quantity"}], 1 to 50, one per book -----------
MAX_LINES = 50


class LineSchema(Schema):
    book_id = StrictInteger(required=True, validate=validate.Range(min=1, max=2**63 - 1))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


def distinct_books(lines: list[dict]) -> None:
    ids = [line["book_id"] for line in lines]
    if len(set(ids)) != len(ids):
        raise ValidationError("each book at most once (add up its quantity instead)")


class RowIdLineSchema(LineSchema):
    """A line as the catalog takes it from an order server: any row id, like /buy/<id>
    (book 0 is then a 404 naming it; customers' lines start at 1)."""

    book_id = StrictInteger(required=True, validate=validate.Range(min=0, max=2**63 - 1))


def batch_of(order: type[Schema], most: int) -> fields.List:
    """1 to `most` orders sent together (a group commit's batch)."""
    return fields.List(
        fields.Nested(order), required=True, validate=validate.Length(min=1, max=most)
    )


def order_lines(line: type[Schema] = LineSchema, **kwargs) -> fields.List:
    """1 to 50 lines, one per book."""
    return fields.List(
        fields.Nested(line),
        validate=[validate.Length(min=1, max=MAX_LINES), distinct_books],
        **kwargs,
    )
