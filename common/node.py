"""What every node's app factory shares: config, DB, auth, errors, health.

`NodeContext` is the node's in-process state (its place in the cluster, its
HTTP client, its lifecycle status); it lives in `app.extensions["bazar"]`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, current_app, jsonify, request
from marshmallow import INCLUDE, Schema, fields, validate

from common.auth import TS_HEADER, AuthError, SignatureVerifier
from common.config import Cluster, ConfigError, Node, load_cluster
from common.http import InternalClient
from common.observe.clocks import ClockWatch
from common.observe.install import install as install_observability
from common.openapi import doc, openapi_blueprint
from common.tls import contexts
from common.web import RowIdConverter, install_error_handlers

if TYPE_CHECKING:  # SQLAlchemy only where a node has a database: a front-end has none,
    # and importing it costs a third of a second of CPU at every front-end start.
    from flask_sqlalchemy import SQLAlchemy


@dataclass
class NodeContext:
    """One node's view of itself and the cluster."""

    cluster: Cluster
    node: Node
    client: InternalClient
    # 'recovering' until the node has caught up (design §7 rule 3), then 'up'.
    status: str = "recovering"
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    details: dict = field(default_factory=dict)  # extra fields for /health
    clocks: ClockWatch = field(default_factory=ClockWatch)  # our wall clock vs our peers'
    # A service whose readiness changes by itself (a catalog's read lease) sets this.
    status_fn: Callable[[], str] | None = None
    # Run once, as soon as the node is asked to stop (SIGTERM) or to hand over to its
    # upgraded self (SIGUSR2 to the worker), while it still serves (common/server.py).
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def current_status(self) -> str:
        return self.status_fn() if self.status_fn else self.status

    def peers(self) -> list[Node]:
        """Other replicas of this node's service, in config order."""
        return [n for n in self.cluster.of(self.node.service) if n.name != self.node.name]


def context() -> NodeContext:
    return current_app.extensions["bazar"]


def create_base_app(
    import_name: str,
    service: str,
    node_name: str | None,
    config_path: str | None,
    test_config: dict | None,
) -> Flask:
    """A Flask app for one node of `service`, configured and guarded."""
    cluster = load_cluster(config_path)
    name = node_name or os.environ.get("BAZAR_NODE")
    if not name:
        raise ConfigError("which node? pass node_name or set BAZAR_NODE")
    node = cluster.node(name)
    if node.service != service:
        raise ConfigError(f"node {name!r} is a {node.service} node, not {service}")
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )
    app = Flask(import_name)
    app.url_map.converters["id"] = RowIdConverter  # before any blueprint's rules
    app.config.update(
        STAFF_TOKEN=cluster.staff_tokens,  # the current one and any still accepted
        MAX_CONTENT_LENGTH=cluster.tuning.max_body,
        BACKGROUND=True,  # start replication/health threads; tests of pure logic turn it off
    )
    app.config.update(test_config or {})
    app.json.sort_keys = False
    client = internal_client(cluster, node.name)
    ctx = NodeContext(cluster, node, client)
    app.extensions["bazar.verifier"] = SignatureVerifier(cluster.cluster_secrets, ctx.clocks.add)
    app.extensions["bazar"] = ctx
    # Wall time for people and peers to compare with; no safety rule reads it.
    ctx.details["wall"] = lambda: round(time.time(), 3)
    ctx.details["clock_offset"] = ctx.clocks.view
    install_error_handlers(app)
    install_observability(app)
    app.register_blueprint(health_blueprint())
    default_auth = "none" if service == "frontend" else "cluster"
    app.register_blueprint(openapi_blueprint(f"Bazar {service} node", default_auth))
    return app


def init_db(app: Flask, db: SQLAlchemy) -> None:
    """Bind `db` to this node's SQLite file (WAL) and create its tables."""
    from sqlalchemy import event

    from common.storage.upgrade import upgrade as upgrade_tables

    ctx: NodeContext = app.extensions["bazar"]
    path = ctx.cluster.db_path(ctx.node.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", f"sqlite:///{path}")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "connect_args": {"check_same_thread": False, "timeout": 30},
    }
    db.init_app(app)
    if path.exists():
        upgrade_tables(path, db.metadata)  # a file made by an older version
    with app.app_context():
        event.listen(db.engine, "connect", _sqlite_pragmas)
        db.create_all()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL: readers never block the writer. synchronous=FULL: every commit is
    # fsynced before it returns, so what a node acknowledged survives an OS
    # crash or a power cut of every host at once, not only a killed process
    # (NORMAL would lose the last commits then). Group commit keeps it one
    # fsync per batch of buys, not per buy (docs/consistency.md: "what survives what").
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class HealthSchema(Schema):
    """A node's state; each service adds its own details (role, cache, queue depths)."""

    class Meta:
        unknown = INCLUDE  # documented as open: the details differ per service

    node = fields.String(required=True)
    service = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(["up", "joining", "recovering", "stale", "behind"]),
        metadata={"description": "behind: a replica that cannot apply the primary's updates"},
    )
    message = fields.String(metadata={"description": "503: why this node is not serving"})
    wall = fields.Float(metadata={"description": "this node's wall clock (Unix seconds)"})
    clock_offset = fields.Float(
        allow_none=True,
        metadata={
            "description": "seconds this node's wall clock is ahead of its peers' (median of "
            "what their calls and health answers say; null before any); shown, never trusted"
        },
    )
    reason = fields.String(
        allow_none=True,
        metadata={"description": "catalog: why it is behind (null while it is not)"},
    )


def _note_callers_clock() -> None:
    """A health check from another node is signed: its timestamp tells how far our wall
    clock is from the checker's (for `clock_offset` only; /health needs no signature)."""
    if TS_HEADER in request.headers:
        try:
            verifier = current_app.extensions["bazar.verifier"]
            verifier.verify(request.method, request.path, request.headers, request.get_data())
        except AuthError:
            pass  # a customer's odd headers, or a stale call: nothing to learn


def internal_client(cluster: Cluster, name: str) -> InternalClient:
    """This node's client for calls to the others: signed, and under TLS when it is on."""
    public = contexts.public_context(cluster)
    if public is not None:  # front-ends that show the operator's certificate
        fronts = {n.name for n in cluster.of("frontend") if contexts.shows_public_cert(cluster, n)}
    return InternalClient(
        cluster.cluster_secret,
        cluster.tuning,
        sender=name,
        tls=contexts.client_context(cluster, name),
        public=(public, fronts) if public is not None else None,
    )


def health_blueprint() -> Blueprint:
    bp = Blueprint("health", __name__)

    @doc(responses={200: HealthSchema, 503: HealthSchema}, auth="none")
    @bp.get("/health")
    def health():
        """200 when serving; 503 while recovering, stale (a catalog without a read lease)
        or behind (a catalog that cannot apply the primary's updates: `reason` says why)."""
        ctx = context()
        _note_callers_clock()
        status = ctx.current_status()
        body = {"node": ctx.node.name, "service": ctx.node.service, "status": status}
        body.update({k: (v() if callable(v) else v) for k, v in ctx.details.items()})
        if status != "up":
            body["message"] = body.get("reason") or status
            return jsonify(body), 503
        return jsonify(body)

    return bp
