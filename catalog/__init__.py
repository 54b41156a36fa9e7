"""Catalog server: books, one writer by Raft lease, copies under read leases (design §1, §7)."""

from __future__ import annotations

from flask import Flask

from catalog import search
from catalog.copies import CatalogCopies
from catalog.heal import Healer
from catalog.metrics import catalog_figures
from catalog.models import db, outbox_table
from catalog.replica import CatalogReplica
from catalog.retention import Compactor
from catalog.role import CatalogRole
from catalog.routes import bp, early_routes
from catalog.schemas import ma
from catalog.store import CatalogStore
from common.node import create_base_app, init_db
from common.observe.install import inside, live_metrics
from common.replication.metrics import outbox_figures, outbox_view
from common.replication.outbox import Outbox
from common.replication.replicator import Replicator
from common.webkit.early import SignedBeforeFlask


def create_app(
    node_name: str | None = None, config_path: str | None = None, test_config: dict | None = None
) -> Flask:
    """Build one catalog node; it serves once it holds the lease or a read lease."""
    app = create_base_app(__name__, "catalog", node_name, config_path, test_config)
    init_db(app, db)
    ma.init_app(app)
    ctx = app.extensions["bazar"]
    with app.app_context():
        engine = db.engine
    search.install(engine)  # before any write: the triggers keep the index from here on
    role = CatalogRole(ctx)
    copies = CatalogCopies(ctx, role)
    store = CatalogStore(ctx, engine, role, copies)
    replica = CatalogReplica(store)
    replica.healer = Healer(store)
    store.replicator = Replicator(ctx, engine, Outbox(outbox_table), replica.apply_queued, copies)
    store.replicator.on_overflow = replica.healer.overflowed
    compactor = Compactor(store, ctx.cluster.retention)
    store.seed(ctx.cluster.seed_file)
    store.load_data_epoch()
    role.takeover = replica.take_over
    # A lone catalog has nobody to heal from: what it holds is all there is.
    role.whole = lambda: store.restored is None or not ctx.peers()
    ctx.on_stop.append(store.hand_off)  # a graceful stop frees the lease at once
    app.extensions.update(
        {"catalog.store": store, "catalog.replica": replica, "catalog.role": role}
    )
    ctx.status_fn = lambda: _status(store, replica.healer)
    ctx.details["lease"] = role.lease_view
    ctx.details["role"] = lambda: "primary" if role.is_writer() else "backup"
    ctx.details["read_lease"] = lambda: round(role.read_lease.remaining(), 2)
    ctx.details["data_epoch"] = lambda: store.data_epoch
    ctx.details["fenced"] = lambda: role.fence.refused
    ctx.details["reads"] = lambda: store.reads
    ctx.details["outbox"] = lambda: outbox_view(store.replicator)
    ctx.details["reason"] = lambda: replica.healer.reason
    ctx.details["snapshots"] = lambda: replica.healer.installed
    ctx.details["caught_up"] = lambda: replica.healer.caught_up  # on rows, not a snapshot
    ctx.details["restored"] = lambda: store.restored  # from a backup, not yet healed
    live_metrics(app).add(lambda: catalog_figures(role, store, replica.healer, compactor))
    live_metrics(app).add(lambda: outbox_figures(store.replicator))
    inside(app, lambda flask_app: SignedBeforeFlask(flask_app, app, early_routes(store, replica)))
    app.register_blueprint(bp)
    if app.config["BACKGROUND"]:
        role.start()
        store.replicator.start()
        compactor.start()
    return app


def _status(store: CatalogStore, healer: Healer) -> str:
    """up: serving reads; behind: cannot apply the writer's updates (`reason` says why);
    stale: no read lease (yet)."""
    if store.serving():
        return "up"
    return "behind" if healer.reason else "stale"
