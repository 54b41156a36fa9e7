"""A node's own environment: `<data_dir>/env/<node>.env`, read by `procs.start`."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from common.ops import procs

CLUSTER_AT = SimpleNamespace  # procs needs only data_dir of a cluster and name of a node


def test_the_env_file_gives_variables_and_skips_the_rest(tmp_path):
    cluster, node = CLUSTER_AT(data_dir=tmp_path), SimpleNamespace(name="catalog-2")
    assert procs.node_env(cluster, node) == {}  # no file: nothing of its own
    path = procs.env_file(cluster, node)
    path.parent.mkdir()
    path.write_text("# a comment\nLD_PRELOAD=/x/y.so\n\nnot a pair\nA=b=c\n")
    assert procs.node_env(cluster, node) == {"LD_PRELOAD": "/x/y.so", "A": "b=c"}


def test_spawn_puts_the_env_over_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("BAZAR_TEST_KEPT", "ours")
    monkeypatch.setenv("BAZAR_TEST_OVER", "ours")
    log, pid_path = tmp_path / "out.log", tmp_path / "p.pid"
    script = "import os; print(os.environ['BAZAR_TEST_KEPT'], os.environ['BAZAR_TEST_OVER'])"
    pid = procs.spawn([sys.executable, "-c", script], log, pid_path, {"BAZAR_TEST_OVER": "its"})
    assert procs.wait_gone(pid, 10)
    assert log.read_text().split() == ["ours", "its"]
