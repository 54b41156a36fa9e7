"""A cluster with [tls] on: HTTPS everywhere, mutual TLS between nodes (issue 21).

Real nodes on loopback; the test speaks to them as a customer (HTTPS, the cluster CA
verifies the front-end), as the operator (the `bazar` CLI with the operator's
certificate), and as strangers: plain HTTP, no client certificate, and a certificate
from another cluster's CA must all be refused by the inside nodes.
"""

from __future__ import annotations

import shutil
import uuid

import pytest
import requests

from common.config import OPERATOR, load_cluster
from common.ops import monitor
from common.tls import certs
from tests.support.cluster import LocalCluster, free_ports, wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("tls"), tls=True).up()
    yield cluster
    cluster.discard()


@pytest.fixture(scope="module")
def stranger(tmp_path_factory, cluster) -> tuple[str, str]:
    """The operator certificate of another cluster: same names, another CA."""
    other = tmp_path_factory.mktemp("other")
    text = cluster.config_path.read_text().replace('data_dir = "var"', f'data_dir = "{other}"')
    (other / "cluster.toml").write_text(text)
    elsewhere = load_cluster(other / "cluster.toml")
    certs.make(elsewhere)
    return str(elsewhere.tls.cert(OPERATOR)), str(elsewhere.tls.key(OPERATOR))


def plain(url: str) -> str:
    return url.replace("https://", "http://")


def test_every_node_serves_https(cluster):
    assert all(n.url.startswith("https://") for n in cluster.cluster.nodes.values())
    status = cluster.bazar("status", "--json").stdout
    assert status.count('"state": "up"') == len(cluster.cluster.nodes)


def test_customers_buy_and_staff_write_over_https(cluster):
    api = cluster.api
    assert api.search("distributed systems").status_code == 200
    before = api.lookup(1).json()["quantity"]
    bought = api.buy(1, key=str(uuid.uuid4()))
    assert bought.status_code == 201, bought.text
    assert api.set_price(1, 12.5).status_code == 200
    book = wait_until(lambda: (r := api.lookup(1).json())["cost"] == 12.5 and r, 10)
    assert book["quantity"] == before - 1


@pytest.mark.parametrize("service", ["frontend", "catalog", "order", "recovery"])
def test_plain_http_is_refused(cluster, service):
    node = cluster.cluster.of(service)[0]
    with pytest.raises(requests.ConnectionError):
        requests.get(plain(node.url) + "/health", timeout=5)


@pytest.mark.parametrize("service", ["catalog", "order", "recovery"])
def test_inside_nodes_refuse_a_client_without_a_certificate(cluster, service):
    node = cluster.cluster.of(service)[0]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(node.url + "/health", verify=str(cluster.cluster.tls.ca), timeout=5)


@pytest.mark.parametrize("service", ["catalog", "order", "recovery"])
def test_inside_nodes_refuse_a_certificate_from_another_ca(cluster, stranger, service):
    node = cluster.cluster.of(service)[0]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            node.url + "/health", verify=str(cluster.cluster.tls.ca), cert=stranger, timeout=5
        )


def test_the_front_end_asks_customers_for_no_certificate(cluster):
    answer = requests.get(
        cluster.api.url + "/health", verify=str(cluster.cluster.tls.ca), timeout=5
    )
    assert answer.status_code == 200


def test_check_and_report_work_over_mutual_tls(cluster):
    cluster.api.buy(2, key=str(uuid.uuid4()))
    wait_until(lambda: cluster.bazar("check", check=False).returncode == 0, 20, "replicas equal")
    assert "replicas identical" in cluster.bazar("check").stdout
    assert cluster.bazar("report", "--json").returncode == 0


def test_staff_verbs_work_over_https(cluster):
    """`bazar staff` and `bazar audit` reach the front-end over HTTPS; a sign-in too."""
    made = cluster.bazar("staff", "add", "tls-clerk", "--role", "clerk").stdout
    password = made.split("password: ", 1)[1].strip()
    signed = cluster.api.send("POST", "/login", json={"name": "tls-clerk", "password": password})
    assert signed.status_code == 200, signed.text
    assert '"staff-add"' in cluster.bazar("audit", "--staff", "admin", "--json").stdout


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not on PATH")
def test_import_works_over_https(cluster, tmp_path):
    """`bazar import` reaches the front-end over HTTPS, as the staff verbs do."""
    books = tmp_path / "books.csv"
    books.write_text("title,topic,cost,quantity\nOver TLS,secure,9.5,2\n", encoding="utf-8")
    assert cluster.bazar("import", str(books)).stdout.startswith("added 1, skipped 0, refused 0")
    assert cluster.bazar("import", str(books)).stdout.startswith("added 0, skipped 1, refused 0")


def test_prometheus_scrapes_every_node_with_the_operator_certificate(cluster):
    port = free_ports(1)[0]
    outcome = monitor.start(cluster.cluster, port)
    assert outcome.url, outcome.message
    session = requests.Session()
    session.trust_env = False

    def all_up():
        answer = session.get(f"{outcome.url}/api/v1/query", params={"query": "up"}, timeout=5)
        found = {r["metric"]["node"]: r["value"][1] for r in answer.json()["data"]["result"]}
        return found if all(found.get(n) == "1" for n in cluster.cluster.nodes) else None

    try:
        wait_until(all_up, 30, "up == 1 for every node over HTTPS")
    finally:
        monitor.stop(cluster.cluster)


def test_probe_asks_a_node_with_its_own_certificate(cluster):
    answer = cluster.bazar("probe", "catalog-1")
    assert answer.stdout.strip() == "catalog-1: up"


def self_signed(folder, name: str) -> tuple:
    """An operator's own certificate for the public side, as from another authority."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    paths = folder / "shop.pem", folder / "shop.key"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_the_front_end_can_show_the_operators_own_certificate(tmp_path):
    public = self_signed(tmp_path, "shop.test")
    shop = LocalCluster(tmp_path / "c", catalogs=1, orders=1, tls=True, public=public).up()
    try:
        session = shop.session()  # trusts shop.pem alone: the cluster CA is not asked
        assert session.verify == str(public[0])
        with pytest.raises(requests.exceptions.SSLError):  # not what the cluster CA signed
            requests.get(shop.api.url + "/health", verify=str(shop.cluster.tls.ca), timeout=5)
        assert shop.api.buy(3, key=str(uuid.uuid4())).status_code == 201
        # The catalog's read-lease grants reach the front-end: nodes verify its public
        # certificate on their calls to it.
        health = wait_until(
            lambda: (h := session.get(shop.api.url + "/health").json())["lease"]["valid"] and h,
            10,
            "a read lease granted over the public certificate",
        )
        assert health["status"] == "up"
    finally:
        shop.discard()
