"""Catalog storage: books (design §5), the decision on every order id, book keys, the outbox."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Float, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from common.replication.outbox import define_outbox

db = SQLAlchemy()


class Book(db.Model):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String, nullable=False)
    topic: Mapped[str] = mapped_column(String, nullable=False, index=True)
    cost: Mapped[float] = mapped_column(Float, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Soft delete (withdrawn by staff): NULL while listed; the row and its stock stay.
    deleted_at: Mapped[str | None] = mapped_column(String, nullable=True)
    delete_comment: Mapped[str | None] = mapped_column(String, nullable=True)
    # The position of the commit that last wrote the row: its writer's epoch << 32 | that
    # writer's commit count (docs/scale.md §6); NULL: written before positions (0).
    stamp: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


# Bulk import skips a row whose trimmed title and topic a book already has
# (`catalog.imports`): a lookup by this index, at any size of the catalog.
Index("ix_books_title_topic", func.trim(Book.title), func.trim(Book.topic))


class OrderDecision(db.Model):
    """What the catalog decided for an order id, once and for all.

    'applied' (stock taken), 'rejected' (not enough stock) or 'aborted'
    (fenced by the reconciler: its buy never arrived). Written in the same
    transaction as the decrement, so the same order id never decrements twice
    and a retry gets the first outcome (design §7 rule 4); replicated with the
    book row.
    """

    __tablename__ = "order_decisions"

    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    book_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # NULL: several books
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)  # copies, all books
    status: Mapped[str] = mapped_column(String, nullable=False)
    total: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    # JSON [{"book_id", "quantity", "unit_price": "19.99"}]: the exact lines decided.
    items: Mapped[str | None] = mapped_column(Text, nullable=True)
    stamp: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # as books.stamp
    # The cluster age it was decided at (`catalog.retention`); NULL: made before retention.
    age: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class BookKey(db.Model):
    """An Idempotency-Key of POST /books and the book it created (replicated with it)."""

    __tablename__ = "book_keys"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    book_id: Mapped[int] = mapped_column(Integer, nullable=False)
    digest: Mapped[str] = mapped_column(String, nullable=False)  # of the request: reuse check
    stamp: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # as books.stamp
    age: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)  # see above


class StaffAccount(db.Model):
    """A member of staff (docs/staff.md); replicated like books: newer version wins."""

    __tablename__ = "staff_accounts"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    role: Mapped[str] = mapped_column(String, nullable=False)
    password_hash: Mapped[str] = mapped_column(String, nullable=False)  # Argon2id, never clear
    created_at: Mapped[str] = mapped_column(String, nullable=False)
    disabled_at: Mapped[str | None] = mapped_column(String, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    stamp: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # as books.stamp


class AuditEntry(db.Model):
    """One staff write: who, what, the fields before and after. Written in the transaction
    of the write at the holder and replicated with it; insert-once, never changed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # grows: newest is highest
    write_id: Mapped[str] = mapped_column(String, nullable=False, unique=True)  # one per request
    at: Mapped[str] = mapped_column(String, nullable=False)  # the holder's wall clock, for people
    staff: Mapped[str] = mapped_column(String, nullable=False, index=True)
    role: Mapped[str] = mapped_column(String, nullable=False)
    action: Mapped[str] = mapped_column(String, nullable=False)
    book_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    before: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    after: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    request_id: Mapped[str | None] = mapped_column(String, nullable=True)
    stamp: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # as books.stamp


class Meta(db.Model):
    """Small facts about this replica; `data_epoch`: the epoch whose base its data comes from."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String, nullable=False)


outbox_table = define_outbox(db.metadata)
