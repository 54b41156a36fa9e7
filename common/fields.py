"""Strict marshmallow fields: JSON numbers only (no strings, no booleans), finite, bounded."""

from __future__ import annotations

import math

from marshmallow import ValidationError, fields, validate

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
