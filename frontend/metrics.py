"""The front-end's domain figures for /metrics, read from its cache and router when scraped."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from common.cluster import Membership
from common.observe.metrics import counter, gauge
from common.replication.group_call import GroupCall
from frontend.cache import BookCache

CACHE_COUNTERS = {
    # stats() key: (metric name without _total, help)
    "hits": ("bazar_cache_hits", "Lookups and searches answered from the cache."),
    "misses": ("bazar_cache_misses", "Lookups not in the cache (or not fresh there)."),
    "evictions": ("bazar_cache_evictions", "Entries dropped to make room."),
    "expirations": ("bazar_cache_expirations", "Entries dropped at the end of their TTL."),
    "invalidations": ("bazar_cache_invalidations", "Books the catalog said had changed."),
    "fetches": ("bazar_cache_fetches", "Catalog reads made to fill the cache."),
    "coalesced": (
        "bazar_cache_coalesced_misses",
        "Misses that waited for another request's catalog read instead of making their own.",
    ),
    "stale_served": (
        "bazar_cache_stale_served",
        "Answers older than fresh, served because the client allowed it (max-stale).",
    ),
    "lapses": ("bazar_cache_lease_lapses", "Times the read lease ran out (the cache went stale)."),
}


def cache_figures(cache: BookCache) -> Iterable[Metric]:
    stats = cache.stats()
    for key, (name, doc) in CACHE_COUNTERS.items():
        yield counter(name, doc, stats[key])
    yield gauge("bazar_cache_entries", "Books held in the lookup cache.", stats["size"])
    yield gauge(
        "bazar_cache_lease_valid",
        "1 while the front-end holds a read lease from the catalog primary.",
        1.0 if cache.lease.valid() else 0.0,
    )


def backend_figures(membership: Membership) -> Iterable[Metric]:
    up = GaugeMetricFamily(
        "bazar_backend_up",
        "1 while this front-end sees the backend as up (it answers /health with 200).",
        labels=["service", "node"],
    )
    for node in membership.watched:
        up.add_metric([node.service, node.name], 1.0 if membership.is_up(node.name) else 0.0)
    yield up


def order_batch_figures(orders: GroupCall) -> Iterable[Metric]:
    """orders / batches: how many customers' orders share one request to an order server."""
    yield counter(
        "bazar_order_batches", "Requests to order servers carrying orders.", orders.batches
    )
    yield counter("bazar_sent_orders", "Orders those requests carried.", orders.items)
