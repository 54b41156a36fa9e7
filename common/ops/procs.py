"""Starting, stopping and killing node processes; pid files and logs under data_dir.

Each node runs in its own session (process group), so `kill` can SIGKILL the
gunicorn master and its worker together, as a crash would.

A node runs with the environment of whoever starts it, plus the KEY=VALUE lines of
`<data_dir>/env/<node>.env` if that file exists: one node's own settings that last
across its restarts (the fault tests give a node its own wall clock this way).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common.config import OPERATOR, Cluster, Node


@functools.cache
def http_session():
    """The operator tools' one session (health checks, Prometheus, reports), made on
    first use: a node's gunicorn master imports this module and never needs requests
    (6 MB of RSS)."""
    import requests

    session = requests.Session()
    session.trust_env = False  # the cluster's own addresses, never via a proxy
    return session


def trust(cluster: Cluster) -> str | None:
    """Let the tools' session speak HTTPS to this cluster's nodes (when [tls] is on): the
    cluster CA verifies them and the operator's certificate opens mutual TLS. Mounted per
    node url, so clusters with and without TLS share the one session."""
    return trust_as(cluster, OPERATOR)


def trust_as(cluster: Cluster, name: str) -> str | None:
    """As `trust`, showing the certificate of `name` (a node's own, for `bazar probe`).
    Returns why it could not (the files are missing: `bazar certs` makes them)."""
    tls = cluster.tls
    if not tls.enabled:
        return None
    missing = [p for p in (tls.ca, tls.cert(name), tls.key(name)) if not p.exists()]
    if missing:
        return f"[tls] is on but {', '.join(map(str, missing))} missing (`bazar certs` makes them)"
    from common.tls import tools  # requests: only where a tool runs

    tools.mount(http_session(), cluster, name)
    return None


def pid_file(cluster: Cluster, node: Node) -> Path:
    return cluster.data_dir / "run" / f"{node.name}.pid"


def ready_file(cluster: Cluster, node: Node) -> Path:
    """Written by each worker once its app is loaded: {"master": pid, "worker": pid}
    (common/server.py); `bazar rolling-restart` reads it."""
    return cluster.data_dir / "run" / f"{node.name}.worker"


def log_file(cluster: Cluster, node: Node) -> Path:
    return cluster.data_dir / "logs" / f"{node.name}.log"


def env_file(cluster: Cluster, node: Node) -> Path:
    return cluster.data_dir / "env" / f"{node.name}.env"


def node_env(cluster: Cluster, node: Node) -> dict[str, str]:
    """The node's own environment: the KEY=VALUE lines of its env file (other lines,
    such as # comments, are skipped); none without the file."""
    try:
        lines = env_file(cluster, node).read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value for key, value in pairs}


def running_pid(cluster: Cluster, node: Node) -> int | None:
    """The pid of the node's process if it is alive (and really is that node)."""
    return pid_from_file(pid_file(cluster, node), node.name)


def pid_from_file(path: Path, marker: str) -> int | None:
    """The pid in `path` if that process lives and `marker` is one of its arguments
    (else the pid was reused by something else)."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    if marker.encode() not in cmdline:
        return None
    return pid


def is_running(cluster: Cluster, node: Node) -> bool:
    """Whether the node's process runs: its pid file names a live process, not a zombie
    (a child of ours that died is reaped here)."""
    pid = running_pid(cluster, node)
    return pid is not None and _alive(pid)


def start(cluster: Cluster, node: Node, prefix: Sequence[str] = ()) -> int:
    """Start the node in the background (no-op if it runs); return its pid.

    `prefix` wraps the command, e.g. `ip netns exec NS`; it must exec the node
    in place, so the pid is still the node's.
    """
    pid = running_pid(cluster, node)
    if pid:
        return pid
    command = [
        *prefix,
        sys.executable,
        "-m",
        "common.ops.cli",
        "node",
        node.name,
        "--config",
        str(cluster.path),
    ]
    env = node_env(cluster, node)
    return spawn(command, log_file(cluster, node), pid_file(cluster, node), env)


def spawn(
    command: Sequence[str], log: Path, pid_path: Path, env: dict[str, str] | None = None
) -> int:
    """Start `command` in a session of its own, output appended to `log`; write its pid.
    It gets our environment with `env` over it."""
    for path in (pid_path, log):
        path.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603  # nosec B603
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    pid_path.write_text(str(process.pid))
    return process.pid


def stop(cluster: Cluster, node: Node, timeout: float = 10.0) -> bool:
    """Graceful stop (SIGTERM), then SIGKILL if it lingers; True if it was running."""
    return bool(stop_all(cluster, [node], timeout))


def stop_all(cluster: Cluster, nodes: list[Node], timeout: float = 10.0) -> list[Node]:
    """Stop several nodes at once: SIGTERM to all, then wait; return those that ran."""
    running = {node: pid for node in nodes if (pid := running_pid(cluster, node))}
    for pid in running.values():
        signal_group(pid, signal.SIGTERM)
        signal_group(pid, signal.SIGCONT)  # a stopped (paused) node gets it only when continued
    deadline = time.monotonic() + timeout
    for node, pid in running.items():
        if not wait_gone(pid, max(0.0, deadline - time.monotonic())):
            signal_group(pid, signal.SIGKILL)
            wait_gone(pid, 5.0)
        pid_file(cluster, node).unlink(missing_ok=True)
        ready_file(cluster, node).unlink(missing_ok=True)
    return list(running)


def kill(cluster: Cluster, node: Node) -> bool:
    """SIGKILL the node's whole process group at once, like a crash."""
    pid = running_pid(cluster, node)
    if pid is None:
        return False
    signal_group(pid, signal.SIGKILL)
    wait_gone(pid, 5.0)
    pid_file(cluster, node).unlink(missing_ok=True)
    ready_file(cluster, node).unlink(missing_ok=True)
    return True


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group `pid` leads. A node's master leads its own (`spawn`, and
    the `pre_exec` of an in-place upgrade, common/server.py); asked by id all the same,
    so a process in another's group gets only its own signal, and ours is never hit."""
    try:
        group = os.getpgid(pid)
        if group == os.getpgrp():
            os.kill(pid, sig)
        else:
            os.killpg(group, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether the process has gone within `timeout` (0: has it gone now?)."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def health(node: Node, timeout: float = 1.0) -> tuple[str, dict]:
    """(state, /health body) as an operator sees it: 'up', 'down', or the 503's status."""
    try:
        response = http_session().get(f"{node.url}/health", timeout=timeout)
        body = response.json()
    except (OSError, ValueError):  # requests' errors are OSErrors
        return "down", {}
    if response.status_code == 200:
        return "up", body
    return body.get("status", "down"), body


def wait_healthy(
    pids: dict[Node, int],
    timeout: float,
    on_health: Callable[[Node, str, dict], None] | None = None,
) -> list[Node]:
    """Poll until every node answers 200 on /health; return those that never did.

    A node whose process has exited (say, its port was taken) fails at once.
    `on_health(node, state, body)` sees every answer (the foreground display).
    """
    deadline = time.monotonic() + timeout
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        if any(not _alive(pids[n]) for n in waiting):
            break
        answers = {n: health(n, 0.5) for n in waiting}
        if on_health:
            for n, (state, body) in answers.items():
                on_health(n, state, body)
        waiting = [n for n in waiting if answers[n][0] != "up"]
        if waiting:
            time.sleep(0.1)
    return [n for n in waiting if health(n, 0.5)[0] != "up"]


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not; our own child gets reaped)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def stop_pid_file(path: Path, marker: str, timeout: float = 10.0) -> bool:
    """SIGTERM the process group named by a pid file (SIGKILL if it lingers); remove the
    file. True if it was running. For helpers such as Prometheus, not nodes."""
    pid = pid_from_file(path, marker)
    if pid is not None:
        signal_group(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            signal_group(pid, signal.SIGKILL)
            wait_gone(pid, 5.0)
    path.unlink(missing_ok=True)
    return pid is not None
