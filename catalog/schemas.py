"""Catalog request and response schemas (marshmallow)."""

from __future__ import annotations

from flask_marshmallow import Marshmallow
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from catalog.models import Book
from common.fields import (
    KEY_RULE,
    MAX_LINES,
    MAX_PRICE,
    MAX_QUANTITY,
    Price,
    RowIdLineSchema,
    StrictInteger,
    StrictNumber,
    batch_of,
    order_lines,
)
from common.identity.roles import ROLES
from common.lease.shapes import read_grant_field
from common.replication.routes import entries_schemas
from common.shapes import (
    LINE,
    MAX_IMPORT,
    AccountSchema,
    AuditEntrySchema,
    EditSchema,
    ImportedSchema,
    NewBookSchema,
    SkippedSchema,
    StaffBookSchema,
    WithdrawSchema,
    actor_field,
    staff_name,
)

ma = Marshmallow()


class BookSchema(ma.SQLAlchemyAutoSchema):
    class Meta:
        model = Book


class SearchHitSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)


class WordHitSchema(SearchHitSchema):
    topic = fields.String(required=True)


def page_of(hit: type[Schema], name: str) -> type[Schema]:
    """A page as a catalog answers it (`common.pages.page`): rows and the next cursor."""
    cursor = fields.String(
        required=True, allow_none=True, metadata={"description": "the next page's cursor"}
    )
    shape = {"entries": fields.List(fields.Nested(hit), required=True), "next": cursor}
    return Schema.from_dict(shape, name=name)


SearchPageSchema = page_of(SearchHitSchema, "SearchPage")
WordPageSchema = page_of(WordHitSchema, "WordPage")
StaffBookPageSchema = page_of(StaffBookSchema, "StaffBookPage")


class UpdateSchema(Schema):
    """A staff change: new price, new quantity, or both."""

    openapi_extra = {"anyOf": [{"required": ["price"]}, {"required": ["quantity"]}]}
    price = Price()
    quantity = StrictInteger(validate=validate.Range(min=0, max=MAX_QUANTITY))
    by = actor_field()

    @validates_schema
    def _something(self, data, **kwargs):
        if data.get("price") is None and data.get("quantity") is None:
            raise ValidationError("give price or quantity")


class KeyedNewBookSchema(NewBookSchema):
    """A new book as the front-end relays it: with the client's Idempotency-Key."""

    idempotency_key = fields.String(load_default=None, allow_none=True, validate=KEY_RULE)
    by = actor_field()


class ImportRowSchema(NewBookSchema):
    line = StrictInteger(required=True, validate=LINE)


class ImportBatchSchema(Schema):
    """A batch of rows the front-end checked (its refused rows only counted)."""

    rows = fields.List(
        fields.Nested(ImportRowSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_IMPORT),
    )
    refused = StrictInteger(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_IMPORT),
        metadata={"description": "rows the front-end refused (for the audit entry)"},
    )
    by = actor_field()


class ImportDoneSchema(Schema):
    added = fields.List(fields.Nested(ImportedSchema), required=True)
    skipped = fields.List(fields.Nested(SkippedSchema), required=True)


class ActedEditSchema(EditSchema):
    openapi_extra = {"anyOf": [{"required": [f]} for f in ("title", "topic", "cost", "quantity")]}
    by = actor_field()


class ActedWithdrawSchema(WithdrawSchema):
    by = actor_field()


class ActedSchema(Schema):
    """Only who is acting (a restore, a disable)."""

    by = actor_field()


class NewAccountRowSchema(Schema):
    """A new staff account as the front-end relays it: the password already hashed."""

    name = fields.String(required=True, validate=staff_name())
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password_hash = fields.String(required=True, validate=validate.Length(min=1, max=500))
    by = actor_field()


class StaffAccountSchema(AccountSchema):
    """An account with its password hash: what a front-end checks a sign-in against."""

    password_hash = fields.String(required=True)
    version = fields.Integer(required=True)


class AuditPageSchema(Schema):
    entries = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next = fields.Integer(
        required=True, allow_none=True, metadata={"description": "the next page's cursor"}
    )


class BuySchema(Schema):
    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


class TakeSchema(Schema):
    """An order id and its lines: decide all of them at once (or fence them, on resolve)."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    items = order_lines(required=True)


class BatchedOrderSchema(TakeSchema):
    items = order_lines(RowIdLineSchema, required=True)
    origin = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the front-end it came through (it drops the book itself)"},
    )


MAX_BATCH = 64  # orders in one group commit (an order server sends at most 32)


class BatchSchema(Schema):
    """Orders that reached one order server together: decided in one transaction."""

    orders = batch_of(BatchedOrderSchema, MAX_BATCH)


MAX_LOOKUPS = 64  # books in one batched lookup (a front-end sends at most 32)


class LookupsSchema(Schema):
    """Books a front-end looks up together: its cache misses of one moment."""

    ids = fields.List(
        StrictInteger(validate=validate.Range(min=0, max=2**63 - 1)),
        required=True,
        validate=validate.Length(min=1, max=MAX_LOOKUPS),
    )


class LookupsFoundSchema(Schema):
    books = fields.List(fields.Nested(BookSchema), required=True)
    missing = fields.List(
        fields.Integer(), required=True, metadata={"description": "unknown or withdrawn"}
    )


class InStockSchema(Schema):
    id = fields.Integer(required=True)
    in_stock = fields.Boolean(required=True)
    quantity = fields.Integer(required=True)


class PricedLineSchema(Schema):
    book_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.String(required=True, metadata={"description": "exact, e.g. '19.99'"})


class OutcomeSchema(Schema):
    """The catalog's decision on one order id."""

    outcome = fields.String(
        required=True, validate=validate.OneOf(["applied", "rejected", "aborted"])
    )
    total = fields.String(metadata={"description": "exact: Σ quantity × unit_price if applied"})
    book_id = fields.Integer(allow_none=True, metadata={"description": "null: several books"})
    quantity = fields.Integer()
    items = fields.List(fields.Nested(PricedLineSchema))
    short = fields.List(fields.Integer(), metadata={"description": "books short of stock"})
    epoch = fields.Integer(metadata={"description": "the lease epoch that decided it"})


class BatchedOutcomeSchema(OutcomeSchema):
    code = fields.Integer(required=True, metadata={"description": "200 decided, 404 unknown books"})
    message = fields.String(metadata={"description": "404: which books are unknown"})
    books = fields.List(fields.Integer(), metadata={"description": "404: the unknown books"})
    outcome = fields.String(validate=validate.OneOf(["applied", "rejected", "aborted"]))


class BatchOutcomeSchema(Schema):
    epoch = fields.Integer(required=True)
    results = fields.List(fields.Nested(BatchedOutcomeSchema), required=True)


# -- what catalogs replicate (POST/GET /sync) --------------------------------
ROW_ID = validate.Range(min=0, max=2**63 - 1)
SHORT = validate.Length(max=10_000)
MANY = validate.Length(max=50_000)
EPOCH = validate.Range(min=0, max=2**62)


def stamp_field():
    """The position of the commit that last wrote a row (docs/scale.md §6): its writer's
    epoch << 32 | that writer's commit count; absent: NULL."""
    return StrictInteger(load_default=None, allow_none=True, validate=ROW_ID)


class BookRowSchema(Schema):
    """A book row as replicas exchange it (every column of `books`)."""

    id = StrictInteger(required=True, validate=ROW_ID)
    title = fields.String(required=True, validate=validate.Length(max=10_000))
    topic = fields.String(required=True, validate=validate.Length(max=10_000))
    cost = StrictNumber(required=True, validate=validate.Range(min=0, max=MAX_PRICE))
    quantity = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_QUANTITY))
    version = StrictInteger(required=True, validate=EPOCH)
    deleted_at = fields.String(load_default=None, allow_none=True, validate=SHORT)
    delete_comment = fields.String(load_default=None, allow_none=True, validate=SHORT)
    stamp = stamp_field()


def cluster_age():
    return StrictNumber(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0),
        metadata={"description": "cluster age (s) it was written at; NULL: before retention"},
    )


class CompactSchema(Schema):
    """A compaction (`catalog.retention`): idempotency records older than `before_age` go."""

    before_age = StrictNumber(required=True, validate=validate.Range(min=0))
    age = StrictNumber(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0),
        metadata={"description": "the writer's cluster age when it compacted"},
    )


class DecisionRowSchema(Schema):
    """The catalog's decision on one order id (every column of `order_decisions`)."""

    order_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    book_id = StrictInteger(required=True, allow_none=True, validate=ROW_ID)
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY * 50))
    status = fields.String(
        required=True, validate=validate.OneOf(["applied", "rejected", "aborted"])
    )
    total = StrictNumber(required=True, validate=validate.Range(min=0))
    items = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=20_000),
        metadata={"description": "JSON of the decided lines"},
    )
    stamp = stamp_field()
    age = cluster_age()


class BookKeyRowSchema(Schema):
    """An Idempotency-Key of POST /books and the book it made (every column of `book_keys`)."""

    key = fields.String(required=True, validate=validate.Length(min=1, max=200))
    book_id = StrictInteger(required=True, validate=ROW_ID)
    digest = fields.String(required=True, validate=validate.Length(min=1, max=128))
    stamp = stamp_field()
    age = cluster_age()


class AccountRowSchema(Schema):
    """A staff account as replicas exchange it (every column of `staff_accounts`)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password_hash = fields.String(required=True, validate=validate.Length(min=1, max=500))
    created_at = fields.String(required=True, validate=SHORT)
    disabled_at = fields.String(load_default=None, allow_none=True, validate=SHORT)
    version = StrictInteger(required=True, validate=EPOCH)
    stamp = stamp_field()


class AuditRowSchema(Schema):
    """One audit entry as replicas exchange it (every column of `audit_log`)."""

    id = StrictInteger(required=True, validate=ROW_ID)
    write_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    at = fields.String(required=True, validate=SHORT)
    staff = fields.String(required=True, validate=SHORT)
    role = fields.String(required=True, validate=SHORT)
    action = fields.String(required=True, validate=SHORT)
    book_id = StrictInteger(load_default=None, allow_none=True, validate=ROW_ID)
    before = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50_000))
    after = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50_000))
    request_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    stamp = stamp_field()


class BaseSchema(Schema):
    """A new primary's whole state: the base of its epoch."""

    books = fields.List(fields.Nested(BookRowSchema), required=True)
    decisions = fields.List(fields.Nested(DecisionRowSchema), required=True)
    keys = fields.List(fields.Nested(BookKeyRowSchema), load_default=list)
    accounts = fields.List(fields.Nested(AccountRowSchema), load_default=list)
    audit = fields.List(fields.Nested(AuditRowSchema), load_default=list)


class CatalogEntrySchema(Schema):
    """One replicated change (books, a decision, a book key, an account, an audit entry,
    a compaction), or a base; stamped with its epoch."""

    epoch = StrictInteger(load_default=0, validate=EPOCH)
    book = fields.Nested(BookRowSchema)
    # An order's lines, or an import batch's new books.
    books = fields.List(
        fields.Nested(BookRowSchema), validate=validate.Length(max=max(MAX_LINES, MAX_IMPORT))
    )
    order = fields.Nested(DecisionRowSchema)
    key = fields.Nested(BookKeyRowSchema)
    account = fields.Nested(AccountRowSchema)
    audit = fields.Nested(AuditRowSchema)
    compact = fields.Nested(CompactSchema)
    base = fields.Nested(BaseSchema)
    # A new holder's base as a delta (docs/scale.md §6): its rows stamped >= base_from.
    delta = fields.Nested(BaseSchema)
    base_from = StrictInteger(validate=EPOCH)
    position = StrictInteger(validate=ROW_ID, metadata={"description": "the delta's first"})
    stamped = fields.Boolean(metadata={"description": "a base made by a writer that stamps"})


class RowKeysSchema(Schema):
    """The keys of rows, by part (the replica's at position `since` or later)."""

    books = fields.List(StrictInteger(validate=ROW_ID), load_default=list, validate=MANY)
    decisions = fields.List(fields.String(validate=SHORT), load_default=list, validate=MANY)
    keys = fields.List(fields.String(validate=SHORT), load_default=list, validate=MANY)
    accounts = fields.List(fields.String(validate=SHORT), load_default=list, validate=MANY)
    audit = fields.List(StrictInteger(validate=ROW_ID), load_default=list, validate=MANY)


class RowsWantedSchema(Schema):
    """A replica's question for the rows it lacks (`catalog.catchup`)."""

    since = StrictInteger(required=True, validate=ROW_ID)
    base_from = StrictInteger(required=True, validate=EPOCH)
    keys = fields.Nested(RowKeysSchema, required=True)


class RowsSchema(Schema):
    """The writer's rows at `since` or later and its version of each key asked for."""

    data_epoch = fields.Integer(required=True)
    stamped = fields.Boolean(required=True)
    rows = fields.Nested(BaseSchema, required=True)
    absent = fields.Nested(RowKeysSchema, required=True, metadata={"description": "it has none"})


class SnapshotInstalledSchema(Schema):
    installed = fields.String(
        required=True,
        validate=validate.OneOf(["replaced", "merged"]),
        metadata={"description": "replaced: a newer base; merged: the same base's rows"},
    )
    data_epoch = fields.Integer(required=True, metadata={"description": "epoch of the base now"})


CatalogPushSchema, CatalogStateSchema = entries_schemas(
    CatalogEntrySchema,
    {
        "epoch": StrictInteger(required=True, validate=validate.Range(min=1, max=2**62)),
        "lease": read_grant_field(),
        "drain_upto": StrictInteger(
            validate=validate.Range(min=0, max=2**63 - 1),
            metadata={"description": "first replay the recovery queue up to this seq"},
        ),
    },
)
