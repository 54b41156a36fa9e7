"""This node's view of the other nodes, and calls that fail over between them.

A background thread checks `/health` of every watched node each
`health_period`; a call that finds a node unreachable marks it down at once,
and the next health check brings it back. Reads rotate over healthy replicas
(round robin); writes go to the primary: the first healthy node in config
order (design §7), trying the next one if that node refuses.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import requests

from common.config import Node
from common.http import InternalClient, Unreachable

log = logging.getLogger(__name__)

# Answers that mean "try another replica": recovering/overloaded, not primary.
RETRY_ELSEWHERE = {503, 421}


TIMEOUTS_BEFORE_DOWN = 3


def _status_of(response: requests.Response) -> str:
    if response.status_code == 200:
        return "up"
    try:
        status = response.json().get("status", "down")
    except (ValueError, AttributeError):
        status = "down"
    return status if status in ("joining", "recovering", "stale") else "down"


class NoReplica(Exception):
    """No node of a service could answer."""

    def __init__(self, service: str):
        super().__init__(f"no {service} server reachable")
        self.service = service


class Membership:
    """Which of the watched nodes are healthy right now, as far as we know."""

    def __init__(self, client: InternalClient, watched: list[Node], period: float):
        self.client = client
        self.watched = watched
        self.period = period
        self._status: dict[str, str] = {n.name: "down" for n in watched}
        self._timeouts: dict[str, int] = {n.name: 0 for n in watched}
        self._stamp: dict[str, float] = {n.name: 0.0 for n in watched}
        self._primary: dict[str, str] = {}  # service -> the node that last said "primary"
        self._lock = threading.Lock()
        self._turns: dict[str, itertools.count] = {}
        self._stop = threading.Event()

    # -- view -------------------------------------------------------------
    def status(self, name: str) -> str:
        """'up', 'joining', 'recovering' or 'down' (no answer)."""
        return self._status.get(name, "down")

    def is_up(self, name: str) -> bool:
        return self.status(name) == "up"

    def of(self, service: str) -> list[Node]:
        return [n for n in self.watched if n.service == service]

    def healthy(self, service: str) -> list[Node]:
        return [n for n in self.of(service) if self.is_up(n.name)]

    def read_order(self, service: str) -> list[Node]:
        """Healthy replicas rotated round-robin, then the others as a last resort."""
        nodes = self.of(service)
        up = [n for n in nodes if self.is_up(n.name)]
        down = [n for n in nodes if not self.is_up(n.name)]
        if up:
            turn = next(self._turns.setdefault(service, itertools.count()))
            shift = turn % len(up)
            up = up[shift:] + up[:shift]
        return up + down

    def write_order(self, service: str) -> list[Node]:
        """Healthy nodes first, the last known primary first among them; config order."""
        nodes = self.of(service)
        primary = self._primary.get(service)
        return sorted(nodes, key=lambda n: (not self.is_up(n.name), n.name != primary))

    # -- updates ------------------------------------------------------------
    def mark(self, name: str, status: str, since: float | None = None) -> None:
        """Record a node's status; a result observed before the last mark is ignored."""
        since = time.monotonic() if since is None else since
        with self._lock:
            if since >= self._stamp.get(name, 0.0):
                self._stamp[name] = since
                self._status[name] = status

    def check(self, node: Node) -> str:
        started = time.monotonic()
        try:
            response = self.client.request(node, "GET", "/health", timeout=1.0)
        except Unreachable as e:
            # A refused connection is certain death; one slow answer under load is not.
            self._timeouts[node.name] = self._timeouts[node.name] + 1 if e.timed_out else 99
            if self._timeouts[node.name] >= TIMEOUTS_BEFORE_DOWN:
                self.mark(node.name, "down", started)
            return self.status(node.name)
        self._timeouts[node.name] = 0
        self.mark(node.name, _status_of(response), started)
        self._note_role(node, response)
        return self.status(node.name)

    def _note_role(self, node: Node, response: requests.Response) -> None:
        try:
            role = response.json().get("role")
        except (ValueError, AttributeError):
            return
        if role == "primary":
            self._primary[node.service] = node.name
        elif self._primary.get(node.service) == node.name:
            self._primary.pop(node.service, None)

    def check_all(self) -> None:
        for node in self.watched:
            self.check(node)

    def start(self) -> None:
        self.check_all()
        threading.Thread(target=self._loop, name="health-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.check_all()
            except Exception:  # never let the monitor die
                log.exception("health check failed")


class Router:
    """Calls a service through whichever replica answers (design §7 rule 5).

    Tries every candidate in turn, then again with a growing pause, for up to
    `patience` seconds: long enough to ride out a primary hand-off or the
    seconds before a dead primary's successor notices.
    """

    def __init__(
        self,
        client: InternalClient,
        membership: Membership,
        patience: float = 3.0,
        headers: dict | None = None,
    ):
        self.client = client
        self.membership = membership
        self.patience = patience
        self.headers = headers or {}  # sent with every call

    def read(self, service: str, method: str, path: str, **kw: Any) -> requests.Response:
        return self._call(service, self.membership.read_order, method, path, **kw)

    def read_any(self, service: str, method: str, path: str, **kw: Any) -> requests.Response:
        """A read where one replica's 404 is not the last word (it may not have the row
        yet): every reachable replica is asked before a 404 is believed."""
        return self._call(service, self.membership.read_order, method, path, settle={404}, **kw)

    def write(self, service: str, method: str, path: str, **kw: Any) -> requests.Response:
        return self._call(service, self.membership.write_order, method, path, **kw)

    def _call(self, service, order, method, path, settle=frozenset(), **kw) -> requests.Response:
        """`settle`: answers that send the call on to the other replicas first, and are
        the answer only if none of them gives a better one."""
        kw["headers"] = {**self.headers, **(kw.get("headers") or {})}
        deadline = time.monotonic() + self.patience
        pause = 0.05
        gone: set[str] = set()  # unreachable in this call: not asked again by it, since
        # each try could cost a connect timeout while the others are being waited for
        while True:
            settled = None
            for node in [n for n in order(service) if n.name not in gone]:
                try:
                    response = self.client.request(node, method, path, **kw)
                except Unreachable:
                    self.membership.mark(node.name, "down")
                    gone.add(node.name)
                    continue
                if response.status_code in settle:
                    settled = response
                elif response.status_code not in RETRY_ELSEWHERE:
                    return response
            if settled is not None:
                return settled
            if time.monotonic() + pause > deadline:
                raise NoReplica(service)
            time.sleep(pause)
            pause = min(pause * 2, 0.4)
