"""Staff passwords: Argon2id hashes (argon2-cffi), made and checked off the event loop.

Parameters: the OWASP minimum for Argon2id (t=2, m=19 MiB, p=1), about 20-40 ms
per hash on this project's machine. Under gevent (the front-end's worker) the
work runs in a real thread, so a sign-in never stalls the customers' requests.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from gevent import get_hub, monkey

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# What an unknown name's password is checked against: a hash with the same parameters
# (of a phrase nobody uses; it is no secret), so that check takes as long as a real one.
DUMMY = (
    "$argon2id$v=19$m=19456,t=2,p=1$X7c+dMj5oyEa5tJuEUkkRQ"
    "$qsL3lTsTemM0tV6V7l7X7Ntma7+xGHufnqzSMwSKKfc"
)


def hash_password(password: str) -> str:
    return _off_loop(HASHER.hash, password)


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`. No stored hash (an unknown name) still costs
    one verification, so the time taken does not say whether a name exists."""
    return _off_loop(_verify, stored or DUMMY, password) and stored is not None


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _off_loop(work, *args):
    if monkey.is_module_patched("threading"):
        return get_hub().threadpool.apply(work, args)
    return work(*args)
