"""Bulk import at the writer (docs/scale.md §4): one batch, one transaction, one entry.

A row whose title and topic, trimmed of spaces, equal those of a book that
exists (listed or withdrawn) or of an earlier row of the batch is skipped,
naming that book. So sending a batch again adds nothing, whatever became of
the first try: idempotency rests on the data, not on a key that expires.
The batch's new books take the ids after the largest, in one executemany
INSERT (through `books`, so its triggers keep every index of it in step),
and one audit entry with action `import` records the batch.

A retry of the same request (the front-end's router sends the same write
id after a 421 or a 503) finds its audit entry: the books that request
added (ids first_id..last_id) are answered as added again, and pushed again
so an earlier unacknowledged try lands.
"""

from __future__ import annotations

import json

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import Connection

from catalog import audit
from catalog.rows import books, stamp

COLUMNS = ("id", "title", "topic", "cost", "quantity", "version", "stamp")
# The rows whose trimmed title is one of the batch's: served by the (trim(title),
# trim(topic)) index, whatever the size of the catalog.
SAME_TITLES = select(books).where(func.trim(books.c.title).in_(bindparam("titles", expanding=True)))
BY_IDS = select(books).where(books.c.id.between(bindparam("low"), bindparam("high")))
NEXT_ID = select(func.coalesce(func.max(books.c.id), 0) + 1)


def trimmed(text: str) -> str:
    """Spaces off both ends, as SQLite's trim() takes them."""
    return text.strip(" ")


def key_of(row: dict) -> tuple[str, str]:
    return trimmed(row["title"]), trimmed(row["topic"])


def import_batch(rows: list[dict], refused: int, by: dict | None):
    """The store's `change` for one batch: (answer, replicated entry)."""

    def change(conn: Connection):
        retried = audit.seen(conn, by, "import")
        if retried:
            return _again(conn, rows, retried)
        known = _existing(conn, rows)
        added, skipped, new_rows = [], [], []
        next_id = conn.execute(NEXT_ID).scalar_one()
        for row in rows:
            key = key_of(row)
            if key in known:
                skipped.append({"line": row["line"], "id": known[key][0], "why": known[key][1]})
                continue
            book_id = next_id + len(new_rows)
            known[key] = (book_id, f"same title and topic as line {row['line']} (book {book_id})")
            title, topic = key
            fields = {"title": title, "topic": topic, "id": book_id, "version": 1}
            new_rows.append({**row, **fields, "stamp": stamp(conn)})
            added.append({"line": row["line"], "id": book_id})
        if new_rows:
            conn.execute(insert(books), [{c: r[c] for c in COLUMNS} for r in new_rows])
        made = _books_between(conn, next_id, next_id + len(new_rows) - 1)
        summary = _summary(added, skipped, refused)
        entry = {"books": made, "audit": audit.append(conn, by, "import", None, None, summary)}
        return {"added": added, "skipped": skipped}, entry

    return change


def _existing(conn: Connection, rows: list[dict]) -> dict[tuple[str, str], tuple[int, str]]:
    """(title, topic) -> (the lowest id of a book that has them, why a row is skipped)."""
    titles = sorted({key_of(row)[0] for row in rows})
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for book in conn.execute(SAME_TITLES, {"titles": titles}).mappings():
        key = (trimmed(book["title"]), trimmed(book["topic"]))
        if key not in found or book["id"] < found[key][0]:
            found[key] = (book["id"], f"same title and topic as book {book['id']}")
    return found


def _books_between(conn: Connection, low: int, high: int) -> list[dict]:
    if high < low:
        return []
    return [dict(r) for r in conn.execute(BY_IDS, {"low": low, "high": high}).mappings()]


def _summary(added: list, skipped: list, refused: int) -> dict:
    return {
        "added": len(added),
        "first_id": added[0]["id"] if added else None,
        "last_id": added[-1]["id"] if added else None,
        "skipped": len(skipped),
        "refused": refused,
    }


def _again(conn: Connection, rows: list[dict], entry: dict):
    """The answer to a retry of a request already made: what it added, it added."""
    summary = json.loads(entry["after"] or "{}")
    low, high = summary.get("first_id"), summary.get("last_id")
    known = _existing(conn, rows)
    added, skipped, seen = [], [], set()
    for row in rows:
        key = key_of(row)
        # Every row of a batch already made has its book, unless it was renamed since.
        book_id, why = known.get(key, (None, "added by an earlier try of this request"))
        if book_id is not None and low is not None and low <= book_id <= high and key not in seen:
            added.append({"line": row["line"], "id": book_id})
        else:
            skipped.append({"line": row["line"], "id": book_id, "why": why})
        seen.add(key)
    made = _books_between(conn, low, high) if low is not None else []
    return {"added": added, "skipped": skipped}, {"books": made, "audit": entry}
