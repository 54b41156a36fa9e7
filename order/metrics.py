"""The order server's domain figures for /metrics, read when scraped."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from common.observe.metrics import counter, gauge
from order.store import OrderStore


def order_figures(store: OrderStore) -> Iterable[Metric]:
    waiting, oldest = store.pending_orders()
    yield gauge(
        "bazar_orders_pending",
        "Orders whose catalog decision is not known here yet (the reconciler settles them).",
        waiting,
    )
    yield gauge(
        "bazar_orders_pending_oldest_seconds",
        "Age of the oldest pending order (0 when none).",
        oldest or 0.0,
    )
    # orders / batches: how many orders share one request to the catalog (group commit).
    calls = store.catalog_calls
    yield counter(
        "bazar_catalog_batches", "Requests to the catalog primary carrying orders.", calls.batches
    )
    yield counter("bazar_batched_orders", "Orders those requests carried.", calls.items)
