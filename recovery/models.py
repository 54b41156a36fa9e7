"""Recovery storage: one durable queue of missed updates per target node."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class QueuedEntry(db.Model):
    __tablename__ = "queue"
    # AUTOINCREMENT: seqs never restart, so a late "ack up to N" cannot delete newer entries.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String, nullable=False, index=True)
    entry: Mapped[str] = mapped_column(Text, nullable=False)


class Overflow(db.Model):
    """A target whose queue passed `[retention] queue_cap` and was dropped: it must take
    the snapshot path, and acknowledge that it has before its queue is read again."""

    __tablename__ = "overflowed"

    target: Mapped[str] = mapped_column(String, primary_key=True)
    at: Mapped[str] = mapped_column(String, nullable=False)  # wall clock, for people
    dropped: Mapped[int] = mapped_column(Integer, nullable=False)  # entries dropped so far
