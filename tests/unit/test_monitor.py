"""common/ops/monitor.py: the scrape config for a loopback and a --netns-style cluster
(promtool checks it when installed), the token file, and going on without the binary."""

import shutil
import stat
import subprocess

import pytest
import yaml

from common.ops import monitor
from tests.support.configs import config_text, load_config


def make(tmp_path, monkeypatch, host):
    return load_config(tmp_path, monkeypatch, config_text(host, catalogs=2))


def jobs(cluster):
    return {
        job["job_name"]: job
        for job in yaml.safe_load(monitor.scrape_config(cluster, "T"))["scrape_configs"]
    }


def test_loopback_cluster_one_job_per_service_node_labels_no_token(tmp_path, monkeypatch):
    cluster = make(tmp_path, monkeypatch, "127.0.0.1")
    config = yaml.safe_load(monitor.scrape_config(cluster, tmp_path / "t"))
    assert config["global"]["scrape_interval"] == "2s"
    found = jobs(cluster)
    assert list(found) == ["frontend", "catalog", "order", "recovery"]
    catalog = found["catalog"]
    assert catalog["metrics_path"] == "/metrics"
    assert catalog["static_configs"] == [
        {"targets": ["127.0.0.1:8101"], "labels": {"node": "catalog-1"}},
        {"targets": ["127.0.0.1:8102"], "labels": {"node": "catalog-2"}},
    ]
    assert not any("authorization" in job for job in found.values())


def test_netns_cluster_sends_the_token_from_a_0600_file_never_inline(tmp_path, monkeypatch):
    cluster = make(tmp_path, monkeypatch, "198.18.7.2")
    path = monitor.write_config(cluster)
    text = path.read_text()
    assert cluster.staff_token not in text
    token = monitor.token_file(cluster)
    assert token.read_text() == cluster.staff_token
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    for job in yaml.safe_load(text)["scrape_configs"]:
        assert job["authorization"] == {"type": "Bearer", "credentials_file": str(token)}


@pytest.mark.parametrize("host", ["127.0.0.1", "198.18.7.2"])
def test_promtool_accepts_the_config(tmp_path, monkeypatch, host):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian package prometheus)")
    cluster = make(tmp_path, monkeypatch, host)
    path = monitor.write_config(cluster)
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_binary_the_outcome_says_how_to_install(tmp_path, monkeypatch):
    cluster = make(tmp_path, monkeypatch, "127.0.0.1")
    monkeypatch.setattr(monitor.shutil, "which", lambda name: None)
    outcome = monitor.start(cluster, port=1)
    assert outcome.url is None
    assert "prometheus not found" in outcome.message
    assert "apt-get install prometheus" in outcome.message
    assert not monitor.pid_file(cluster).exists()


def test_stop_without_a_prometheus_is_false(tmp_path, monkeypatch):
    assert monitor.stop(make(tmp_path, monkeypatch, "127.0.0.1")) is False


def test_a_tls_cluster_is_scraped_over_https_with_the_operator_certificate(tmp_path, monkeypatch):
    from common.tls import certs

    text = config_text("198.18.7.2", catalogs=2, tuning="[tls]\nenabled = true\n")
    cluster = load_config(tmp_path, monkeypatch, text.replace("http://", "https://"))
    certs.make(cluster)
    path = monitor.write_config(cluster)
    for job in yaml.safe_load(path.read_text())["scrape_configs"]:
        assert job["scheme"] == "https"
        assert job["tls_config"] == {
            "ca_file": str(cluster.tls.ca),
            "cert_file": str(cluster.tls.cert("operator")),
            "key_file": str(cluster.tls.key("operator")),
        }
    if promtool := shutil.which("promtool"):
        result = subprocess.run(
            [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr
