"""What both generators read from the cluster beyond `Cluster` itself.

The config's own text (its relative `data_dir` must be resolved where the file
will live, not where it is now) and its [tls] table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from common.config import Cluster


def raw_config(cluster: Cluster) -> dict:
    """The config file as parsed TOML (already validated by `load_cluster`)."""
    with cluster.path.open("rb") as f:
        return tomllib.load(f)


def data_dir_at(cluster: Cluster, config_at: Path) -> Path:
    """The data folder of the config once it lives at `config_at`."""
    written = raw_config(cluster).get("data_dir", "../var")
    return (config_at.parent / written).resolve()


def tls_enabled(cluster: Cluster) -> bool:
    return cluster.tls.enabled


def public_files(cluster: Cluster) -> list[str]:
    """The operator's own certificate and key for the front-end's public side, if set."""
    tls = cluster.tls
    if not tls.enabled:
        return []
    return [str(p) for p in (tls.public_cert, tls.public_key) if p]
