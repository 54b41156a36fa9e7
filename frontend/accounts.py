"""Signing in, and the staff accounts managers keep (docs/staff.md).

The password is checked here against the account's Argon2id hash, read from a
catalog replica; a new account's password is hashed here, so no password ever
reaches a catalog or a log. Account changes are catalog writes at the
primary, with an audit entry each.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request

from common.identity import passwords, tokens
from common.identity.roles import ADMIN, MANAGER, Identity
from common.observe.metrics import STAFF_SIGN_INS
from common.openapi import doc
from common.shapes import AccountSchema, LoginSchema, NewAccountSchema, TokenSchema
from common.web import ApiError, load_body
from frontend.identity import actor, staff_role
from frontend.services import call, relay

accounts = Blueprint("accounts", __name__)
WRONG = "wrong name or password"  # the same for an unknown name, a disabled account


def _deps():
    ext = current_app.extensions
    return ext["frontend.router"], ext["frontend.accounts"], ext["frontend.lockouts"]


@doc(body=LoginSchema, responses={200: TokenSchema}, errors=(400, 401, 429, 503))
@accounts.post("/login")
def login():
    """Sign in: a token (JWT) for `Authorization: Bearer`, valid `[staff] token_minutes`."""
    body = load_body(LoginSchema)
    who, issued = sign_in(body["name"], body["password"])
    return jsonify({**issued, "name": who.name, "role": who.role})


def sign_in(name: str, password: str) -> tuple[Identity, dict]:
    """Check a name and password (429 while locked out, 401 if wrong): who it is, and a
    new token {"token", "expires_at"}."""
    _, book, (by_name, by_address) = _deps()
    address = request.remote_addr or "?"
    wait = max(by_name.retry_after(name) or 0, by_address.retry_after(address) or 0)
    if wait:
        STAFF_SIGN_INS.labels("locked").inc()
        message = f"too many wrong passwords: try again in {wait} s"
        raise ApiError(429, message, headers={"Retry-After": str(wait)})
    account = None if name == ADMIN else book.get(name, fresh=True)
    stored = account["password_hash"] if account else None
    if not passwords.verify(stored, password) or account["disabled"]:
        by_name.failed(name)
        by_address.failed(address)
        STAFF_SIGN_INS.labels("wrong").inc()
        raise ApiError(401, WRONG)
    by_name.succeeded(name)
    STAFF_SIGN_INS.labels("ok").inc()
    cluster = current_app.extensions["bazar"].cluster
    who = Identity(name, account["role"])
    return who, tokens.issue(who, cluster.cluster_secret, cluster.staff.token_minutes)


@doc(responses={200: AccountSchema(many=True)}, errors=(403, 503), auth="staff")
@accounts.get("/staff")
@staff_role(MANAGER)
def list_accounts():
    """Manager: every staff account (name, role, disabled or not)."""
    router, _, _ = _deps()
    return jsonify(relay(call(router, "read", "catalog", "GET", "/staff")))


@doc(body=NewAccountSchema, responses={201: AccountSchema}, errors=(403, 409, 503), auth="staff")
@accounts.post("/staff")
@staff_role(MANAGER)
def add_account():
    """Manager: a new staff account; names are never reused (409)."""
    body = load_body(NewAccountSchema)
    if body["name"] == ADMIN:
        raise ApiError(409, "'admin' is reserved: it is the configured staff token's identity")
    router, book, _ = _deps()
    row = {
        "name": body["name"],
        "role": body["role"],
        "password_hash": passwords.hash_password(body["password"]),
        "by": actor(),
    }
    try:
        made = relay(call(router, "write", "catalog", "POST", "/staff", json=row), ok=(201,))
    finally:
        book.forget(body["name"])
    return jsonify(made), 201


@doc(responses={200: AccountSchema}, errors=(403, 404, 503), auth="staff")
@accounts.post("/staff/<string(maxlength=64):name>/disable")
@staff_role(MANAGER)
def disable_account(name: str):
    """Manager: disable an account; its tokens stop working on every front-end within 2 s."""
    router, book, _ = _deps()
    path = f"/staff/{quote(name, safe='')}/disable"
    try:
        return jsonify(relay(call(router, "write", "catalog", "POST", path, json={"by": actor()})))
    finally:
        book.forget(name)
