"""Recovery routes (internal, signed): append, read and acknowledge a target's queue.

Entries are deleted only when the target acknowledges them after applying,
so a target that crashes mid-replay reads them again (replay is idempotent).
A queue past `[retention] queue_cap` is dropped and its target told so
(`recovery.cap`).
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate
from sqlalchemy import delete, func, select

from common.fields import StrictInteger
from common.lease.fence import EpochFence
from common.node import context
from common.openapi import doc
from common.web import ApiError, QueryInt, load_body, protect_internal
from recovery import cap
from recovery.models import QueuedEntry, db

MAX_EPOCH = 2**62
# A page of a queue stops once it holds this much JSON (at least one entry): an
# import batch's entry is ~150 KB, and a reader holds a whole page in memory.
PAGE_BYTES = 4 * 1024 * 1024

log = logging.getLogger(__name__)
bp = Blueprint("recovery", __name__)
LIMIT = QueryInt("limit", default=500, low=1, high=5000)
EPOCH = QueryInt("epoch", default=0, low=0, high=MAX_EPOCH)
AFTER = QueryInt("after", default=0, low=0, high=2**62)
protect_internal(bp)
queue = QueuedEntry.__table__


class AppendSchema(Schema):
    entries = fields.List(fields.Dict(), required=True)
    epoch = StrictInteger(
        validate=validate.Range(min=1, max=MAX_EPOCH),
        metadata={"description": "the catalog writer's epoch; older than the newest seen: 409"},
    )


class AckSchema(Schema):
    upto = StrictInteger(required=True, validate=validate.Range(min=0))


class AppendedSchema(Schema):
    queued = fields.Integer(required=True)
    last_seq = fields.Integer(required=True)


class QueuedSchema(Schema):
    seq = fields.Integer(required=True)
    entry = fields.Dict(required=True)


class QueueSchema(Schema):
    entries = fields.List(fields.Nested(QueuedSchema), required=True)
    overflowed = fields.Boolean(
        metadata={
            "description": "true: the queue passed its cap and was dropped; the target takes "
            "the snapshot path and acknowledges (POST /queue/<target>/overflow/ack)"
        }
    )


class OverflowAckSchema(Schema):
    acknowledged = fields.Boolean(required=True)


def _target(name: str) -> str:
    if context().cluster.nodes.get(name) is None:
        raise ApiError(404, f"no node named {name!r}")
    return name


def _fence() -> EpochFence:
    return current_app.extensions["recovery.fence"]


def _cap() -> cap.QueueCap:
    return current_app.extensions["recovery.cap"]


@doc(body=AppendSchema, responses={200: AppendedSchema}, errors=(404, 409))
@bp.post("/queue/<target>")
def append(target: str):
    """Queue entries a target missed (refused from a deposed catalog writer's epoch)."""
    body = load_body(AppendSchema)
    rows = [{"target": _target(target), "entry": json.dumps(e)} for e in body["entries"]]
    fence, lengths = _fence(), _cap()
    # Under the fence's order: once a newer writer has read a queue, no older one appends.
    with fence.ordered():
        if "epoch" in body:
            fence.admit(body["epoch"], f"queue append for {target}")
        with lengths.lock:
            try:
                with db.engine.begin() as conn:
                    if rows and lengths.append(conn, target, rows):
                        log.warning("queue of %s passed its cap: dropped", target)
                    last = conn.execute(select(func.max(queue.c.seq))).scalar() or 0
            except BaseException:
                lengths.forget()
                raise
    return jsonify({"queued": len(rows), "last_seq": last})


@doc(
    responses={200: QueueSchema},
    errors=(400, 404, 409),
    query={"limit": LIMIT.schema, "epoch": EPOCH.schema, "after": AFTER.schema},
)
@bp.get("/queue/<target>")
def read(target: str):
    """The oldest entries queued for a target, up to `limit` and about 4 MiB (`epoch`:
    the reader is that writer; `after`: only entries past that seq, for reading a
    queue page by page)."""
    limit = LIMIT.read()
    epoch = EPOCH.read()
    after = AFTER.read()
    if epoch:
        with _fence().ordered():
            _fence().observe(epoch)
    query = (
        select(queue)
        .where(queue.c.target == _target(target), queue.c.seq > after)
        .order_by(queue.c.seq)
        .limit(limit)
    )
    items, size = [], 0
    with db.engine.connect() as conn:
        if cap.is_overflowed(conn, target):
            return jsonify({"entries": [], "overflowed": True})
        for row in conn.execute(query):
            size += len(row.entry)
            if items and size > PAGE_BYTES:
                break
            items.append({"seq": row.seq, "entry": json.loads(row.entry)})
    return jsonify({"entries": items})


@doc(body=AckSchema, errors=(404,))
@bp.post("/queue/<target>/ack")
def ack(target: str):
    """The target applied everything up to `upto`: forget it."""
    upto = load_body(AckSchema)["upto"]
    lengths = _cap()
    with lengths.lock:
        with db.engine.begin() as conn:
            gone = conn.execute(
                delete(queue).where(queue.c.target == _target(target), queue.c.seq <= upto)
            ).rowcount
        lengths.removed(target, gone)
    return jsonify({"deleted": gone})


@doc(responses={200: OverflowAckSchema}, errors=(404,))
@bp.post("/queue/<target>/overflow/ack")
def ack_overflow(target: str):
    """The target has marked itself for the snapshot path: its queue is read again."""
    with db.engine.begin() as conn:
        done = cap.acknowledge(conn, _target(target))
    if done:
        log.info("%s acknowledged the overflow of its queue", target)
    return jsonify({"acknowledged": done})


def overflowed() -> dict[str, int]:
    """Targets whose queue overflowed and who have not acknowledged it: entries dropped."""
    with current_app.app_context(), db.engine.connect() as conn:
        return cap.marks(conn)


def depths() -> dict[str, int]:
    """Queue depth per target, for /health and `bazar status`."""
    with current_app.app_context(), db.engine.connect() as conn:
        query = select(queue.c.target, func.count()).group_by(queue.c.target)
        return {target: n for target, n in conn.execute(query)}
