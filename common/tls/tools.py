"""HTTPS for the operator tools' requests session (`bazar status`, `check`, `report`,
tests): the cluster CA verifies the nodes, the operator's certificate opens mutual TLS.
Kept apart from common.tls.contexts: only tools import requests, never a node."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from common.config import OPERATOR, Cluster
from common.tls.contexts import shows_public_cert


class ClusterTls(HTTPAdapter):
    """An adapter that verifies with `verify` and shows `cert` on every request."""

    def __init__(self, verify: bool | str, cert: tuple[str, str]):
        super().__init__()
        self.tls = {"verify": verify, "cert": cert}

    def send(self, request, **kwargs):
        return super().send(request, **{**kwargs, **self.tls})


def mount(session: requests.Session, cluster: Cluster, own: str = OPERATOR) -> None:
    """Mount an adapter per node url, so clusters with and without TLS share a session;
    every request shows `own`'s certificate."""
    tls = cluster.tls
    operator = (str(tls.cert(own)), str(tls.key(own)))
    for node in cluster.nodes.values():
        public = shows_public_cert(cluster, node)  # the system's CAs verify the operator's own
        session.mount(node.url + "/", ClusterTls(True if public else str(tls.ca), operator))
