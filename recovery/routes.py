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
from common.node import context
from common.openapi import doc
from common.web import ApiError, QueryInt, load_body, protect_internal
from recovery.models import QueuedEntry, db

bp = Blueprint("recovery", __name__)
LIMIT = QueryInt("limit", default=500, low=1, high=5000)
protect_internal(bp)
queue = QueuedEntry.__table__


class AppendSchema(Schema):
    entries = fields.List(fields.Dict(), required=True)


class AckSchema(Schema):
    upto = StrictInteger(required=True, validate=validate.Range(min=0))


class QueuedSchema(Schema):
    seq = fields.Integer(required=True)
    entry = fields.Dict(required=True)


class QueueSchema(Schema):
    entries = fields.List(fields.Nested(QueuedSchema), required=True)


def _target(name: str) -> str:
    if context().cluster.nodes.get(name) is None:
        raise ApiError(404, f"no node named {name!r}")
    return name


@doc(body=AppendSchema, errors=(404,))
@bp.post("/queue/<target>")
def append(target: str):
    """Queue entries a target missed."""
    entries = load_body(AppendSchema())["entries"]
    rows = [{"target": _target(target), "entry": json.dumps(e)} for e in entries]
    with db.engine.begin() as conn:
        if rows:
            conn.execute(insert(queue), rows)
    return jsonify({"queued": len(rows)})


@doc(responses={200: QueueSchema}, errors=(400, 404), query={"limit": LIMIT.schema})
@bp.get("/queue/<target>")
def read(target: str):
    """The oldest entries queued for a target."""
    limit = LIMIT.read()
    query = (
        select(queue).where(queue.c.target == _target(target)).order_by(queue.c.seq).limit(limit)
    )
    with db.engine.connect() as conn:
        items = [{"seq": r.seq, "entry": json.loads(r.entry)} for r in conn.execute(query)]
    return jsonify({"entries": items})


@doc(body=AckSchema, errors=(404,))
@bp.post("/queue/<target>/ack")
def ack(target: str):
    """The target applied everything up to `upto`: forget it."""
    upto = load_body(AckSchema())["upto"]
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
