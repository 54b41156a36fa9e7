"""Staff bearer tokens and HMAC-signed internal calls (design §6).

An internal request carries three headers: a timestamp, a random nonce and
HMAC-SHA256(cluster_secret, method \\n path \\n timestamp \\n nonce \\n sha256(body)).
A node refuses a missing or wrong signature, a timestamp more than
`MAX_SKEW` seconds away, and a nonce it has already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from urllib.parse import unquote, urlsplit

TS_HEADER = "X-Bazar-Timestamp"
NONCE_HEADER = "X-Bazar-Nonce"
SIG_HEADER = "X-Bazar-Signature"
# Nodes share a host or a LAN with synced clocks. The window also bounds memory: every
# nonce is remembered while its timestamp could still be accepted (2 x MAX_SKEW).
MAX_SKEW = 30.0

log = logging.getLogger(__name__)


class AuthError(Exception):
    """A request's credentials are missing or wrong (401)."""


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    body_hash = hashlib.sha256(body or b"").hexdigest()
    message = "\n".join((method.upper(), path, timestamp, nonce, body_hash)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_target(path: str, query: str) -> str:
    """What a signature covers of the URL: the decoded path and the raw query string."""
    return f"{path}?{query}" if query else path


def signed_headers(secret: str, method: str, url_path: str, body: bytes) -> dict[str, str]:
    """The three signature headers for a call to `url_path` (path and query, as sent)."""
    timestamp = f"{time.time():.3f}"
    nonce = secrets.token_hex(12)
    # Sign the decoded path (what Flask sees as request.path) and the raw query.
    parts = urlsplit(url_path)
    target = signed_target(unquote(parts.path) or "/", parts.query)
    return {
        TS_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIG_HEADER: signature(secret, method or "GET", target, timestamp, nonce, body),
    }


class SignedAuth:
    """A requests auth hook (any callable will do) that signs an outgoing internal call:
    tests and tools. The nodes' own client (common.http) calls `signed_headers`, and
    nodes never import requests (6 MB of RSS each)."""

    def __init__(self, secret: str):
        self.secret = secret

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers.update(signed_headers(self.secret, request.method, request.url, body))
        return request


class SignatureVerifier:
    """Checks signed internal requests and remembers nonces to refuse replays."""

    def __init__(self, secrets: str | tuple[str, ...], on_offset=None):
        # The secret nodes sign with, then any still accepted during a rotation.
        self.secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        self._seen = NonceBuckets(MAX_SKEW)
        self._lock = threading.Lock()
        self.on_offset = on_offset  # told our wall clock minus the caller's, per call

    def verify(self, method: str, path: str, headers, body: bytes) -> None:
        timestamp = headers.get(TS_HEADER, "")
        nonce = headers.get(NONCE_HEADER, "")
        given = headers.get(SIG_HEADER, "")
        if not (timestamp and nonce and given):
            raise AuthError("internal route: signature headers missing")
        if not any(
            hmac.compare_digest(signature(secret, method, path, timestamp, nonce, body), given)
            for secret in self.secrets
        ):
            raise AuthError("internal route: bad signature")
        try:
            offset = time.time() - float(timestamp)
        except ValueError:
            raise AuthError("internal route: bad timestamp") from None
        if math.isfinite(offset) and self.on_offset is not None:
            # A genuine caller (the signature held), refused or not.
            self.on_offset(offset, headers.get("X-Bazar-Node") or "?")
        if not math.isfinite(offset) or abs(offset) > MAX_SKEW:
            log.warning(
                "refused a signed %s %s: our wall clock is %+.1f s from the caller's "
                "(more than %d s); check both clocks",
                method,
                path,
                offset,
                MAX_SKEW,
            )
            raise AuthError("internal route: timestamp too far from now")
        with self._lock:
            if not self._seen.add(nonce, float(timestamp)):
                raise AuthError("internal route: replayed request")


class NonceBuckets:
    """Nonces seen, in one set per `window` seconds of their request's timestamp.

    A request is refused unless its timestamp is within `window` of now, so once a
    bucket's newest timestamp is that old the bucket can go: any replay of its nonces
    is refused for its age. Memory is bounded by what arrives in about 2 x window
    (a TTL cache of 1,000,000 entries grew by tens of MB under load)."""

    def __init__(self, window: float):
        self.window = window
        self._buckets: dict[int, set[str]] = {}

    def add(self, nonce: str, timestamp: float, now: float | None = None) -> bool:
        """Remember `nonce`; False if it was already seen with a live timestamp."""
        self._forget(time.time() if now is None else now)
        bucket = self._buckets.setdefault(int(timestamp // self.window), set())
        if nonce in bucket:
            return False
        bucket.add(nonce)
        return True

    def _forget(self, now: float) -> None:
        oldest_live = int((now - self.window) // self.window)
        for key in [k for k in self._buckets if k < oldest_live]:
            del self._buckets[key]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())


def check_bearer(header: str | None, tokens: str | tuple[str, ...]) -> None:
    """Raise AuthError unless `header` is 'Bearer <token>' for one of `tokens` (the
    current one, and any still accepted during a rotation); constant-time compares."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthError("staff token required (Authorization: Bearer <token>)")
    accepted = (tokens,) if isinstance(tokens, str) else tokens
    if not any(hmac.compare_digest(given.strip().encode(), t.encode()) for t in accepted):
        raise AuthError("staff token is wrong")
