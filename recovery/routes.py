"""Recovery routes (internal, signed): append, read and acknowledge a target's queue.

Entries are deleted only when the target acknowledges them after applying,
so a target that crashes mid-replay reads them again (replay is idempotent).
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate
from sqlalchemy import delete, func, insert, select

from common.fields import StrictInteger
from common.lease.fence import EpochFence
from common.node import context
from common.openapi import doc
from common.web import ApiError, QueryInt, load_body, protect_internal
from recovery.models import QueuedEntry, db

MAX_EPOCH = 2**62
# A page of a queue stops once it holds this much JSON (at least one entry): an
# import batch's entry is ~150 KB, and a reader holds a whole page in memory.
PAGE_BYTES = 4 * 1024 * 1024

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


def _target(name: str) -> str:
    if context().cluster.nodes.get(name) is None:
        raise ApiError(404, f"no node named {name!r}")
    return name


def _fence() -> EpochFence:
    return current_app.extensions["recovery.fence"]


@doc(body=AppendSchema, responses={200: AppendedSchema}, errors=(404, 409))
@bp.post("/queue/<target>")
def append(target: str):
    """Queue entries a target missed (refused from a deposed catalog writer's epoch)."""
    body = load_body(AppendSchema)
    rows = [{"target": _target(target), "entry": json.dumps(e)} for e in body["entries"]]
    fence = _fence()
    # Under the fence's order: once a newer writer has read a queue, no older one appends.
    with fence.ordered():
        if "epoch" in body:
            fence.admit(body["epoch"], f"queue append for {target}")
        with db.engine.begin() as conn:
            if rows:
                conn.execute(insert(queue), rows)
            last = conn.execute(select(func.max(queue.c.seq))).scalar() or 0
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
    with db.engine.begin() as conn:
        gone = conn.execute(
            delete(queue).where(queue.c.target == _target(target), queue.c.seq <= upto)
        ).rowcount
    return jsonify({"deleted": gone})


def depths() -> dict[str, int]:
    """Queue depth per target, for /health and `bazar status`."""
    with current_app.app_context(), db.engine.connect() as conn:
        query = select(queue.c.target, func.count()).group_by(queue.c.target)
        return {target: n for target, n in conn.execute(query)}
