"""Front-end server: the public API, a lookup cache and the replica router (design §1)."""

from __future__ import annotations

import threading

from flask import Flask

from common.cluster import Membership, Router
from common.http import ORIGIN_HEADER
from common.lease.clock import Clock
from common.lease.fence import EpochFence
from common.lease.reads import ReadLease
from common.node import create_base_app
from common.observe.install import inside, live_metrics
from frontend.accounts import accounts
from frontend.audit import trail
from frontend.buys import OrdersBeforeFlask
from frontend.cache import BookCache
from frontend.cluster_state import ClusterState
from frontend.cluster_view import bp as cluster_view
from frontend.hits import LookupsBeforeFlask
from frontend.identity import AccountBook
from frontend.lockout import Lockout
from frontend.metrics import backend_figures, cache_figures, order_batch_figures
from frontend.routes import internal, public
from frontend.search import searches
from frontend.services import lookup_calls, order_calls
from frontend.staff import staff


def create_app(
    node_name: str | None = None, config_path: str | None = None, test_config: dict | None = None
) -> Flask:
    """Build one front-end node; it serves at once and watches the backends.

    It is always "up": without a read lease it answers by reading a replica.
    """
    app = create_base_app(__name__, "frontend", node_name, config_path, test_config)
    ctx = app.extensions["bazar"]
    tuning = ctx.cluster.tuning
    backends = ctx.cluster.of("catalog") + ctx.cluster.of("order")
    membership = Membership(ctx.client, backends, tuning.health_period, clocks=ctx.clocks)
    # A customer's call rides out a primary's replacement: the order server it goes
    # through gives up on the catalog after `failover_patience`, and a new primary
    # takes over a lease after the old one fell silent (2.8-4.5 s measured by
    # scripts/write_pause.py, which a 3 s patience answered with a 503 now and then).
    app.extensions["frontend.router"] = Router(
        ctx.client,
        membership,
        tuning.failover_patience + tuning.lease_duration,
        headers={ORIGIN_HEADER: ctx.node.name},
    )
    # One batch in flight per order server: it places a batch as a whole, so a second
    # lane only made batches smaller (ab.py, buy: one lane x1.26 buys/s, CPU -30%).
    lanes = len(ctx.cluster.of("order"))
    app.extensions["frontend.orders"] = order_calls(app.extensions["frontend.router"], lanes)
    # Cache misses of different books share a catalog read, one read in flight per replica.
    lanes = len(ctx.cluster.of("catalog"))
    app.extensions["frontend.reads"] = lookup_calls(app.extensions["frontend.router"], lanes)
    # A grant counts from our own stamp, never past our own config's lease length.
    lease = ReadLease(Clock(), tuning.max_drift, longest=tuning.read_lease)
    cache = BookCache(tuning.cache_size, tuning.cache_ttl, lease)
    app.extensions["frontend.cache"] = cache
    app.extensions["frontend.fence"] = EpochFence()
    app.extensions["frontend.accounts"] = AccountBook(app.extensions["frontend.router"])
    rules = ctx.cluster.staff  # wrong passwords: per name, per address
    app.extensions["frontend.lockouts"] = (
        Lockout(rules.login_failures, rules.lockout_seconds),
        Lockout(rules.address_failures, rules.lockout_seconds),
    )
    ctx.details["cache"] = cache.stats
    ctx.details["lease"] = cache.lease_state
    ctx.on_stop.append(lease.retire)  # stopping or handing over: no cached answer after
    live_metrics(app).add(lambda: cache_figures(cache))
    live_metrics(app).add(lambda: backend_figures(membership))
    live_metrics(app).add(lambda: order_batch_figures(app.extensions["frontend.orders"]))
    # For the /cluster page only: the recovery node and the other front-ends, watched by
    # a thread of their own so that a slow one never delays the backends' checks.
    others = [n for n in ctx.cluster.nodes.values() if n not in backends and n != ctx.node]
    onlookers = Membership(ctx.client, others, tuning.health_period)
    app.extensions["frontend.cluster"] = ClusterState(ctx, [membership, onlookers], cache)
    max_body = ctx.cluster.tuning.max_body
    inside(app, lambda flask_app: OrdersBeforeFlask(flask_app, app, max_body))
    inside(app, lambda flask_app: LookupsBeforeFlask(flask_app, cache, app.json.dumps, app))
    app.register_blueprint(public)
    app.register_blueprint(searches)
    app.register_blueprint(internal)
    app.register_blueprint(staff)
    app.register_blueprint(accounts)
    app.register_blueprint(trail)
    app.register_blueprint(cluster_view)
    if app.config["BACKGROUND"]:
        membership.start()
        # Its first round too: the front-end's start never waits for the page's nodes.
        threading.Thread(target=onlookers.start, name="cluster-view", daemon=True).start()
    ctx.status = "up"
    return app
