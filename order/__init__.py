"""Order server: orders, replicated to peer order servers (design §1, §7)."""

from __future__ import annotations

from flask import Flask

from common.cluster import Membership, Router
from common.node import create_base_app, init_db
from common.observe.install import inside, live_metrics
from common.replication.metrics import outbox_figures, outbox_view
from common.replication.outbox import Outbox
from common.replication.rejoin import start_rejoin
from common.replication.replicator import Replicator
from common.webkit.early import SignedBeforeFlask
from order import overflow
from order.metrics import order_figures
from order.models import db, outbox_table
from order.routes import bp, early_routes
from order.schemas import ma
from order.store import OrderStore
from order.sync import install as install_sync


def create_app(
    node_name: str | None = None, config_path: str | None = None, test_config: dict | None = None
) -> Flask:
    """Build one order node; it starts 'recovering' and catches up in the background."""
    app = create_base_app(__name__, "order", node_name, config_path, test_config)
    init_db(app, db)
    ma.init_app(app)
    ctx = app.extensions["bazar"]
    with app.app_context():
        engine = db.engine
    install_sync(engine)
    membership = Membership(
        ctx.client, ctx.cluster.of("catalog"), ctx.cluster.tuning.health_period, clocks=ctx.clocks
    )
    store = OrderStore(
        ctx, engine, Router(ctx.client, membership, ctx.cluster.tuning.failover_patience)
    )
    store.replicator = Replicator(ctx, engine, Outbox(outbox_table), store.apply_queued)
    store.replicator.on_overflow = lambda: overflow.on_overflow(ctx, store.replicator)
    app.extensions["order.store"] = store
    ctx.details["outbox"] = lambda: outbox_view(store.replicator)
    live_metrics(app).add(lambda: order_figures(store))
    live_metrics(app).add(lambda: outbox_figures(store.replicator))
    inside(app, lambda flask_app: SignedBeforeFlask(flask_app, app, early_routes(store)))
    app.register_blueprint(bp)
    if app.config["BACKGROUND"]:
        membership.start()
        start_rejoin(ctx, store.replicator)
        store.start_reconciler()
    return app
