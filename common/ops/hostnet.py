"""The host's `ip` (iproute2) and `nft` (nftables) commands that netns clusters are made of.

Every call names the binary by its absolute path and passes a list of
arguments, never a shell line. Nothing here decides what to create or delete:
`common/ops/netns.py` and `common/ops/partition.py` do, by name.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess

from common.ops import procs

PACKAGES = {"ip": "iproute2", "nft": "nftables"}  # the command and the Debian package that has it
_SBIN = "/usr/sbin:/sbin"  # where both live, even when a non-root PATH leaves them out


class NetnsError(Exception):
    """A netns request this host or cluster cannot honour; one line for the operator (exit 2)."""


class HostNetError(Exception):
    """An `ip` or `nft` command failed; the message quotes the command and its error."""


def tool(name: str) -> str | None:
    """Absolute path of `ip` or `nft`, or None if it is not installed."""
    return shutil.which(name) or shutil.which(name, path=_SBIN)


def missing_requirement() -> str | None:
    """Why this process cannot make namespaces, bridges and nftables rules, or None."""
    if os.geteuid() != 0:
        return "needs root (it makes network namespaces, a bridge and nftables rules)"
    for name, package in PACKAGES.items():
        if tool(name) is None:
            return f"needs the '{name}' command: install {package} (apt-get install {package})"
    return None


def require() -> None:
    why = missing_requirement()
    if why:
        raise NetnsError(why)


def run(name: str, *args: str, stdin: str | None = None, check: bool = True):
    """Run `ip` or `nft` with these arguments; raise HostNetError on failure if `check`."""
    path = tool(name)
    if path is None:
        raise HostNetError(f"'{name}' is not installed")
    # An absolute path and a list of arguments: no shell, nothing looked up in PATH.
    result = subprocess.run(  # noqa: S603  # nosec B603
        [path, *args], input=stdin, capture_output=True, text=True, timeout=30
    )
    if check and result.returncode != 0:
        error = result.stderr.strip() or f"exit code {result.returncode}"
        raise HostNetError(f"{name} {' '.join(args)}: {error}")
    return result


def namespaces() -> list[str]:
    """Names of the host's named network namespaces (`ip netns list`)."""
    if tool("ip") is None:
        return []
    lines = run("ip", "netns", "list").stdout.splitlines()
    return [line.split()[0] for line in lines if line.strip()]  # "name (id: 0)" -> "name"


def links() -> list[str]:
    """Names of the host's network interfaces (`ip -o link`)."""
    if tool("ip") is None:
        return []
    lines = run("ip", "-o", "link", "show").stdout.splitlines()
    # "7: bzr1a2bh0@if6: <BROADCAST,...> ..." -> "bzr1a2bh0"
    return [line.split(":")[1].strip().split("@")[0] for line in lines if line.count(":") >= 2]


def ipv4_addresses() -> list[tuple[str, ipaddress.IPv4Interface]]:
    """(interface, address/prefix) of every IPv4 address on the host."""
    lines = run("ip", "-o", "-4", "addr", "show").stdout.splitlines()
    # "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0 ..."
    rows = [line.split() for line in lines]
    return [(r[1], ipaddress.IPv4Interface(r[3])) for r in rows if len(r) > 3 and r[2] == "inet"]


def exec_prefix(namespace: str) -> list[str]:
    """The command prefix that runs a program inside `namespace` (ip execs it: same pid)."""
    path = tool("ip")
    if path is None:
        raise HostNetError("'ip' is not installed")
    return [path, "netns", "exec", namespace]


def nft_in(namespace: str, script: str) -> None:
    """Load an nftables script inside `namespace`, as one transaction."""
    nft = tool("nft")
    if nft is None:
        raise HostNetError("'nft' is not installed")
    run("ip", "netns", "exec", namespace, nft, "-f", "-", stdin=script)


def end_processes_in(namespace: str, grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process still inside `namespace`; return their pids.

    A namespace lives on while a process is inside it, and its veth with it,
    so `down` ends these first (nodes whose pid file a crash never wrote).
    """
    listed = run("ip", "netns", "pids", namespace, check=False).stdout.split()
    pids = [int(pid) for pid in listed if pid.isdigit()]
    pending = pids
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pending:
            _signal(pid, sig)
        pending = [pid for pid in pending if not procs.wait_gone(pid, grace)]
    return pids


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
