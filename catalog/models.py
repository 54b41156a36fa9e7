"""Catalog storage: books (design §5), the order ids applied to them, the outbox."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Float, Integer, String
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


class AppliedOrder(db.Model):
    """Order ids the catalog has decided: 'applied' (stock taken) or 'aborted' (fenced).

    Written in the same transaction as the decrement, so the same order id can
    never decrement twice (design §7 rule 4), and replicated with the book row.
    """

    __tablename__ = "applied_orders"

    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    book_id: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String, nullable=False)
    total: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)


outbox_table = define_outbox(db.metadata)
