"""This node's view of the other nodes, and calls that fail over between them.

A background thread checks `/health` of every watched node each
`health_period`, and of a node that keeps answering "up" alike (steady) only
every `STEADY_FACTOR` periods: in an idle cluster those checks were most of
the wake-ups, and each costs about what a request does (docs/performance.md,
"What an idle cluster pays for"). A call that finds a node unreachable marks it
down at once (then it is checked every period again, and the next good check
brings it back); a call that is refused (421, 503, 401) or waits long on a write
has its service's nodes checked at once (`hurry`). Reads rotate over healthy replicas
(round robin); writes go to the primary: the first healthy node in config
order (design §7), trying the next one if that node refuses.

For people watching (the front-end's /cluster page), Membership also keeps
since when each node has had its status, each node's last /health body, and
the last changes it saw (a node down or back, another primary) as `Event`s.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from common.config import Node
from common.http import InternalClient, Reply, Unreachable
from common.observe.metrics import BACKEND_FAILOVERS, BACKEND_RETRIES

log = logging.getLogger(__name__)

# Answers that mean "try another replica": recovering/overloaded, not primary, or our
# signed call refused (401: its wall clock and ours are further apart than the signature
# window, or a secret being rotated). None of them is the customer's to see: when every
# replica gives one, the call fails as NoReplica (503).
RETRY_ELSEWHERE = {503, 421, 401}


TIMEOUTS_BEFORE_DOWN = 3
STEADY_FACTOR = 4  # a steady node is checked every 4 periods (2 s at the default 0.5)
HURRY_GAP = 0.25  # seconds: the closest that callers' hurries bring two checks of a node
HURRY_AFTER = 0.25  # seconds a write waits on its answer before its service is checked
GIVE_WAY_POLL = 0.1  # seconds between looks for a newer primary while a write waits
EVENTS_KEPT = 50  # the last changes a Membership remembers, for people to read


def _status_of(response: Reply) -> str:
    if response.status_code == 200:
        return "up"
    try:
        status = response.json().get("status", "down")
    except (ValueError, AttributeError):
        status = "down"
    return status if status in ("joining", "recovering", "stale", "behind") else "down"


@dataclass(frozen=True)
class Event:
    """A change this node saw: another health status, or another primary."""

    at: float  # wall clock (time.time()) when it was observed
    node: str
    service: str
    kind: str  # "health" or "primary"
    before: str | None  # health: the old status; primary: the old primary's name
    after: str | None  # health: the new status; primary: the new primary (None: none known)
    epoch: int | None = None  # primary: the lease epoch the new primary reported


def _wall(monotonic: float) -> float:
    """The wall-clock time of a moment taken with time.monotonic()."""
    return time.time() - (time.monotonic() - monotonic)


class NoReplica(Exception):
    """No node of a service could answer."""

    def __init__(self, service: str):
        super().__init__(f"no {service} server reachable")
        self.service = service


class Membership:
    """Which of the watched nodes are healthy right now, as far as we know."""

    def __init__(self, client: InternalClient, watched: list[Node], period: float, clocks=None):
        self.client = client
        self.watched = watched
        self.period = period
        self.clocks = clocks  # a ClockWatch told each node's wall time, or None
        self.checked = False  # a first round of health checks has run
        self._status: dict[str, str] = {n.name: "down" for n in watched}
        self._timeouts: dict[str, int] = {n.name: 0 for n in watched}
        self._stamp: dict[str, float] = {n.name: 0.0 for n in watched}
        self._primary: dict[str, str] = {}  # service -> the node that last said "primary"
        self._lock = threading.Lock()
        self._turns: dict[str, itertools.count] = {}
        self._stop = threading.Event()
        self._due: dict[str, float] = {n.name: 0.0 for n in watched}  # monotonic: next check
        self._checked_at: dict[str, float] = {n.name: 0.0 for n in watched}
        self._wake = threading.Event()  # the schedule moved earlier (`hurry`, a change)
        self._checking: set[str] = set()  # nodes whose check is under way
        self._checkers = ThreadPoolExecutor(
            max_workers=max(1, len(watched)), thread_name_prefix="health-check"
        )
        # For the people watching, not for routing:
        self._services = {n.name: n.service for n in watched}
        self._since: dict[str, float] = {}  # wall time the current status was first seen
        self._bodies: dict[str, dict] = {}  # the last /health body each node sent
        self._answered: dict[str, float] = {}  # wall time of that body
        self._events: deque[Event] = deque(maxlen=EVENTS_KEPT)

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

    def since(self, name: str) -> float | None:
        """Wall time since which the node has had its status; None: never checked yet."""
        return self._since.get(name)

    def last_health(self, name: str) -> tuple[dict | None, float | None]:
        """The last /health body the node sent (any status) and the wall time it came."""
        return self._bodies.get(name), self._answered.get(name)

    def primary(self, service: str) -> str | None:
        """The node that last said it is the primary (it may be down since)."""
        return self._primary.get(service)

    def newer_primary_than(self, node: Node) -> str | None:
        """Another node that says it is the primary, of a newer epoch than `node` said."""
        primary = self._primary.get(node.service)
        if primary is None or primary == node.name:
            return None
        return primary if self._epoch_of(primary) > self._epoch_of(node.name) else None

    def _epoch_of(self, name: str) -> int:
        lease = (self._bodies.get(name) or {}).get("lease")
        epoch = lease.get("mine") or lease.get("epoch") if isinstance(lease, dict) else 0
        return epoch if isinstance(epoch, int) else 0

    def events(self) -> list[Event]:
        """The last changes seen, newest first."""
        with self._lock:
            return list(reversed(self._events))

    # -- updates ------------------------------------------------------------
    def mark(self, name: str, status: str, since: float | None = None) -> None:
        """Record a node's status; a result observed before the last mark is ignored."""
        since = time.monotonic() if since is None else since
        before = status
        with self._lock:
            if since >= self._stamp.get(name, 0.0):
                self._stamp[name] = since
                before = self._status.get(name)
                self._status[name] = status
                self._note_change(name, before, status, since)
        if before != status:  # e.g. a call found it unreachable: back to every period
            self._bring_forward(name, time.monotonic() + self.period)

    def hurry(self, service: str) -> None:
        """Check the service's nodes now (at most every HURRY_GAP each): a call was
        refused, or a write waits long, so what we know of them may be out of date."""
        now = time.monotonic()
        for node in self.of(service):
            self._bring_forward(node.name, max(now, self._checked_at[node.name] + HURRY_GAP))

    def _bring_forward(self, name: str, when: float) -> None:
        if name in self._due and when < self._due[name]:
            self._due[name] = when
            self._wake.set()

    def _note_change(self, name: str, before: str | None, after: str, since: float) -> None:
        """Under the lock: the first status seen, or a change, starts a new 'since'."""
        if name not in self._since:
            self._since[name] = _wall(since)  # what it was before we looked: unknown
        elif before != after:
            self._since[name] = at = _wall(since)
            service = self._services.get(name, "")
            self._events.append(Event(at, name, service, "health", before, after))

    def check(self, node: Node) -> str:
        started, sent_wall = time.monotonic(), time.time()
        known = self.status(node.name), self._role_of(node.name)
        self._checked_at[node.name] = started
        self._due[node.name] = started + self.period  # unless it proves steady below
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
        self._note_role(node, response, sent_wall)
        if known == ("up", self._role_of(node.name)) and self.is_up(node.name):
            self._due[node.name] = started + self.period * STEADY_FACTOR
        return self.status(node.name)

    def _role_of(self, name: str) -> str | None:
        return (self._bodies.get(name) or {}).get("role")

    def _note_role(self, node: Node, response: Reply, sent_wall: float) -> None:
        try:
            body = response.json()
            role = body.get("role")
        except (ValueError, AttributeError):
            return
        self._bodies[node.name], self._answered[node.name] = body, time.time()
        wall = body.get("wall")
        if self.clocks is not None and isinstance(wall, int | float):
            self.clocks.heard(wall, sent_wall, self._answered[node.name], node.name)
        before = self._primary.get(node.service)
        if role == "primary":
            self._primary[node.service] = node.name
        elif self._primary.get(node.service) == node.name:
            self._primary.pop(node.service, None)
        after = self._primary.get(node.service)
        if after != before:
            lease = body.get("lease")
            epoch = lease.get("epoch") if isinstance(lease, dict) else None
            event = Event(time.time(), node.name, node.service, "primary", before, after, epoch)
            with self._lock:
                self._events.append(event)

    def check_all(self) -> None:
        for node in self.watched:
            self.check(node)
        self.checked = True

    def check_due(self) -> None:
        """Start a check of each node whose turn has come, each on a thread of its own:
        a frozen node's check (a 1 s timeout) must not hold back news from the others,
        such as a new primary that a waiting write is looking for."""
        now = time.monotonic()
        for node in self.watched:
            if self._due[node.name] <= now and node.name not in self._checking:
                self._checking.add(node.name)
                self._checkers.submit(self._check_in_turn, node)

    def _check_in_turn(self, node: Node) -> None:
        try:
            self.check(node)
        except Exception:  # never let the monitor die
            log.exception("health check of %s failed", node.name)
        finally:
            self._checking.discard(node.name)
            self._wake.set()  # its next turn is known now

    def start(self) -> None:
        self.check_all()
        threading.Thread(target=self._loop, name="health-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            waiting = [due for name, due in self._due.items() if name not in self._checking]
            soonest = min(waiting, default=time.monotonic() + self.period)
            self._wake.wait(max(0.0, soonest - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check_due()
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
        # Writes wait on their call from here, so they can give way (greenlets under gevent).
        self._waiters = ThreadPoolExecutor(max_workers=32, thread_name_prefix="write-call")

    def read(self, service: str, method: str, path: str, **kw: Any) -> Reply:
        return self._call(service, self.membership.read_order, method, path, **kw)

    def read_any(self, service: str, method: str, path: str, **kw: Any) -> Reply:
        """A read where one replica's 404 is not the last word (it may not have the row
        yet): every reachable replica is asked before a 404 is believed."""
        return self._call(service, self.membership.read_order, method, path, settle={404}, **kw)

    def write(self, service: str, method: str, path: str, **kw: Any) -> Reply:
        return self._call(service, self.membership.write_order, method, path, give_way=True, **kw)

    def _request(self, node: Node, method: str, path: str, give_way: bool, **kw) -> Reply:
        """One call; a write to a primary that another primary of a newer epoch has
        replaced since (a frozen or cut-off holder) gives way instead of waiting out
        `read_timeout`: the caller retries at the new primary, with the same key."""
        if not give_way:
            return self.client.request(node, method, path, **kw)
        # In the caller's context: the request it serves (its id, its log line) goes along.
        context = contextvars.copy_context()
        pending = self._waiters.submit(context.run, self.client.request, node, method, path, **kw)
        hurry_at = time.monotonic() + HURRY_AFTER
        while True:
            try:
                return pending.result(timeout=GIVE_WAY_POLL)
            except FutureTimeout:
                if time.monotonic() >= hurry_at:  # a frozen primary? look for a newer one
                    self.membership.hurry(node.service)
                newer = self.membership.newer_primary_than(node)
                if newer:
                    log.warning("%s %s to %s gave way to %s", method, path, node.name, newer)
                    raise Unreachable(f"{node.name} was replaced by {newer}") from None

    def _call(self, service, order, method, path, settle=frozenset(), give_way=False, **kw):
        """`settle`: answers that send the call on to the other replicas first, and are
        the answer only if none of them gives a better one."""
        kw["headers"] = {**self.headers, **(kw.get("headers") or {})}
        deadline = time.monotonic() + self.patience
        pause = 0.05
        gone: set[str] = set()  # unreachable in this call: not asked again by it, since
        # each try could cost a connect timeout while the others are being waited for
        first = None  # the node asked first: an answer from another one is a failover
        if self._none_reachable(service, gone):
            raise NoReplica(service)  # at once: waiting out timeouts helps nobody
        while True:
            settled = settled_by = None
            for node in [n for n in order(service) if n.name not in gone]:
                first = first or node.name
                try:
                    response = self._request(node, method, path, give_way, **kw)
                except Unreachable:
                    self.membership.mark(node.name, "down")
                    gone.add(node.name)
                    BACKEND_RETRIES.labels(service, node.name).inc()
                    continue
                if response.status_code in settle:
                    settled, settled_by = response, node.name
                elif response.status_code not in RETRY_ELSEWHERE:
                    return _answered(service, first, node.name, response)
                else:
                    BACKEND_RETRIES.labels(service, node.name).inc()
                    self.membership.hurry(service)  # not the primary, stale, ...: look again
            if settled is not None:
                return _answered(service, first, settled_by, settled)
            if time.monotonic() + pause > deadline or self._none_reachable(service, gone):
                raise NoReplica(service)
            time.sleep(pause)
            pause = min(pause * 2, 0.4)

    def _none_reachable(self, service: str, gone: set[str]) -> bool:
        """Every replica failed in this call or is down by the health checks (not merely
        stale or recovering: those answer, and may serve again within the call)."""
        if not self.membership.checked:
            return False  # no health check has run yet: nothing is known
        return all(
            n.name in gone or self.membership.status(n.name) == "down"
            for n in self.membership.of(service)
        )


def _answered(service: str, first: str, by: str, response: Reply) -> Reply:
    if by != first:
        BACKEND_FAILOVERS.labels(service, first).inc()
    return response
