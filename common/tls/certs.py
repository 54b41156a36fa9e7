"""`bazar certs`: the cluster CA, and a key and certificate per node and for the operator.

Files under `<data_dir>/tls/` (keys 0600, the folder 0700):

    ca.pem, ca.key          the cluster CA; ca.pem may hold older CAs after it (a rotation)
    <node>.pem, <node>.key  one per node: its url's and Raft address's host as names,
                            usable as server and as client (mutual TLS between nodes)
    operator.pem/.key       the operator tools' client certificate (status, check, Prometheus)

Existing files are kept; a node certificate is made again when it does not name the
node's current address (a `--netns` cluster runs at other addresses) or was not signed
by the current CA. Certificates are valid from a day before they are made: a node
whose wall clock is behind still accepts them (validity is the one place TLS reads the
wall clock).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.config import OPERATOR, Cluster, Node, Tls

CA_YEARS = 10
LEAF_DAYS = 825  # what browsers and most tools accept for a leaf
BACKDATE = datetime.timedelta(days=1)


def make(
    cluster: Cluster, *, force: bool = False, new_ca: bool = False, renew: bool = False
) -> list[str]:
    """Make what is missing (everything with `force`); return a line per file written.

    A CA rotation (docs/operations.md) is three steps, each followed by a rolling
    restart: `new_ca` makes a new CA and keeps the old ones after it in ca.pem, so every
    node learns to trust it while certificates stay as they are; `renew` signs every
    node's certificate again with the new CA; `drop_old_cas` ends it."""
    tls = cluster.tls
    tls.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(tls.directory, 0o700)
    done = []
    if force or new_ca or not (tls.ca.exists() and _ca_key_file(tls).exists()):
        kept = _read_bundle(tls.ca) if new_ca and tls.ca.exists() else []
        _write_ca(tls, cluster, kept)
        done.append(f"CA {tls.ca}" + (f" (old CAs kept after it: {len(kept)})" if kept else ""))
    bundle, ca_key = _read_bundle(tls.ca), _read_key(_ca_key_file(tls))
    for name, hosts, usages in _subjects(cluster):
        if force or renew or not _current(tls, name, hosts, bundle):
            _write_leaf(tls, name, hosts, usages, bundle[0], ca_key)
            done.append(f"{name}: {tls.cert(name)} ({', '.join(hosts) or 'client only'})")
    return done


def drop_old_cas(cluster: Cluster) -> list[str]:
    """End a CA rotation: ca.pem trusts only the current CA again."""
    bundle = _read_bundle(cluster.tls.ca)
    _write_public(cluster.tls.ca, _pem(bundle[0]))
    return [f"dropped {len(bundle) - 1} old CA(s) from {cluster.tls.ca}"]


def hosts_of(node: Node) -> list[str]:
    """The names a node's certificate carries: its url's host and its Raft host."""
    hosts = [node.host]
    if node.raft:
        hosts.append(node.raft.rpartition(":")[0])
    return list(dict.fromkeys(hosts))


def _subjects(cluster: Cluster) -> Iterator[tuple[str, list[str], list]]:
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for node in cluster.nodes.values():
        yield node.name, hosts_of(node), both
    yield OPERATOR, [], [ExtendedKeyUsageOID.CLIENT_AUTH]


def _ca_key_file(tls: Tls) -> Path:
    return tls.key("ca")


def _current(tls: Tls, name: str, hosts: list[str], bundle: list[x509.Certificate]) -> bool:
    """Whether the node's files exist, name all of `hosts` and were signed by a CA the
    cluster trusts."""
    if not (tls.cert(name).exists() and tls.key(name).exists()):
        return False
    cert = x509.load_pem_x509_certificate(tls.cert(name).read_bytes())
    return set(hosts) <= set(_names(cert)) and any(_signed_by(cert, ca) for ca in bundle)


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names(cert: x509.Certificate) -> list[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in sans.get_values_for_type(x509.DNSName)] + [
        str(v) for v in sans.get_values_for_type(x509.IPAddress)
    ]


def _write_ca(tls: Tls, cluster: Cluster, kept: list[x509.Certificate]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Bazar cluster CA {_now():%Y%m%d%H%M%S}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(cluster.data_dir)),
        ]
    )
    cert = (
        _builder(name, name, key.public_key(), datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(_ca_key_file(tls), key)
    _write_public(tls.ca, _pem(cert) + b"".join(_pem(c) for c in kept))


def _write_leaf(tls, name, hosts, usages, ca_cert, ca_key) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
        )
    _write_key(tls.key(name), key)
    _write_public(tls.cert(name), _pem(builder.sign(ca_key, hashes.SHA256())))


def _builder(subject, issuer, public_key, lifetime) -> x509.CertificateBuilder:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _read_bundle(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _read_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write(path, data, 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Whole or not at all, with its mode from the start (a key is never readable by others)."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
