"""Catalog server: books, replicated primary-backup (design §1, §7)."""

from __future__ import annotations

from flask import Flask

from catalog.models import db, outbox_table
from catalog.primary import CatalogRejoin, Election, FrontendNotifier
from catalog.routes import bp
from catalog.schemas import ma
from catalog.store import CatalogStore
from common.cluster import Membership
from common.node import create_base_app, init_db
from common.replication.outbox import Outbox
from common.replication.rejoin import start_rejoin
from common.replication.replicator import Replicator


def create_app(
    node_name: str | None = None, config_path: str | None = None, test_config: dict | None = None
) -> Flask:
    """Build one catalog node; it starts 'recovering' and catches up in the background."""
    app = create_base_app(__name__, "catalog", node_name, config_path, test_config)
    init_db(app, db)
    ma.init_app(app)
    ctx = app.extensions["bazar"]
    with app.app_context():
        engine = db.engine
    membership = Membership(ctx.client, ctx.peers(), ctx.cluster.tuning.health_period)
    election = Election(ctx, membership)
    store = CatalogStore(ctx, engine, None, FrontendNotifier(ctx))
    store.replicator = Replicator(ctx, engine, Outbox(outbox_table), store.apply)
    store.may_write = election.is_primary
    store.seed(ctx.cluster.seed_file)
    app.extensions.update({"catalog.store": store, "catalog.election": election})
    ctx.details["role"] = lambda: "primary" if election.is_primary() else "backup"
    ctx.details["reads"] = lambda: store.reads
    app.register_blueprint(bp)
    if app.config["BACKGROUND"]:
        membership.start()
        start_rejoin(
            ctx, store.replicator, CatalogRejoin(ctx, election, store.replicator, store.install)
        )
    return app
