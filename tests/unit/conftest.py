"""Fixtures of the unit tier."""

from __future__ import annotations

import pytest

import frontend
from tests.support.cluster import LocalCluster


@pytest.fixture
def frontend_app(tmp_path, monkeypatch):
    """frontend-1 of a config nothing was started from (Flask's test client reaches it);
    `app.config["test.cluster"]` is that config."""
    for name in ("BAZAR_CONFIG", "BAZAR_STAFF_TOKEN", "BAZAR_CLUSTER_SECRET"):
        monkeypatch.delenv(name, raising=False)
    config = LocalCluster(tmp_path / "c", catalogs=1, orders=1)
    app = frontend.create_app("frontend-1", str(config.config_path), {"BACKGROUND": False})
    app.config["test.cluster"] = config.cluster
    return app
