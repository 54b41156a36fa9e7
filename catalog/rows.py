"""Reading book rows inside a transaction; a withdrawn book is absent to customers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from catalog.models import Book
from common.web import ApiError

books = Book.__table__


def any_book(conn: Connection, book_id: int) -> dict:
    """The row, listed or withdrawn (staff and replication see both)."""
    row = conn.execute(select(books).where(books.c.id == book_id)).mappings().first()
    if row is None:
        raise ApiError(404, f"no book with id {book_id}")
    return dict(row)


def listed_book(conn: Connection, book_id: int) -> dict:
    """The row of a book on sale; a withdrawn one is a 404 like an unknown one."""
    row = any_book(conn, book_id)
    if row["deleted_at"] is not None:
        raise ApiError(404, f"no book with id {book_id}")
    return row


def listed_books(conn: Connection, ids: list[int]) -> dict[int, dict]:
    """The rows on sale among `ids`, by id (missing and withdrawn ones are left out)."""
    query = select(books).where(books.c.id.in_(ids), books.c.deleted_at.is_(None))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}
