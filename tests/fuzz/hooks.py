"""schemathesis hooks: valid credentials, so the fuzzer reaches the handlers.

Loaded by `schemathesis run` through SCHEMATHESIS_HOOKS; the cluster config
named by BAZAR_CONFIG gives the staff token and the cluster secret.

An internal call is signed over its exact bytes, which exist only once the
request is prepared, so signing is two steps: the auth provider marks the
case with a placeholder signature (schemathesis then knows the credentials
are explicit, and its auth probes can take them away), and a requests auth
hook swaps the placeholder for the real HMAC. A request whose signature
header was removed or replaced by the fuzzer goes out exactly as it was,
and must be refused.
"""

from __future__ import annotations

import os

import requests
import schemathesis

from common.auth import SIG_HEADER, SignedAuth
from common.config import load_cluster

PLACEHOLDER = "sign-me"
CLUSTER = load_cluster(os.environ["BAZAR_CONFIG"])


class SignPlaceholder(requests.auth.AuthBase):
    def __init__(self, secret: str):
        self.signed = SignedAuth(secret)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.headers.get(SIG_HEADER) == PLACEHOLDER:
            return self.signed(request)
        return request


@schemathesis.auth(refresh_interval=None, retry_on=[])
class BazarCredentials:
    """Staff bearer token or cluster signature, as the operation's `security` asks."""

    def get(self, case, context):
        rules = context.operation.definition.raw.get("security", [])
        return {scheme for rule in rules for scheme in rule}

    def set(self, case, data, context):
        case.headers = case.headers or {}
        if "staff" in data:
            case.headers["Authorization"] = f"Bearer {CLUSTER.staff_token}"
        if "cluster" in data:
            case.headers[SIG_HEADER] = PLACEHOLDER


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = SignPlaceholder(CLUSTER.cluster_secret)


# A catalog's PUT /snapshot takes a SQLite file: bytes, as application/octet-stream.
schemathesis.serializer.alias("application/vnd.sqlite3", "application/octet-stream")
