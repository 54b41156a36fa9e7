"""Pages of a long list (docs/scale.md §1): `limit`, an opaque `after` cursor, `Link: next`.

A cursor is URL-safe base64 (no padding) of a short JSON list: the sort key
of the last row given (`[id]`, or `[rank, id]` for word search). Pages are
keyset pages: the next one starts past that key, so page 10,000 costs what
page 1 costs. The front-end passes a cursor on untouched; the catalog, which
made it, decodes and checks it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from urllib.parse import urlencode

from flask import Response, request

from common.fields import SQLITE_MAX_INT
from common.web import ApiError, QueryInt

PAGE_LIMIT = QueryInt("limit", default=100, low=1, high=1000)
CURSOR_MAX = 200  # characters: a cursor is a key of one or two numbers
CURSOR_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": CURSOR_MAX,
    "pattern": "^[A-Za-z0-9_-]+$",
    "description": "opaque: the cursor a Link rel=next carries",
}
NOT_A_CURSOR = "after: not a cursor of this list"
ID_KEY = (int,)  # a page in id order
RANK_KEY = (float, int)  # a page of word search: best first, ties by id


def encode(key: Sequence) -> str:
    """The cursor of a sort key (a list of numbers)."""
    text = json.dumps(list(key), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode(cursor: str, kinds: tuple[type, ...]) -> list:
    """The sort key in `cursor`, shaped like `kinds` (400 if it is not one of ours)."""
    if not cursor or len(cursor) > CURSOR_MAX:
        raise ApiError(400, NOT_A_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, NOT_A_CURSOR) from None
    if not (isinstance(key, list) and len(key) == len(kinds)):
        raise ApiError(400, NOT_A_CURSOR)
    return [_part(value, kind) for value, kind in zip(key, kinds, strict=True)]


def _part(value, kind: type):
    if isinstance(value, bool):  # JSON true is not a number here
        raise ApiError(400, NOT_A_CURSOR)
    if kind is int and isinstance(value, int) and 0 <= value <= SQLITE_MAX_INT:
        return value
    if kind is float and isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise ApiError(400, NOT_A_CURSOR)


WHOLE = 2**62  # the "limit" of a list asked for whole (`paged`)


def paged() -> bool:
    """Whether the caller asked for pages (`limit` or `after`). A front-end of the
    previous release asks for neither and reads the whole list, as before pages."""
    return "limit" in request.args or "after" in request.args


def read_after(kinds: tuple[type, ...]) -> list | None:
    """The `after` query parameter, decoded (None: the first page)."""
    text = request.args.get("after")
    return None if text is None else decode(text, kinds)


def read_cursor() -> str | None:
    """`after` as the front-end passes it on: only its form checked (the catalog decodes)."""
    text = request.args.get("after")
    if text is not None:
        ok = 0 < len(text) <= CURSOR_MAX and text.isascii()
        if not ok or not text.replace("-", "").replace("_", "").isalnum():
            raise ApiError(400, NOT_A_CURSOR)
    return text


def cut(rows: list, limit: int, key: Callable[[dict], Sequence]) -> tuple[list, str | None]:
    """`rows` (up to limit + 1 of them, as read) as a page and the next page's cursor
    (None: this is the last page)."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode(key(page[-1]))


def page(rows: list, cursor) -> dict:
    """A page as a catalog answers it to a front-end (as GET /audit does)."""
    return {"entries": rows, "next": cursor}


def as_page(answer: dict | list) -> dict:
    """A catalog's answer as a page: a catalog of the previous release answers the whole
    list (during a roll, or after rolling back), which is one last page."""
    return page(answer, None) if isinstance(answer, list) else answer


def link_next(response: Response, params: dict, cursor) -> Response:
    """Add `Link: <this path?params&after=cursor>; rel="next"` while more remain."""
    if cursor is not None:
        query = urlencode({**{k: v for k, v in params.items() if v is not None}, "after": cursor})
        response.headers["Link"] = f'<{request.base_url}?{query}>; rel="next"'
    return response
