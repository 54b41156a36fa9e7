"""Order storage: orders (design §5) and the outbox."""

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
    book_id: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    total: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    status: Mapped[str] = mapped_column(String, nullable=False, index=True)
    created_at: Mapped[str] = mapped_column(String, nullable=False)


outbox_table = define_outbox(db.metadata)
