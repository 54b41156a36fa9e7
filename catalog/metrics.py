"""The catalog's domain figures for /metrics, read from its role and store when scraped."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from catalog.heal import Healer
from catalog.retention import Compactor
from catalog.role import CatalogRole
from catalog.store import CatalogStore
from common.lease.metrics import lease_figures
from common.observe.metrics import counter, gauge


def catalog_figures(
    role: CatalogRole, store: CatalogStore, healer: Healer, compactor: Compactor
) -> Iterable[Metric]:
    view = role.lease_view()
    yield from lease_figures(view["holder"], view["epoch"])
    yield gauge(
        "bazar_catalog_primary", "1 while this catalog is the writer.", float(role.is_writer())
    )
    yield gauge(
        "bazar_catalog_data_epoch",
        "Epoch of the base this catalog's data comes from.",
        store.data_epoch,
    )
    yield gauge(
        "bazar_read_lease_remaining_seconds",
        "Seconds this copy may still answer reads without hearing from the primary.",
        max(0.0, role.read_lease.remaining()),
    )
    yield counter(
        "bazar_fenced_messages",
        "Messages refused for an epoch older than the newest.",
        role.fence.refused,
    )
    yield counter("bazar_catalog_reads", "Lookups and searches this catalog answered.", store.reads)
    yield gauge(
        "bazar_replica_behind",
        "1 while this replica cannot apply the writer's updates (it lacks their base).",
        float(healer.reason is not None),
    )
    yield counter(
        "bazar_snapshots_installed", "Writer snapshots this replica installed.", healer.installed
    )
    yield counter(
        "bazar_snapshot_failures", "Tries to heal from a snapshot that failed.", healer.failed
    )
    age = compactor.age()
    if age is not None:  # only the writer counts it
        yield gauge(
            "bazar_cluster_age_seconds",
            "The cluster age: seconds the writers have held the lease (docs/scale.md §5).",
            age,
        )
