"""common/ops/netns.py, hostnet.py and partition.py: names, addresses, the derived config,
the preconditions and the partition groups, without root (no namespace is made here)."""

import ipaddress
import stat

import pytest

from common.config import load_cluster
from common.ops import cli, hostnet, netns, partition
from common.ops.hostnet import NetnsError
from tests.support.configs import config_text, load_config

CONFIG = config_text(
    catalogs=2,
    extra={"catalog-2": 'raft = "127.0.0.1:9999"'},
    tuning="\n[tuning]\nhealth_period = 0.2\n",
)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    return load_config(tmp_path, monkeypatch, CONFIG)


def test_layout_names_fit_linux_limits_and_carry_the_prefix(cluster):
    layout = netns.Layout.of(cluster)
    assert layout == netns.Layout.of(cluster)  # stable for one data_dir
    assert len(layout.cid) == 4 and int(layout.cid, 16) >= 0
    assert layout.bridge == f"bzr{layout.cid}"
    assert all(len(layout.veth(n)) <= 15 for n in layout.nodes)
    assert layout.namespace("catalog-1") == f"bazar-{layout.cid}-catalog-1"
    assert layout.owns_link(layout.bridge) and layout.owns_link(layout.veth("order-1"))
    assert not layout.owns_link("eth0") and not layout.owns_link(f"bzr{layout.cid}x")
    assert layout.owns_namespace(layout.namespace("order-1"))


def test_every_address_is_in_198_18_0_0_15_and_follows_config_order(cluster):
    layout = netns.Layout.of(cluster)
    assert layout.subnet.prefixlen == 24
    assert layout.subnet.subnet_of(ipaddress.IPv4Network("198.18.0.0/15"))
    assert layout.host_address == layout.subnet[1]
    assert [layout.address(n) for n in layout.nodes] == [layout.subnet[i] for i in range(2, 7)]
    last = netns.Layout("ffff", ("a",))
    assert last.subnet == ipaddress.IPv4Network("198.19.255.0/24")


def test_derived_config_moves_nodes_and_keeps_the_rest(cluster):
    layout = netns.Layout.of(cluster)
    path = netns.write_derived_config(cluster, layout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    derived = load_cluster(path)
    assert derived.data_dir == cluster.data_dir and derived.seed_file == cluster.seed_file
    assert derived.staff_token == cluster.staff_token and derived.tuning == cluster.tuning
    for name, node in derived.nodes.items():
        assert node.host == str(layout.address(name)) and node.port == cluster.node(name).port
    assert derived.node("catalog-1").raft == f"{layout.address('catalog-1')}:9101"
    assert derived.node("catalog-2").raft == f"{layout.address('catalog-2')}:9999"
    assert derived.node("order-1").raft is None


def test_effective_is_the_derived_cluster_only_while_the_state_file_exists(cluster):
    assert netns.effective(cluster) is cluster
    netns.write_derived_config(cluster, netns.Layout.of(cluster))
    netns.write_state(cluster, {})
    moved = netns.effective(cluster)
    assert moved.path == netns.derived_config_path(cluster)
    assert netns.effective(moved) is moved
    netns.derived_config_path(cluster).write_text("nodes = 'broken by hand'\n")
    assert netns.effective(cluster) is cluster  # so `down` still finds the pid files
    netns.state_path(cluster).unlink()
    assert netns.effective(cluster) is cluster


def test_missing_requirement_names_root_then_each_tool(monkeypatch):
    monkeypatch.setattr(hostnet.os, "geteuid", lambda: 1000)
    assert "root" in hostnet.missing_requirement()
    monkeypatch.setattr(hostnet.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hostnet, "tool", lambda name: None if name == "nft" else "/usr/sbin/ip")
    assert "install nftables" in hostnet.missing_requirement()
    monkeypatch.setattr(hostnet, "tool", lambda name: None)
    assert "install iproute2" in hostnet.missing_requirement()


def test_up_netns_without_root_is_one_line_and_exit_2(cluster, monkeypatch, capsys):
    monkeypatch.setattr(hostnet.os, "geteuid", lambda: 1000)
    assert cli.main(["up", "--netns", "--detach", "--config", str(cluster.path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bazar: up: needs root") and len(err.strip().splitlines()) == 1
    assert not netns.active(cluster)


def test_partition_on_a_cluster_without_netns_is_exit_2(cluster, capsys):
    assert cli.main(["partition", "catalog-1", "catalog-2", "--config", str(cluster.path)]) == 2
    assert "not started with `bazar up --netns`" in capsys.readouterr().err
    assert cli.main(["heal", "--config", str(cluster.path)]) == 2


@pytest.mark.parametrize(
    "specs, isolate, says",
    [
        (["catalog-1", "nobody,order-1"], None, "no node named 'nobody'"),
        (["catalog-1,"], None, "no node named ''"),
        (["catalog-1,order-1", "order-1"], None, "one group only"),
        (["catalog-1"], None, "at least two groups"),
        ([], None, "at least two groups"),
        ([], "nobody", "no node named 'nobody'"),
        (["catalog-1"], "order-1", "not both"),
    ],
)
def test_groups_that_make_no_sense_are_refused(cluster, specs, isolate, says):
    with pytest.raises(NetnsError, match=says):
        partition.parse_groups(cluster, specs, isolate)


def test_isolate_is_one_node_against_all_others(cluster):
    groups = partition.parse_groups(cluster, [], "catalog-1")
    assert groups == [["catalog-1"], ["frontend-1", "catalog-2", "order-1", "recovery-1"]]


def test_cuts_go_both_ways_and_leave_unlisted_nodes_alone(cluster):
    groups = partition.parse_groups(cluster, ["catalog-1,order-1", "catalog-2"], None)
    blocked = partition.cuts(groups)
    assert blocked == {
        "catalog-1": ["catalog-2"],
        "order-1": ["catalog-2"],
        "catalog-2": ["catalog-1", "order-1"],
    }
    lines = partition.describe(groups, list(cluster.nodes))
    assert "cut: catalog-1, order-1 <-> catalog-2" in lines
    assert "still linked to every node: frontend-1, recovery-1" in lines


def test_ruleset_drops_both_directions_or_only_removes_the_table():
    rules = partition.ruleset(["198.18.7.3", "198.18.7.4"])
    assert "ip saddr { 198.18.7.3, 198.18.7.4 } drop" in rules
    assert "ip daddr { 198.18.7.3, 198.18.7.4 } drop" in rules
    assert "reject" not in rules
    assert partition.ruleset([]) == "table inet bazar\ndelete table inet bazar\n"
