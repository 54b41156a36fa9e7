"""The lease as /metrics shows it, on every voter (catalogs and the recovery node)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from common.observe.metrics import gauge


def lease_figures(holder: str | None, epoch: int) -> Iterable[Metric]:
    """The lease as a voter's Raft log has it (catalogs and the recovery node)."""
    yield gauge("bazar_lease_epoch", "Epoch of the newest lease in this voter's Raft log.", epoch)
    family = GaugeMetricFamily(
        "bazar_lease_holder",
        "1 for the node holding the newest lease, as this voter's Raft log has it.",
        labels=["holder"],
    )
    if holder:
        family.add_metric([holder], 1.0)
    yield family
