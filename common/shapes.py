"""JSON shapes the front-end and a backend both speak: staff's books, orders, reports.

The front-end validates a client's body with the same schema the backend
does, and documents the backend's answer with the same schema it relays.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from common.fields import (
    COMMENT_MAX,
    MAX_QUANTITY,
    SQLITE_MAX_INT,
    TITLE_MAX,
    TOPIC_MAX,
    Label,
    Price,
    StrictInteger,
)
from common.identity.roles import MAX_PASSWORD, MIN_PASSWORD, NAME_RULE, ROLES
from common.pages import PAGE_LIMIT
from common.web import QueryInt

AUDIT_ACTIONS = (
    "add", "edit", "price", "quantity", "withdraw", "restore", "staff-add", "staff-disable",
    "import",
)  # fmt: skip


# -- staff's catalog -----------------------------------------------------------
class NewBookSchema(Schema):
    """A title staff add; the catalog picks its id."""

    title = Label(TITLE_MAX, required=True)
    topic = Label(TOPIC_MAX, required=True)
    cost = Price(required=True)
    quantity = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_QUANTITY))


class EditSchema(Schema):
    """A staff edit: any of title, topic, cost, quantity."""

    openapi_extra = {"minProperties": 1}
    title = Label(TITLE_MAX)
    topic = Label(TOPIC_MAX)
    cost = Price()
    quantity = StrictInteger(validate=validate.Range(min=0, max=MAX_QUANTITY))

    @validates_schema
    def _something(self, data, **kwargs):
        if not {"title", "topic", "cost", "quantity"} & set(data):
            raise ValidationError("give at least one of title, topic, cost, quantity")


class WithdrawSchema(Schema):
    comment = Label(COMMENT_MAX, required=True, metadata={"description": "why it is withdrawn"})


class StaffBookSchema(Schema):
    """A book as staff see it: with its withdrawal, if any."""

    id = fields.Integer(required=True)
    title = fields.String(required=True)
    topic = fields.String(required=True)
    cost = fields.Float(required=True)
    quantity = fields.Integer(required=True)
    version = fields.Integer(required=True)
    deleted_at = fields.String(allow_none=True, required=True)
    comment = fields.String(allow_none=True, required=True, attribute="delete_comment")


# -- bulk import (docs/scale.md §4) ---------------------------------------------
MAX_IMPORT = 1000  # rows in one POST /books/import: one transaction, one replicated entry
LINE = validate.Range(min=1, max=SQLITE_MAX_INT)


class ImportLineSchema(Schema):
    """One row as a client sends it: its file line; the book's fields are checked row by
    row (NewBookSchema), and a bad row is refused in the answer, not with a 400."""

    class Meta:
        unknown = INCLUDE

    line = StrictInteger(
        required=True, validate=LINE, metadata={"description": "the row's line in the file"}
    )


class ImportSchema(Schema):
    rows = fields.List(
        fields.Nested(ImportLineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_IMPORT),
        metadata={"description": 'each {"line", "title", "topic", "cost", "quantity"}'},
    )


class ImportedSchema(Schema):
    line = fields.Integer(required=True)
    id = fields.Integer(required=True, metadata={"description": "the new book"})


class SkippedSchema(ImportedSchema):
    id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "the book it repeats"}
    )
    why = fields.String(required=True)


class RefusedSchema(Schema):
    line = fields.Integer(required=True)
    why = fields.String(required=True, metadata={"description": "field: why, as POST /books"})


class ImportAnswerSchema(Schema):
    added = fields.List(fields.Nested(ImportedSchema), required=True)
    skipped = fields.List(fields.Nested(SkippedSchema), required=True)
    refused = fields.List(fields.Nested(RefusedSchema), required=True)


# -- orders --------------------------------------------------------------------
class LineOutSchema(Schema):
    book_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "exact, e.g. '19.99'; null while pending"},
    )


class OrderSchema(Schema):
    """An order as clients see it (`order.rows.present`)."""

    order_id = fields.String(required=True)
    book_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: several books"}
    )
    quantity = fields.Integer(required=True, metadata={"description": "copies, all books"})
    status = fields.String(
        required=True, validate=validate.OneOf(["pending", "confirmed", "rejected"])
    )
    created_at = fields.String(required=True)
    items = fields.List(fields.Nested(LineOutSchema), required=True)
    total = fields.String(
        required=True,
        metadata={"description": "exact: Σ quantity × unit_price; '0.00' unless confirmed"},
    )


# -- revenue reports -----------------------------------------------------------
class RevenueFiguresSchema(Schema):
    orders = fields.Integer(required=True, metadata={"description": "confirmed orders"})
    copies = fields.Integer(required=True)
    revenue = fields.String(required=True, metadata={"description": "exact, e.g. '1234.50'"})


class RevenueRowSchema(RevenueFiguresSchema):
    day = fields.String(metadata={"description": "UTC date (by=day)"})
    book_id = fields.Integer(metadata={"description": "by=book"})
    title = fields.String(
        allow_none=True,
        metadata={"description": "by=book, added by the front-end (null: no catalog could say)"},
    )


class RevenueSchema(Schema):
    from_ = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    by = fields.String(required=True, validate=validate.OneOf(["day", "book"]))
    rows = fields.List(fields.Nested(RevenueRowSchema), required=True)
    total = fields.Nested(RevenueFiguresSchema, required=True)
    complete = fields.Boolean(
        required=True, metadata={"description": "this replica holds every acknowledged order"}
    )
    notes = fields.List(fields.String(), required=True, metadata={"description": "why not"})
    node = fields.String(required=True, metadata={"description": "the replica that answered"})


# -- staff accounts, sign-in and the audit trail (docs/staff.md) --------------------
class ActorSchema(Schema):
    """Who made a staff write, as the front-end tells the catalog (in a signed body)."""

    staff = fields.String(required=True, validate=validate.Length(min=1, max=64))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    write_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "one per staff request: its retries add no audit entry"},
    )
    request_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200)
    )


def staff_name() -> list:
    """A staff name: 1-64 of a-z 0-9 . _ -, a letter or digit first."""
    said = "1-64 of a-z 0-9 . _ -, a letter or digit first"
    return [validate.Regexp(NAME_RULE, error=said), validate.Predicate("isprintable", error=said)]


def actor_field() -> fields.Nested:
    return fields.Nested(ActorSchema, metadata={"description": "who (left out: a tool)"})


class LoginSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    password = fields.String(required=True, validate=validate.Length(min=1, max=MAX_PASSWORD))


class TokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "a JWT: Authorization: Bearer"})
    expires_at = fields.String(required=True, metadata={"description": "UTC; sign in again then"})
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class NewAccountSchema(Schema):
    name = fields.String(required=True, validate=staff_name())
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = fields.String(
        required=True, validate=validate.Length(min=MIN_PASSWORD, max=MAX_PASSWORD)
    )


class AccountSchema(Schema):
    """A staff account as managers see it (never its password hash)."""

    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    created_at = fields.String(required=True)
    disabled_at = fields.String(required=True, allow_none=True)
    disabled = fields.Boolean(required=True)


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "grows; newest is highest"})
    at = fields.String(required=True, metadata={"description": "the writer's wall clock, UTC"})
    staff = fields.String(required=True)
    role = fields.String(required=True)
    action = fields.String(required=True, validate=validate.OneOf(AUDIT_ACTIONS))
    book_id = fields.Integer(required=True, allow_none=True)
    before = fields.Dict(required=True, allow_none=True)
    after = fields.Dict(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)


# GET /audit's page and filters, read alike by the front-end and the catalog.
AUDIT_LIMIT = PAGE_LIMIT  # the rule of every page (docs/scale.md §1)
AUDIT_BOOK = QueryInt("book", default=None, low=0, high=SQLITE_MAX_INT)
AUDIT_AFTER = QueryInt("after", default=None, low=0, high=SQLITE_MAX_INT)  # the cursor
AUDIT_COLUMNS = ("id", "at", "staff", "role", "action", "book_id", "before", "after", "request_id")
