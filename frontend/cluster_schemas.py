"""The shape of GET /cluster.json: the cluster as this front-end sees it right now."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

HEALTHS = ("up", "joining", "recovering", "stale", "behind", "down")


class NodeRowSchema(Schema):
    name = fields.String(required=True)
    service = fields.String(
        required=True, validate=validate.OneOf(["frontend", "catalog", "order", "recovery"])
    )
    url = fields.String(required=True)
    health = fields.String(
        required=True,
        validate=validate.OneOf(HEALTHS),
        metadata={"description": "as this front-end's last health check found it"},
    )
    since = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "wall clock (Unix seconds) the health was first seen; "
            "null: not checked yet"
        },
    )
    checked = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "wall clock of the node's last /health answer"},
    )
    role = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "catalog: primary or backup; null for other services or a "
            "node that is down"
        },
    )
    epoch = fields.Integer(
        required=True, allow_none=True, metadata={"description": "lease epoch the node sees"}
    )
    outbox = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        allow_none=True,
        metadata={"description": "updates waiting to reach each peer (null: not reported)"},
    )
    backlog = fields.Integer(
        required=True, allow_none=True, metadata={"description": "sum of outbox"}
    )
    queued = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "updates the recovery node holds for this node "
            "(null: recovery not reachable)"
        },
    )
    queues = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        allow_none=True,
        metadata={"description": "recovery node: queue depth per target"},
    )
    overflowed = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        allow_none=True,
        metadata={
            "description": "recovery node: targets whose queue passed [retention] queue_cap "
            "and was dropped (entries dropped), until they acknowledge"
        },
    )
    hit_rate = fields.Float(
        required=True, allow_none=True, metadata={"description": "front-end: cache hit rate"}
    )
    reason = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "catalog behind: why it cannot apply the primary's updates"},
    )
    clock_offset = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "seconds its wall clock is ahead of its peers' (its /health); "
            "shown in the notes when more than a second"
        },
    )
    snapshots = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "catalog: primary's snapshots it installed to heal"},
    )
    retries = fields.Integer(
        required=True,
        metadata={"description": "calls this front-end's router had to take elsewhere"},
    )
    failovers = fields.Integer(
        required=True,
        metadata={
            "description": "calls answered by another replica after this one was asked first"
        },
    )
    self = fields.Boolean(required=True, metadata={"description": "the front-end answering"})


class PrimarySchema(Schema):
    node = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the catalog that is up and says it is primary"},
    )
    holder = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "lease holder in the newest lease view of an up voter"},
    )
    epoch = fields.Integer(required=True, metadata={"description": "that lease's epoch"})
    last_known = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the node that last said it was primary (may be down)"},
    )


class CacheViewSchema(Schema):
    hits = fields.Integer(required=True)
    misses = fields.Integer(required=True)
    size = fields.Integer(required=True)
    hit_rate = fields.Float(
        required=True, allow_none=True, metadata={"description": "hits / lookups; null: none yet"}
    )


class RequestsSchema(Schema):
    per_second = fields.Float(required=True)
    window = fields.Float(required=True, metadata={"description": "seconds the rate is over"})
    total = fields.Integer(required=True, metadata={"description": "since this process started"})


class EventSchema(Schema):
    at = fields.Float(required=True, metadata={"description": "wall clock, Unix seconds"})
    node = fields.String(required=True)
    service = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["health", "primary"]))
    before = fields.String(required=True, allow_none=True)
    after = fields.String(required=True, allow_none=True)
    epoch = fields.Integer(required=True, allow_none=True)
    text = fields.String(required=True, metadata={"description": "the event in words"})


class ClusterViewSchema(Schema):
    """The cluster as one front-end sees it; open, and without secrets."""

    node = fields.String(required=True, metadata={"description": "the front-end answering"})
    now = fields.Float(required=True, metadata={"description": "its wall clock, Unix seconds"})
    health_period = fields.Float(required=True)
    nodes = fields.List(fields.Nested(NodeRowSchema), required=True)
    primary = fields.Nested(PrimarySchema, required=True)
    cache = fields.Nested(CacheViewSchema, required=True)
    requests = fields.Nested(RequestsSchema, required=True)
    events = fields.List(
        fields.Nested(EventSchema), required=True, metadata={"description": "newest first"}
    )
