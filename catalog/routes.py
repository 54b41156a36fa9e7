"""Catalog HTTP routes (internal, signed): parse, call the store, serialize."""

from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.wsgi import wrap_file

from catalog import catchup, snapshot
from catalog.heal import Healer
from catalog.replica import QUERY_SINCE
from catalog.schemas import (
    ActedEditSchema,
    ActedSchema,
    ActedWithdrawSchema,
    AuditPageSchema,
    BatchOutcomeSchema,
    BatchSchema,
    BookSchema,
    BuySchema,
    CatalogPushSchema,
    CatalogStateSchema,
    ImportBatchSchema,
    ImportDoneSchema,
    InStockSchema,
    KeyedNewBookSchema,
    LookupsFoundSchema,
    LookupsSchema,
    NewAccountRowSchema,
    OutcomeSchema,
    RowsSchema,
    RowsWantedSchema,
    SearchHitSchema,
    SearchPageSchema,
    SnapshotInstalledSchema,
    StaffAccountSchema,
    StaffBookPageSchema,
    TakeSchema,
    UpdateSchema,
    WordPageSchema,
)
from catalog.store import CatalogStore
from common.fields import MAX_QUANTITY
from common.http import ORIGIN_HEADER
from common.openapi import doc
from common.pages import CURSOR_SCHEMA, ID_KEY, PAGE_LIMIT, RANK_KEY, WHOLE, paged, read_after
from common.replication.routes import add_sync_routes
from common.shapes import (
    AUDIT_ACTIONS,
    AUDIT_AFTER,
    AUDIT_BOOK,
    AUDIT_LIMIT,
    AccountSchema,
    StaffBookSchema,
)
from common.web import ApiError, QueryInt, load_body, protect_internal
from common.webkit.early import SignedRoute
from common.words import Q_SCHEMA, words

# One instance each: building a schema per request costs more than the dump.
BOOK_OUT = BookSchema()
STAFF_BOOK_OUT = StaffBookSchema()
IMPORT_OUT = ImportDoneSchema()

bp = Blueprint("catalog", __name__)
protect_internal(bp)
BOOK_ID = "<id:book_id>"
WANTED = QueryInt("quantity", default=1, low=1, high=MAX_QUANTITY)


def store() -> CatalogStore:
    return current_app.extensions["catalog.store"]


def _origin() -> str | None:
    return request.headers.get(ORIGIN_HEADER)


def _require_primary() -> None:
    require_primary(store())


def require_primary(catalog: CatalogStore) -> None:
    # Called after the body is parsed: bad input is a 400 on any replica.
    role = catalog.role
    if not role.may_write():
        raise ApiError(421, "not the primary", primary=role.group.view().holder)


PAGE_QUERY = {"limit": PAGE_LIMIT.schema, "after": CURSOR_SCHEMA}
WORDS_QUERY = {"q": {**Q_SCHEMA, "required": True}, **PAGE_QUERY}


def page_or_list(page_schema, row_schema) -> dict:
    """A page, or (asked with neither `limit` nor `after`) the whole list as before
    pages, for front-ends of the previous release during a roll (docs/upgrading.md)."""
    either = {"oneOf": [page_schema, row_schema(many=True)]}
    return {200: {"application/json": {"schema": either}}}


def _paged(found: dict):
    """The page as asked: {"entries", "next"}, or the rows alone to an older front-end."""
    return jsonify(found if paged() else found["entries"])


@doc(responses=page_or_list(SearchPageSchema, SearchHitSchema), errors=(400, 503), query=PAGE_QUERY)
@bp.get("/search/<path:topic>")
def search_topic(topic: str):
    """A page of the books under a topic (case-insensitive), by id; `next`: the next
    page's cursor."""
    limit, after = PAGE_LIMIT.read() if paged() else WHOLE, read_after(ID_KEY)
    return _paged(store().search(topic, limit, after))


@doc(responses={200: WordPageSchema}, errors=(400, 422, 503), query=WORDS_QUERY)
@bp.get("/search")
def search_words():
    """A page of the books whose title or topic hold every word of `q` (as prefixes),
    best first; `next`: the next page's cursor."""
    q = request.args.get("q")
    words(q)  # a bad q is a 400 before the cursor is read
    limit, after = PAGE_LIMIT.read(), read_after(RANK_KEY)
    return jsonify(store().search_words(q, limit, after))


@doc(responses={200: BookSchema}, errors=(404, 503))
@bp.get(f"/lookup/{BOOK_ID}")
def lookup(book_id: int):
    """One book, with its version."""
    return jsonify(BOOK_OUT.dump(store().lookup(book_id)))


@doc(body=LookupsSchema, responses={200: LookupsFoundSchema}, errors=(400, 503))
@bp.post("/batch/lookups")
def lookup_many():
    """Several books read together, with their versions (a front-end's concurrent cache
    misses); `missing`: the ids of no listed book. Repeated ids are answered once."""
    ids = list(dict.fromkeys(load_body(LookupsSchema)["ids"]))
    found, missing = store().lookup_many(ids)
    return jsonify({"books": BOOK_OUT.dump(found, many=True), "missing": missing})


@doc(responses={200: InStockSchema}, errors=(400, 404, 503), query={"quantity": WANTED.schema})
@bp.get(f"/verify_item_in_stock/{BOOK_ID}")
def verify_item_in_stock(book_id: int):
    """Whether `quantity` copies (default 1) are in stock right now."""
    wanted = WANTED.read()
    book = store().lookup(book_id)
    return jsonify(
        {"id": book_id, "in_stock": book["quantity"] >= wanted, "quantity": book["quantity"]}
    )


@doc(body=UpdateSchema, responses={200: BookSchema}, errors=(404, 421, 422, 503))
@bp.put(f"/update/{BOOK_ID}")
def update(book_id: int):
    """Staff change of price and/or quantity (primary only)."""
    body = load_body(UpdateSchema)
    _require_primary()
    price, quantity = body.get("price"), body.get("quantity")
    book = store().update(book_id, price, quantity, _origin(), body.get("by"))
    return jsonify(BOOK_OUT.dump(book))


@doc(body=BuySchema, responses={200: OutcomeSchema}, errors=(404, 421, 503))
@bp.post(f"/buy/{BOOK_ID}")
def buy(book_id: int):
    """Take `quantity` copies for `order_id`, once (primary only)."""
    body = load_body(BuySchema)
    _require_primary()
    return jsonify(store().buy(body["order_id"], book_id, body["quantity"], _origin()))


@doc(body=TakeSchema, responses={200: OutcomeSchema}, errors=(404, 421, 503))
@bp.post("/orders")
def take():
    """Take every line of `order_id` or none (primary only); 404 names unknown books."""
    body = load_body(TakeSchema)
    _require_primary()
    return jsonify(store().take(body["order_id"], body["items"], _origin()))


@doc(body=BatchSchema, responses={200: BatchOutcomeSchema}, errors=(421, 503))
@bp.post("/batch/orders")
def take_all():
    """Group commit: decide every order of the batch in one transaction (primary only);
    each order has its own answer (`code` 200 decided, 404 unknown books)."""
    return jsonify(took_all(store(), load_body(BatchSchema)))


def took_all(catalog: CatalogStore, body: dict) -> dict:
    require_primary(catalog)
    return catalog.take_all(body["orders"])


@doc(responses={200: OutcomeSchema}, errors=(404, 503))
@bp.get("/decisions/<order_id>")
def decision(order_id: str):
    """What was decided for an order id (any replica with a read lease; 404: nothing yet)."""
    return jsonify(store().decision(order_id))


@doc(body=BuySchema, responses={200: OutcomeSchema}, errors=(421, 503))
@bp.post(f"/resolve/{BOOK_ID}")
def resolve(book_id: int):
    """Outcome of `order_id`; an undecided order is fenced as aborted (primary only)."""
    body = load_body(BuySchema)
    _require_primary()
    lines = [{"book_id": book_id, "quantity": body["quantity"]}]
    return jsonify(store().resolve(body["order_id"], lines))


@doc(body=TakeSchema, responses={200: OutcomeSchema}, errors=(421, 503))
@bp.post("/resolve")
def resolve_order():
    """Outcome of an order of several lines; undecided, it is fenced as aborted (primary only)."""
    body = load_body(TakeSchema)
    _require_primary()
    return jsonify(store().resolve(body["order_id"], body["items"]))


# -- staff's catalog (the front-end checks the staff token) ---------------------
DELETED = {"true": True, "false": False, "any": None}


@doc(
    responses=page_or_list(StaffBookPageSchema, StaffBookSchema),
    errors=(400, 503),
    query={"deleted": {"type": "string", "enum": list(DELETED)}, **PAGE_QUERY},
)
@bp.get("/books")
def list_books():
    """A page of withdrawn books (`deleted=true`), listed ones (`false`, the default) or
    all (`any`), by id; `next`: the next page's cursor."""
    choice = request.args.get("deleted", "false")
    if choice not in DELETED:
        raise ApiError(400, "deleted: must be true, false or any")
    limit = PAGE_LIMIT.read() if paged() else WHOLE
    found = store().books(DELETED[choice], limit, read_after(ID_KEY))
    return _paged({**found, "entries": STAFF_BOOK_OUT.dump(found["entries"], many=True)})


@doc(body=KeyedNewBookSchema, responses={201: StaffBookSchema}, errors=(421, 422, 503))
@bp.post("/books")
def create_book():
    """A new book with the next id (primary only); the same idempotency key, the same book."""
    body = load_body(KeyedNewBookSchema)
    _require_primary()
    key, by = body.pop("idempotency_key"), body.pop("by", None)
    return jsonify(STAFF_BOOK_OUT.dump(store().create(body, key, _origin(), by))), 201


@doc(body=ImportBatchSchema, responses={200: ImportDoneSchema}, errors=(421, 422, 503))
@bp.post("/books/import")
def import_books():
    """New books in one transaction (primary only); a row repeating a book's title and
    topic is skipped, naming it, so a batch sent again adds nothing."""
    body = load_body(ImportBatchSchema)
    _require_primary()
    done = store().import_books(body["rows"], body["refused"], _origin(), body.get("by"))
    return jsonify(IMPORT_OUT.dump(done))


@doc(body=ActedEditSchema, responses={200: StaffBookSchema}, errors=(404, 421, 422, 503))
@bp.patch(f"/books/{BOOK_ID}")
def edit_book(book_id: int):
    """Change any of title, topic, cost, quantity of a listed book (primary only)."""
    body = load_body(ActedEditSchema)
    _require_primary()
    by = body.pop("by", None)
    return jsonify(STAFF_BOOK_OUT.dump(store().edit(book_id, body, _origin(), by=by)))


@doc(body=ActedWithdrawSchema, responses={200: StaffBookSchema}, errors=(404, 421, 422, 503))
@bp.delete(f"/books/{BOOK_ID}")
def withdraw_book(book_id: int):
    """Soft delete with a comment (primary only); already withdrawn: unchanged."""
    body = load_body(ActedWithdrawSchema)
    _require_primary()
    book = store().withdraw(book_id, body["comment"], _origin(), body.get("by"))
    return jsonify(STAFF_BOOK_OUT.dump(book))


@doc(
    body=ActedSchema,
    body_required=False,
    responses={200: StaffBookSchema},
    errors=(404, 421, 422, 503),
)
@bp.post(f"/books/{BOOK_ID}/restore")
def restore_book(book_id: int):
    """Back on sale with its stock (primary only); already listed: unchanged."""
    by = load_body(ActedSchema, optional=True).get("by")
    _require_primary()
    return jsonify(STAFF_BOOK_OUT.dump(store().restore(book_id, _origin(), by)))


# -- staff accounts and the audit trail (docs/staff.md) --------------------------
ACCOUNT_OUT = AccountSchema()
STAFF_NAME = "<string(maxlength=64):name>"
AUDIT_QUERY = {
    "book": AUDIT_BOOK.schema,
    "staff": {"type": "string", "maxLength": 64},
    "action": {"type": "string", "enum": list(AUDIT_ACTIONS)},
    "from": {"type": "string", "description": "ISO 8601 UTC, inclusive"},
    "to": {"type": "string", "description": "ISO 8601 UTC, exclusive"},
    "limit": AUDIT_LIMIT.schema,
    "after": {**AUDIT_AFTER.schema, "description": "the cursor of the next page"},
}


@doc(responses={200: AccountSchema(many=True)}, errors=(503,))
@bp.get("/staff")
def list_accounts():
    """Every staff account, by name (never a password hash)."""
    return jsonify(AccountSchema(many=True).dump(store().staff_accounts()))


@doc(responses={200: StaffAccountSchema}, errors=(404, 503))
@bp.get(f"/staff/{STAFF_NAME}")
def get_account(name: str):
    """One account with its hash and version: what a front-end checks a sign-in against."""
    found = store().staff_account(name)
    return jsonify(StaffAccountSchema().dump({**found, "disabled": bool(found["disabled_at"])}))


@doc(body=NewAccountRowSchema, responses={201: AccountSchema}, errors=(409, 421, 422, 503))
@bp.post("/staff")
def add_account():
    """A new staff account (primary only); a name is never reused (409)."""
    body = load_body(NewAccountRowSchema)
    _require_primary()
    made = store().add_account(body["name"], body["role"], body["password_hash"], body.get("by"))
    return jsonify(ACCOUNT_OUT.dump(made)), 201


@doc(
    body=ActedSchema,
    body_required=False,
    responses={200: AccountSchema},
    errors=(404, 421, 422, 503),
)
@bp.post(f"/staff/{STAFF_NAME}/disable")
def disable_account(name: str):
    """Disable an account (primary only); disabling it again changes nothing."""
    by = load_body(ActedSchema, optional=True).get("by")
    _require_primary()
    return jsonify(ACCOUNT_OUT.dump(store().disable_account(name, by)))


@doc(responses={200: AuditPageSchema}, errors=(400, 503), query=AUDIT_QUERY)
@bp.get("/audit")
def audit_trail():
    """Audit entries newest first, one page; `next`: the cursor of the next page."""
    wanted = {
        "book": AUDIT_BOOK.read(),
        "staff": request.args.get("staff"),
        "action": request.args.get("action"),
        "from": request.args.get("from"),
        "to": request.args.get("to"),
    }
    if wanted["staff"] is not None and len(wanted["staff"]) > 64:
        raise ApiError(400, "staff: at most 64 characters")
    if wanted["action"] is not None and wanted["action"] not in AUDIT_ACTIONS:
        raise ApiError(400, f"action: one of {', '.join(AUDIT_ACTIONS)}")
    after = AUDIT_AFTER.read()
    return jsonify(store().audit_trail(wanted, AUDIT_LIMIT.read(), after))


# -- healing a replica (design §7 rule 9) -------------------------------------------
SNAPSHOT_FILE = {snapshot.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}


def healer() -> Healer:
    return current_app.extensions["catalog.replica"].healer


@doc(responses={200: SNAPSHOT_FILE}, errors=(421,))
@bp.get("/snapshot")
def snapshot_out():
    """The primary's data as one SQLite file (VACUUM INTO), for a replica to heal from
    (primary only); header X-Bazar-Data-Epoch: the epoch of its base."""
    _require_primary()
    ctx = store().ctx
    data, epoch = snapshot.make(ctx.cluster.db_path(ctx.node.name))
    role = store().role
    if not role.is_writer() or epoch != role.epoch:  # checked again as it is answered
        data.close()
        raise ApiError(421, "not the primary", primary=role.group.view().holder)
    headers = {
        "X-Bazar-Data-Epoch": str(epoch),
        "Content-Length": str(os.fstat(data.fileno()).st_size),
    }
    body = wrap_file(request.environ, data, snapshot.CHUNK)  # read from disk as it is sent
    return Response(body, mimetype=snapshot.MEDIA_TYPE, headers=headers, direct_passthrough=True)


@doc(body=RowsWantedSchema, responses={200: RowsSchema}, errors=(409, 413, 421))
@bp.post("/sync/rows")
def rows_wanted():
    """The rows a replica of the base this writer's base was made from lacks: ours at
    position `since` or later and ours of each key it holds there (primary only)."""
    body = load_body(RowsWantedSchema)
    _require_primary()
    with store().engine.connect() as conn:
        return jsonify(catchup.answer(conn, body))


@doc(body=SNAPSHOT_FILE, responses={200: SnapshotInstalledSchema}, errors=(409,))
@bp.put("/snapshot")
def snapshot_in():
    """Install a snapshot of the primary (what its GET /snapshot answers) in one
    transaction: a newer epoch replaces this replica's data, the same epoch is merged
    (newer version wins). A bad file, or an epoch older than this replica's base or
    than the newest lease, is refused and changes nothing (replicas only)."""
    role = store().role
    if role.epoch:
        raise ApiError(409, f"this catalog holds the lease of epoch {role.epoch}")
    if request.mimetype not in (snapshot.MEDIA_TYPE, "application/octet-stream"):
        raise ApiError(415, f"body: Content-Type must be {snapshot.MEDIA_TYPE}")
    # In memory: the request's signature covers the body (the heal path's GET streams).
    return jsonify(healer().install(request.get_data(cache=True)))


add_sync_routes(
    bp,
    lambda: current_app.extensions["catalog.replica"],
    CatalogPushSchema,
    CatalogStateSchema,
    query={"since": {**QUERY_SINCE.schema, "description": "only rows stamped this epoch or later"}},
    state_errors=(400, 413),  # 413: a whole state of over `replica.WHOLE_STATE_ROWS` rows
)


def early_routes(catalog: CatalogStore, replica) -> dict[str, SignedRoute]:
    """The routes every buy crosses, served before Flask (common.webkit.early), each as
    its view above serves it."""
    return {
        "/batch/orders": SignedRoute(BatchSchema, lambda body, _: took_all(catalog, body)),
        "/sync": SignedRoute(CatalogPushSchema, lambda body, _: replica.receive(body)),
    }
