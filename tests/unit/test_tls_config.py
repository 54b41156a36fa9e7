"""[tls] and the rotation keys of [auth] in the cluster config; `bazar certs`' files."""

from __future__ import annotations

import ssl
import stat

import pytest
from cryptography import x509

from common.auth import AuthError, SignatureVerifier, SignedAuth, check_bearer
from common.config import OPERATOR, ConfigError, load_cluster
from common.ops import netns
from common.tls import certs, contexts
from tests.support.configs import SECRETS, config_text, load_config

TLS = "[tls]\nenabled = true\n"


def https(text: str) -> str:
    return text.replace("http://", "https://")


def test_tls_is_off_by_default_and_an_https_url_then_names_its_node(tmp_path, monkeypatch):
    assert not load_config(tmp_path, monkeypatch, config_text()).tls.enabled
    with pytest.raises(ConfigError, match=r"nodes\.frontend-1\.url.*needs \[tls\]"):
        load_config(tmp_path, monkeypatch, https(config_text()))


def test_with_tls_every_url_is_https_and_an_http_one_is_named(tmp_path, monkeypatch):
    cluster = load_config(tmp_path, monkeypatch, https(config_text(tuning=TLS)))
    assert cluster.tls.enabled and cluster.tls.ca == cluster.data_dir / "tls" / "ca.pem"
    text = https(config_text(tuning=TLS)).replace("https://127.0.0.1:8201", "http://127.0.0.1:8201")
    with pytest.raises(ConfigError, match=r"nodes\.order-1\.url' must look like https://"):
        load_config(tmp_path, monkeypatch, text)


@pytest.mark.parametrize(
    "table, message",
    [
        ('enabled = "yes"', "'tls.enabled' must be true or false"),
        ('public_cert = "a.pem"', "go together"),
        ("ca = 1", "unknown key 'tls.ca'"),
    ],
)
def test_bad_tls_tables_are_named(tmp_path, monkeypatch, table, message):
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, monkeypatch, config_text(tuning=f"[tls]\n{table}\n"))


def test_accepted_secrets_are_taken_and_checked(tmp_path, monkeypatch):
    old = "old-secret-0123456789"
    auth = SECRETS + f'accepted_cluster_secrets = ["{old}"]\naccepted_staff_tokens = ["{old}"]\n'
    cluster = load_config(tmp_path, monkeypatch, config_text().replace(SECRETS, auth))
    assert cluster.cluster_secrets == ("cluster-secret-0123456789", old)
    assert cluster.staff_tokens == ("staff-token-0123456789", old)
    short = SECRETS + 'accepted_staff_tokens = ["short"]\n'
    with pytest.raises(ConfigError, match="accepted_staff_tokens' must be a list"):
        load_config(tmp_path, monkeypatch, config_text().replace(SECRETS, short))


def test_during_a_rotation_both_secrets_verify_and_no_other():
    import requests

    verifier = SignatureVerifier(("new-secret-0123456789", "old-secret-0123456789"))
    for secret in ("new-secret-0123456789", "old-secret-0123456789"):
        request = requests.Request("GET", "http://n/sync", auth=SignedAuth(secret)).prepare()
        verifier.verify("GET", "/sync", request.headers, b"")
    forged = requests.Request("GET", "http://n/sync", auth=SignedAuth("third-0123456789")).prepare()
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify("GET", "/sync", forged.headers, b"")
    check_bearer("Bearer old-token", ("new-token", "old-token"))
    with pytest.raises(AuthError, match="wrong"):
        check_bearer("Bearer other", ("new-token", "old-token"))


@pytest.fixture
def tls_cluster(tmp_path, monkeypatch):
    text = https(config_text(catalogs=2, tuning=TLS))
    return load_config(tmp_path, monkeypatch, text)


def test_certs_make_a_ca_and_a_private_key_and_named_certificate_per_node(tls_cluster):
    lines = certs.make(tls_cluster)
    tls = tls_cluster.tls
    assert len(lines) == 1 + len(tls_cluster.nodes) + 1  # CA, nodes, operator
    assert stat.S_IMODE(tls.directory.stat().st_mode) == 0o700
    for name in [*tls_cluster.nodes, OPERATOR, "ca"]:
        assert stat.S_IMODE(tls.key(name).stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(tls.cert("catalog-2").read_bytes())
    assert "127.0.0.1" in certs._names(cert)
    # Both sides of a mutual TLS handshake load what was written.
    contexts.client_context(tls_cluster, "catalog-1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca))
    server.load_cert_chain(str(tls.cert("catalog-1")), str(tls.key("catalog-1")))
    assert certs.make(tls_cluster) == []  # kept unless --force
    assert len(certs.make(tls_cluster, force=True)) == len(lines)


def test_a_ca_rotation_keeps_old_certificates_trusted_until_the_old_ca_goes(tls_cluster):
    certs.make(tls_cluster)
    tls = tls_cluster.tls
    before = tls.cert("order-1").read_bytes()
    assert len(certs.make(tls_cluster, new_ca=True)) == 1  # only the CA: leaves stay
    assert tls.cert("order-1").read_bytes() == before
    assert len(x509.load_pem_x509_certificates(tls.ca.read_bytes())) == 2
    certs.make(tls_cluster, renew=True)
    assert tls.cert("order-1").read_bytes() != before
    certs.drop_old_cas(tls_cluster)
    assert len(x509.load_pem_x509_certificates(tls.ca.read_bytes())) == 1
    assert certs.make(tls_cluster) == []  # the renewed leaves are the new CA's


def test_a_netns_address_gets_a_certificate_that_names_it(tls_cluster):
    certs.make(tls_cluster)
    layout = netns.Layout.of(tls_cluster)
    moved = load_cluster(netns.write_derived_config(tls_cluster, layout))
    assert moved.tls == tls_cluster.tls
    assert moved.node("catalog-1").url == f"https://{layout.address('catalog-1')}:8101"
    remade = certs.make(moved)
    assert len(remade) == len(moved.nodes)  # every node at a new address; the CA stays
    cert = x509.load_pem_x509_certificate(moved.tls.cert("catalog-1").read_bytes())
    assert str(layout.address("catalog-1")) in certs._names(cert)


def test_the_three_host_example_loads_with_tls_and_one_voter_per_host(monkeypatch):
    from pathlib import Path

    for name in ("BAZAR_STAFF_TOKEN", "BAZAR_CLUSTER_SECRET"):
        monkeypatch.setenv(name, f"{name.lower()}-0123456789abcdef")
    path = Path(__file__).resolve().parents[2] / "config" / "three-hosts.toml"
    cluster = load_cluster(path, make_secrets=False)
    assert cluster.tls.enabled
    hosts = {node.host for node in cluster.voters}
    assert len(hosts) == len(cluster.voters) == 3
