"""One member of staff over HTTP: signs in, sends writes, and logs every one of them.

A `StaffMember` signs in with `POST /login` (or is `admin`, the configured
staff token) and sends each write with an `X-Request-Id` of its own; a 401 is
counted, never hidden: the member signs in again and sends the write once
more, as a new request. Every request goes into a `StaffLog` with what it set
and what came back, for the audit-trail checks (tests/support/audit_trail.py).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.support.cluster import LocalCluster

ADMIN = "admin"  # the identity of the configured staff token
TIMEOUT = 15.0  # seconds a staff request may take before its outcome is unknown


@dataclass
class StaffWrite:
    """One staff request as its client saw it."""

    request_id: str
    staff: str
    action: str  # as the audit trail names it: price, quantity, add, staff-add
    book_id: int | None  # None for an add (the 201 names it) and account changes
    fields: dict  # what the request set: {"cost": 101.0}, {"quantity": 7}, a new book
    started: float
    key: str | None = None  # an add's Idempotency-Key: its attempts are one write
    ended: float = 0.0
    status: int = 0  # the HTTP status; 0: no answer (a timeout, a refused connection)
    message: str = ""  # what a refusal said

    @property
    def outcome(self) -> str:
        """acked (2xx), refused (4xx: definitively not done), or unknown (5xx, no answer)."""
        if 200 <= self.status < 300:
            return "acked"
        if 400 <= self.status < 500:
            return "refused"
        return "unknown"


@dataclass
class StaffLog:
    """Every staff request and sign-in the test's staff made."""

    writes: list[StaffWrite] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=lambda: {ADMIN: "manager"})
    sign_ins: Counter = field(default_factory=Counter)  # per name: sign-ins answered 200
    # sign-ins answered anything but 200 or a 5xx: (name, status, message); an account
    # that was made (acknowledged) must sign in on every front-end
    refused_sign_ins: list[tuple[str, int, str]] = field(default_factory=list)
    # 401s on writes: (name, url, message); the member signed in again
    unauthorized: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, write: StaffWrite) -> None:
        with self._lock:
            self.writes.append(write)

    def outcomes(self) -> dict[str, Counter]:
        """Per staff name: Counter of outcomes (acked, refused, unknown)."""
        by: dict[str, Counter] = {}
        for w in self.writes:
            by.setdefault(w.staff, Counter())[w.outcome] += 1
        return by

    def acked_by(self) -> Counter:
        return Counter(w.staff for w in self.writes if w.outcome == "acked")


class StaffMember:
    """One member of staff: signs in on a front-end and sends writes with the token.

    `admin` has the configured staff token and never signs in."""

    def __init__(
        self,
        cluster: LocalCluster,
        name: str,
        log: StaffLog,
        stop: threading.Event,
        password: str | None = None,
        token: str | None = None,
    ):
        self.name = name
        self.password = password
        self.token = token
        self.log = log
        self.stop = stop
        self.session = cluster.session()
        self.frontends = [cluster.url_of(n) for n in cluster.names("frontend")]

    def sign_in(self, first: str, patience: float = 60.0) -> bool:
        """Sign in, on `first` or another front-end if it cannot answer; False if stopped
        or out of patience. A refusal is kept in the log (the checker fails on one)."""
        urls = itertools.cycle([first] + [u for u in self.frontends if u != first])
        deadline = time.monotonic() + patience
        for attempt in itertools.count():
            if self.stop.is_set() or time.monotonic() > deadline:
                return False
            url = next(urls)
            body = {"name": self.name, "password": self.password}
            try:
                response = self.session.post(f"{url}/login", json=body, timeout=TIMEOUT)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 200:
                self.token = response.json()["token"]
                with self.log._lock:
                    self.log.sign_ins[self.name] += 1
                return True
            if response is not None and response.status_code < 500:
                with self.log._lock:
                    self.log.refused_sign_ins.append(
                        (self.name, response.status_code, _message(response))
                    )
                wait = float(response.headers.get("Retry-After") or 0)
                self.stop.wait(min(max(wait, 0.5), 5.0))
                continue
            self.stop.wait(min(0.2 * (attempt + 1), 1.0))
        return False

    def send(
        self,
        url: str,
        method: str,
        path: str,
        body: dict,
        action: str,
        book_id: int | None,
        fields: dict,
        key: str | None = None,
    ) -> StaffWrite | None:
        """One staff write (signing in first if need be); on a 401, sign in again and
        send it once more as a new request. The last attempt; None if stopped first."""
        for _ in range(3):
            if self.token is None and not self.sign_in(url):
                return None
            write = self._one(url, method, path, body, action, book_id, fields, key)
            if write.status != 401:
                return write
            with self.log._lock:
                self.log.unauthorized.append((self.name, url, write.message))
            if self.password is None:  # admin: the static token has no sign-in
                return write
            self.token = None
        return write

    def _one(self, url, method, path, body, action, book_id, fields, key) -> StaffWrite:
        request_id = f"{self.name}-{uuid.uuid4().hex[:20]}"
        headers = {"Authorization": f"Bearer {self.token}", "X-Request-Id": request_id}
        if key is not None:
            headers["Idempotency-Key"] = key
        write = StaffWrite(
            request_id, self.name, action, book_id, fields, time.monotonic(), key=key
        )
        try:
            response = self.session.request(
                method, f"{url}{path}", json=body, headers=headers, timeout=TIMEOUT
            )
        except requests.RequestException:
            response = None
        write.ended = time.monotonic()
        if response is not None:
            write.status = response.status_code
            if write.outcome == "acked" and action == "add":
                write.book_id = _json(response).get("id")
            elif write.outcome != "acked":
                write.message = _message(response)
        self.log.add(write)
        return write


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: requests.Response) -> str:
    return str(_json(response).get("message") or response.text[:120])
