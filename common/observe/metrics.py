"""Every metric a node exports, named once (Prometheus conventions: `_total`, `_seconds`).

Two kinds:
- event metrics (below): counted where the event happens. Under gunicorn they
  live in files under PROMETHEUS_MULTIPROC_DIR (set by `common.server` before the
  worker imports this), so every process of a node adds to the same figures and
  a restarted worker keeps them.
- live figures (cache size, outbox depth, lease, queue depths): read from the
  worker's own objects when scraped, so they cost nothing per request; see
  `LiveMetrics`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Request latency buckets: a cached lookup takes about a millisecond, a buy tens.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _unregistered(kind, *args, **kw):
    """Each node's app registers these in its own registry (tests build many apps
    in one process, so nothing goes into prometheus_client's global one)."""
    return kind(*args, registry=None, **kw)


HTTP_REQUESTS = _unregistered(
    Counter,
    "bazar_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = _unregistered(
    Histogram,
    "bazar_http_request_duration_seconds",
    "Time from request to answer, by route template, method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_RETRIES = _unregistered(
    Counter,
    "bazar_backend_retries",
    "Calls to a backend that did not give the answer (unreachable, recovering, not "
    "primary), so the call went on to another replica or tried again.",
    ["service", "node"],
)
BACKEND_FAILOVERS = _unregistered(
    Counter,
    "bazar_backend_failovers",
    "Calls answered by another replica than the first one asked, by the node passed over.",
    ["service", "node"],
)
PUSH_LATENCY = _unregistered(
    Histogram,
    "bazar_replication_push_duration_seconds",
    "Time of a replication push to a peer that answered.",
    ["peer"],
    buckets=LATENCY_BUCKETS,
)
PUSH_FAILURES = _unregistered(
    Counter,
    "bazar_replication_push_failures",
    "Replication pushes a peer did not take (unreachable or refused); queued instead.",
    ["peer"],
)
CATALOG_WRITES = _unregistered(
    Counter,
    "bazar_catalog_writes",
    "Catalog writes acknowledged by this node as primary, by kind.",
    ["kind"],
)
KEYS_COMPACTED = _unregistered(
    Counter,
    "bazar_idempotency_records_compacted",
    "Idempotency records (order decisions, book keys) deleted past their retention window, "
    "by table (docs/scale.md §5).",
    ["table"],
)
ORDERS_FENCED_AFTER_WINDOW = _unregistered(
    Counter,
    "bazar_orders_fenced_after_window",
    "Orders left pending past the idempotency-key window and resolved as aborted by the "
    "catalog (docs/scale.md §5): stock their lost decision took stays taken.",
)
ORDER_DECISIONS = _unregistered(
    Counter,
    "bazar_order_decisions",
    "Buy decisions this order server recorded, by outcome.",
    ["outcome"],
)
STAFF_SIGN_INS = _unregistered(
    Counter,
    "bazar_staff_sign_ins",
    "POST /login answers of this front-end, by outcome (ok, wrong, locked).",
    ["outcome"],
)

EVENT_METRICS = (
    HTTP_REQUESTS,
    HTTP_LATENCY,
    BACKEND_RETRIES,
    BACKEND_FAILOVERS,
    PUSH_LATENCY,
    PUSH_FAILURES,
    CATALOG_WRITES,
    KEYS_COMPACTED,
    ORDERS_FENCED_AFTER_WINDOW,
    ORDER_DECISIONS,
    STAFF_SIGN_INS,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def gauge(name: str, doc: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def gauges(name: str, doc: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    """`name` without `_total`: prometheus_client adds it."""
    return CounterMetricFamily(name, doc, value=value)


class LiveMetrics(Collector):
    """Figures read from a node's live objects at scrape time; a service adds a
    function that yields metric families (see `gauge`, `gauges`, `counter`)."""

    def __init__(self):
        self._sources: list[Callable[[], Iterable[Metric]]] = []
        self.errors = 0

    def add(self, source: Callable[[], Iterable[Metric]]) -> None:
        self._sources.append(source)

    def collect(self) -> Iterable[Metric]:
        """A source that fails (odd data, a busy database) is left out of this scrape
        and counted; the other figures are still served, and /metrics never 500s."""
        for source in self._sources:
            try:
                families = list(source())
            except Exception:
                self.errors += 1
                log.exception("a metrics source failed; left out of this scrape")
                continue
            yield from families
        yield counter(
            "bazar_metrics_source_errors",
            "Scrapes in which one of this node's live figures could not be read (see its log).",
            self.errors,
        )


def node_registry(live: LiveMetrics) -> CollectorRegistry:
    """What one node's /metrics shows: its event metrics, process figures, live figures."""
    registry = CollectorRegistry(auto_describe=True)
    directory = multiprocess_dir()
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        for metric in EVENT_METRICS:
            registry.register(metric)
    ProcessCollector(registry=registry)  # this worker: RSS, CPU seconds, open fds
    registry.register(live)
    return registry
