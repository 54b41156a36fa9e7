"""frontend/staff_services.py: /books.csv read from the catalog a page of 1000 at a time,
lazily (memory stays flat), and the revenue report's titles found page by page."""

from __future__ import annotations

import csv
import io

import pytest

from common.web import ApiError
from frontend import staff_services
from frontend.staff_services import EXPORT_PAGE
from tests.unit.test_frontend_lease import Reply


class PagedCatalog:
    """Stands in for the router: `count` books, in pages as the catalog's /books gives."""

    def __init__(self, count: int, fail_after: int | None = None):
        self.count = count
        self.fail_after = fail_after  # pages answered before a 503
        self.asked: list[dict] = []

    def read(self, service: str, method: str, path: str, params=None, **kw):
        assert (service, method, path) == ("catalog", "GET", "/books")
        self.asked.append(dict(params))
        if self.fail_after is not None and len(self.asked) > self.fail_after:
            return Reply(503, {"message": "no replica"})
        start = int(params.get("after", "0").removeprefix("c")) + 1
        last = min(start + params["limit"] - 1, self.count)
        rows = [_book(i) for i in range(start, last + 1)]
        return Reply(200, {"entries": rows, "next": f"c{last}" if last < self.count else None})


def _book(i: int) -> dict:
    return {"id": i, "title": f"=Book {i}", "topic": "t", "cost": 5.0, "quantity": 1,
            "version": 1, "deleted_at": None, "comment": None}  # fmt: skip


def test_the_export_reads_page_by_page_as_it_is_sent():
    catalog = PagedCatalog(2500)
    lines = staff_services.books_csv(catalog)
    assert len(catalog.asked) == 1  # the first page, before the answer starts
    header = next(lines)
    assert header.startswith("id,title,")
    first = next(lines)
    assert len(catalog.asked) == 1 and first.count("\r\n") == EXPORT_PAGE
    rest = list(lines)
    assert [a["limit"] for a in catalog.asked] == [EXPORT_PAGE] * 3
    assert [a.get("after") for a in catalog.asked] == [None, "c1000", "c2000"]
    assert all(a["deleted"] == "any" for a in catalog.asked)
    rows = list(csv.DictReader(io.StringIO(header + first + "".join(rest), newline="")))
    assert [int(r["id"]) for r in rows] == list(range(1, 2501))
    assert rows[0]["title"] == "'=Book 1" and rows[0]["cost"] == "5.00"


def test_a_catalog_that_cannot_answer_first_is_a_503_before_anything_is_sent():
    with pytest.raises(ApiError) as refused:
        staff_services.books_csv(PagedCatalog(10, fail_after=0))
    assert refused.value.status == 503


def test_a_failure_later_cuts_the_export_short_rather_than_end_it():
    lines = staff_services.books_csv(PagedCatalog(2500, fail_after=1))
    next(lines), next(lines)
    with pytest.raises(ApiError):
        next(lines)


def test_an_old_catalogs_whole_list_is_one_last_page():
    class OldCatalog(PagedCatalog):
        def read(self, service, method, path, params=None, **kw):
            self.asked.append(dict(params))
            return Reply(200, [_book(i) for i in range(1, 4)])

    catalog = OldCatalog(3)
    text = "".join(staff_services.books_csv(catalog))
    assert len(catalog.asked) == 1 and text.count("\r\n") == 4


def test_the_route_streams_every_page_to_the_client(frontend_app):
    catalog = PagedCatalog(2300)
    frontend_app.extensions["frontend.router"] = catalog
    token = frontend_app.config["test.cluster"].staff_token
    client = frontend_app.test_client()
    response = client.get("/books.csv", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="books.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert [int(r["id"]) for r in rows] == list(range(1, 2301))
    assert len(catalog.asked) == 3
