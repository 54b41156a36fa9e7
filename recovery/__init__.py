"""Recovery server: durable queues of missed updates, and a vote on the lease (design §1, §7)."""

from __future__ import annotations

from flask import Flask

from common.lease.fence import EpochFence, VoterFence
from common.lease.raft import RaftLeaseGroup
from common.node import create_base_app, init_db
from common.observe.install import live_metrics
from common.server import GRACEFUL_TIMEOUT
from recovery.cap import QueueCap
from recovery.metrics import recovery_figures
from recovery.models import db
from recovery.routes import bp, depths, overflowed


def create_app(
    node_name: str | None = None, config_path: str | None = None, test_config: dict | None = None
) -> Flask:
    """Build the recovery node; it has nothing to catch up, so it is up at once."""
    app = create_base_app(__name__, "recovery", node_name, config_path, test_config)
    init_db(app, db)
    app.register_blueprint(bp)
    ctx = app.extensions["bazar"]
    group = None
    if app.config["BACKGROUND"]:  # a voter of the catalog lease's Raft group
        group = RaftLeaseGroup(ctx.cluster, ctx.node, timeout=ctx.cluster.tuning.lease_renew * 2)
        # A graceful stop of the Raft leader hands the lead on first: otherwise the
        # catalogs wait out an election timeout and more, and the holder's renewals
        # failed long enough (2.5 s measured) for its lease to lapse in a rolling restart.
        # For as long as it drains (gunicorn's graceful timeout), since it still votes.
        ctx.on_stop.append(lambda: group.lead_elsewhere(within=GRACEFUL_TIMEOUT))
    fence = VoterFence(known=lambda: group.view().epoch) if group else EpochFence()
    app.extensions["recovery.fence"] = fence
    app.extensions["recovery.cap"] = QueueCap(ctx.cluster.retention.queue_cap)
    ctx.details["queues"] = depths
    ctx.details["overflowed"] = overflowed
    ctx.details["lease"] = lambda: _lease_view(group, fence)
    live_metrics(app).add(lambda: recovery_figures(group, fence))
    ctx.status = "up"
    return app


def _lease_view(group: RaftLeaseGroup | None, fence: EpochFence) -> dict:
    grant = group.view() if group else None
    return {
        "holder": grant.holder if grant else None,
        "epoch": grant.epoch if grant else 0,
        "seq": grant.seq if grant else 0,  # moves with every renewal, once we follow the log
        "newest_seen": fence.newest,
        "fenced": fence.refused,
        "raft_leader": group.leads() if group else False,
    }
