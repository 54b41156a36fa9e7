"""Staff bearer tokens and HMAC-signed internal calls (design §6).

An internal request carries three headers: a timestamp, a random nonce and
HMAC-SHA256(cluster_secret, method \\n path \\n timestamp \\n nonce \\n sha256(body)).
A node refuses a missing or wrong signature, a timestamp more than
`MAX_SKEW` seconds away, and a nonce it has already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from urllib.parse import unquote, urlsplit

import requests
from cachetools import TTLCache

TS_HEADER = "X-Bazar-Timestamp"
NONCE_HEADER = "X-Bazar-Nonce"
SIG_HEADER = "X-Bazar-Signature"
MAX_SKEW = 300.0


class AuthError(Exception):
    """A request's credentials are missing or wrong (401)."""


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    body_hash = hashlib.sha256(body or b"").hexdigest()
    message = "\n".join((method.upper(), path, timestamp, nonce, body_hash)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_target(path: str, query: str) -> str:
    """What a signature covers of the URL: the decoded path and the raw query string."""
    return f"{path}?{query}" if query else path


class SignedAuth(requests.auth.AuthBase):
    """requests auth hook that signs every outgoing internal call."""

    def __init__(self, secret: str):
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        timestamp = f"{time.time():.3f}"
        nonce = secrets.token_hex(12)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        # Sign the decoded path (what Flask sees as request.path) and the raw query.
        parts = urlsplit(request.url)
        path = signed_target(unquote(parts.path) or "/", parts.query)
        request.headers[TS_HEADER] = timestamp
        request.headers[NONCE_HEADER] = nonce
        request.headers[SIG_HEADER] = signature(
            self.secret, request.method or "GET", path, timestamp, nonce, body
        )
        return request


class SignatureVerifier:
    """Checks signed internal requests and remembers nonces to refuse replays."""

    def __init__(self, secret: str):
        self.secret = secret
        self._seen: TTLCache = TTLCache(maxsize=1_000_000, ttl=2 * MAX_SKEW)
        self._lock = threading.Lock()

    def verify(self, method: str, path: str, headers, body: bytes) -> None:
        timestamp = headers.get(TS_HEADER, "")
        nonce = headers.get(NONCE_HEADER, "")
        given = headers.get(SIG_HEADER, "")
        if not (timestamp and nonce and given):
            raise AuthError("internal route: signature headers missing")
        expected = signature(self.secret, method, path, timestamp, nonce, body)
        if not hmac.compare_digest(expected, given):
            raise AuthError("internal route: bad signature")
        try:
            skew = abs(time.time() - float(timestamp))
        except ValueError:
            raise AuthError("internal route: bad timestamp") from None
        if not math.isfinite(skew) or skew > MAX_SKEW:
            raise AuthError("internal route: timestamp too far from now")
        with self._lock:
            if nonce in self._seen:
                raise AuthError("internal route: replayed request")
            self._seen[nonce] = True


def check_bearer(header: str | None, token: str) -> None:
    """Raise AuthError unless `header` is 'Bearer <token>' (constant-time compare)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthError("staff token required (Authorization: Bearer <token>)")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AuthError("staff token is wrong")
