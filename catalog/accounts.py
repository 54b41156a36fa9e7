"""Staff accounts as catalog data (docs/staff.md): the writer's changes and the reads.

An account is a row of `staff_accounts`, replicated like a book: every change
bumps its version and goes out whole, so replicas take the newer version.
The password hash was made at the front-end; it is replicated, never shown.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from catalog import audit
from catalog.models import StaffAccount
from catalog.rows import now_text, stamp
from common.web import ApiError

accounts = StaffAccount.__table__
SHOWN = ("name", "role", "created_at", "disabled_at")


def account(conn: Connection, name: str) -> dict | None:
    row = conn.execute(select(accounts).where(accounts.c.name == name)).mappings().first()
    return dict(row) if row else None


def listed(conn: Connection) -> list[dict]:
    rows = conn.execute(select(accounts).order_by(accounts.c.name)).mappings()
    return [public(dict(r)) for r in rows]


def public(row: dict) -> dict:
    """An account as staff see it: never its hash."""
    return {**{k: row[k] for k in SHOWN}, "disabled": row["disabled_at"] is not None}


def add(name: str, role: str, password_hash: str, by: dict | None):
    """The change that makes an account; a name is never reused (409)."""

    def change(conn: Connection):
        if audit.seen(conn, by, "staff-add", name=name):  # a retry of the request that made it
            row = account(conn, name)
            return public(row), {"account": row}
        if account(conn, name) is not None:
            raise ApiError(409, f"staff account {name!r} exists (names are never reused)")
        row = {
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "created_at": now_text(),
            "disabled_at": None,
            "version": 1,
            "stamp": stamp(conn),
        }
        conn.execute(insert(accounts).values(**row))
        entry = audit.append(conn, by, "staff-add", None, None, _audited(row))
        return public(row), {"account": row, "audit": entry}

    return change


def disable(name: str, by: dict | None):
    """The change that disables an account; disabling it again changes nothing."""

    def change(conn: Connection):
        old = account(conn, name)
        if old is None:
            raise ApiError(404, f"no staff account {name!r}")
        if audit.seen(conn, by, "staff-disable", name=name):
            return public(old), {"account": old}
        if old["disabled_at"] is None:
            stmt = update(accounts).where(accounts.c.name == name)
            changes = {"disabled_at": now_text(), "stamp": stamp(conn)}
            conn.execute(stmt.values(version=accounts.c.version + 1, **changes))
        row = account(conn, name)
        entry = audit.append(conn, by, "staff-disable", None, _audited(old), _audited(row))
        return public(row), {"account": row, "audit": entry}

    return change


def _audited(row: dict) -> dict:
    """An account as its audit entries show it: never its hash."""
    return {"name": row["name"], "role": row["role"], "disabled": row["disabled_at"] is not None}
