"""`bazar deploy systemd|k8s --out DIR` (design §3): files for every node, checked
offline: the units by `systemd-analyze verify` (Debian systemd), the manifests
against Kubernetes' schemas (kubernetes-validate), and no secret in any of them."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from common.config import load_cluster
from common.ops.deploy import k8s
from tests.support.cluster import ROOT

SECRETS = {
    "BAZAR_STAFF_TOKEN": "staff-token-from-env-0123456789",
    "BAZAR_CLUSTER_SECRET": "cluster-secret-from-env-0123456789",
}
FILE_TOKEN = "staff-token-in-the-file-0123456789"
FILE_SECRET = "cluster-secret-in-the-file-0123456789"
K8S_VERSIONS = ("1.29.0", "1.37.0")  # the oldest still common and the newest the schemas know

THREE_CATALOGS = f"""
data_dir = "/var/lib/bazar"

[auth]
staff_token = "{FILE_TOKEN}"
cluster_secret = "{FILE_SECRET}"

[tuning]
cache_ttl = 30.0

[nodes.shop]
service = "frontend"
url = "http://10.0.0.1:80"

[nodes.catalog-a]
service = "catalog"
url = "http://10.0.0.2:8101"

[nodes.catalog-b]
service = "catalog"
url = "http://10.0.0.3:8101"

[nodes.catalog-c]
service = "catalog"
url = "http://10.0.0.4:8101"
raft = "10.0.0.4:7000"

[nodes.order-1]
service = "order"
url = "http://10.0.0.2:8201"

[nodes.recovery-1]
service = "recovery"
url = "http://10.0.0.5:8301"
"""

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not on PATH (Debian package systemd; make test installs it as root)",
)


def bazar(*args: str, code: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "common.ops.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **SECRETS},
    )
    assert result.returncode == code, result.stderr
    return result


@pytest.fixture
def three_catalogs(tmp_path) -> Path:
    path = tmp_path / "three.toml"
    path.write_text(THREE_CATALOGS)
    return path


@pytest.fixture(params=["default", "three"])
def config(request, three_catalogs) -> Path:
    return ROOT / "config" / "cluster.toml" if request.param == "default" else three_catalogs


def a_bazar_script() -> str:
    """An ExecStart that exists here (verify checks it): this venv's console script."""
    script = Path(sys.executable).parent / "bazar"
    return str(script if script.exists() else sys.executable)


def assert_no_secret(out: Path) -> None:
    for path in out.iterdir():
        text = path.read_text()
        for secret in (*SECRETS.values(), FILE_TOKEN, FILE_SECRET):
            assert secret not in text, f"{path.name} holds a secret"


# -- systemd ---------------------------------------------------------------------------


def test_systemd_writes_a_hardened_unit_per_node(tmp_path, config):
    out = tmp_path / "units"
    result = bazar("deploy", "systemd", "--out", str(out), "--config", str(config))
    cluster = load_cluster(config, make_secrets=False)
    units = sorted(p.name for p in out.glob("*.service"))
    assert units == sorted(f"bazar-{name}.service" for name in cluster.nodes)
    assert (out / "bazar.target").exists()
    assert result.stdout.count("wrote ") == len(list(out.iterdir()))
    for name in cluster.nodes:
        text = (out / f"bazar-{name}.service").read_text()
        settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line[:40])
        assert settings["ExecStart"] == (
            f"/opt/bazar/.venv/bin/bazar node {name} --config {cluster.path}"
        )
        assert settings["User"] == "bazar"
        assert settings["Restart"] == "on-failure"
        assert settings["NoNewPrivileges"] == "yes"
        assert settings["ProtectSystem"] == "strict"
        assert settings["ReadWritePaths"] == str(cluster.data_dir)
        assert settings["PrivateTmp"] == "yes"
        assert settings["EnvironmentFile"] == "/etc/bazar/secrets.env"
        assert settings["WantedBy"] == "bazar.target"
    assert_no_secret(out)


def test_systemd_options_and_where_the_config_will_live(tmp_path, three_catalogs):
    """--config-at moves the config (a relative data_dir moves with it); a port
    below 1024 gets the one capability that binds it; /var/lib is a StateDirectory."""
    relative = tmp_path / "relative.toml"
    relative.write_text(three_catalogs.read_text().replace('"/var/lib/bazar"', '"state"'))
    out = tmp_path / "units"
    bazar(
        "deploy", "systemd", "--out", str(out), "--config", str(relative),
        "--config-at", "/etc/bazar/cluster.toml", "--user", "shop", "--bazar", "/srv/b/bin/bazar",
    )  # fmt: skip
    shop = (out / "bazar-shop.service").read_text()
    assert "ExecStart=/srv/b/bin/bazar node shop --config /etc/bazar/cluster.toml\n" in shop
    assert "ReadWritePaths=/etc/bazar/state\n" in shop
    assert "User=shop\nGroup=shop\n" in shop
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE\n" in shop  # port 80
    catalog = (out / "bazar-catalog-a.service").read_text()
    assert "CapabilityBoundingSet=\n" in catalog and "AmbientCapabilities" not in catalog

    out = tmp_path / "var-lib"
    bazar("deploy", "systemd", "--out", str(out), "--config", str(three_catalogs))
    assert "StateDirectory=bazar\n" in (out / "bazar-order-1.service").read_text()


@pytest.mark.parametrize(
    "option, named",
    [
        (("k8s", "--namespace", "Shop_NS"), "--namespace"),
        (("systemd", "--user", "r00t;"), "--user"),
    ],
)
def test_a_bad_option_is_one_clear_error(tmp_path, option, named):
    result = bazar("deploy", *option, "--out", str(tmp_path / "out"), code=2)
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@needs_systemd_analyze
def test_a_node_name_systemd_would_misread_is_escaped(tmp_path, three_catalogs):
    odd = tmp_path / "odd.toml"
    odd.write_text(three_catalogs.read_text().replace("[nodes.order-1]", '[nodes."order 1%"]'))
    out = tmp_path / "units"
    bazar("deploy", "systemd", "--out", str(out), "--config", str(odd), "--bazar",
          a_bazar_script())  # fmt: skip
    unit = out / "bazar-order\\x201\\x25.service"
    assert f' node "order 1%%" --config {odd}\n' in unit.read_text()
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@needs_systemd_analyze
def test_systemd_analyze_verify_passes(tmp_path, config):
    out = tmp_path / "units"
    bazar("deploy", "systemd", "--out", str(out), "--config", str(config), "--bazar",
          a_bazar_script())  # fmt: skip
    units = sorted(str(p) for p in out.glob("bazar*.*"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The sandbox as systemd rates it (0 best, 10 worst): well inside "OK".
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=30", units[0]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-400:] + result.stderr


# -- Kubernetes ------------------------------------------------------------------------


def manifests(out: Path) -> list[dict]:
    return [
        doc for path in sorted(out.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
    ]


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_k8s_manifests_validate_and_hold_no_secret(tmp_path, config):
    out = tmp_path / "k8s"
    bazar("deploy", "k8s", "--out", str(out), "--config", str(config), "--image", "me/bazar:1")
    docs = manifests(out)
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    assert_no_secret(out)
    cluster = load_cluster(config, make_secrets=False)
    sets = of_kind(docs, "StatefulSet")
    services = of_kind(docs, "Service")
    for service in ("frontend", "catalog", "order", "recovery"):
        spec = sets[service]["spec"]
        assert spec["replicas"] == len(cluster.of(service))
        assert spec["serviceName"] == service
        assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        pod = spec["template"]["spec"]
        (node,) = pod["containers"]
        assert node["image"] == "me/bazar:1"
        assert node["readinessProbe"]["httpGet"]["path"] == "/health"
        assert "tcpSocket" in node["livenessProbe"]  # a recovering node's 503 must not kill it
        assert {"name": "data", "mountPath": "/var/lib/bazar"} in node["volumeMounts"]
        refs = {e["name"]: e["valueFrom"] for e in node["env"] if "valueFrom" in e}
        assert refs["BAZAR_STAFF_TOKEN"]["secretKeyRef"]["name"] == "bazar-secrets"
        assert refs["BAZAR_CLUSTER_SECRET"]["secretKeyRef"]["name"] == "bazar-secrets"
        assert services[service]["spec"]["clusterIP"] == "None"
    assert services["bazar-public"]["spec"]["type"] == "LoadBalancer"
    voters = of_kind(docs, "PodDisruptionBudget")["bazar-voters"]["spec"]  # one vote at a time
    assert voters["maxUnavailable"] == 1
    assert voters["selector"]["matchExpressions"][0]["values"] == ["catalog", "recovery"]
    assert (
        of_kind(docs, "ConfigMap")["bazar-config"]["data"]["cluster.toml"]
        == (out / "cluster.toml").read_text()
    )


def test_k8s_config_names_nodes_after_their_pods(tmp_path, three_catalogs):
    out = tmp_path / "k8s"
    bazar(
        "deploy", "k8s", "--out", str(out), "--config", str(three_catalogs), "--namespace", "shop"
    )
    raw = tomllib.loads((out / "cluster.toml").read_text())
    assert "auth" not in raw
    assert raw["tuning"] == {"cache_ttl": 30.0}
    assert list(raw["nodes"]) == [
        "frontend-0", "catalog-0", "catalog-1", "catalog-2", "order-0", "recovery-0",
    ]  # fmt: skip
    assert raw["nodes"]["catalog-2"] == {
        "service": "catalog",
        "url": "http://catalog-2.catalog.shop.svc.cluster.local:8101",
        "raft": "catalog-2.catalog.shop.svc.cluster.local:9101",  # the service's one Raft port
    }
    os.environ.update(SECRETS)  # as the pods get them
    try:
        pods = load_cluster(out / "cluster.toml")
    finally:
        for key in SECRETS:
            os.environ.pop(key)
    assert pods.data_dir == Path("/var/lib/bazar")
    assert pods.seed_file.read_text() == load_cluster(three_catalogs).seed_file.read_text()
    frontend = of_kind(manifests(out), "StatefulSet")["frontend"]
    (node,) = frontend["spec"]["template"]["spec"]["containers"]
    assert node["args"] == ["node", "$(POD_NAME)", "--config", "/etc/bazar/cluster.toml"]
    assert node["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]  # port 80


def with_tls(cluster):
    """The same cluster with [tls] enabled."""
    return dataclasses.replace(cluster, tls=dataclasses.replace(cluster.tls, enabled=True))


def test_k8s_with_tls_probes_https_and_mounts_each_service_s_certificates():
    cluster = with_tls(load_cluster(ROOT / "config" / "cluster.toml", make_secrets=False))
    files = k8s.render(cluster, k8s.Options())
    docs = [doc for name, text in files.items() if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text)]  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    catalog = of_kind(docs, "StatefulSet")["catalog"]["spec"]["template"]["spec"]
    (node,) = catalog["containers"]
    # The kubelet has no client certificate: inside nodes are probed with their own.
    assert node["readinessProbe"]["exec"]["command"][1:3] == ["probe", "$(POD_NAME)"]
    front = of_kind(docs, "StatefulSet")["frontend"]["spec"]["template"]["spec"]["containers"][0]
    assert front["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert {"name": "tls", "mountPath": "/var/lib/bazar/tls", "readOnly": True} in node[
        "volumeMounts"
    ]
    secrets = [v["secret"]["secretName"] for v in catalog["volumes"] if "secret" in v]
    assert secrets == ["bazar-tls-catalog"]
    assert "https://catalog-1.catalog.bazar.svc.cluster.local:8101" in files["cluster.toml"]
    assert of_kind(docs, "Service")["bazar-public"]["spec"]["ports"][0]["port"] == 443
