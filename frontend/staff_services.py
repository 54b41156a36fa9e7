"""What the front-end does for staff: the catalog's books and headquarters' revenue.

Writes go to the catalog primary like every catalog write; this front-end's
cache drops the book (and, when a listing changed, every search) at once,
the others hear it from the primary. Reports come from an order replica
that vouches it holds every acknowledged order (see `order.reports`).
"""

from __future__ import annotations

from collections.abc import Iterator

from common import money
from common.cluster import Router
from common.http import Unreachable
from common.pages import as_page
from common.web import ApiError
from frontend.cache import BookCache
from frontend.csv_export import to_csv
from frontend.services import call, relay

EXPORT_PAGE = 1000  # rows per catalog read of an export
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


def books(router: Router, deleted: str, limit: int, after: str | None = None) -> dict:
    """A page of staff's list, read from a catalog replica (never from the cache):
    {"entries", "next"}."""
    params = {"deleted": deleted, "limit": limit, **({"after": after} if after else {})}
    return as_page(relay(call(router, "read", "catalog", "GET", "/books", params=params)))


def book_pages(router: Router, first: dict | None = None) -> Iterator[list[dict]]:
    """Every book, listed or withdrawn, a page at a time in id order (memory stays flat);
    `first`: the first page if it was read already."""
    page = first or books(router, "any", EXPORT_PAGE)
    while True:
        yield page["entries"]
        if page["next"] is None:
            return
        page = books(router, "any", EXPORT_PAGE, page["next"])


def books_csv(router: Router) -> Iterator[str]:
    """Every book with all its columns as CSV, a page of lines at a time; cost as money
    text (50.00). The first page is read before this returns, so a catalog that cannot
    answer is a 503 rather than a file cut short."""
    first = books(router, "any", EXPORT_PAGE)

    def lines() -> Iterator[str]:
        yield to_csv(BOOK_COLUMNS, ())
        for entries in book_pages(router, first):
            rows = ({**book, "cost": money.text(book["cost"])} for book in entries)
            yield to_csv(BOOK_COLUMNS, rows, header=False)

    return lines()


REPORT_READ_TIMEOUT = 60.0  # seconds: a year by book over a million orders takes several


def revenue(router: Router, params: dict) -> dict:
    """The report of the first order replica that vouches for it; if none can, the
    first answer, marked incomplete (its `notes` say why)."""
    first, timeout = None, (router.client.timeout.connect_timeout, REPORT_READ_TIMEOUT)
    for node in router.membership.read_order("order"):
        try:
            response = router.client.request(
                node, "GET", "/reports/revenue", params=params, timeout=timeout
            )
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
    wanted = {row["book_id"] for row in report["rows"]}
    try:
        titles = {
            b["id"]: b["title"] for page in book_pages(router) for b in page if b["id"] in wanted
        }
    except ApiError:
        return report
    for row in report["rows"]:
        row["title"] = titles.get(row["book_id"])
    return report


def revenue_csv(report: dict) -> str:
    key = ("day",) if report["by"] == "day" else ("book_id", "title")
    return to_csv((*key, "orders", "copies", "revenue"), report["rows"])
