"""What the /cluster page shows: every node as this front-end sees it, from memory only.

Nothing here calls another node: the health threads of the front-end's
`Membership`s have already asked, so a slow or dead node never holds up the
page. The backends' Membership (the router's) watches catalogs and orders; a
second one, for people only, watches the recovery node and other front-ends.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter

from common.cluster import Event, Membership
from common.config import Node
from common.node import NodeContext
from common.observe.metrics import BACKEND_FAILOVERS, BACKEND_RETRIES, HTTP_REQUESTS
from frontend.cache import BookCache

RATE_WINDOW = 5.0  # seconds the request rate is taken over (at least)
RATE_SPACING = 0.25  # samples closer than this are not kept: many viewers, few samples
SHOWN_EVENTS = 50
VOTING = ("catalog", "recovery")  # their /health carries the Raft lease view


def counter_totals(counter: Counter, label: str | None = None) -> dict[str, float]:
    """A labelled counter's `_total` values summed per value of `label` (None: all, under '')."""
    totals: dict[str, float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = sample.labels.get(label, "") if label else ""
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def requests_served() -> float:
    """Requests this process has answered (every route, method and status)."""
    return counter_totals(HTTP_REQUESTS).get("", 0.0)


class RequestRate:
    """Requests per second over the last few seconds, from samples of a running total.

    Sampled when asked: the baseline is the newest sample at least `window`
    old (or the oldest one kept), so the rate is always defined.
    """

    def __init__(
        self,
        read_total: Callable[[], float] = requests_served,
        window: float = RATE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.read_total = read_total
        self.window = window
        self.clock = clock
        self._samples: deque[tuple[float, float]] = deque([(clock(), read_total())])
        self._lock = threading.Lock()

    def sample(self) -> dict:
        now, total = self.clock(), self.read_total()
        with self._lock:
            if now - self._samples[-1][0] >= RATE_SPACING:
                self._samples.append((now, total))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
                self._samples.popleft()
            since, before = self._samples[0]
        span = now - since
        rate = (total - before) / span if span > 0 else 0.0
        return {"per_second": round(rate, 2), "window": round(span, 2), "total": int(total)}


def event_text(event: Event) -> str:
    if event.kind == "primary":
        epoch = f" (epoch {event.epoch})" if event.epoch is not None else ""
        if event.after is None:
            return f"{event.before} is no longer primary{epoch}"
        if event.before is None:
            return f"{event.after} is primary{epoch}"
        return f"failover: {event.after} is primary instead of {event.before}{epoch}"
    if event.after == "down":
        return f"{event.node} went down (was {event.before})"
    if event.after == "up":
        return f"{event.node} is up (was {event.before})"
    return f"{event.node} is {event.after} (was {event.before})"


class ClusterState:
    """Builds the /cluster.json snapshot."""

    def __init__(
        self,
        ctx: NodeContext,
        memberships: list[Membership],
        cache: BookCache,
        rate: RequestRate | None = None,
    ):
        self.ctx = ctx
        self.memberships = memberships
        self.cache = cache
        self.rate = rate or RequestRate()
        self.started = time.time()
        self._watcher = {n.name: m for m in memberships for n in m.watched}

    def snapshot(self) -> dict:
        nodes = list(self.ctx.cluster.nodes.values())
        retries = counter_totals(BACKEND_RETRIES, "node")
        failovers = counter_totals(BACKEND_FAILOVERS, "node")
        rows = [self._row(node, retries, failovers) for node in nodes]
        queues = self._recovery_queues(rows)
        for row in rows:
            row["queued"] = None if queues is None else queues.get(row["name"], 0)
        return {
            "node": self.ctx.node.name,
            "now": time.time(),
            "health_period": self.ctx.cluster.tuning.health_period,
            "nodes": rows,
            "primary": self._primary(rows),
            "cache": self._cache(),
            "requests": self.rate.sample(),
            "events": self._events(),
        }

    # -- one node ---------------------------------------------------------------
    def _row(self, node: Node, retries: dict, failovers: dict) -> dict:
        mine = node.name == self.ctx.node.name
        if mine:
            health, since, checked = self.ctx.current_status(), self.started, time.time()
            body = {
                "cache": self.cache.stats(),
                "lease": self.cache.lease_state(),
                "clock_offset": self.ctx.clocks.view(),
            }
        else:
            health, since, body, checked = self._seen(node.name)
        live = body if health != "down" and isinstance(body, dict) else {}
        lease = live.get("lease") if isinstance(live.get("lease"), dict) else {}
        outbox = _counts(live.get("outbox"))
        return {
            "name": node.name,
            "service": node.service,
            "url": node.url,
            "health": health,
            "since": since,
            "checked": checked,
            "role": _text(live.get("role")) if node.service == "catalog" else None,
            "epoch": _int(lease.get("epoch")),
            "outbox": outbox,
            "backlog": sum(outbox.values()) if outbox is not None else None,
            "queued": None,  # filled in from the recovery node's queues
            "queues": _counts(live.get("queues")) if node.service == "recovery" else None,
            "overflowed": _counts(live.get("overflowed")) if node.service == "recovery" else None,
            "hit_rate": _hit_rate(live.get("cache")) if node.service == "frontend" else None,
            "reason": _text(live.get("reason")) if health == "behind" else None,
            "snapshots": _int(live.get("snapshots")),
            "clock_offset": _number(live.get("clock_offset")),
            "retries": int(retries.get(node.name, 0)),
            "failovers": int(failovers.get(node.name, 0)),
            "self": mine,
        }

    def _seen(self, name: str) -> tuple[str, float | None, dict | None, float | None]:
        membership = self._watcher.get(name)
        if membership is None:  # not watched (cannot happen with the factory's watchers)
            return "down", None, None, None
        body, checked = membership.last_health(name)
        return membership.status(name), membership.since(name), body, checked

    # -- the whole cluster ------------------------------------------------------------
    @staticmethod
    def _recovery_queues(rows: list[dict]) -> dict[str, int] | None:
        """Depth per target over every reachable recovery node; None if none reachable."""
        found = [
            r["queues"] for r in rows if r["service"] == "recovery" and r["queues"] is not None
        ]
        if not found:
            return None
        merged: dict[str, int] = {}
        for queues in found:
            for target, depth in queues.items():
                merged[target] = merged.get(target, 0) + depth
        return merged

    def _primary(self, rows: list[dict]) -> dict:
        claims = [r for r in rows if r["role"] == "primary" and r["health"] == "up"]
        voters = [r for r in rows if r["service"] in VOTING and r["epoch"] is not None]
        newest = max(voters, key=lambda r: r["epoch"], default=None)
        holder = self._holder(newest["name"]) if newest else None
        claims.sort(key=lambda r: (r["name"] != holder, -(r["epoch"] or 0)))
        backend_watch = self.memberships[0] if self.memberships else None
        return {
            "node": claims[0]["name"] if claims else None,
            "holder": holder,
            "epoch": newest["epoch"] if newest else 0,
            "last_known": backend_watch.primary("catalog") if backend_watch else None,
        }

    def _holder(self, name: str) -> str | None:
        membership = self._watcher.get(name)
        body = membership.last_health(name)[0] if membership else None
        lease = body.get("lease") if isinstance(body, dict) else None
        return _text(lease.get("holder")) if isinstance(lease, dict) else None

    def _cache(self) -> dict:
        stats = self.cache.stats()
        return {
            "hits": stats["hits"],
            "misses": stats["misses"],
            "size": stats["size"],
            "hit_rate": _hit_rate(stats),
        }

    def _events(self) -> list[dict]:
        events = [e for m in self.memberships for e in m.events()]
        events.sort(key=lambda e: e.at, reverse=True)
        return [
            {
                "at": e.at,
                "node": e.node,
                "service": e.service,
                "kind": e.kind,
                "before": e.before,
                "after": e.after,
                "epoch": e.epoch,
                "text": event_text(e),
            }
            for e in events[:SHOWN_EVENTS]
        ]


# -- reading other nodes' /health bodies: only the fields shown, of the types expected ----
def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _counts(value: object) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items() if _int(v) is not None}


def _hit_rate(stats: object) -> float | None:
    if not isinstance(stats, dict):
        return None
    hits, misses = _int(stats.get("hits")) or 0, _int(stats.get("misses")) or 0
    return round(hits / (hits + misses), 4) if hits + misses else None
