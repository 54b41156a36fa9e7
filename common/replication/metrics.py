"""Replication figures for /metrics and /health: what each peer has not got yet."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.replication.replicator import Replicator


def outbox_view(replicator: Replicator) -> dict[str, int]:
    """For /health: rows waiting per peer (nobody durable has them yet)."""
    return {peer: count for peer, (count, _) in replicator.outbox_depths().items()}


def outbox_figures(replicator: Replicator) -> Iterable[Metric]:
    depth = GaugeMetricFamily(
        "bazar_outbox_depth",
        "Updates staged for a peer that neither it nor its recovery queue has yet.",
        labels=["peer"],
    )
    lag = GaugeMetricFamily(
        "bazar_replication_lag_seconds",
        "Age of the oldest update a peer has not got yet (0 when it has them all).",
        labels=["peer"],
    )
    for peer, (count, age) in replicator.outbox_depths().items():
        depth.add_metric([peer], count)
        lag.add_metric([peer], age or 0.0)
    yield depth
    yield lag
    # rows / rounds: how many writes share one replication round (group push).
    yield CounterMetricFamily(
        "bazar_push_rounds",
        "Replication rounds run (each one push per peer).",
        value=replicator.group.rounds,
    )
    yield CounterMetricFamily(
        "bazar_pushed_rows", "Outbox rows those rounds carried.", value=replicator.group.rows
    )
