"""CSV for staff's spreadsheets: proper quoting, and no cell a spreadsheet would run.

A text cell that starts with =, +, -, @, a tab or a carriage return is a
formula to Excel, LibreOffice and Google Sheets (CSV injection, OWASP); it
gets a leading apostrophe, which they show as text. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Iterable[dict], header: bool = True) -> str:
    """A header line, then one line per row (RFC 4180 quoting, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return out.getvalue()
