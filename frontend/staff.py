"""Staff's routes on the front-end: manage the catalog, read revenue (staff token).

Every write is a catalog write at the primary, replicated and fenced like
the others (`frontend.staff_services`); reports come from order replicas.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from common.identity.roles import CLERK, MANAGER
from common.openapi import doc
from common.pages import CURSOR_SCHEMA, PAGE_LIMIT, link_next, read_cursor
from common.period import QUERY as PERIOD
from common.period import read_period
from common.shapes import (
    EditSchema,
    ImportAnswerSchema,
    ImportSchema,
    NewBookSchema,
    RevenueSchema,
    StaffBookSchema,
    WithdrawSchema,
)
from common.web import QueryChoice, load_body
from frontend import imports, staff_services
from frontend.identity import actor, require, staff_role
from frontend.routes import BOOK_ID, KEY_SCHEMA, idempotency_key

staff = Blueprint("staff", __name__)
DELETED = QueryChoice("deleted", ("false", "true"))
CSV = {"text/csv": {"schema": {"type": "string"}}}


def _deps():
    ext = current_app.extensions
    return ext["frontend.router"], ext["frontend.cache"]


# -- the catalog -----------------------------------------------------------------
@doc(
    responses={200: StaffBookSchema(many=True)},
    errors=(400, 503),
    auth="staff",
    query={"deleted": DELETED.schema, "limit": PAGE_LIMIT.schema, "after": CURSOR_SCHEMA},
)
@staff.get("/books")
@staff_role(CLERK)
def list_books():
    """Staff: books on sale (`deleted=false`, the default) or withdrawn, with comments,
    by id, a page at a time (Link rel=next)."""
    deleted, limit, after = DELETED.read(), PAGE_LIMIT.read(), read_cursor()
    page = staff_services.books(_deps()[0], deleted, limit, after)
    kept = {k: v for k, v in request.args.items() if k != "after"}  # every other one
    return link_next(jsonify(page["entries"]), kept, page["next"])


@doc(responses={200: CSV}, errors=(503,), auth="staff")
@staff.get("/books.csv")
@staff_role(CLERK)
def export_books():
    """Staff: every book with all its columns, as CSV (cells safe from formula injection),
    streamed: read from the catalog 1000 rows at a time."""
    lines = staff_services.books_csv(_deps()[0])
    # the request's context lives on while it streams: each page's call carries its id
    return _csv(stream_with_context(lines), "books.csv")


@doc(
    body=NewBookSchema,
    responses={201: StaffBookSchema},
    errors=(422, 503),
    auth="staff",
    headers={"Idempotency-Key": KEY_SCHEMA},
)
@staff.post("/books")
@staff_role(CLERK)
def add_book():
    """Staff: add a book (its id is the catalog's choice); Idempotency-Key: never twice."""
    body = {**load_body(NewBookSchema), "idempotency_key": idempotency_key(), "by": actor()}
    book = staff_services.write_book(*_deps(), "POST", "/books", body)
    return jsonify(book), 201


@doc(body=ImportSchema, responses={200: ImportAnswerSchema}, errors=(413, 503), auth="staff")
@staff.post("/books/import")
@staff_role(CLERK)
def import_books():
    """Staff: add 1-1000 books; a bad row is refused (line and why), a row whose title and
    topic a book has is skipped (naming it): the same rows sent again add nothing."""
    request.max_content_length = imports.MAX_BODY  # 1000 rows are more than one book
    rows = load_body(ImportSchema)["rows"]
    return jsonify(imports.import_rows(*_deps(), rows, actor()))


@doc(body=EditSchema, responses={200: StaffBookSchema}, errors=(404, 503), auth="staff")
@staff.patch(f"/books/{BOOK_ID}")
@staff_role(CLERK)
def edit_book(book_id: int):
    """Staff: change any of title, topic, cost, quantity of a book on sale (a clerk: only
    the quantity)."""
    body = load_body(EditSchema)
    if set(body) - {"quantity"}:
        require(MANAGER)
    listing = bool({"title", "topic"} & set(body))
    path, body = f"/books/{book_id}", {**body, "by": actor()}
    return jsonify(staff_services.write_book(*_deps(), "PATCH", path, body, book_id, listing))


@doc(body=WithdrawSchema, responses={200: StaffBookSchema}, errors=(404, 503), auth="staff")
@staff.delete(f"/books/{BOOK_ID}")
@staff_role(MANAGER)
def withdraw_book(book_id: int):
    """Manager: withdraw a book (soft delete, `comment` required); its row and stock stay."""
    body = {**load_body(WithdrawSchema), "by": actor()}
    return jsonify(
        staff_services.write_book(*_deps(), "DELETE", f"/books/{book_id}", body, book_id)
    )


@doc(responses={200: StaffBookSchema}, errors=(404, 503), auth="staff")
@staff.post(f"/books/{BOOK_ID}/restore")
@staff_role(MANAGER)
def restore_book(book_id: int):
    """Manager: put a withdrawn book back on sale, with the stock it had."""
    path = f"/books/{book_id}/restore"
    return jsonify(staff_services.write_book(*_deps(), "POST", path, {"by": actor()}, book_id))


# -- headquarters ----------------------------------------------------------------
@doc(
    responses={200: {"application/json": {"schema": RevenueSchema}, **CSV}},
    errors=(400, 503),
    auth="staff",
    query=PERIOD,
)
@staff.get("/reports/revenue")
@staff_role(MANAGER)
def revenue():
    """Manager: revenue of confirmed orders by UTC day or book; CSV with Accept: text/csv."""
    report = _report()
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        return _report_csv(report)
    return jsonify(report)


@doc(responses={200: CSV}, errors=(400, 503), auth="staff", query=PERIOD)
@staff.get("/reports/revenue.csv")
@staff_role(MANAGER)
def revenue_csv():
    """Manager: the revenue report as CSV."""
    return _report_csv(_report())


def _report() -> dict:
    start, end, by = read_period()
    params = {"from": start.isoformat(), "to": end.isoformat(), "by": by}
    return staff_services.revenue(_deps()[0], params)


def _report_csv(report: dict) -> Response:
    name = f"revenue-{report['from']}-{report['to']}-by-{report['by']}.csv"
    response = _csv(staff_services.revenue_csv(report), name)
    response.headers["Bazar-Report-Complete"] = "true" if report["complete"] else "false"
    return response


def _csv(body: str | Iterable[str], filename: str) -> Response:
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
