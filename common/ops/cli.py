"""The `bazar` operator CLI (design §3)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from common.config import VOTERS, Cluster, ConfigError, load_cluster
from common.ops import deploy, monitor, netns, partition, procs, report, staffcli
from common.ops.check import compare
from common.ops.hostnet import HostNetError, NetnsError
from common.ops.importer import add_arguments as add_import
from common.ops.watch import Display

START_ORDER = ("recovery", "catalog", "order", "frontend")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cluster = load_cluster(args.config)
        if args.command != "up":  # `up` may be the one that makes the namespaces
            cluster = netns.effective(cluster)
        if args.command not in ("certs", "up", "node", "probe") and (why := procs.trust(cluster)):
            print(f"bazar: warning: {why}", file=sys.stderr)  # HTTPS to the nodes fails
        return args.func(cluster, args) or 0
    except ConfigError as e:
        print(f"bazar: config error: {e}", file=sys.stderr)
        return 2
    except NetnsError as e:
        print(f"bazar: {args.command}: {e}", file=sys.stderr)
        return 2
    except HostNetError as e:
        print(f"bazar: {args.command}: {e}", file=sys.stderr)
        return 1
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
    up.add_argument(
        "--netns",
        action="store_true",
        help="each node in a network namespace of its own, on a private bridge (root)",
    )
    up.add_argument(
        "--monitor", action="store_true", help="also run Prometheus scraping every node"
    )
    up.add_argument(
        "--monitor-port",
        type=int,
        default=monitor.DEFAULT_PORT,
        help=f"Prometheus port on 127.0.0.1 (default {monitor.DEFAULT_PORT})",
    )
    add("down", cmd_down, "stop every node")
    add("status", cmd_status, "show each node's state").add_argument("--json", action="store_true")
    add("stop", cmd_stop, "gracefully stop one node", node=True)
    add("start", cmd_start, "start one node", node=True)
    add("kill", cmd_kill, "SIGKILL one node (failover scenarios)", node=True)
    add("check", cmd_check, "exit 0 only if replicas hold identical data")
    add(
        "probe",
        cmd_probe,
        "exit 0 if the node answers /health with 200 (service checks)",
        node=True,
    )
    roll = add("rolling-restart", cmd_rolling, "restart every node in turn, the holder last")
    roll.add_argument("--timeout", type=float, default=60.0, help="seconds for a node to be back")
    add("node", cmd_node, "run one node in the foreground (gunicorn)", node=True)
    cut = add("partition", cmd_partition, "cut every link between groups of nodes (--netns)")
    cut.add_argument("groups", nargs="*", metavar="GROUP", help="node names joined by commas: A,B")
    cut.add_argument("--isolate", metavar="NODE", help="cut NODE from every other node")
    add("heal", cmd_heal, "remove every cut made by partition")
    tls = add("certs", cmd_certs, "make the cluster CA and each node's key and certificate")
    tls.add_argument("--force", action="store_true", help="make every file again, the CA too")
    tls.add_argument("--renew", action="store_true", help="sign every certificate again")
    tls.add_argument("--new-ca", action="store_true", help="rotation: a new CA, old ones kept")
    tls.add_argument("--drop-old-cas", action="store_true", help="rotation: trust the new CA only")
    follow = add("trace", cmd_trace, "one request's log lines from every node, in time order")
    follow.add_argument("request_id", metavar="ID", help="the request's X-Request-Id")
    follow.add_argument("--json", action="store_true", help="the raw JSON lines")
    money = add("report", cmd_report, "one UTC day's revenue, from the front-end")
    money.add_argument(
        "--day", type=report.day_arg, help="the UTC day, YYYY-MM-DD (default: today)"
    )
    money.add_argument(
        "--by", choices=("book", "day"), default="book", help="one row per book (default) or day"
    )
    money.add_argument("--json", action="store_true", help="the report as the front-end sent it")
    deploy.add_arguments(add("deploy", deploy.run, "write systemd units or Kubernetes manifests"))
    copy = add("backup", cmd_backup, "online copy of a running node's database (on its host)", True)
    copy.add_argument("dest", help="file to write, or a folder for <node>-<UTC time>.sqlite3")
    put = add("restore", cmd_restore, "put a backup in place of a stopped node's database", True)
    put.add_argument("src", help="a file `bazar backup` wrote for a node of the same service")
    staffcli.add_arguments(add)
    add_import(add)
    return parser


def cmd_up(cluster: Cluster, args) -> int:
    if args.netns or netns.active(cluster):  # a netns cluster stays one until `down`
        cluster = _netns_up(cluster)
    if cluster.tls.enabled:  # what is missing, and names for the addresses it runs at
        from common.tls import certs  # cryptography: not in every node's master

        for line in certs.make(cluster):
            print(f"tls: made {line}")
        procs.trust(cluster)  # the files now exist
    nodes = sorted(cluster.nodes.values(), key=lambda n: START_ORDER.index(n.service))
    display = None if args.detach else Display(cluster)
    pids = {node: procs.start(cluster, node, netns.exec_prefix(cluster, node)) for node in nodes}
    missing = procs.wait_healthy(pids, args.timeout, display.note if display else None)
    if missing:
        for node in missing:
            print(
                f"bazar: {node.name} did not become healthy; log: {procs.log_file(cluster, node)}",
                file=sys.stderr,
            )
        return 1
    _print_cluster(cluster)
    if args.monitor:
        _start_monitor(cluster, args.monitor_port)
    if display is None:
        return 0
    return _foreground(cluster, display, args)


def _start_monitor(cluster: Cluster, port: int) -> None:
    """Prometheus for the cluster; without it the cluster runs on (the message says why)."""
    outcome = monitor.start(cluster, port)
    print(
        outcome.message if outcome.url else f"bazar: {outcome.message}",
        file=sys.stdout if outcome.url else sys.stderr,
        flush=True,
    )


def _foreground(cluster: Cluster, display: Display, args) -> int:
    """Show the nodes' states until they are all stopped (`bazar down` elsewhere) or
    Ctrl-C / SIGTERM, which stop the cluster."""
    # A handler that only sets a flag: a KeyboardInterrupt raised at an arbitrary
    # point could land inside the display's thread pool, holding one of its locks,
    # and hang the shutdown that follows. Installed before the line below, which
    # tells a watcher that Ctrl-C now stops the cluster.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("Running; node states follow. Ctrl-C stops the cluster.", flush=True)
    if display.run(stop=stop):
        print("\nstopping...", flush=True)
        cmd_down(cluster, args)
    return 0


def _netns_up(cluster: Cluster) -> Cluster:
    """Make the cluster's network (or find it made); return the cluster at its new addresses."""
    running = netns.bring_up(cluster)
    layout = netns.Layout.of(running)
    print(
        f"network: bridge {layout.bridge} {layout.subnet} (host {layout.host_address}), "
        f"namespaces {layout.namespace('<node>')}"
    )
    return running


def _print_cluster(cluster: Cluster) -> None:
    for node in cluster.nodes.values():
        print(f"  {node.name:<12} {node.service:<9} {node.url}")
    print(f"data: {cluster.data_dir}")
    print(f"staff token: {cluster.staff_token}")
    print(f"try: curl {cluster.of('frontend')[0].url}/search/distributed%20systems", flush=True)


def cmd_down(cluster: Cluster, args) -> int:
    for node in procs.stop_all(cluster, list(cluster.nodes.values())):
        print(f"stopped {node.name}")
    if monitor.stop(cluster):
        print("stopped prometheus")
    removed = netns.tear_down(cluster)  # also what a crashed `up --netns` left
    if removed:
        print(f"removed network namespaces and links: {', '.join(removed)}")
    return 0


def cmd_status(cluster: Cluster, args) -> int:
    rows = [_status_row(cluster, node) for node in cluster.nodes.values()]
    if args.json:
        print(json.dumps(rows, indent=2))  # a list of nodes; voters carry their lease view
        return 0
    print(_lease_line(_lease_summary(rows)))
    for r in rows:
        detail = r.get("role") or (f"queues {r['queues']}" if "queues" in r else "")
        if r.get("overflowed"):  # dropped past [retention] queue_cap, not yet acknowledged
            detail += f" overflowed {r['overflowed']}"
        view = r.get("lease") if _votes(r) else None
        seen = f"sees {view['holder'] or '-'} @{view['epoch']}" if view else ""
        print(
            f"{r['node']:<12} {r['service']:<9} {r['state']:<11} {detail:<10} {seen:<24} {r['url']}"
        )
    return 0


def _status_row(cluster: Cluster, node) -> dict:
    state, body = procs.health(node)
    extra = {
        k: body[k]
        for k in ("role", "queues", "overflowed", "lease", "read_lease", "data_epoch")
        if k in body
    }
    return {
        "node": node.name,
        "service": node.service,
        "url": node.url,
        "state": state,
        "pid": procs.running_pid(cluster, node),
        **extra,
    }


def _lease_summary(rows: list[dict]) -> dict:
    """The lease as the voters see it: the holder of the newest epoch any voter reports."""
    views = [(r["node"], r["lease"]) for r in rows if r.get("lease") and _votes(r)]
    if not views:
        return {"holder": None, "epoch": 0, "agree": False}
    newest = max(view["epoch"] for _, view in views)
    holders = {view["holder"] for _, view in views if view["epoch"] == newest}
    writer = next((r["node"] for r in rows if r.get("role") == "primary"), None)
    return {
        "holder": holders.pop() if len(holders) == 1 else None,
        "epoch": newest,
        "writing": writer,
        "agree": all(view["epoch"] == newest for _, view in views),
    }


def _votes(row: dict) -> bool:
    """Catalogs and the recovery node see the lease in their Raft log (a front-end's
    `lease` is its own read lease)."""
    return row["service"] in VOTERS


def _lease_line(lease: dict) -> str:
    if not lease["epoch"]:
        return "lease: no holder yet"
    agree = "all voters agree" if lease["agree"] else "some voters lag"
    return (
        f"lease: {lease['holder'] or '?'} holds epoch {lease['epoch']} "
        f"(writing: {lease.get('writing') or 'nobody'}; {agree})"
    )


def cmd_stop(cluster: Cluster, args) -> int:
    node = cluster.node(args.node)
    print(f"stopped {node.name}" if procs.stop(cluster, node) else f"{node.name} was not running")
    return 0


def cmd_start(cluster: Cluster, args) -> int:
    node = cluster.node(args.node)
    pid = procs.start(cluster, node, netns.exec_prefix(cluster, node))
    print(f"started {node.name} (pid {pid})")
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


def cmd_probe(cluster: Cluster, args) -> int:
    """A readiness check from the node's own host (Kubernetes, systemd): under TLS it
    shows the node's own certificate, which the host has; the operator's need not be."""
    node = cluster.node(args.node)
    if why := procs.trust_as(cluster, node.name):
        print(f"bazar: probe: {why}", file=sys.stderr)
        return 1
    state, body = procs.health(node, timeout=2.0)
    print(f"{node.name}: {body.get('status', state)}")
    return 0 if state == "up" else 1


def cmd_rolling(cluster: Cluster, args) -> int:
    from common.ops import rolling

    return rolling.run(cluster, args.timeout)


def cmd_partition(cluster: Cluster, args) -> int:
    groups = partition.parse_groups(cluster, args.groups, args.isolate)
    print("\n".join(partition.apply(cluster, groups)))
    return 0


def cmd_heal(cluster: Cluster, args) -> int:
    print("\n".join(partition.heal(cluster)))
    return 0


def cmd_certs(cluster: Cluster, args) -> int:
    from common.tls import certs

    if args.drop_old_cas:
        lines = certs.drop_old_cas(cluster)
    else:
        lines = certs.make(cluster, force=args.force, new_ca=args.new_ca, renew=args.renew)
    print("\n".join(lines) or f"certificates up to date in {cluster.tls.directory}")
    if not cluster.tls.enabled:
        print("note: [tls] enabled = true in the config makes the nodes use them")
    return 0


def cmd_trace(cluster: Cluster, args) -> int:
    from common.ops import trace  # loads Flask (the log's path): only for this command

    lines = trace.find(cluster, args.request_id)
    if not lines:
        print(
            f"bazar: trace: no request {args.request_id!r} in the request logs of "
            f"{len(cluster.nodes)} nodes ({cluster.data_dir / 'logs'})",
            file=sys.stderr,
        )
        return 1
    for line in lines:
        print(line.raw if args.json else trace.describe(line))
    return 0


def cmd_report(cluster: Cluster, args) -> int:
    return report.run(cluster, args.day, args.by, args.json)


def cmd_backup(cluster: Cluster, args) -> int:
    return _backup_verb("backup", cluster, args.node, args.dest)


def cmd_restore(cluster: Cluster, args) -> int:
    return _backup_verb("restore", cluster, args.node, args.src)


def _backup_verb(name: str, cluster: Cluster, node: str, path: str) -> int:
    from common.ops import backup  # SQLAlchemy: not in every command's start-up

    verb = getattr(backup, name)
    try:
        print("\n".join(verb(cluster, node, path)))
    except backup.BackupError as e:
        print(f"bazar: {verb.__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_node(cluster: Cluster, args) -> int:
    from common.server import serve  # gunicorn only where a node really runs

    serve(cluster, cluster.node(args.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
