"""GET /cluster (a live page for operators) and GET /cluster.json (what it shows).

Both show node names, URLs, health, roles, epochs and queue depths, never a token or
a secret; still, customers need not see the inside of the cluster: like /metrics,
they are open from loopback and want the staff token from anywhere else. The page is
plain HTML rendered here with the current snapshot; /static/cluster.js then
fetches /cluster.json every second and redraws it (text only, no innerHTML),
under a CSP that allows nothing but this front-end's own files.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, render_template

from common.openapi import doc
from common.web import staff_off_loopback
from frontend.cluster_schemas import HEALTHS, ClusterViewSchema
from frontend.cluster_state import ClusterState

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
LEGEND = {
    "up": "answers /health with 200: serving",
    "joining": "a new replica copying its data; not serving yet",
    "recovering": "back after a crash, replaying what it missed; not serving yet",
    "stale": "a catalog without a valid read lease from the primary: no reads",
    "behind": "a catalog that lacks the base of the primary's updates and has not healed "
    "from its snapshot yet (the notes say why): no reads",
    "down": "refused the connection, or gave no answer to three checks in a row",
}
assert set(LEGEND) == set(HEALTHS)  # the legend explains every state

bp = Blueprint("cluster_view", __name__)


def _state() -> ClusterState:
    # Requests are counted in batches (common.observe.recorder): count those finished
    # so far, so the request rate includes them.
    current_app.extensions["bazar.recorder"].fold()
    return current_app.extensions["frontend.cluster"]


def _guarded(response: Response, csp: str = PAGE_CSP) -> Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@doc(responses={200: ClusterViewSchema}, errors=(401,), auth="none")
@bp.get("/cluster.json")
@staff_off_loopback
def cluster_json():
    """Every node as this front-end sees it: health and since when, roles, primary and
    epoch, outbox and recovery queue depths, cache hit rate, request rate, last events."""
    return _guarded(jsonify(_state().snapshot()), "default-src 'none'; frame-ancestors 'none'")


@doc(responses={200: None}, errors=(401,), auth="none")
@bp.get("/cluster")
@staff_off_loopback
def cluster_page():
    """The live cluster page (HTML; it refreshes itself from /cluster.json)."""
    snapshot = _state().snapshot()
    page = render_template("cluster.html", s=snapshot, legend=LEGEND, clock=_clock)
    return _guarded(Response(page, mimetype="text/html"))


def _clock(at: float | None) -> str:
    """Unix seconds as HH:MM:SS UTC, the way the page's script writes them."""
    return "–" if at is None else time.strftime("%H:%M:%S", time.gmtime(at))
