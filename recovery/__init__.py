"""Recovery server: durable queues of updates a replica missed (design §1, §7)."""

from __future__ import annotations

from flask import Flask

from common.node import create_base_app, init_db
from recovery.models import db
from recovery.routes import bp, depths


def create_app(
    node_name: str | None = None, config_path: str | None = None, test_config: dict | None = None
) -> Flask:
    """Build the recovery node; it has nothing to catch up, so it is up at once."""
    app = create_base_app(__name__, "recovery", node_name, config_path, test_config)
    init_db(app, db)
    app.register_blueprint(bp)
    ctx = app.extensions["bazar"]
    ctx.details["queues"] = depths
    ctx.status = "up"
    return app
