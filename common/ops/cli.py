"""The `bazar` operator CLI (design §3)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from common.config import Cluster, ConfigError, load_cluster
from common.ops import procs
from common.ops.check import compare

START_ORDER = ("recovery", "catalog", "order", "frontend")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cluster = load_cluster(args.config)
        return args.func(cluster, args) or 0
    except ConfigError as e:
        print(f"bazar: config error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bazar", description="Operate a Bazar cluster.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", help="cluster TOML (default: $BAZAR_CONFIG or config/cluster.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_text, node=False):
        p = sub.add_parser(name, parents=[common], help=help_text)
        if node:
            p.add_argument("node", help="node name from the config, e.g. catalog-1")
        p.set_defaults(func=func)
        return p

    up = add("up", cmd_up, "start every node, wait until healthy")
    up.add_argument("--detach", action="store_true", help="return once healthy")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health")
    add("down", cmd_down, "stop every node")
    add("status", cmd_status, "show each node's state").add_argument("--json", action="store_true")
    add("stop", cmd_stop, "gracefully stop one node", node=True)
    add("start", cmd_start, "start one node", node=True)
    add("kill", cmd_kill, "SIGKILL one node (failover scenarios)", node=True)
    add("check", cmd_check, "exit 0 only if replicas hold identical data")
    add("node", cmd_node, "run one node in the foreground (gunicorn)", node=True)
    return parser


def cmd_up(cluster: Cluster, args) -> int:
    nodes = sorted(cluster.nodes.values(), key=lambda n: START_ORDER.index(n.service))
    pids = {node: procs.start(cluster, node) for node in nodes}
    missing = procs.wait_healthy(pids, args.timeout)
    if missing:
        for node in missing:
            print(
                f"bazar: {node.name} did not become healthy; log: {procs.log_file(cluster, node)}",
                file=sys.stderr,
            )
        return 1
    _print_cluster(cluster)
    if args.detach:
        return 0
    print("Running; Ctrl-C stops the cluster.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        print("\nstopping...", flush=True)
    finally:
        cmd_down(cluster, args)
    return 0


def _print_cluster(cluster: Cluster) -> None:
    for node in cluster.nodes.values():
        print(f"  {node.name:<12} {node.service:<9} {node.url}")
    print(f"data: {cluster.data_dir}")
    print(f"staff token: {cluster.staff_token}")
    print(f"try: curl {cluster.of('frontend')[0].url}/search/distributed%20systems", flush=True)


def cmd_down(cluster: Cluster, args) -> int:
    for node in procs.stop_all(cluster, list(cluster.nodes.values())):
        print(f"stopped {node.name}")
    return 0


def cmd_status(cluster: Cluster, args) -> int:
    rows = []
    for node in cluster.nodes.values():
        state, body = procs.health(node)
        extra = {k: body[k] for k in ("role", "queues") if k in body}
        rows.append(
            {
                "node": node.name,
                "service": node.service,
                "url": node.url,
                "state": state,
                "pid": procs.running_pid(cluster, node),
                **extra,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        detail = r.get("role") or (f"queues {r['queues']}" if "queues" in r else "")
        print(f"{r['node']:<12} {r['service']:<9} {r['state']:<11} {detail:<10} {r['url']}")
    return 0


def cmd_stop(cluster: Cluster, args) -> int:
    node = cluster.node(args.node)
    print(f"stopped {node.name}" if procs.stop(cluster, node) else f"{node.name} was not running")
    return 0


def cmd_start(cluster: Cluster, args) -> int:
    node = cluster.node(args.node)
    print(f"started {node.name} (pid {procs.start(cluster, node)})")
    return 0


def cmd_kill(cluster: Cluster, args) -> int:
    node = cluster.node(args.node)
    print(f"killed {node.name}" if procs.kill(cluster, node) else f"{node.name} was not running")
    return 0


def cmd_check(cluster: Cluster, args) -> int:
    ok, report = compare(cluster)
    print("\n".join(report))
    print("replicas identical" if ok else "replicas DIFFER")
    return 0 if ok else 1


def cmd_node(cluster: Cluster, args) -> int:
    from common.server import serve  # gunicorn only where a node really runs

    serve(cluster, cluster.node(args.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
