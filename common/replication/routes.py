"""The two replication routes every replicated service serves: POST and GET /sync.

Each service says what one of its entries looks like (a marshmallow schema),
so a malformed entry is a 400 before it reaches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields

from common.openapi import doc
from common.web import load_body, tolerant

log = logging.getLogger(__name__)


def entries_schemas(entry: type[Schema], push_fields: dict) -> tuple[type[Schema], type[Schema]]:
    """(push body, state answer) schemas for a service whose entries look like `entry`."""
    name = entry.__name__.removesuffix("EntrySchema")
    push = Schema.from_dict(
        {"entries": fields.List(fields.Nested(entry), required=True), **push_fields},
        name=f"{name}PushSchema",
    )
    state = Schema.from_dict(
        {
            "entries": fields.List(fields.Nested(entry), required=True),
            "data_epoch": fields.Integer(metadata={"description": "catalog: its base's epoch"}),
            "stamped_base": fields.Integer(
                allow_none=True, metadata={"description": "catalog: its base, if stamped"}
            ),
            "since": fields.Integer(
                allow_none=True, metadata={"description": "catalog: rows at this position on"}
            ),
            "position": fields.Integer(metadata={"description": "catalog: its newest stamp"}),
            "incarnation": fields.String(metadata={"description": "order: this file's id"}),
            "after": fields.Integer(metadata={"description": "order: the page's last seq"}),
            "more": fields.Boolean(metadata={"description": "order: another page follows"}),
        },
        name=f"{name}StateSchema",
    )
    return push, state


def add_sync_routes(
    bp: Blueprint,
    store: Callable,
    push: type[Schema],
    state: type[Schema],
    query: dict | None = None,
    state_errors: tuple[int, ...] = (400,),
):
    """`store()` returns an object with receive(push) -> dict and snapshot() -> dict
    (which reads the query parameters `query` documents, and may refuse with
    `state_errors`)."""

    @doc(body=push, errors=(409, 503))
    @bp.post("/sync")
    def sync_in():
        """Apply entries replicated by a peer (or replayed by the recovery node)."""
        return jsonify(store().receive(load_body(push)))

    @doc(responses={200: state}, errors=state_errors, query=query or {})
    @bp.get("/sync")
    def sync_out():
        """This replica's state, for a peer catching up (whole, or narrowed by the query)."""
        return jsonify(store().snapshot())


def valid_entries(entry: type[Schema], entries: list) -> list[dict]:
    """Entries replayed from the recovery queue that have the right shape; others are
    logged and skipped, so one bad entry can never block a replica's replay. A field
    this version does not know (queued by a newer node) is dropped, not a fault."""
    schema, good = tolerant(entry), []
    for item in entries:
        try:
            good.append(schema.load(item))
        except (ValidationError, TypeError) as e:
            log.warning("skipping a malformed queued entry: %s", e)
    return good
