"""Sign-in tokens, password hashes and the lockout, without a cluster (docs/staff.md)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from common.auth import AuthError
from common.identity import passwords, tokens
from common.identity.roles import CLERK, MANAGER, Identity
from frontend.lockout import Lockout

SECRET = "s" * 32
ANN = Identity("ann", CLERK)


def _forge(claims: dict, key=SECRET, algorithm="HS256", **kw) -> str:
    return jwt.encode(
        claims, tokens.signing_key(key) if isinstance(key, str) else key, algorithm, **kw
    )


def _claims(**over) -> dict:
    now = int(time.time())
    return {
        "sub": "ann",
        "role": CLERK,
        "iss": "bazar",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        **over,
    }


def test_a_token_names_the_person_and_the_role_and_expires():
    issued = tokens.issue(ANN, SECRET, minutes=15)
    assert tokens.read(issued["token"], (SECRET,)) == ANN
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert issued["expires_at"].endswith("Z")


def test_a_token_of_an_accepted_older_secret_still_reads_and_a_dropped_one_does_not():
    old = tokens.issue(ANN, "o" * 32, minutes=1)["token"]
    assert tokens.read(old, (SECRET, "o" * 32)) == ANN
    with pytest.raises(AuthError, match="wrong"):
        tokens.read(old, (SECRET,))


def _unsigned(claims: dict, alg: str) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: _unsigned(_claims(), "none"), "algorithm"),
        (lambda: _unsigned(_claims(), "None"), "algorithm"),
        (lambda: _forge(_claims(), key=b"k" * 64, algorithm="HS512"), "algorithm"),
        (lambda: _forge(_claims(), key="another key of 32 characters....."), "wrong"),
        (lambda: _forge(_claims(exp=int(time.time()) - 120)), "expired"),
        (lambda: _forge(_claims(nbf=int(time.time()) + 120)), "not valid yet"),
        (lambda: _forge({k: v for k, v in _claims().items() if k != "exp"}), "wrong"),
        (lambda: _forge(_claims(iss="someone")), "wrong"),
        (lambda: _forge(_claims(role="owner")), "wrong"),
        (lambda: _forge(_claims(sub=7)), "wrong"),
        (lambda: "a.b.c", "wrong"),
        (lambda: "x" * 5000, "too large"),
    ],
)
def test_hostile_tokens_are_refused(token, why):
    with pytest.raises(AuthError, match=why):
        tokens.read(token(), (SECRET,))


def test_an_edited_payload_breaks_the_signature():
    head, _, sig = tokens.issue(ANN, SECRET, minutes=1)["token"].split(".")
    escalated = _unsigned(_claims(role=MANAGER), "HS256").split(".")[1]
    with pytest.raises(AuthError, match="wrong"):
        tokens.read(f"{head}.{escalated}.{sig}", (SECRET,))


def test_a_password_checks_against_its_hash_only():
    stored = passwords.hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "correct horsE")
    assert not passwords.verify(None, "correct horse")  # an unknown name
    assert not passwords.verify("not a hash", "x")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_name_is_locked_after_the_limit_for_the_window_then_free_again():
    clock = Clock()
    lock = Lockout(limit=3, window=60, clock=clock)
    for _ in range(2):
        lock.failed("ann")
    assert lock.retry_after("ann") is None
    lock.failed("ann")
    assert lock.retry_after("ann") == 60
    clock.now += 59.5
    assert lock.retry_after("ann") == 1
    clock.now += 1
    assert lock.retry_after("ann") is None
    lock.failed("ann")  # counting starts again
    assert lock.retry_after("ann") is None


def test_old_failures_stop_counting_and_a_success_clears_them():
    clock = Clock()
    lock = Lockout(limit=2, window=10, clock=clock)
    lock.failed("ann")
    clock.now += 11
    lock.failed("ann")
    assert lock.retry_after("ann") is None
    lock.succeeded("ann")
    lock.failed("ann")
    assert lock.retry_after("ann") is None
    assert lock.retry_after("bob") is None
