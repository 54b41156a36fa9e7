"""What the front-end does for staff: the catalog's books and headquarters' revenue.

Writes go to the catalog primary like every catalog write; this front-end's
cache drops the book (and, when a listing changed, every search) at once,
the others hear it from the primary. Reports come from an order replica
that vouches it holds every acknowledged order (see `order.reports`).
"""

from __future__ import annotations

from common import money
from common.cluster import Router
from common.http import Unreachable
from common.web import ApiError
from frontend.cache import BookCache
from frontend.csv_export import to_csv
from frontend.services import call, relay

BOOK_COLUMNS = (
    "id", "title", "topic", "cost", "quantity", "version", "deleted_at", "comment",
)  # fmt: skip


def write_book(
    router: Router,
    cache: BookCache,
    method: str,
    path: str,
    body: dict | None = None,
    book_id: int | None = None,
    listing: bool = True,
) -> dict:
    """A staff write at the catalog primary; `listing`: searches may list other books now."""
    try:
        response = call(router, "write", "catalog", method, path, json=body)
    finally:
        if book_id is not None:
            cache.invalidate(book_id)
        if listing:
            cache.invalidate_searches()
    return relay(response, ok=(200, 201))


def books(router: Router, deleted: str) -> list[dict]:
    """Staff's list, read from a catalog replica (never from the cache)."""
    response = call(router, "read", "catalog", "GET", "/books", params={"deleted": deleted})
    return relay(response)


def books_csv(router: Router) -> str:
    """Every book, listed or withdrawn, with all its columns; cost as money text (50.00)."""
    rows = [{**book, "cost": money.text(book["cost"])} for book in books(router, "any")]
    return to_csv(BOOK_COLUMNS, rows)


def revenue(router: Router, params: dict) -> dict:
    """The report of the first order replica that vouches for it; if none can, the
    first answer, marked incomplete (its `notes` say why)."""
    first = None
    for node in router.membership.read_order("order"):
        try:
            response = router.client.request(node, "GET", "/reports/revenue", params=params)
        except Unreachable:
            continue
        if 400 <= response.status_code < 500:
            relay(response)
        if response.status_code != 200:
            continue
        report = response.json()
        if report.get("complete"):
            return _titled(router, report)
        first = first or report
    if first is None:
        raise ApiError(503, "no order replica could make the report")
    return _titled(router, first)


def _titled(router: Router, report: dict) -> dict:
    """By book: each row gets its book's title (left out if no catalog can say)."""
    if report.get("by") != "book" or not report.get("rows"):
        return report
    try:
        titles = {b["id"]: b["title"] for b in books(router, "any")}
    except ApiError:
        return report
    for row in report["rows"]:
        row["title"] = titles.get(row["book_id"])
    return report


def revenue_csv(report: dict) -> str:
    key = ("day",) if report["by"] == "day" else ("book_id", "title")
    return to_csv((*key, "orders", "copies", "revenue"), report["rows"])
