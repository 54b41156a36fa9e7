"""Retention of idempotency records by cluster age (docs/scale.md §5).

The *cluster age* is a count of seconds the writers have held the lease:
each new holder carries it on from the largest age in its data, and it
grows with the holder's monotonic clock. It never runs ahead of real time,
so a record is kept at least its window whatever any wall clock says
(design §7 rule 8). The writer stamps `age` on every order decision and
book key it writes; every `compact_every_seconds` it makes one replicated
write `{"compact": {"before_age": A, "age": now}}` (A = age - window), and
every replica applies it in order, deleting the same rows (a row without
an age, made before retention, counts as age 0). `age` is the writer's age
then: replicas keep the largest in `meta`, so a later holder carries the
age on even when no stamped row is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Float, cast, delete, func, or_, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from catalog.models import BookKey, Meta, OrderDecision
from common.config import Retention
from common.observe.metrics import KEYS_COMPACTED
from common.web import ApiError

log = logging.getLogger(__name__)

STAMPED = (OrderDecision.__table__, BookKey.__table__)  # the idempotency records
meta = Meta.__table__
AGE_KEY = "cluster_age"  # meta: the largest cluster age this replica has heard of
KNOWN_AGE = select(meta.c.value).where(meta.c.key == AGE_KEY)


class ClusterAge:
    """The cluster age at this catalog while it is the writer of one epoch."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.epoch = 0  # the epoch whose takeover set the base (0: never the writer)
        self._base = 0.0
        self._since = 0.0  # our monotonic clock at that takeover

    def carry(self, conn: Connection, epoch: int) -> float:
        """At takeover, in its transaction: go on from the largest age in our data."""
        self._base, self._since, self.epoch = largest_age(conn), self.clock(), epoch
        remember(conn, self._base)
        log.info("epoch %d: cluster age carried on from %.1f s", epoch, self._base)
        return self._base

    def now(self, epoch: int) -> float | None:
        """The cluster age now, if we took over `epoch` (the writer's own); else None."""
        if not epoch or epoch != self.epoch:
            return None
        return self._base + (self.clock() - self._since)


def largest_age(conn: Connection) -> float:
    """The largest cluster age in this replica's data: remembered, or on a stamped row."""
    known = conn.execute(KNOWN_AGE).scalar()
    ages = [float(known or 0.0)]
    ages += [conn.execute(select(func.max(t.c.age))).scalar() or 0.0 for t in STAMPED]
    return max(ages)


def remember(conn: Connection, age: float) -> None:
    """Keep `age` in meta if it is the largest yet."""
    stmt = sqlite_insert(meta).values(key=AGE_KEY, value=repr(float(age)))
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[meta.c.key],
            set_={"value": stmt.excluded.value},
            where=cast(meta.c.value, Float) < float(age),
        )
    )


def _older(table, before: float):
    """Rows of `table` older than `before` (no age: from before retention, age 0)."""
    return or_(table.c.age.is_(None), table.c.age < before)


def has_older(conn: Connection, before: float) -> bool:
    return any(
        conn.execute(select(t.c.age).where(_older(t, before)).limit(1)).first() for t in STAMPED
    )


def apply_compact(conn: Connection, compact: dict) -> int:
    """A replicated compaction (at the writer and at every replica, in order): delete the
    idempotency records older than `before_age`; return how many went."""
    before = compact["before_age"]
    gone = 0
    for table in STAMPED:
        count = conn.execute(delete(table).where(_older(table, before))).rowcount
        KEYS_COMPACTED.labels(table.name).inc(count)  # counted if the transaction commits too
        gone += count
    if compact.get("age") is not None:
        remember(conn, compact["age"])
    return gone


class Compactor:
    """At the writer: every `compact_every_seconds`, one replicated compaction."""

    def __init__(self, store, settings: Retention):
        self.store = store  # CatalogStore: its role, engine, age and writes
        self.window = settings.keys_seconds
        self.every = settings.compact_every_seconds
        self._stop = threading.Event()

    def age(self) -> float | None:
        """The cluster age now at the writer; None on any other catalog."""
        return self.store.age.now(self.store.role.epoch) if self.store.role.is_writer() else None

    def compact(self) -> int:
        """One compaction if this catalog is the writer and some record is past its window."""
        age = self.age()
        if age is None or age <= self.window:
            return 0
        before = age - self.window
        with self.store.engine.connect() as conn:
            if not has_older(conn, before):
                return 0
        entry = {"before_age": before, "age": age}
        result = self.store.compact(
            lambda conn: ({"compacted": apply_compact(conn, entry)}, {"compact": entry})
        )
        log.info(
            "compacted %d idempotency records older than age %.1f", result["compacted"], before
        )
        return result["compacted"]

    def start(self) -> None:
        threading.Thread(target=self._loop, name="compactor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.compact()
            except ApiError as e:  # lost the lease meanwhile, or a copy did not take it
                log.info("compaction not done: %s", e.message)
            except Exception:
                log.exception("compaction failed; trying again next period")
