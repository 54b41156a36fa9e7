"""The two replication routes every replicated service serves: POST and GET /sync."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, jsonify
from marshmallow import Schema, fields, validate

from common.fields import StrictInteger, StrictNumber
from common.openapi import doc
from common.web import load_body

MAX_EPOCH = 2**62


class EntriesSchema(Schema):
    entries = fields.List(fields.Dict(), required=True)


class PushSchema(EntriesSchema):
    """A push; the catalog primary adds its epoch and a read lease (design §7)."""

    epoch = StrictInteger(validate=validate.Range(min=1, max=MAX_EPOCH))
    until = StrictNumber(
        allow_none=True, metadata={"description": "read lease: wall-clock end, in seconds"}
    )
    drain_upto = StrictInteger(
        validate=validate.Range(min=0),
        metadata={"description": "first replay the recovery queue up to this seq"},
    )


class StateSchema(EntriesSchema):
    data_epoch = fields.Integer(metadata={"description": "catalog: epoch of this data's base"})


def add_sync_routes(bp: Blueprint, store: Callable) -> None:
    """`store()` returns an object with receive(push) -> dict and snapshot() -> dict."""

    @doc(body=PushSchema, errors=(409, 503))
    @bp.post("/sync")
    def sync_in():
        """Apply entries replicated by a peer (or replayed by the recovery node)."""
        return jsonify(store().receive(load_body(PushSchema())))

    @doc(responses={200: StateSchema})
    @bp.get("/sync")
    def sync_out():
        """This replica's whole state, for a peer catching up."""
        return jsonify(store().snapshot())
