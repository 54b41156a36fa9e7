"""Serve one node with gunicorn: one worker process, threads (design §1).

One worker because a node owns in-process state (cache, replication and
health threads); scaling out means more nodes in the config.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil

from gunicorn import util
from gunicorn.app.base import BaseApplication

from common.config import Cluster, Node
from common.tls.contexts import server_options

FACTORIES = {
    "frontend": "frontend",
    "catalog": "catalog",
    "order": "order",
    "recovery": "recovery",
}


def gunicorn_options(cluster: Cluster, node: Node) -> dict:
    return {
        "bind": f"{node.host}:{node.port}",
        "workers": 1,
        "worker_class": WORKER_CLASS.get(node.service, "gthread"),
        "threads": _threads(cluster, node),  # gthread workers
        "worker_connections": 1000,  # gevent workers: concurrent requests
        "timeout": 30,
        "graceful_timeout": 3,
        # An idle keep-alive connection is a greenlet on a gevent front-end: kept longer
        # than a client's usual pause, so a client seldom reuses one just as we close it
        # (then it would get a reset). gthread nodes keep the 5 s.
        "keepalive": 75 if WORKER_CLASS.get(node.service) == "gevent" else 5,
        "backlog": 2048,
        "proc_name": f"bazar-{node.name}",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "control_socket_disable": True,  # no gunicornc socket: nodes are run by `bazar`
        "child_exit": _worker_exit,
        **server_options(cluster, node),  # HTTPS when [tls] is on
    }


# One worker process per node (it owns the node's state), of the class that costs
# least per request; every node but the recovery node now runs gevent:
# - front-end: mostly waits on backends and serves its cache; under gevent one worker
#   serves about twice the cached lookups that 32 threads do (threads spend their time
#   handing the GIL around).
# - order servers and catalogs: a request is short SQLite work under the node's write
#   lock (patched to a gevent lock) and calls to peers. A/B on buys (loadtests/ab.py,
#   5 alternated rounds each): order servers gthread -> gevent 9.6 -> 9.2 ms CPU per
#   buy; catalogs 6.26 -> 5.59 ms and +12.5% buys/s. The catalogs' Raft group
#   (PySyncObj) runs in a greenlet; the partition and fault suites pass unchanged.
# - recovery node: little traffic; stays gthread.
WORKER_CLASS = {"frontend": "gevent", "order": "gevent", "catalog": "gevent"}


def _threads(cluster: Cluster, node: Node) -> int:
    """Front-ends and order servers mostly wait on other nodes, and are waited on in
    turn: the catalog primary's invalidations must reach a front-end whose clients wait
    on that primary, and each order server's buys wait on a push to the other. A full
    thread pool would hold such a message back until a timeout, so they get four times
    the threads: the order servers as many as a front-end can keep busy. Only gthread
    workers read it (today the recovery node; gevent nodes take 1000 connections)."""
    return cluster.tuning.threads * (4 if node.service in ("frontend", "order") else 1)


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own answer to a request it cannot parse (request line over
    4094 bytes: 414, too many or too large headers: 431, a malformed line: 400),
    as JSON like every other error of ours instead of gunicorn's HTML page.
    The app never sees such a request, so no Flask handler can do this."""
    body = json.dumps({"message": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def _metrics_dir(cluster: Cluster, node: Node) -> None:
    """Prometheus counters shared by every process of this node (common.observe.metrics);
    emptied at each start, so a node's counters begin at zero when the node does. Set
    before the worker imports prometheus_client, which reads it once."""
    directory = cluster.data_dir / "metrics" / node.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _worker_exit(_server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class NodeServer(BaseApplication):
    def __init__(self, cluster: Cluster, node: Node):
        self.cluster = cluster
        self.node = node
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.cluster, self.node).items():
            self.cfg.set(key, value)

    def load(self):
        module = importlib.import_module(FACTORIES[self.node.service])
        return module.create_app(self.node.name, str(self.cluster.path))


def serve(cluster: Cluster, node: Node) -> None:
    """Run the node in the foreground until stopped."""
    _metrics_dir(cluster, node)
    # gunicorn has one writer for these errors and no setting to change it.
    util.write_error = write_json_error
    NodeServer(cluster, node).run()
