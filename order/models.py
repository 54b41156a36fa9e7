"""Order storage: orders and their lines (design §5), and the outbox."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from common.replication.outbox import define_outbox

db = SQLAlchemy()

PENDING, CONFIRMED, REJECTED = "pending", "confirmed", "rejected"


class Order(db.Model):
    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    book_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # NULL: several books
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)  # copies, all books
    # A float copy of the exact total (Σ order_items), for tools that read this table.
    total: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    status: Mapped[str] = mapped_column(String, nullable=False, index=True)
    created_at: Mapped[str] = mapped_column(String, nullable=False, index=True)  # reports
    # This file's change sequence (order.sync triggers): peers read decided orders by it.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


outbox_table = define_outbox(db.metadata)


class OrderItem(db.Model):
    """One book of an order (single buys too): the exact price it was decided at.

    `unit_price` is decimal text with two places ('19.99'); NULL while the
    order is pending (the price is the catalog's at decision time).
    """

    __tablename__ = "order_items"

    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    book_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[str | None] = mapped_column(String, nullable=True)
