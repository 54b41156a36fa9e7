"""`bazar up --monitor`: a Prometheus that scrapes every node of the running cluster.

Under `<data_dir>/prometheus/`:

    prometheus.yml   scrape config: one job per service, label `node`, every 2 s
    staff_token      (0600) the bearer for nodes off loopback (a --netns cluster)
    data/            Prometheus's storage (kept across restarts, 2 days)

and `<data_dir>/run/prometheus.pid`, `<data_dir>/logs/prometheus.log`. Prometheus
listens on 127.0.0.1 only; `bazar down` stops it with the nodes. A node's
/metrics is open from loopback and needs the staff token from anywhere else
(common.observe.install), so the token goes into the config only as a file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common.config import OPERATOR, SERVICES, Cluster, Node
from common.ops import procs

DEFAULT_PORT = 9090
SCRAPE_INTERVAL = "2s"
SCRAPE_TIMEOUT = "1s"
RETENTION = "2d"
BINARY = "prometheus"
INSTALL_HINT = (
    "install it to monitor the cluster (Debian/Ubuntu: `sudo apt-get install prometheus`, "
    "then `sudo systemctl disable --now prometheus` if its own service holds port 9090; "
    "or a release from https://prometheus.io/download/)"
)


def directory(cluster: Cluster) -> Path:
    return cluster.data_dir / "prometheus"


def config_file(cluster: Cluster) -> Path:
    return directory(cluster) / "prometheus.yml"


def token_file(cluster: Cluster) -> Path:
    return directory(cluster) / "staff_token"


def pid_file(cluster: Cluster) -> Path:
    return cluster.data_dir / "run" / "prometheus.pid"


def log_file(cluster: Cluster) -> Path:
    return cluster.data_dir / "logs" / "prometheus.log"


def needs_token(node: Node) -> bool:
    """Off loopback, a node's /metrics wants the staff token."""
    if node.host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(node.host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return True


def scrape_config(cluster: Cluster, credentials: Path) -> str:
    """prometheus.yml for the cluster: one job per service, each target labelled `node`.

    Strings are written as JSON strings, which YAML reads as double-quoted scalars.
    """
    q = json.dumps
    lines = [
        f"# Written by `bazar up --monitor` for {cluster.path}; rewritten at each start.",
        "global:",
        f"  scrape_interval: {SCRAPE_INTERVAL}",
        f"  scrape_timeout: {SCRAPE_TIMEOUT}",
        f"  evaluation_interval: {SCRAPE_INTERVAL}",
        "scrape_configs:",
    ]
    for service in SERVICES:
        nodes = cluster.of(service)
        if not nodes:
            continue
        lines += [f"  - job_name: {q(service)}", "    metrics_path: /metrics"]
        lines += _tls_lines(cluster, service)
        if any(needs_token(n) for n in nodes):
            lines += [
                "    authorization:",
                "      type: Bearer",
                f"      credentials_file: {q(str(credentials))}",
            ]
        lines.append("    static_configs:")
        for node in nodes:
            lines += [
                f"      - targets: [{q(urlsplit(node.url).netloc)}]",
                f"        labels: {{node: {q(node.name)}}}",
            ]
    return "\n".join(lines) + "\n"


def _tls_lines(cluster: Cluster, service: str) -> list[str]:
    """Under [tls]: HTTPS, the cluster CA, and the operator's client certificate (catalog,
    order and recovery nodes refuse a client without one)."""
    tls = cluster.tls
    if not tls.enabled:
        return []
    q = json.dumps
    lines = ["    scheme: https", "    tls_config:"]
    if not (service == "frontend" and tls.public_cert):
        lines.append(f"      ca_file: {q(str(tls.ca))}")
    return lines + [
        f"      cert_file: {q(str(tls.cert(OPERATOR)))}",
        f"      key_file: {q(str(tls.key(OPERATOR)))}",
    ]


def write_config(cluster: Cluster) -> Path:
    """Write the token file (0600) and the scrape config; return the config's path."""
    directory(cluster).mkdir(parents=True, exist_ok=True)
    _write_private(token_file(cluster), cluster.staff_token)
    config_file(cluster).write_text(scrape_config(cluster, token_file(cluster)))
    return config_file(cluster)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have looser bits
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass(frozen=True)
class Outcome:
    """What `start` did: the URL when Prometheus serves, else why not."""

    url: str | None
    message: str


def command(cluster: Cluster, binary: str, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={config_file(cluster)}",
        f"--storage.tsdb.path={directory(cluster) / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]


def start(
    cluster: Cluster, port: int = DEFAULT_PORT, binary: str | None = None, timeout: float = 30.0
) -> Outcome:
    """(Re)start Prometheus for the cluster and wait until it is ready.

    A Prometheus of this cluster that already runs is restarted on the new config
    (same storage). Without the binary, or if it fails, the cluster runs on: the
    outcome says why.
    """
    binary = binary or shutil.which(BINARY)
    if binary is None:
        return Outcome(None, f"prometheus not found on PATH: {INSTALL_HINT}")
    stop(cluster)
    write_config(cluster)
    pid = procs.spawn(command(cluster, binary, port), log_file(cluster), pid_file(cluster))
    url = f"http://127.0.0.1:{port}"
    if _wait_ready(url, pid, str(config_file(cluster)), timeout):
        return Outcome(url, f"prometheus: {url} (scrapes every {SCRAPE_INTERVAL})")
    stop(cluster)
    return Outcome(None, f"prometheus did not start (port {port} taken?); log: {log_file(cluster)}")


def _wait_ready(url: str, pid: int, config: str, timeout: float) -> bool:
    """Until the Prometheus at `url` is ready and is ours: another one on the port
    (Debian's service on 9090, say) answers too, with another config file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs.wait_gone(pid, 0):  # it exited: its log says why
            return False
        if _flag(url, "config.file") == config:
            return True
        time.sleep(0.2)
    return False


def _flag(url: str, name: str) -> str | None:
    """A command-line flag of the Prometheus at `url`, once it is ready."""
    try:
        response = procs.http_session().get(f"{url}/api/v1/status/flags", timeout=1.0)
        return response.json()["data"][name] if response.status_code == 200 else None
    except (OSError, ValueError, KeyError, TypeError):  # requests' errors are OSErrors
        return None


def stop(cluster: Cluster) -> bool:
    """Stop this cluster's Prometheus; True if it ran."""
    return procs.stop_pid_file(pid_file(cluster), f"--config.file={config_file(cluster)}")
