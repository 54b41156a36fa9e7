"""Serve one node with gunicorn: one worker process, threads (design §1).

One worker because a node owns in-process state (cache, replication and
health threads); scaling out means more nodes in the config.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from email.utils import formatdate

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import wsgi

from common.config import Cluster, Node
from common.ops.procs import ready_file
from common.tls.contexts import server_options
from common.webkit import headers

GRACEFUL_TIMEOUT = 3  # seconds a stopping node drains its requests

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
        "graceful_timeout": GRACEFUL_TIMEOUT,
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
        # Stopping and upgrading in place (`bazar rolling-restart`, docs/upgrading.md):
        "pre_exec": _own_session,
        "post_worker_init": lambda worker: _worker_ready(cluster, node, worker),
        "worker_exit": _worker_done,
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


class OneSendResponse(wsgi.Response):
    """gunicorn's response, but a body written whole in one piece (every JSON answer of
    ours) leaves in the same send as the headers. gunicorn sends them apart, and the
    caller, another node more often than not, can wake for the headers only to wait
    for the body: a second wake-up, which costs it about what a request does
    (docs/performance.md, "What an idle cluster pays for"). Anything else (streamed,
    chunked, no body allowed) goes gunicorn's way."""

    def write(self, arg):
        whole = (
            not self.headers_sent
            and isinstance(arg, bytes)
            and arg
            and not self.chunked
            and not self._omits_body
            and self.response_length == len(arg)
        )
        if not whole:
            return super().write(arg)
        tosend = self.default_headers()
        tosend.extend(f"{k}: {v}\r\n" for k, v in self.headers)
        head = util.to_bytestring("{}\r\n".format("".join(tosend)), "latin-1")
        self.headers_sent = True
        self.sent += len(arg)
        util.write(self.sock, head + arg)


_date: tuple[int, str] = (-1, "")  # the last whole second's Date header, formatted


def http_date(timestamp: float | None = None) -> str:
    """gunicorn's `util.http_date`, formatted once a second rather than per answer
    (2% of a front-end's CPU per buy went to formatting the Date header)."""
    global _date
    if timestamp is not None:
        return formatdate(timestamp, usegmt=True)
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]


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


# -- stopping gracefully, and upgrading in place ---------------------------------------
#
# A node's app may register hooks in `NodeContext.on_stop`: what to do as soon as it is
# asked to stop, while it still serves what is in flight (a catalog lease holder steps
# down and frees the lease; a front-end drops its read lease). They run once, on a
# thread, when the worker gets SIGTERM (a graceful stop: `bazar stop`, `down`) or
# SIGUSR2 (sent to the WORKER by `bazar rolling-restart` before it upgrades a front-end
# in place: the worker retires but keeps serving). gunicorn leaves SIGUSR2 at its default
# (terminate) in workers; here it means "hand off". The master's own SIGUSR2 is gunicorn's
# on-the-fly upgrade: it re-executes the node's command line with the listening socket.


class HandOff:
    """The worker's on-stop hooks, run once on a thread of their own."""

    def __init__(self, hooks: list[Callable[[], None]]):
        self.hooks = hooks
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="hand-off", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        for hook in self.hooks:
            try:
                hook()
            except Exception:  # one failed hook must not keep the others from running
                logging.getLogger(__name__).exception("on-stop hook failed")

    def wait(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _worker_ready(cluster: Cluster, node: Node, worker) -> None:
    ctx = getattr(worker.wsgi, "extensions", {}).get("bazar")
    hand_off = HandOff(list(ctx.on_stop) if ctx is not None else [])
    worker.bazar_hand_off = hand_off
    exit_now = worker.handle_exit

    def on_term(sig, frame):
        _soon(hand_off.begin)
        exit_now(sig, frame)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR2, lambda *_: _soon(hand_off.begin))
    path = ready_file(cluster, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f"{path.name}.{os.getpid()}")
    staged.write_text(json.dumps({"master": os.getppid(), "worker": os.getpid()}))
    staged.replace(path)  # whole or not at all, for `bazar rolling-restart` to read


def _soon(action: Callable[[], None]) -> None:
    """Run `action` from a signal handler: in a gevent worker the handler runs inside the
    event loop, where nothing may block (not even starting a thread), so on a greenlet."""
    monkey = sys.modules.get("gevent.monkey")  # loaded by a gevent worker only
    if monkey is not None and monkey.is_module_patched("threading"):
        sys.modules["gevent"].spawn(action)
    else:
        action()


def _worker_done(_server, worker) -> None:
    """A worker ends (its drain is over): let the hand-off finish first, if it began."""
    hand_off = getattr(worker, "bazar_hand_off", None)
    if hand_off is not None:
        hand_off.wait(2.0)


def _own_session(_arbiter) -> None:
    """In the child a master forks to re-execute itself (SIGUSR2): a session and process
    group of its own, as `bazar start` gives every node, so the old master's group can be
    stopped without it and `bazar stop`/`kill` signal the new group by the new pid."""
    os.setsid()


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

    def run(self) -> None:
        arbiter = Arbiter(self)
        # gunicorn re-executes sys.executable + sys.argv on SIGUSR2; a node runs as
        # `python -m common.ops.cli node NAME --config F`, whose sys.argv[0] is the file
        # cli.py, not `-m common.ops.cli`: run the command line exactly as it was given.
        arbiter.START_CTX = {**arbiter.START_CTX, 0: sys.executable, "args": _command_line()}
        try:
            arbiter.run()
        except RuntimeError as e:  # as BaseApplication.run: a bad start, said in one line
            print(f"\nError: {e}\n", file=sys.stderr, flush=True)
            sys.exit(1)


def _command_line() -> list[str]:
    return [sys.executable, *sys.orig_argv[1:]]


def serve(cluster: Cluster, node: Node) -> None:
    """Run the node in the foreground until stopped."""
    _metrics_dir(cluster, node)
    # gunicorn has one writer for these errors and no setting to change it, and builds
    # every HTTP/1 response from the module's `Response` (HTTP/2 has a class of its own).
    util.write_error = write_json_error
    util.http_date = http_date
    wsgi.Response = OneSendResponse
    headers.install()  # the answers of other nodes read without the email package
    NodeServer(cluster, node).run()
