"""`bazar partition` and `bazar heal`: cut the links between groups of nodes of a --netns cluster.

Each node in a group gets, inside its own namespace, one nftables table
`inet bazar` whose input and output chains drop packets from and to the
nodes of every other group. Drop, not reject: a peer behind a cut goes
silent, as across a real network split, instead of refusing at once. A node
in no group keeps every link, which is how a "bridge" split is made. The
host's address is never in a set, so the operator still reaches every node.
"""

from __future__ import annotations

from itertools import combinations

from common.config import Cluster
from common.ops import hostnet, netns
from common.ops.hostnet import NetnsError

TABLE = "inet bazar"


def parse_groups(cluster: Cluster, specs: list[str], isolate: str | None) -> list[list[str]]:
    """Groups of node names from "A,B C,D" or --isolate NODE; NetnsError if they make no sense."""
    if isolate and specs:
        raise NetnsError("give groups (A,B C,D) or --isolate NODE, not both")
    if isolate:
        _check_known(cluster, [isolate])
        return [[isolate], [n for n in cluster.nodes if n != isolate]]
    groups = [[name.strip() for name in spec.split(",")] for spec in specs]
    _check_known(cluster, [name for group in groups for name in group])
    if len(groups) < 2:
        raise NetnsError(
            "give at least two groups, e.g. `bazar partition catalog-1 catalog-2,order-1` "
            "(a node in no group keeps all its links), or --isolate NODE"
        )
    return groups


def _check_known(cluster: Cluster, names: list[str]) -> None:
    unknown = [name for name in names if name not in cluster.nodes]
    if unknown:
        raise NetnsError(
            f"no node named {', '.join(map(repr, unknown))} (nodes: {', '.join(cluster.nodes)})"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise NetnsError(f"a node can be in one group only: {', '.join(twice)}")


def cuts(groups: list[list[str]]) -> dict[str, list[str]]:
    """For each node in a group, the nodes it must no longer reach: those of the other groups."""
    return {
        name: [other for g in groups if g is not group for other in g]
        for group in groups
        for name in group
    }


def ruleset(addresses: list[str]) -> str:
    """An nft script that replaces our table: drops to and from `addresses`, or no table at all."""
    script = f"table {TABLE}\ndelete table {TABLE}\n"  # "delete if it exists", in one transaction
    if not addresses:
        return script
    peers = ", ".join(addresses)
    return script + (
        f"table {TABLE} {{\n"
        f"  chain input {{ type filter hook input priority filter; policy accept; "
        f"ip saddr {{ {peers} }} drop; }}\n"
        f"  chain output {{ type filter hook output priority filter; policy accept; "
        f"ip daddr {{ {peers} }} drop; }}\n"
        f"}}\n"
    )


def apply(cluster: Cluster, groups: list[list[str]]) -> list[str]:
    """Replace the cluster's cuts with these groups'; return lines that say what is cut."""
    state = _netns_state(cluster)
    _load(state, cuts(groups))
    state["partition"] = groups
    netns.write_state(cluster, state)
    return describe(groups, list(cluster.nodes))


def heal(cluster: Cluster) -> list[str]:
    """Remove every cut; return a line that says what was cut before."""
    state = _netns_state(cluster)
    _load(state, {})
    previous = state.get("partition")
    state["partition"] = None
    netns.write_state(cluster, state)
    if not previous:
        return ["healed: nothing was cut"]
    return [f"healed: every link restored (was {' | '.join(', '.join(g) for g in previous)})"]


def _netns_state(cluster: Cluster) -> dict:
    state = netns.read_state(cluster)
    if state is None:
        raise NetnsError("this cluster was not started with `bazar up --netns`")
    hostnet.require()
    return state


def _load(state: dict, blocked: dict[str, list[str]]) -> None:
    """Write each namespace's table; namespaces without cuts get theirs removed."""
    nodes = state["nodes"]
    for name, node in nodes.items():
        addresses = [nodes[other]["address"] for other in blocked.get(name, [])]
        hostnet.nft_in(node["namespace"], ruleset(addresses))


def describe(groups: list[list[str]], names: list[str]) -> list[str]:
    lines = [f"partition: {' | '.join(', '.join(g) for g in groups)}"]
    lines += [f"cut: {', '.join(a)} <-> {', '.join(b)}" for a, b in combinations(groups, 2)]
    grouped = {name for group in groups for name in group}
    untouched = [name for name in names if name not in grouped]
    if untouched:
        lines.append(f"still linked to every node: {', '.join(untouched)}")
    lines.append("the host still reaches every node; `bazar heal` restores all links")
    return lines
