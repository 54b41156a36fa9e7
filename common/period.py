"""The period of a revenue report: ?from=YYYY-MM-DD&to=YYYY-MM-DD&by=day|book (UTC days).

Left out, `to` is today (UTC) and `from` is `to`: one day. Both ends count.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from common.web import DATE_SCHEMA, ApiError, QueryChoice, query_date

BY = QueryChoice("by", ("day", "book"))
MAX_DAYS = 3660  # ten years in one report
QUERY = {
    "from": {**DATE_SCHEMA, "description": "first UTC day (default: `to`)"},
    "to": {**DATE_SCHEMA, "description": "last UTC day (default: today)"},
    "by": BY.schema,
}


def read_period() -> tuple[date, date, str]:
    end = query_date("to") or datetime.now(UTC).date()
    start = query_date("from") or end
    if start > end:
        raise ApiError(400, "from: must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise ApiError(400, f"from, to: at most {MAX_DAYS} days in one report")
    return start, end, BY.read()
