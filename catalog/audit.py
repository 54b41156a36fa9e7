"""The audit trail of staff writes (docs/staff.md): appended at the holder, read anywhere.

An entry is appended in the transaction of the write it records, and goes out
in the same replicated entry, so no replica ever holds one without the other.
One entry per staff request: the request's write id is unique, so a retry of
the same request (the front-end retries with the same body) adds none.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from catalog.models import AuditEntry
from catalog.rows import now_text, stamp
from common.web import ApiError

audit_log = AuditEntry.__table__
UNKNOWN = "(internal)"  # a write that came without an identity: a tool or an older front-end


def seen(conn: Connection, by: dict | None, action: str, book_id=None, name=None) -> dict | None:
    """The entry of this request if it was already written (the request is a retry):
    None if there is none. A write id already used for another write (another action,
    book or account) is a 422, like an Idempotency-Key reused for another purchase."""
    write_id = (by or {}).get("write_id")
    if not write_id:
        return None
    found = conn.execute(select(audit_log).where(audit_log.c.write_id == write_id)).mappings()
    entry = found.first()
    if entry is None:
        return None
    entry = dict(entry)
    same = entry["action"] == action and (book_id is None or entry["book_id"] == book_id)
    if name is not None:
        same = same and json.loads(entry["after"] or "{}").get("name") == name
    if not same:
        raise ApiError(422, "this write id was used for another write")
    return entry


def append(conn: Connection, by: dict | None, action: str, book_id, before, after) -> dict:
    """Record one staff write (the caller checked `seen` first)."""
    by = by or {}
    write_id = by.get("write_id") or uuid.uuid4().hex
    row = {
        "id": conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0) + 1)).scalar_one(),
        "write_id": write_id,
        "at": now_text(),
        "staff": by.get("staff") or UNKNOWN,
        "role": by.get("role") or UNKNOWN,
        "action": action,
        "book_id": book_id,
        "before": None if before is None else json.dumps(before, sort_keys=True),
        "after": None if after is None else json.dumps(after, sort_keys=True),
        "request_id": by.get("request_id"),
        "stamp": stamp(conn),
    }
    conn.execute(insert(audit_log).values(**row))
    return row


# A column's name as staff know the field from the API (StaffBookSchema).
SHOWN_AS = {"delete_comment": "comment"}


def changed(old: dict | None, new: dict, fields) -> tuple[dict | None, dict]:
    """The fields a write set, as they were and as they are, by their API names."""
    before = None if old is None else {SHOWN_AS.get(f, f): old.get(f) for f in fields}
    return before, {SHOWN_AS.get(f, f): new.get(f) for f in fields}


def find(conn: Connection, wanted: dict, limit: int, after: int | None) -> tuple[list, int | None]:
    """Entries newest first matching `wanted` (book, staff, action, from, to), `limit` of
    them below the cursor `after`; and the cursor of the next page (None: no more)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(audit_log.c.id < after)
    for key, column in (("book", "book_id"), ("staff", "staff"), ("action", "action")):
        if wanted.get(key) is not None:
            query = query.where(audit_log.c[column] == wanted[key])
    if wanted.get("from"):
        query = query.where(audit_log.c.at >= wanted["from"])
    if wanted.get("to"):
        query = query.where(audit_log.c.at < wanted["to"])
    rows = [dict(r) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return [shown(r) for r in rows], (rows[-1]["id"] if more else None)


def shown(row: dict) -> dict:
    """An entry as staff read it: before/after as JSON, not text; no write id, no stamp."""
    out = {k: v for k, v in row.items() if k not in ("write_id", "stamp")}
    for key in ("before", "after"):
        out[key] = None if row[key] is None else json.loads(row[key])
    return out
