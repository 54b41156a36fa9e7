"""The two replication routes every replicated service serves: POST and GET /sync."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, jsonify
from marshmallow import Schema, fields

from common.openapi import doc
from common.web import load_body


class EntriesSchema(Schema):
    entries = fields.List(fields.Dict(), required=True)


def add_sync_routes(bp: Blueprint, store: Callable) -> None:
    """`store()` returns an object with apply(entries) and state() -> entries."""

    @doc(body=EntriesSchema)
    @bp.post("/sync")
    def sync_in():
        """Apply entries replicated by a peer (or replayed by the recovery node)."""
        store().apply(load_body(EntriesSchema())["entries"])
        return jsonify({"applied": True})

    @doc(responses={200: EntriesSchema})
    @bp.get("/sync")
    def sync_out():
        """This replica's whole state, for a peer catching up."""
        return jsonify({"entries": store().state()})
