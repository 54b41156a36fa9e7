"""Who is asking, on the front-end: the staff token or a sign-in token, and their role.

The configured staff token is the identity `admin`, a manager. A token from
`POST /login` names an account; the account itself, read from a catalog
replica under its read lease and kept here for at most `ACCOUNT_TTL`, says
whether it is still enabled and what its role is now. So `bazar staff
disable` takes effect on every front-end within ACCOUNT_TTL of being
acknowledged (docs/staff.md).
"""

from __future__ import annotations

import functools
import hmac
import uuid
from collections.abc import Callable
from urllib.parse import quote

from cachetools import TTLCache
from flask import current_app, g, request

from common.auth import AuthError
from common.cluster import Router
from common.identity import tokens
from common.identity.roles import ADMIN, MANAGER, Identity, article
from common.observe.requestlog import current_request_id
from common.web import ApiError
from frontend.services import call

ACCOUNT_TTL = 0.5  # seconds an account read from a catalog is trusted here (2 s promised)


class AccountBook:
    """Accounts as a catalog replica has them, each kept for ACCOUNT_TTL."""

    def __init__(self, router: Router, ttl: float = ACCOUNT_TTL):
        self.router = router
        self._cache: TTLCache = TTLCache(maxsize=4096, ttl=ttl)

    def get(self, name: str, fresh: bool = False) -> dict | None:
        """The account (with its hash), None if there is none; 503 if no replica can say."""
        if not fresh and name in self._cache:
            return self._cache[name]
        path = f"/staff/{quote(name, safe='')}"
        response = call(self.router, "read", "catalog", "GET", path)
        if response.status_code == 404:
            found = None
        elif response.status_code == 200:
            found = response.json()
        else:
            raise ApiError(503, "no catalog replica could read the staff account")
        self._cache[name] = found
        return found

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)


def identify() -> Identity:
    """The identity of this request's bearer token; AuthError (401) if there is none."""
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise AuthError("staff token required (Authorization: Bearer <token>)")
    return identify_token(given)


def identify_token(given: str) -> Identity:
    """Who a staff token (the configured one, or one from a sign-in) names now."""
    if len(given) > tokens.MAX_LENGTH:
        raise AuthError("staff token too large")
    if any(hmac.compare_digest(given.encode(), t.encode()) for t in _static_tokens()):
        return Identity(ADMIN, MANAGER)
    if not tokens.looks_like_jwt(given):
        raise AuthError("staff token is wrong")
    claimed = tokens.read(given, current_app.extensions["bazar"].cluster.cluster_secrets)
    account = current_app.extensions["frontend.accounts"].get(claimed.name)
    if account is None:
        raise AuthError("staff token is wrong")
    if account["disabled"]:
        raise AuthError("this staff account is disabled")
    return Identity(claimed.name, account["role"])


def _static_tokens() -> tuple[str, ...]:
    return current_app.config["STAFF_TOKEN"]


def require(needed: str, who: Identity | None = None) -> Identity:
    """This request's identity (or `who`) if its role may do what needs `needed`; else 403."""
    who = who or g.get("staff") or identify()
    g.staff = who
    if not who.may(needed):
        raise ApiError(
            403, f"this needs the {needed} role (you are {article(who.role)})", needs=needed
        )
    return who


def staff_role(needed: str) -> Callable:
    """A view for staff whose role is `needed` or above (401 without a token, 403 below)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            require(needed)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def actor() -> dict:
    """Who makes this staff write, as the catalog records it in the audit trail. The
    write id is made once per request: the router's retries send the same one."""
    if "actor" not in g:
        who = g.get("staff") or identify()
        g.actor = {
            "staff": who.name,
            "role": who.role,
            "write_id": uuid.uuid4().hex,
            "request_id": current_request_id(),
        }
    return g.actor
