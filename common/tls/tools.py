"""HTTPS for the operator tools' requests session (`bazar status`, `check`, `report`,
tests): the same SSL contexts the nodes use (common.tls.contexts), so a tool trusts
what a node trusts and shows a certificate of the cluster. Kept apart from contexts:
only tools import requests, never a node."""

from __future__ import annotations

import ssl

import requests
from requests.adapters import HTTPAdapter

from common.config import OPERATOR, Cluster
from common.tls import contexts


class ContextAdapter(HTTPAdapter):
    """An adapter whose connections all use one SSL context (trust and certificate)."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **{**kwargs, "ssl_context": self.context})

    def send(self, request, **kwargs):
        # verify=True and no cert: requests then leaves the context's own settings alone.
        return super().send(request, **{**kwargs, "verify": True, "cert": None})


def mount(session: requests.Session, cluster: Cluster, own: str = OPERATOR) -> None:
    """Mount an adapter per node url, so clusters with and without TLS share a session;
    every request to an inside node shows `own`'s certificate."""
    inside = ContextAdapter(contexts.client_context(cluster, own))
    public = contexts.public_context(cluster)
    for node in cluster.nodes.values():
        shows_own = contexts.shows_public_cert(cluster, node)
        session.mount(node.url + "/", ContextAdapter(public) if shows_own else inside)
