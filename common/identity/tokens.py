"""Sign-in tokens: HS256 JWTs (PyJWT) keyed by the cluster secret (docs/staff.md).

A front-end signs with a key derived from the current cluster secret and
accepts a key derived from any secret still accepted during a rotation.
Anything else is refused: another algorithm (`none` included), a wrong key,
an edited payload, an expired or not-yet-valid token, an oversized one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

import jwt

from common.auth import AuthError
from common.identity.roles import ROLES, Identity

ALGORITHM = "HS256"
ISSUER = "bazar"
MAX_LENGTH = 4096  # bytes of a token: anything longer is refused unread
# Token times are wall-clock times of two front-ends, like the signature window of
# internal calls: a clock this far off is tolerated (design §7 rule 8).
LEEWAY = 30.0
REQUIRED = ["exp", "iat", "nbf", "sub", "iss"]


def signing_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"bazar staff tokens v1", hashlib.sha256).digest()


def issue(who: Identity, secret: str, minutes: float, now: float | None = None) -> dict:
    """A token for `who`, valid for `minutes`: {"token", "expires_at"}."""
    now = time.time() if now is None else now
    expires = now + minutes * 60
    claims = {
        "sub": who.name,
        "role": who.role,
        "iss": ISSUER,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(expires),
        "jti": secrets.token_hex(8),
    }
    token = jwt.encode(claims, signing_key(secret), algorithm=ALGORITHM)
    at = datetime.fromtimestamp(int(expires), UTC).isoformat().replace("+00:00", "Z")
    return {"token": token, "expires_at": at}


def read(token: str, accepted: tuple[str, ...]) -> Identity:
    """The identity a token names (its role as it was signed); AuthError if refused."""
    if len(token) > MAX_LENGTH:
        raise AuthError("staff token too large")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("staff token is wrong") from None
    if header.get("alg") != ALGORITHM:
        raise AuthError(f"staff token: algorithm {header.get('alg')!r} is not accepted")
    for secret in accepted:
        try:
            claims = jwt.decode(
                token,
                signing_key(secret),
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": REQUIRED},
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with another accepted secret
        except jwt.ExpiredSignatureError:
            raise AuthError("staff token has expired: sign in again (POST /login)") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("staff token is not valid yet") from None
        except jwt.PyJWTError:
            raise AuthError("staff token is wrong") from None
        return _identity(claims)
    raise AuthError("staff token is wrong")


def _identity(claims: dict) -> Identity:
    name, role = claims.get("sub"), claims.get("role")
    if not isinstance(name, str) or role not in ROLES:
        raise AuthError("staff token is wrong")
    return Identity(name, role)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2
