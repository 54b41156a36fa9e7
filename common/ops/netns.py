"""Clusters whose nodes each run in a network namespace of their own (`bazar up --netns`).

One cluster, with id = 4 hex chars of the sha256 of its data_dir path:

    bridge     bzr<id>              198.18.N.1/24: the host's address on the cluster's network
    namespace  bazar-<id>-<node>    eth0 198.18.N.<2 + config index>/24 and lo; no default route
    veth       bzr<id>h<i>          host side, on the bridge; its peer is the namespace's eth0

N comes from the id, inside 198.18.0.0/15 (RFC 2544 set it aside for test networks:
routed nowhere). Names carry the prefix so `down` finds this cluster's leftovers by
name alone, even after a crash lost the state file, and never touches
anything else. `up --netns` writes, before it creates anything:

    <data_dir>/netns/cluster.toml   the same cluster at those addresses (0600: it may hold [auth])
    <data_dir>/netns/state.json     what it creates, and the current partition

While the state file exists, the CLI runs every command on the derived config
(`effective`), so `bazar start NODE` restarts a node inside its namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import tomli_w

from common.config import Cluster, ConfigError, Node, load_cluster
from common.ops import hostnet, procs
from common.ops.hostnet import HostNetError, NetnsError

NETWORK = ipaddress.IPv4Network("198.18.0.0/15")  # the only addresses we may use
NAMESPACE_PREFIX = "bazar-"  # bazar-<id>-<node>
LINK_PREFIX = "bzr"  # bzr<id>, bzr<id>h<i>: interface names stop at 15 characters
_ID = "[0-9a-f]{4}"
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # safe as part of a namespace's file name
MAX_NODES = 253  # .2 to .254 of the cluster's /24


def cluster_id(data_dir: Path) -> str:
    """A short id, stable for one data_dir: the same cluster gets the same names."""
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:4]


@dataclass(frozen=True)
class Layout:
    """Names and addresses of one cluster's namespaces, bridge and veths."""

    cid: str
    nodes: tuple[str, ...] = ()  # node names in config order: the order gives the addresses

    @classmethod
    def of(cls, cluster: Cluster) -> Layout:
        return cls(cluster_id(cluster.data_dir), tuple(cluster.nodes))

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        """One /24 of 198.18.0.0/15, picked by the id (512 to choose from)."""
        index = int(self.cid, 16) % (NETWORK.num_addresses // 256)
        return ipaddress.IPv4Network((int(NETWORK.network_address) + index * 256, 24))

    @property
    def bridge(self) -> str:
        return f"{LINK_PREFIX}{self.cid}"

    @property
    def host_address(self) -> ipaddress.IPv4Address:
        return self.subnet[1]

    def namespace(self, node: str) -> str:
        return f"{NAMESPACE_PREFIX}{self.cid}-{node}"

    def veth(self, node: str) -> str:
        return f"{LINK_PREFIX}{self.cid}h{self.nodes.index(node)}"

    def address(self, node: str) -> ipaddress.IPv4Address:
        return self.subnet[2 + self.nodes.index(node)]

    def owns_namespace(self, name: str) -> bool:
        return name.startswith(f"{NAMESPACE_PREFIX}{self.cid}-")

    def owns_link(self, name: str) -> bool:
        return re.fullmatch(rf"{LINK_PREFIX}{self.cid}(h\d+)?", name) is not None


# -- files: derived config and state ----------------------------------------------------------


def netns_dir(cluster: Cluster) -> Path:
    return cluster.data_dir / "netns"


def derived_config_path(cluster: Cluster) -> Path:
    return netns_dir(cluster) / "cluster.toml"


def state_path(cluster: Cluster) -> Path:
    return netns_dir(cluster) / "state.json"


def active(cluster: Cluster) -> bool:
    """Whether this cluster was brought up with --netns (and not yet taken down)."""
    return state_path(cluster).exists()


def read_state(cluster: Cluster) -> dict | None:
    try:
        return json.loads(state_path(cluster).read_text())
    except (FileNotFoundError, ValueError):  # never written, or cut short by a crash
        return None


def write_state(cluster: Cluster, state: dict) -> None:
    _write_private(state_path(cluster), json.dumps(state, indent=2) + "\n")


def effective(cluster: Cluster) -> Cluster:
    """The cluster as it runs: at its namespace addresses while it is a netns cluster."""
    derived = derived_config_path(cluster)
    if cluster.path == derived or not (active(cluster) and derived.exists()):
        return cluster
    try:
        return load_cluster(derived)
    except ConfigError:  # edited by hand, say: `down` must still work (pid files go by name)
        return cluster


def exec_prefix(cluster: Cluster, node: Node) -> list[str]:
    """What `procs.start` puts before the node's command: `ip netns exec NS` on a netns cluster."""
    if not active(cluster):
        return []
    hostnet.require()
    return hostnet.exec_prefix(Layout.of(cluster).namespace(node.name))


def derived_config(cluster: Cluster, layout: Layout) -> dict:
    """The cluster's config with every node at its namespace address, same ports."""
    with cluster.path.open("rb") as f:
        raw = tomllib.load(f)  # [auth] and [tuning] as written, so env overrides still apply
    config = {"data_dir": str(cluster.data_dir), "seed_file": str(cluster.seed_file)}
    config.update({key: raw[key] for key in ("auth", "tuning") if key in raw})
    if "tls" in raw:  # its file paths made absolute: this file lives elsewhere
        tls = cluster.tls
        config["tls"] = {"enabled": tls.enabled}
        if tls.public_cert and tls.public_key:
            config["tls"].update(public_cert=str(tls.public_cert), public_key=str(tls.public_key))
    config["nodes"] = {name: _node_block(node, layout) for name, node in cluster.nodes.items()}
    return config


def write_derived_config(cluster: Cluster, layout: Layout) -> Path:
    path = derived_config_path(cluster)
    _write_private(path, tomli_w.dumps(derived_config(cluster, layout)))
    return path


def _node_block(node: Node, layout: Layout) -> dict:
    address = layout.address(node.name)
    scheme = urlsplit(node.url).scheme
    block = {"service": node.service, "url": f"{scheme}://{address}:{node.port}"}
    if node.raft:
        block["raft"] = f"{address}:{node.raft.rpartition(':')[2]}"
    return block


def _state(cluster: Cluster, layout: Layout) -> dict:
    return {
        "cluster_id": layout.cid,
        "config": str(cluster.path),
        "derived_config": str(derived_config_path(cluster)),
        "subnet": str(layout.subnet),
        "bridge": layout.bridge,
        "host_address": str(layout.host_address),
        "nodes": {
            name: {
                "namespace": layout.namespace(name),
                "veth": layout.veth(name),
                "address": str(layout.address(name)),
            }
            for name in layout.nodes
        },
        "partition": None,
    }


def _write_private(path: Path, text: str) -> None:
    """Write a 0600 file whole or not at all: a crash never leaves half a config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover partial file may have looser bits
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(partial, path)


# -- up ---------------------------------------------------------------------------------------


def bring_up(cluster: Cluster) -> Cluster:
    """Make the bridge, namespaces and veths, write the derived config; return it loaded.

    If the cluster already runs in its namespaces, changes nothing. Leftovers
    of a crashed run (no node running) are removed first.
    """
    hostnet.require()
    layout = Layout.of(cluster)
    _check_names(layout)
    running = [n.name for n in cluster.nodes.values() if procs.running_pid(cluster, n)]
    if running:
        return _already_up(cluster, layout, running)
    tear_down(cluster)
    _check_subnet_free(layout)
    derived = write_derived_config(cluster, layout)
    write_state(cluster, _state(cluster, layout))  # before anything exists: a crash leaves a list
    try:
        _build(layout)
    except HostNetError:
        tear_down(cluster)  # never leave half a network behind
        raise
    return load_cluster(derived)


def _already_up(cluster: Cluster, layout: Layout, running: list[str]) -> Cluster:
    existing = set(hostnet.namespaces())
    if active(cluster) and all(layout.namespace(n) in existing for n in layout.nodes):
        return effective(cluster)
    raise NetnsError(
        f"nodes of this cluster already run ({', '.join(running)}), but not in network "
        "namespaces of `up --netns`; run `bazar down` first"
    )


def _check_names(layout: Layout) -> None:
    for name in layout.nodes:
        if not _NODE_NAME.fullmatch(name):
            raise NetnsError(
                f"node name {name!r} cannot name a network namespace "
                "(letters, digits, '_', '.', '-')"
            )
    if len(layout.nodes) > MAX_NODES:
        raise NetnsError(f"--netns takes at most {MAX_NODES} nodes (one /24)")


def _check_subnet_free(layout: Layout) -> None:
    """Refuse a /24 that an interface we did not make already uses (another cluster's too)."""
    for interface, address in hostnet.ipv4_addresses():
        if address.network.overlaps(layout.subnet) and interface != layout.bridge:
            raise NetnsError(
                f"this cluster's subnet {layout.subnet} is already used by {interface}, which "
                "this cluster did not make; take that cluster down or use another data_dir"
            )


def _build(layout: Layout) -> None:
    ip = _ip
    ip("link", "add", layout.bridge, "type", "bridge")
    ip("addr", "add", f"{layout.host_address}/24", "dev", layout.bridge)
    ip("link", "set", layout.bridge, "up")
    for node in layout.nodes:
        namespace, veth = layout.namespace(node), layout.veth(node)
        ip("netns", "add", namespace)
        # The peer is made inside the namespace, so the host never has a second "eth0".
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        ip("link", "set", veth, "master", layout.bridge, "up")
        ip("-n", namespace, "addr", "add", f"{layout.address(node)}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")


def _ip(*args: str) -> None:
    hostnet.run("ip", *args)


# -- down -------------------------------------------------------------------------------------


def tear_down(cluster: Cluster) -> list[str]:
    """Delete this cluster's namespaces, veths and bridge, and its netns files.

    Safe to run when nothing exists; returns what it deleted. It finds the
    names by this cluster's prefix, not in the state file: every name the
    state file lists has that prefix, and the file may be gone (deleted by
    hand, or never written by an `up` killed early).
    """
    removed = remove_network(Layout.of(cluster).cid)
    files = [state_path(cluster), derived_config_path(cluster)]
    for path in files + list(netns_dir(cluster).glob("*.partial")):
        path.unlink(missing_ok=True)
    if netns_dir(cluster).is_dir() and not any(netns_dir(cluster).iterdir()):
        netns_dir(cluster).rmdir()
    return removed


def remove_network(cid: str) -> list[str]:
    """Delete every namespace and link of cluster `cid` that exists; return their names."""
    layout = Layout(cid)
    namespaces = [n for n in hostnet.namespaces() if layout.owns_namespace(n)]
    links = [n for n in hostnet.links() if layout.owns_link(n)]
    if not namespaces and not links:
        return []
    if why := hostnet.missing_requirement():
        raise NetnsError(
            f"network namespaces of this cluster remain ({', '.join(namespaces + links)}), "
            f"but removing them {why}"
        )
    for namespace in namespaces:  # a namespace with a process inside outlives `ip netns del`
        hostnet.end_processes_in(namespace)
    for veth in (n for n in links if n != layout.bridge):  # takes its peer in the namespace along
        hostnet.run("ip", "link", "del", veth, check=False)
    for namespace in namespaces:
        hostnet.run("ip", "netns", "del", namespace, check=False)
    if layout.bridge in links:
        hostnet.run("ip", "link", "del", layout.bridge, check=False)
    return namespaces + links


def leftover_cluster_ids() -> set[str]:
    """Ids of every cluster with a namespace or link left on this host (tests clean these)."""
    patterns = (rf"{NAMESPACE_PREFIX}({_ID})-.+", rf"{LINK_PREFIX}({_ID})(h\d+)?")
    names = hostnet.namespaces() + hostnet.links()
    matches = (re.fullmatch(pattern, name) for pattern in patterns for name in names)
    return {m.group(1) for m in matches if m}
