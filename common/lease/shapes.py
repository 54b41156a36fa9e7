"""The read lease on the wire (design §7 rule 8): a copy's stamp and the holder's grant."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.fields import StrictNumber

RUN = validate.Length(min=1, max=64)


class StampSchema(Schema):
    """A copy's monotonic reading, in every answer it gives the holder."""

    run = fields.String(
        required=True, validate=RUN, metadata={"description": "names the copy's process run"}
    )
    at = StrictNumber(
        required=True, metadata={"description": "the copy's monotonic clock (s) as it answered"}
    )


class ReadGrantSchema(StampSchema):
    """A read lease: the copy's own stamp sent back, and how long it lasts from it."""

    length = StrictNumber(
        required=True,
        validate=validate.Range(min=0, max=3600),
        metadata={"description": "seconds, counted on the copy's clock from `at`"},
    )


def read_grant_field() -> fields.Nested:
    # Not nullable: no lease is no field (a nullable object would be documented as
    # "any object" by OpenAPI 3.0, and a fuzzer would rightly send {}).
    return fields.Nested(
        ReadGrantSchema,
        metadata={"description": "read lease granted with this message; absent: none"},
    )
