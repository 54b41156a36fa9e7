"""The recovery node's figures for /metrics: queue depths and the lease as it votes."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from common.lease.fence import EpochFence
from common.lease.metrics import lease_figures
from common.lease.raft import RaftLeaseGroup
from common.observe.metrics import counter, gauges
from recovery.routes import depths, overflowed


def recovery_figures(group: RaftLeaseGroup | None, fence: EpochFence) -> Iterable[Metric]:
    yield gauges(
        "bazar_recovery_queue_depth",
        "Updates queued here for a node that missed them, by that node.",
        "node",
        depths(),
    )
    yield gauges(
        "bazar_recovery_queue_overflowed",
        "Entries dropped from a node's queue past [retention] queue_cap, by that node, until "
        "it acknowledges the overflow (it then takes the snapshot path).",
        "node",
        overflowed(),
    )
    grant = group.view() if group else None
    yield from lease_figures(grant.holder if grant else None, grant.epoch if grant else 0)
    yield counter(
        "bazar_fenced_messages",
        "Messages refused for an epoch older than the newest.",
        fence.refused,
    )
