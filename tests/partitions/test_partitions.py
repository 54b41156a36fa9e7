"""Network partitions (design §3): `bazar up --netns`, `partition`, `heal`, `down`.

Every node runs in a network namespace of its own on a private bridge; a cut
is nftables drop rules inside the namespaces. Reachability is checked with a
plain TCP connect run inside a node's namespace, so these tests rely on
nothing but /health answering and TCP, not on roles; but for one, which is about
what a cut does to a write the front-end gave up on.
"""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.config import load_cluster
from common.ops import hostnet, netns, procs
from tests.partitions import leftovers
from tests.support.cluster import ROOT, LocalCluster, wait_until

WHY_NOT = hostnet.missing_requirement()
if WHY_NOT:
    pytest.skip(f"bazar up --netns {WHY_NOT}", allow_module_level=True)

CONNECT = (
    "import socket, sys; "
    "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))"
)


@pytest.fixture(scope="module", autouse=True)
def no_leftovers():
    """Remove what earlier crashed runs left on this host (never another run's live cluster)."""
    leftovers.clear()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("netns"), catalogs=2, orders=1, netns=True).up()
    yield c
    c.discard()


@pytest.fixture
def healed(cluster):
    yield cluster
    cluster.bazar("heal")


def layout_of(c: LocalCluster) -> netns.Layout:
    return netns.Layout.of(c.cluster)


def reaches(c: LocalCluster, source: str, target: str, timeout: float = 0.5) -> bool:
    """Whether `source`'s namespace can open a TCP connection to `target`'s url."""
    node = c.node(target)
    command = [
        *hostnet.exec_prefix(layout_of(c).namespace(source)),
        sys.executable,
        "-c",
        CONNECT,
        node.host,
        str(node.port),
        str(timeout),
    ]
    return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


def host_reaches(c: LocalCluster, target: str) -> bool:
    node = c.node(target)
    try:
        socket.create_connection((node.host, node.port), timeout=0.5).close()
    except OSError:
        return False
    return True


def namespace_of(pid: int) -> str:
    return hostnet.run("ip", "netns", "identify", str(pid)).stdout.strip()


def ours_on_host(cid: str) -> list[str]:
    """Every namespace and link of cluster `cid` still on the host."""
    layout = netns.Layout(cid)
    return [n for n in hostnet.namespaces() if layout.owns_namespace(n)] + [
        n for n in hostnet.links() if layout.owns_link(n)
    ]


def node_pids(c: LocalCluster) -> list[int]:
    return [p for n in c.cluster.nodes.values() if (p := procs.running_pid(c.cluster, n))]


# -- the running cluster ----------------------------------------------------------------------


def test_every_node_answers_at_its_namespace_address(cluster):
    layout = layout_of(cluster)
    assert str(layout.subnet).startswith("198.1") and layout.subnet.subnet_of(netns.NETWORK)
    for index, node in enumerate(cluster.cluster.nodes.values()):
        assert node.host == str(layout.subnet[2 + index])
        assert procs.health(node)[0] == "up"
        assert namespace_of(procs.running_pid(cluster.cluster, node)) == layout.namespace(node.name)
    for voter in cluster.cluster.voters:
        assert voter.raft.startswith(f"{voter.host}:")
    assert reaches(cluster, "order-1", "catalog-1") and reaches(cluster, "catalog-2", "order-1")
    derived = netns.derived_config_path(cluster.cluster)
    assert stat.S_IMODE(derived.stat().st_mode) == 0o600
    assert cluster.cluster.data_dir == load_cluster(cluster.config_path).data_dir


def test_isolate_cuts_one_node_off_and_heal_restores_it(healed):
    c = healed
    out = c.bazar("partition", "--isolate", "catalog-1").stdout
    assert "cut: catalog-1 <-> frontend-1, catalog-2, order-1, recovery-1" in out
    assert not reaches(c, "order-1", "catalog-1")
    assert not reaches(c, "catalog-1", "order-1")
    assert host_reaches(c, "catalog-1") and c.state("catalog-1") != "down"  # /health answers
    assert "every link restored" in c.bazar("heal").stdout
    assert reaches(c, "order-1", "catalog-1") and reaches(c, "catalog-1", "order-1")


def test_groups_cut_both_ways_and_spare_unlisted_nodes(healed):
    c = healed
    out = c.bazar("partition", "catalog-1", "catalog-2").stdout
    assert "still linked to every node: frontend-1, order-1, recovery-1" in out
    assert not reaches(c, "catalog-1", "catalog-2") and not reaches(c, "catalog-2", "catalog-1")
    for catalog in ("catalog-1", "catalog-2"):
        assert reaches(c, "order-1", catalog) and reaches(c, catalog, "order-1")
    c.bazar("partition", "--isolate", "order-1")  # replaces the cut set, not adds to it
    assert reaches(c, "catalog-1", "catalog-2")
    assert not reaches(c, "catalog-1", "order-1")


@pytest.mark.parametrize(
    "args, says",
    [
        (["nobody", "catalog-1"], "no node named 'nobody'"),
        (["catalog-1,order-1", "order-1"], "one group only: order-1"),
        (["catalog-1,order-1"], "at least two groups"),
        ([], "at least two groups"),
        (["catalog-1", "--isolate", "order-1"], "not both"),
    ],
)
def test_partition_refuses_groups_that_make_no_sense(cluster, args, says):
    result = cluster.bazar("partition", *args, check=False)
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_status_kill_and_start_act_inside_the_namespaces(cluster):
    def all_up():  # the tests before cut links: a catalog may still be regaining a lease
        rows = json.loads(cluster.bazar("status", "--json").stdout)
        return rows if all(r["state"] == "up" for r in rows) else None

    rows = wait_until(all_up, 20, "every node up after the last heal")
    assert {r["url"] for r in rows} == {n.url for n in cluster.cluster.nodes.values()}
    cluster.kill("order-1")
    assert cluster.state("order-1") == "down"
    cluster.start("order-1")
    pid = procs.running_pid(cluster.cluster, cluster.node("order-1"))
    assert namespace_of(pid) == layout_of(cluster).namespace("order-1")


# -- a call given up on ------------------------------------------------------------------


def test_a_write_answered_503_does_not_land_when_the_link_heals(healed):
    """The front-end cut off from the primary answers a price write 503. The request it
    had sent on a kept-alive connection must not reach the primary once the link heals,
    seconds later and over newer writes: TCP retransmits a request left in the kernel's
    send queue for minutes (common.connections.ABORT_ON_CLOSE). Seen in the partition
    suite as a stale read: a price answered 503 came back 6.6 s later."""
    c, book = healed, 5
    primary = wait_until(
        lambda: next((n for n in c.names("catalog") if c.role(n) == "primary"), None),
        30,
        "a catalog primary",
    )
    # Kept-alive connections from the front-end to the primary, more than its health
    # checks take at a time, so the write given up on goes out on one of them.
    with ThreadPoolExecutor(4) as pool:
        codes = pool.map(lambda price: c.api.set_price(book, price).status_code, (41, 42, 43, 44))
    assert list(codes) == [200] * 4
    assert c.api.set_price(book, 45.0).status_code == 200
    c.bazar("partition", "frontend-1", primary)
    assert c.api.set_price(book, 13.0).status_code == 503
    c.bazar("heal")
    seen = _prices_read(c, book, seconds=10.0)  # retransmissions back off: 3.2 s, 6.4 s
    assert 13.0 not in seen
    assert seen and seen[-1] == 45.0


def _prices_read(c: LocalCluster, book: int, seconds: float) -> list[float]:
    """Every price a fresh read (no cache) of `book` answered over `seconds`."""
    prices, until = [], time.monotonic() + seconds
    while time.monotonic() < until:
        answer = c.api.get(f"/lookup/{book}", headers={"Cache-Control": "no-cache"})
        if answer.status_code == 200:
            prices.append(answer.json()["cost"])
        time.sleep(0.2)
    return prices


# -- down ---------------------------------------------------------------------------------


def small(tmp_path) -> LocalCluster:
    return LocalCluster(tmp_path / "c", catalogs=1, orders=1, netns=True)


def test_down_leaves_nothing_and_can_run_again(tmp_path):
    c = small(tmp_path).up()
    cid, pids = layout_of(c).cid, node_pids(c)
    assert len(ours_on_host(cid)) == 9  # 4 namespaces, 4 host-side veths, the bridge
    c.down()
    assert ours_on_host(cid) == []
    assert not netns.netns_dir(c.cluster).exists()
    assert not any(procs._alive(pid) for pid in pids)
    again = c.bazar("down")
    assert again.returncode == 0 and "removed" not in again.stdout


def test_down_cleans_up_without_the_state_file(tmp_path):
    c = small(tmp_path).up()
    cid, pids = layout_of(c).cid, node_pids(c)
    netns.state_path(c.cluster).unlink()
    c.down()
    assert ours_on_host(cid) == []
    assert not any(procs._alive(pid) for pid in pids)


def test_down_cleans_up_after_up_was_killed_midway(tmp_path):
    c = small(tmp_path)
    cid = netns.Layout.of(c.cluster).cid
    command = [sys.executable, "-m", "common.ops.cli", "up", "--netns", "--detach"]
    up = subprocess.Popen(  # noqa: S603
        [*command, "--config", str(c.config_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = wait_until(lambda: _processes_in(cid), 30, "a node started in a namespace")
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    c.down()
    assert ours_on_host(cid) == []
    assert not any(procs._alive(pid) for pid in started)


def _processes_in(cid: str) -> list[int]:
    layout = netns.Layout(cid)
    pids = []
    for namespace in (n for n in hostnet.namespaces() if layout.owns_namespace(n)):
        listed = hostnet.run("ip", "netns", "pids", namespace, check=False).stdout.split()
        pids += [int(p) for p in listed]
    return pids


def test_up_refuses_a_subnet_another_interface_uses(tmp_path):
    c = small(tmp_path)
    layout = netns.Layout.of(c.cluster)
    other = f"{netns.LINK_PREFIX}{(int(layout.cid, 16) + 512) % 65536:04x}"  # same /24, not ours
    hostnet.run("ip", "link", "add", other, "type", "bridge")
    try:
        hostnet.run("ip", "addr", "add", f"{layout.subnet[200]}/24", "dev", other)
        result = c.bazar("up", "--netns", "--detach", check=False)
        assert result.returncode == 2
        assert f"already used by {other}" in result.stderr
        assert ours_on_host(layout.cid) == []
    finally:
        hostnet.run("ip", "link", "del", other, check=False)
