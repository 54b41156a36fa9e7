"""A real Bazar cluster for tests: nodes as processes on free loopback ports.

`LocalCluster` writes a config into a temp folder and drives it with the
`bazar` CLI, as an operator would; `Api` is the small client of the public
API the tests speak through. Nothing here sleeps a fixed time where it can
poll.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from common.config import VOTERS, Cluster, load_cluster
from common.http import InternalClient
from common.ops import monitor, netns, procs
from common.tls import contexts
from tests.support import timefaults

ROOT = Path(__file__).resolve().parents[2]


# Nodes' ports come from below the kernel's ephemeral range (32768 up), where outgoing
# connections take theirs, and each xdist worker has a block of its own: a node killed by
# a test keeps its port free for its restart, which another worker's cluster, or a
# client socket, would otherwise be free to take in the meantime.
PORTS = range(10000, 32000)


def _port_block() -> range:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = len(PORTS) // max(workers, 1)
    start = PORTS.start + size * (worker % max(workers, 1))
    return range(start, start + size)


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports of this worker's block: every socket stays
    bound until all are chosen, so none is handed out twice."""
    block = _port_block()
    chosen: list[int] = []
    tried: set[int] = set()
    with contextlib.ExitStack() as stack:
        while len(tried) < len(block):  # random ports, each tried once (no shuffled copy)
            port = random.choice(block)
            if port in tried:
                continue
            tried.add(port)
            s = stack.enter_context(socket.socket())
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free ports in {block}")


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    message = response.json()["message"]
    for word in words:
        assert word in message, message


class Api:
    """The public API of one front-end, as a customer or staff member uses it."""

    def __init__(self, url: str, staff_token: str):
        self.url = url
        self.staff_token = staff_token
        self.http = requests.Session()
        self.http.trust_env = False

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kw)

    def send(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=30, **kw)

    def search(self, topic: str) -> requests.Response:
        return self.get(f"/search/{topic}")

    def lookup(self, book_id) -> requests.Response:
        return self.get(f"/lookup/{book_id}")

    def buy(
        self, book_id, quantity: int | None = None, key: str | None = None, method: str = "POST"
    ) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        body = {"json": {"quantity": quantity}} if quantity is not None else {}
        return self.send(method, f"/buy/{book_id}", headers=headers, **body)

    def staff(self, kind: str, book_id, body, token: str | None = "default") -> requests.Response:
        token = self.staff_token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.send("PUT", f"/update/{kind}/{book_id}", json=body, headers=headers)

    def set_price(self, book_id, price) -> requests.Response:
        return self.staff("price", book_id, {"price": price})

    def set_quantity(self, book_id, quantity) -> requests.Response:
        return self.staff("item", book_id, {"quantity": quantity})

    def order(self, order_id: str) -> requests.Response:
        return self.get(f"/orders/{order_id}")


class LocalCluster:
    """A cluster config in `root`, started and stopped through the `bazar` CLI."""

    def __init__(
        self,
        root: Path,
        catalogs: int = 2,
        orders: int = 2,
        frontends: int = 1,
        tuning: dict | None = None,
        netns: bool = False,
        code: Path = ROOT,
        clocks: dict[str, float] | None = None,
        tls: bool = False,
        public: tuple[Path, Path] | None = None,
        retention: dict | None = None,
    ):
        """`clocks`: node name -> seconds its wall clock is off the host's, from its first
        start (`timefaults.give_clock`); `self.clocks[name].set(s)` makes it jump.
        `tls`: [tls] on, certificates made by `bazar certs` before the first start;
        `public`: the front-ends' own certificate and key (`public_cert`, `public_key`);
        `retention`: the [retention] table (docs/scale.md §5)."""
        self.root = root
        self.code = code  # the checkout whose `bazar` (and so whose nodes) run
        self.netns = netns  # `up --netns`: each node in a namespace of its own (root only)
        root.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "cluster.toml"
        counts = {"frontend": frontends, "catalog": catalogs, "order": orders, "recovery": 1}
        settings = {
            "health_period": 0.2,
            "sender_period": 0.2,
            "startup_grace": 3.0,
            "cache_ttl": 300.0,
            "threads": 8,
            **(tuning or {}),
        }
        self.config_path.write_text(_config_text(counts, settings, tls, public, retention))
        if tls:
            self.bazar("certs")
        self._use(load_cluster(self.config_path))
        self.clocks: dict[str, timefaults.WallClock] = {}
        for name, seconds in (clocks or {}).items():
            timefaults.give_clock(self, name, seconds)

    def _use(self, cluster: Cluster) -> None:
        """Talk to the nodes where this config puts them (namespace addresses after --netns)."""
        self.cluster = cluster
        self.api = Api(self.url_of(self.names("frontend")[0]), self.cluster.staff_token)
        # As the operator: the cluster CA verifies the nodes, the operator's certificate
        # opens mutual TLS (no-ops without [tls]).
        procs.trust(cluster)
        self.api.http.verify = self._customer_trust()
        self.internal = InternalClient(
            cluster.cluster_secret, cluster.tuning, tls=contexts.client_context(cluster)
        )

    def session(self) -> requests.Session:
        """A customer's session: no proxy; under [tls], what the front-ends show is
        verified (customers show no certificate)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self._customer_trust()
        return session

    def _customer_trust(self) -> bool | str:
        tls = self.cluster.tls
        if not tls.enabled:
            return True
        return str(tls.public_cert or tls.ca)  # a self-signed public certificate: itself

    # -- naming ---------------------------------------------------------------
    def names(self, service: str) -> list[str]:
        return [n.name for n in self.cluster.of(service)]

    def node(self, name: str):
        return self.cluster.node(name)

    def url_of(self, name: str) -> str:
        return self.cluster.node(name).url

    # -- operating ------------------------------------------------------------------
    def bazar(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "common.ops.cli", *args, "--config", str(self.config_path)]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,  # noqa: S603
            cwd=self.code,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"bazar {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{self.log_tails()}"
            )
        return result

    def up(self) -> LocalCluster:
        try:
            self.bazar("up", "--detach", "--timeout", "60", *(["--netns"] if self.netns else []))
        except BaseException:
            self.down()  # never leave half a cluster running behind a failed start
            raise
        if self.netns:
            self._use(load_cluster(netns.derived_config_path(self.cluster)))
        return self

    def down(self) -> None:
        self.bazar("down", check=False)
        if self.netns:
            self._use(load_cluster(self.config_path))

    def discard(self) -> None:
        """Tear down a cluster no test looks at any more: SIGKILL every node at once.

        A graceful `down` waits for requests in flight, up to gunicorn's graceful
        timeout (3 s, often all of it on an order server); nothing reads a cluster
        after its fixture ends, so fixtures end clusters this way. Tests of stopping
        itself (`down`, `stop`, Ctrl-C) still call those. A network-namespace cluster
        is then taken down by `bazar down`, which removes its namespaces (and finds no
        node left to stop).
        """
        nodes = self.cluster.nodes.values()
        running = {n: pid for n in nodes if (pid := procs.running_pid(self.cluster, n))}
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # the master and its worker: one group
        for node, pid in running.items():
            procs.wait_gone(pid, 5.0)
            procs.pid_file(self.cluster, node).unlink(missing_ok=True)
        if self.netns:
            self.down()  # the namespaces, the bridge, and a Prometheus if any
        else:
            monitor.stop(self.cluster)  # a Prometheus a test started with `up --monitor`

    def kill(self, name: str) -> None:
        self.bazar("kill", name)

    def stop(self, name: str) -> None:
        self.bazar("stop", name)

    def start(self, name: str, wait: bool = True) -> None:
        self.bazar("start", name)
        if wait:
            self.wait_state(name, "up")

    def state(self, name: str) -> str:
        return procs.health(self.node(name))[0]

    def role(self, name: str) -> str | None:
        return procs.health(self.node(name))[1].get("role")

    def wait_state(self, name: str, state: str = "up", timeout: float = 30.0) -> None:
        wait_until(lambda: self.state(name) == state, timeout, f"{name} to be {state}")

    def check(self) -> subprocess.CompletedProcess:
        return self.bazar("check", check=False)

    def wait_converged(self, timeout: float = 30.0) -> None:
        wait_until(lambda: self.check().returncode == 0, timeout, "replicas to converge")

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for path in sorted((self.cluster.data_dir / "logs").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    # -- looking inside ---------------------------------------------------------
    def rows(self, name: str, query: str) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.cluster.db_path(name)}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()

    def book_row(self, name: str, book_id: int) -> tuple:
        return self.rows(
            name,
            f"SELECT id, title, topic, cost, quantity, version FROM books "
            f"WHERE id = {int(book_id)}",
        )[0]

    def call(self, name: str, method: str, path: str, **kw) -> requests.Response:
        """A signed internal call, as another node would make it."""
        return self.internal.request(self.node(name), method, path, **kw)


class Reused:
    """One cluster that the tests of a module take in turn: each gets the cluster the
    test before it left, if that one left it whole (`whole`), else a new one. Cheaper
    than a new cluster per test (a start costs about 3 s of both cores); the tests
    write to books of their own and name nodes by their roles, since an earlier test
    may have moved the lease."""

    def __init__(self, make_root: Callable[[], Path], **options):
        self.make_root = make_root  # a new folder for each new cluster
        self.options = options  # for LocalCluster
        self.cluster: LocalCluster | None = None

    def take(self) -> LocalCluster:
        if self.cluster is not None and not whole(self.cluster):
            self.discard()
        if self.cluster is None:
            self.cluster = LocalCluster(self.make_root(), **self.options).up()
        return self.cluster

    def fresh(self) -> LocalCluster:
        """A new cluster (for a test that counts everything in it), the next one's to take."""
        self.discard()
        return self.take()

    def discard(self) -> None:
        if self.cluster is not None:
            self.cluster.discard()
            self.cluster = None


def whole(c: LocalCluster) -> bool:
    """Every node up, one catalog primary, replicas identical (`bazar check`)."""
    if not all(c.state(name) == "up" for name in c.cluster.nodes):
        return False
    if [c.role(name) for name in c.names("catalog")].count("primary") != 1:
        return False
    return c.check().returncode == 0


def _config_text(
    counts: dict[str, int],
    tuning: dict,
    tls: bool = False,
    public: tuple | None = None,
    retention: dict | None = None,
) -> str:
    scheme = "https" if tls else "http"
    own = [f'public_cert = "{public[0]}"', f'public_key = "{public[1]}"'] if public else []
    lines = [
        'data_dir = "var"',
        "",
        *(["[tls]", "enabled = true", *own, ""] if tls else []),
        "[auth]",
        f'staff_token = "{secrets.token_urlsafe(24)}"',
        f'cluster_secret = "{secrets.token_urlsafe(32)}"',
        "",
        "[tuning]",
    ]
    lines += [f"{key} = {value!r}" for key, value in tuning.items()]
    if retention:
        lines += ["", "[retention]", *(f"{key} = {value!r}" for key, value in retention.items())]
    voters = counts["catalog"] + counts["recovery"]
    ports = iter(free_ports(sum(counts.values()) + voters))
    for service, count in counts.items():
        for i in range(1, count + 1):
            lines += [
                "",
                f"[nodes.{service}-{i}]",
                f'service = "{service}"',
                f'url = "{scheme}://127.0.0.1:{next(ports)}"',
            ]
            if service in VOTERS:  # port + 1000 could be taken, or past 65535
                lines.append(f'raft = "127.0.0.1:{next(ports)}"')
    return "\n".join(lines) + "\n"
