"""Bulk import on the front-end (docs/scale.md §4): check each row, forward the good ones.

Each row is checked with the rules of `POST /books` (title and topic trimmed
of spaces first); a bad row is refused with its line and why, and never
stops the others. The good ones go to the catalog primary in one call, like
any staff write (the router retries a 421 or 503 with the same write id).
"""

from __future__ import annotations

from marshmallow import ValidationError

from common.cluster import Router
from common.shapes import NewBookSchema
from common.web import validation_message
from frontend.cache import BookCache
from frontend.staff_services import write_book

ROW = NewBookSchema()
MAX_BODY = 4 * 1024 * 1024  # 1000 rows of the longest titles, in any script


def check(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(good rows with their lines, refused rows as {"line", "why"})."""
    good, refused = [], []
    for row in rows:
        fields = {k: _trimmed(v) for k, v in row.items() if k != "line"}
        try:
            good.append({"line": row["line"], **ROW.load(fields)})
        except ValidationError as e:
            refused.append({"line": row["line"], "why": validation_message(e.messages)})
    return good, refused


def _trimmed(value):
    return value.strip(" ") if isinstance(value, str) else value


def import_rows(router: Router, cache: BookCache, rows: list[dict], by: dict) -> dict:
    """Every row's fate: added (its new id), skipped (the book it repeats) or refused."""
    good, refused = check(rows)
    done = {"added": [], "skipped": []}
    if good:
        body = {"rows": good, "refused": len(refused), "by": by}
        done = write_book(router, cache, "POST", "/books/import", body)
    return {"added": done["added"], "skipped": done["skipped"], "refused": refused}
