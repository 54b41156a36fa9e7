"""The audit trail for managers: newest first, in pages, as JSON or CSV (docs/staff.md).

Read from a catalog replica under its read lease, like staff's book list, so
an entry whose write was acknowledged is never missing from the page.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request

from common.identity.roles import MANAGER
from common.openapi import doc
from common.pages import link_next
from common.shapes import (
    AUDIT_ACTIONS,
    AUDIT_AFTER,
    AUDIT_BOOK,
    AUDIT_COLUMNS,
    AUDIT_LIMIT,
    AuditEntrySchema,
)
from common.web import ApiError
from frontend.csv_export import to_csv
from frontend.identity import staff_role
from frontend.services import call, relay

trail = Blueprint("audit", __name__)
WHEN = {"type": "string", "format": "date-time"}
QUERY = {
    "book": AUDIT_BOOK.schema,
    "staff": {"type": "string", "minLength": 1, "maxLength": 64},
    "action": {"type": "string", "enum": list(AUDIT_ACTIONS)},
    "from": {**WHEN, "description": "from this time on (inclusive); a date will do (UTC)"},
    "to": {**WHEN, "description": "before this time (exclusive); a date will do (UTC)"},
    "limit": AUDIT_LIMIT.schema,
    "after": {**AUDIT_AFTER.schema, "description": "opaque: the cursor a Link rel=next carries"},
}
CSV = {"text/csv": {"schema": {"type": "string"}}}


@doc(
    responses={200: {"application/json": {"schema": AuditEntrySchema(many=True)}, **CSV}},
    errors=(400, 403, 503),
    auth="staff",
    query=QUERY,
)
@trail.get("/audit")
@staff_role(MANAGER)
def audit_trail():
    """Manager: staff writes newest first, a page at a time (Link rel=next); CSV with
    Accept: text/csv."""
    params = _wanted()
    router = current_app.extensions["frontend.router"]
    page = relay(call(router, "read", "catalog", "GET", "/audit", params=params))
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        response = _csv(page["entries"])
    else:
        response = jsonify(page["entries"])
    kept = {k: v for k, v in params.items() if k != "after"}
    return link_next(response, kept, page["next"])


def _wanted() -> dict:
    params = {"limit": AUDIT_LIMIT.read(), "book": AUDIT_BOOK.read(), "after": AUDIT_AFTER.read()}
    staff, action = request.args.get("staff"), request.args.get("action")
    if staff is not None and not 0 < len(staff) <= 64:
        raise ApiError(400, "staff: must be a name of 1-64 characters")
    if action is not None and action not in AUDIT_ACTIONS:
        raise ApiError(400, f"action: must be one of {', '.join(AUDIT_ACTIONS)}")
    params.update(staff=staff, action=action, **{k: _when(k) for k in ("from", "to")})
    return {k: v for k, v in params.items() if v is not None}


def _when(name: str) -> str | None:
    """A date or date-time as the trail stores times (UTC, ms), so they compare as text."""
    text = request.args.get(name)
    if text is None:
        return None
    try:
        # RFC 3339 allows a lowercase t and z, and second 60 (a leap second).
        text = re.sub(r":60(?=[.,Z+-]|$)", ":59", text.upper()) if len(text) <= 40 else ""
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError):
        raise ApiError(
            400, f"{name}: must be a date or date-time like 2026-12-01T09:30:00Z"
        ) from None


def _csv(entries: list[dict]) -> Response:
    rows = [
        {**e, **{k: None if e[k] is None else json.dumps(e[k]) for k in ("before", "after")}}
        for e in entries
    ]
    response = Response(to_csv(AUDIT_COLUMNS, rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response
