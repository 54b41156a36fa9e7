"""Serve one node with gunicorn: one worker process, threads (design §1).

One worker because a node owns in-process state (cache, replication and
health threads); scaling out means more nodes in the config.
"""

from __future__ import annotations

import importlib

from gunicorn.app.base import BaseApplication

from common.config import Cluster, Node

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
        "worker_class": "gthread",
        "threads": cluster.tuning.threads,
        "timeout": 30,
        "graceful_timeout": 3,
        "keepalive": 5,
        "backlog": 2048,
        "proc_name": f"bazar-{node.name}",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "control_socket_disable": True,  # no gunicornc socket: nodes are run by `bazar`
    }


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
    NodeServer(cluster, node).run()
