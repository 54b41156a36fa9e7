"""The `bazar` CLI as an operator uses it (design §3)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import load_cluster
from tests.support.cluster import ROOT, LocalCluster, wait_until


def bazar(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "common.ops.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.parametrize(
    "text, named",
    [
        ("data_dir = 'var'\n[nodes.a\n", "malformed TOML"),
        ("data_dir = 'var'\ncolour = 'red'\n", "'colour'"),
        (
            "data_dir = 'var'\n[nodes.c1]\nservice = 'catalog'\n"
            "url = 'http://127.0.0.1:1'\nport = 3\n",
            "'nodes.c1.port'",
        ),
        ("data_dir = 'var'\n[tuning]\nthreads = 'many'\n", "'tuning.threads'"),
    ],
)
def test_bad_config_is_one_clear_line_and_exit_2(tmp_path, text, named):
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    result = bazar("status", "--config", str(path))
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bazar_config_env_selects_the_file(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text("surprise = 1\n")
    result = bazar("status", env={"BAZAR_CONFIG": str(path), "PATH": ""})
    assert result.returncode == 2
    assert "'surprise'" in result.stderr


def test_status_json_reports_every_node(shared_cluster):
    rows = json.loads(shared_cluster.bazar("status", "--json").stdout)
    assert {r["node"] for r in rows} == set(shared_cluster.cluster.nodes)
    assert all(r["state"] == "up" and r["pid"] for r in rows)
    roles = {r["node"]: r.get("role") for r in rows}
    assert roles["catalog-1"] == "primary"
    assert roles["catalog-2"] == "backup"


def test_status_shows_the_lease_holder_its_epoch_and_each_voters_view(shared_cluster):
    text = shared_cluster.bazar("status").stdout
    assert "lease: catalog-1 holds epoch 1 (writing: catalog-1; all voters agree)" in text
    rows = json.loads(shared_cluster.bazar("status", "--json").stdout)
    views = {r["node"]: r["lease"] for r in rows if r["service"] in ("catalog", "recovery")}
    assert set(views) == {"catalog-1", "catalog-2", "recovery-1"}
    assert all(v["holder"] == "catalog-1" and v["epoch"] == 1 for v in views.values())


def test_check_passes_on_a_healthy_cluster(shared_cluster):
    result = shared_cluster.check()
    assert result.returncode == 0, result.stdout
    assert "replicas identical" in result.stdout


def test_stop_and_start_one_node(shared_cluster):
    c = shared_cluster
    assert "stopped order-2" in c.bazar("stop", "order-2").stdout
    assert c.state("order-2") == "down"
    c.start("order-2")
    assert c.state("order-2") == "up"


def copy_files(c: LocalCluster, root: Path) -> Path:
    """The config and a consistent copy of every replica's SQLite file, in `root`: a
    cluster that is not running (`bazar check` reads the files only)."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "cluster.toml"
    config.write_text(c.config_path.read_text())
    copy = load_cluster(config)
    copy.data_dir.mkdir(parents=True, exist_ok=True)
    for name in [*c.names("catalog"), *c.names("order")]:
        source = sqlite3.connect(f"file:{c.cluster.db_path(name)}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(copy.db_path(name))
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
    return config


def identical_copy_of(c: LocalCluster, root: Path) -> Path:
    """A copy of the shared cluster's files taken while they are identical: it stands for
    a stopped cluster (starting and stopping one of its own took seconds)."""

    def identical_copy():
        config = copy_files(c, root)
        result = bazar("check", "--config", str(config))
        books = re.search(r"^same   catalog books: (\d+) rows", result.stdout, re.MULTILINE)
        return config if result.returncode == 0 and books and int(books[1]) >= 7 else None

    return wait_until(identical_copy, 30, "a copy of identical replicas")


def test_check_fails_when_a_replica_differs(shared_cluster, tmp_path):
    config = identical_copy_of(shared_cluster, tmp_path / "c")
    conn = sqlite3.connect(load_cluster(config).db_path("catalog-2"))
    conn.execute("UPDATE books SET quantity = quantity + 1 WHERE id = 1")
    conn.commit()
    conn.close()
    result = bazar("check", "--config", str(config))
    assert result.returncode == 1
    assert "DIFFER catalog books" in result.stdout


def test_check_fails_when_every_replica_lacks_a_table_or_its_file(shared_cluster, tmp_path):
    config = identical_copy_of(shared_cluster, tmp_path / "c")
    copy = load_cluster(config)
    for name in shared_cluster.names("catalog"):  # identical, and not there at all
        conn = sqlite3.connect(copy.db_path(name))
        conn.execute("DROP TABLE book_keys")
        conn.commit()
        conn.close()
    copy.db_path("order-2").unlink()
    result = bazar("check", "--config", str(config))
    assert result.returncode == 1
    assert "replicas DIFFER" in result.stdout and "Traceback" not in result.stderr
    missing = [line for line in result.stdout.splitlines() if line.startswith("MISSING")]
    assert missing[0].startswith("MISSING catalog book_keys: unreadable on catalog-1")
    assert "no such table: book_keys" in missing[0]
    assert "MISSING order orders: unreadable on order-2 (no database file)" in missing
    assert "same   catalog books" in result.stdout  # the tables that are there are compared


def test_up_prints_urls_and_staff_token_and_down_stops_all(tmp_path):
    c = LocalCluster(tmp_path / "c")
    try:
        out = c.up_output = c.bazar("up", "--detach", "--timeout", "60").stdout
        assert c.cluster.staff_token in out
        assert c.url_of("frontend-1") in out
    finally:
        c.down()
    assert all(c.state(name) == "down" for name in c.cluster.nodes)
