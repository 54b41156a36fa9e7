"""Cluster configs for tests that need a Cluster object but no running node."""

from __future__ import annotations

from pathlib import Path

from common.config import Cluster, load_cluster

SECRETS = """
[auth]
staff_token = "staff-token-0123456789"
cluster_secret = "cluster-secret-0123456789"
"""
PORTS = {"frontend": 8000, "catalog": 8100, "order": 8200, "recovery": 8300}


def config_text(
    host: str = "127.0.0.1",
    catalogs: int = 1,
    orders: int = 1,
    extra: dict[str, str] | None = None,
    tuning: str = "",
) -> str:
    """One front-end, `catalogs` catalogs, `orders` orders, one recovery node, at `host`;
    `extra` adds lines to a node's table ({"catalog-2": 'raft = "..."'})."""
    counts = {"frontend": 1, "catalog": catalogs, "order": orders, "recovery": 1}
    tables = []
    for service, count in counts.items():
        for i in range(1, count + 1):
            name = f"{service}-{i}"
            port = PORTS[service] + (i if service != "frontend" else 0)
            lines = [f"[nodes.{name}]", f'service = "{service}"', f'url = "http://{host}:{port}"']
            lines += [(extra or {}).get(name, "")]
            tables.append("\n".join(line for line in lines if line))
    return 'data_dir = "var"\n' + SECRETS + tuning + "\n" + "\n\n".join(tables) + "\n"


def load_config(tmp_path: Path, monkeypatch, text: str) -> Cluster:
    """Write `text` as tmp_path/cluster.toml and load it, unaffected by BAZAR_* variables."""
    for name in ("BAZAR_CONFIG", "BAZAR_STAFF_TOKEN", "BAZAR_CLUSTER_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return load_cluster(path)
