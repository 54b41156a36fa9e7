"""GET /cluster (a live page for operators) and GET /cluster.json (what it shows).

Both show node names, URLs, health, roles, epochs and queue depths, never a token or
a secret; still, customers need not see the inside of the cluster: they are open
from loopback and want a manager from anywhere else. A tool sends a staff token
(`Authorization: Bearer`); a browser gets a sign-in form instead of the page, and
signing in there (a manager's name and password, POST /cluster/sign-in) sets the
token as a cookie (HttpOnly, SameSite=Strict) that these two routes read. The page
is plain HTML rendered here with the current snapshot; /static/cluster.js then
fetches /cluster.json every second and redraws it (text only, no innerHTML),
under a CSP that allows nothing but this front-end's own files.
"""

from __future__ import annotations

import functools
import time

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from common.auth import AuthError
from common.identity.roles import MANAGER
from common.openapi import doc
from common.web import ApiError, from_loopback
from frontend.accounts import sign_in
from frontend.cluster_schemas import HEALTHS, ClusterViewSchema
from frontend.cluster_state import ClusterState
from frontend.identity import identify_token, require

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

SIGN_IN_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
COOKIE = "bazar_staff"  # a sign-in token for these routes only (HttpOnly, SameSite=Strict)
SIGN_IN_FORM = {
    "application/x-www-form-urlencoded": {
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "password": {"type": "string", "minLength": 1, "maxLength": 200},
            },
            "required": ["name", "password"],
        }
    }
}
HTML = {"text/html": {"schema": {"type": "string"}}}

bp = Blueprint("cluster_view", __name__)


def _operator() -> None:
    """Loopback; else a manager, by bearer token or by the cookie of the page's sign-in."""
    if from_loopback():
        return
    if request.headers.get("Authorization"):
        require(MANAGER)
        return
    token = request.cookies.get(COOKIE)
    if not token:
        raise AuthError("staff token required (Authorization: Bearer <token>)")
    require(MANAGER, identify_token(token))


def operators_only(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        _operator()
        return view(*args, **kwargs)

    return wrapper


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


@doc(responses={200: ClusterViewSchema}, errors=(401, 403), auth="none")
@bp.get("/cluster.json")
@operators_only
def cluster_json():
    """Every node as this front-end sees it: health and since when, roles, primary and
    epoch, outbox and recovery queue depths, cache hit rate, request rate, last events."""
    return _guarded(jsonify(_state().snapshot()), "default-src 'none'; frame-ancestors 'none'")


@doc(responses={200: HTML}, errors=(401, 403), auth="none")
@bp.get("/cluster")
def cluster_page():
    """The live cluster page (HTML; it refreshes itself from /cluster.json). Off loopback
    without a manager's token: a sign-in form (401) or a refusal (403)."""
    try:
        _operator()
    except (AuthError, ApiError) as e:
        return _sign_in_page(str(e) if request.cookies.get(COOKIE) else "", e)
    snapshot = _state().snapshot()
    page = render_template("cluster.html", s=snapshot, legend=LEGEND, clock=_clock)
    return _guarded(Response(page, mimetype="text/html"))


@doc(
    body=SIGN_IN_FORM,
    responses={303: None, **{status: HTML for status in (400, 401, 403, 429, 503)}},
    auth="none",
)
@bp.post("/cluster/sign-in")
def cluster_sign_in():
    """The page's sign-in form: a manager's name and password; 303 to /cluster with the
    token as a cookie for the page, or the form again saying why."""
    name, password = request.form.get("name", ""), request.form.get("password", "")
    try:
        if not (0 < len(name) <= 200 and 0 < len(password) <= 200):
            raise ApiError(400, "give a name and a password")
        who, issued = sign_in(name, password)
        require(MANAGER, who)
    except ApiError as e:
        return _sign_in_page(e.message, e)
    response = redirect(url_for("cluster_view.cluster_page"), code=303)
    minutes = current_app.extensions["bazar"].cluster.staff.token_minutes
    response.set_cookie(
        COOKIE,
        issued["token"],
        max_age=int(minutes * 60),
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )
    return response


def _sign_in_page(message: str, error: Exception) -> Response:
    status = getattr(error, "status", 401)
    node = current_app.extensions["bazar"].node.name
    page = render_template("cluster_signin.html", message=message, node=node)
    response = _guarded(Response(page, status=status, mimetype="text/html"), SIGN_IN_CSP)
    response.headers.update(getattr(error, "headers", {}))
    return response


def _clock(at: float | None) -> str:
    """Unix seconds as HH:MM:SS UTC, the way the page's script writes them."""
    return "–" if at is None else time.strftime("%H:%M:%S", time.gmtime(at))
