"""Safe defaults (issue 5 §6): loopback binds, no secrets in the repo, no debugger."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from common.config import load_cluster
from common.server import gunicorn_options

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "cluster.toml"
CODE = ["common", "catalog", "order", "recovery", "frontend", "scripts", "loadtests"]


def test_shipped_cluster_binds_every_node_to_loopback():
    cluster = load_cluster(SHIPPED, make_secrets=False)
    for node in cluster.nodes.values():
        assert gunicorn_options(cluster, node)["bind"].startswith("127.0.0.1:"), node.name


def test_shipped_config_holds_no_secrets():
    raw = tomllib.loads(SHIPPED.read_text())
    assert "auth" not in raw  # generated under data_dir (mode 0600) or taken from the env


def python_files():
    return sorted(p for folder in CODE for p in (ROOT / folder).rglob("*.py"))


def _parse(source: str) -> ast.Module:
    """ast.parse, once more after a spurious "AST constructor recursion depth mismatch"
    (CPython gh-106905: the depth was shared by threads), seen once under xdist."""
    try:
        return ast.parse(source)
    except SystemError:
        return ast.parse(source)


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_debug_mode_or_werkzeug_debugger(path):
    for node in ast.walk(_parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg in {"debug", "use_debugger", "use_reloader"}:
            assert not (isinstance(node.value, ast.Constant) and node.value.value), path
        if isinstance(node, ast.Attribute) and node.attr == "run":
            # app.run() is Werkzeug's dev server; nodes run under gunicorn only
            assert not (isinstance(node.value, ast.Name) and node.value.id == "app"), path
    assert "DebuggedApplication" not in path.read_text(), path
