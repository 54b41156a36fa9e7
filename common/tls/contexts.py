"""The SSL settings of each side of a call, from the cluster's [tls] table.

- A node serves HTTPS with its own certificate. Catalog, order and recovery nodes
  require a client certificate from the cluster CA (mutual TLS); the front-end's
  public side asks customers for none and may show the operator's certificate.
- A node calling another verifies it against the cluster CA and shows its own
  certificate. A front-end that shows the operator's certificate is verified against
  the system's trusted CAs (and that certificate itself, when it is self-signed).
- The signed-call HMAC stays on top: it names the calling node and stops replays.
"""

from __future__ import annotations

import ssl

from common.config import OPERATOR, Cluster, Node


def server_options(cluster: Cluster, node: Node) -> dict:
    """gunicorn's TLS settings for the node (none when TLS is off)."""
    tls = cluster.tls
    if not tls.enabled:
        return {}
    if node.service == "frontend":
        cert, key = _public_pair(cluster, node)
        return {"certfile": str(cert), "keyfile": str(key), "cert_reqs": ssl.CERT_NONE}
    return {
        "certfile": str(tls.cert(node.name)),
        "keyfile": str(tls.key(node.name)),
        "ca_certs": str(tls.ca),
        "cert_reqs": ssl.CERT_REQUIRED,
    }


def _public_pair(cluster: Cluster, node: Node):
    tls = cluster.tls
    if tls.public_cert and tls.public_key:
        return tls.public_cert, tls.public_key
    return tls.cert(node.name), tls.key(node.name)


def shows_public_cert(cluster: Cluster, node: Node) -> bool:
    """Whether callers must verify this node against public CAs, not the cluster's."""
    return node.service == "frontend" and cluster.tls.public_cert is not None


def client_context(cluster: Cluster, own: str = OPERATOR) -> ssl.SSLContext | None:
    """For calls to nodes under the cluster CA, showing `own`'s certificate."""
    tls = cluster.tls
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert(own)), str(tls.key(own)))
    return context


def public_context(cluster: Cluster) -> ssl.SSLContext | None:
    """For calls to front-ends that show the operator's certificate."""
    if not (cluster.tls.enabled and cluster.tls.public_cert):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:  # a self-signed public certificate is its own anchor; a CA-signed one is not
        context.load_verify_locations(str(cluster.tls.public_cert))
    except ssl.SSLError:
        pass
    context.load_verify_locations(str(cluster.tls.ca))
    return context
