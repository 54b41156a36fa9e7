"""What crashed runs left on this host, told apart from clusters other runs are using.

`bazar down` removes a cluster's namespaces, veths and bridge; a run killed
before that leaves them (and perhaps its nodes). The partition tests clear
such leftovers first, but only those: another run on the same host (a
`make test` next to a fault run, two checkouts side by side) keeps its
cluster. Removing a live cluster's namespaces SIGTERMs its nodes and makes
its next `partition` or `heal` fail on a namespace that is gone.
"""

from __future__ import annotations

from pathlib import Path

from common.ops import hostnet, netns


def clear() -> list[str]:
    """Remove the namespaces and links of every abandoned cluster; return their ids."""
    gone = sorted(abandoned())
    for cid in gone:
        netns.remove_network(cid)
    return gone


def abandoned() -> set[str]:
    """Ids of the clusters with bazar-named namespaces or links that no live run owns."""
    names = hostnet.namespaces()
    return {
        cid
        for cid in netns.leftover_cluster_ids()
        if not any(_owned(n) for n in names if netns.Layout(cid).owns_namespace(n))
    }


def _owned(namespace: str) -> bool:
    """Whether a process in `namespace` belongs to a run that still exists: one whose
    config file is still there (a crashed run's test folder is removed in time), or
    any process we cannot place (kept, to be safe)."""
    listed = hostnet.run("ip", "netns", "pids", namespace, check=False).stdout.split()
    for pid in (p for p in listed if p.isdigit()):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # ended meanwhile
            continue
        if "--config" not in args[:-1]:
            return True
        if Path(args[args.index("--config") + 1]).exists():
            return True
    return False
