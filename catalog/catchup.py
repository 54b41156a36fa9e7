"""A replica Behind a new holder's base catches up on rows, not a whole snapshot.

A replica R of base N that cannot take the delta base of epoch E (it lacks
commits the holder H has, or holds writes H never had: docs/scale.md §6)
asks H directly, while H's own base is still the one it made from N:
q = min(R's position, the base's position). Both hold base N and a prefix of
its holder's commits, so every row either holds at a position before q is
the same on both, or the other holds it at q or later. R sends the keys of
its rows at q or later; H answers its rows at q or later and its version of
each key R sent (or that it has none). Installed in one transaction, R is
then what H was at the answer, and H's later commits reach R as usual
(newer version wins). If H's base came from elsewhere, or too much changed,
R takes the snapshot instead (`catalog.heal`).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from catalog.models import outbox_table
from catalog.replica import (
    BASE_FROM,
    OVERWRITE,
    PARTS,
    data_epoch_of,
    meta_int,
    position_of,
    set_data_epoch,
    set_stamped_base,
    stamped_base_of,
)
from common.storage import restored
from common.web import ApiError

LIMIT = 20_000  # rows in one answer; beyond that the snapshot is the cheaper way


def _key(table):
    (column,) = table.primary_key
    return column


# -- at the replica -------------------------------------------------------------------
def question(conn: Connection, base_from: int, position: int) -> dict | None:
    """What to ask the holder whose base of some epoch was made from `base_from` at
    `position`; None when this replica is not of that base (the snapshot, then)."""
    have = data_epoch_of(conn)
    if not have or have != base_from or stamped_base_of(conn) != have:
        return None
    since = min(position_of(conn), position)
    if not since:
        return None
    return {"since": since, "base_from": base_from, "keys": _keys(conn, since)}


def _keys(conn: Connection, since: int) -> dict:
    """The keys of this replica's rows at position `since` or later, by part."""
    return {
        part: [row[0] for row in conn.execute(select(_key(table)).where(table.c.stamp >= since))]
        for table, part, _ in PARTS
    }


def install(conn: Connection, asked: dict, answer: dict) -> int:
    """Take the holder's answer in (the caller holds the write lock, in one transaction);
    the data epoch now held."""
    if data_epoch_of(conn) != asked["base_from"] or _keys(conn, asked["since"]) != asked["keys"]:
        raise ApiError(409, "this replica changed while it asked the holder")
    # What we staged as an earlier holder is superseded, as by any newer base.
    conn.execute(delete(outbox_table))
    for table, part, _ in PARTS:
        conn.execute(delete(table).where(table.c.stamp >= asked["since"]))
        gone = answer["absent"].get(part) or []
        if gone:
            conn.execute(delete(table).where(_key(table).in_(gone)))
        if answer["rows"].get(part):
            conn.execute(OVERWRITE[table.name], answer["rows"][part])
    epoch = answer["data_epoch"]
    set_data_epoch(conn, epoch)
    set_stamped_base(conn, epoch if answer["stamped"] else None)
    restored.clear(conn)
    return epoch


# -- at the holder --------------------------------------------------------------------
def answer(conn: Connection, asked: dict, limit: int = LIMIT) -> dict:
    """The holder's rows at `since` or later and its version of each key asked for."""
    epoch = data_epoch_of(conn)
    if meta_int(conn, BASE_FROM) != asked["base_from"]:
        raise ApiError(409, f"the base of epoch {epoch} was not made from {asked['base_from']}")
    rows, absent, count = {}, {}, 0
    for table, part, _ in PARTS:
        found = [
            dict(r)
            for r in conn.execute(select(table).where(table.c.stamp >= asked["since"])).mappings()
        ]
        wanted = set(asked["keys"].get(part) or ())
        key = _key(table).name
        missing = wanted - {row[key] for row in found}
        if missing:
            query = select(table).where(_key(table).in_(sorted(missing)))
            found += [dict(r) for r in conn.execute(query).mappings()]
        absent[part] = sorted(missing - {row[key] for row in found})
        rows[part], count = found, count + len(found)
        if count > limit:
            raise ApiError(413, f"more than {limit} rows changed: take the snapshot")
    stamped = stamped_base_of(conn) == epoch
    return {"data_epoch": epoch, "stamped": stamped, "rows": rows, "absent": absent}
