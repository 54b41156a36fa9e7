"""Staff accounts, sign-in and the audit trail, for tests (docs/staff.md).

`Staff` speaks to one front-end: it makes accounts as `admin` (the cluster's staff
token), signs in, and reads the trail. A session can come from another loopback
address (`from_address`), so each lockout test counts its wrong passwords against an
address of its own. `forge` signs tokens as an attacker (or the cluster) would, with
PyJWT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid

import jwt
import requests
from requests.adapters import HTTPAdapter

from tests.support.cluster import Api, LocalCluster

MANAGER_ONLY = "this needs the manager role (you are a clerk)"
WRONG = "wrong name or password"


def with_staff_settings(cluster: LocalCluster, **settings) -> LocalCluster:
    """Add a [staff] table to a cluster's config before its first start."""
    lines = ["", "[staff]", *(f"{key} = {value!r}" for key, value in settings.items())]
    with cluster.config_path.open("a") as config:
        config.write("\n".join(lines) + "\n")
    return cluster


def signing_key(cluster_secret: str) -> bytes:
    """The sign-in tokens' key: HMAC-SHA256(cluster secret, "bazar staff tokens v1")."""
    return hmac.new(cluster_secret.encode(), b"bazar staff tokens v1", hashlib.sha256).digest()


def claims(name: str, role: str, **changes) -> dict:
    now = int(time.time())
    base = {"sub": name, "role": role, "iss": "bazar", "iat": now, "nbf": now, "exp": now + 600}
    return {**base, **changes}


def forge(payload: dict, key, algorithm: str = "HS256", headers: dict | None = None) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def payload_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def new_name(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class SourceAddress(HTTPAdapter):
    """Connections from one loopback address (127.0.0.0/8 all reach 127.0.0.1)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **{**kwargs, "source_address": (self.address, 0)})


def from_address(address: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", SourceAddress(address))
    return session


class Staff:
    """The staff side of one front-end: accounts, sign-in, the audit trail."""

    def __init__(self, api: Api):
        self.api = api

    def bearer(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.api.staff_token}"}

    def add(self, name: str, role: str, password: str, token: str | None = None):
        body = {"name": name, "role": role, "password": password}
        return self.api.send("POST", "/staff", json=body, headers=self.bearer(token))

    def account(self, role: str, prefix: str | None = None) -> tuple[str, str]:
        """A new account of `role`: (name, password)."""
        name, password = new_name(prefix or role), secrets.token_urlsafe(12)
        response = self.add(name, role, password)
        assert response.status_code == 201, response.text
        return name, password

    def login(self, name: str, password: str, session: requests.Session | None = None):
        body = {"name": name, "password": password}
        return (session or self.api.http).post(self.api.url + "/login", json=body, timeout=30)

    def token(self, name: str, password: str) -> str:
        response = self.login(name, password)
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def signed_in(self, role: str) -> tuple[str, str]:
        """A new account of `role`, signed in: (name, token)."""
        name, password = self.account(role)
        return name, self.token(name, password)

    def disable(self, name: str, token: str | None = None):
        return self.api.send("POST", f"/staff/{name}/disable", headers=self.bearer(token))

    def accounts(self, token: str | None = None):
        return self.api.get("/staff", headers=self.bearer(token))

    def audit(self, token: str | None = None, accept: str | None = None, **params):
        headers = {**self.bearer(token), **({"Accept": accept} if accept else {})}
        return self.api.get("/audit", params=params, headers=headers)

    def entries(self, **params) -> list[dict]:
        response = self.audit(**params)
        assert response.status_code == 200, response.text
        return response.json()

    def entry_of(self, request_id: str, **params) -> dict:
        """The one audit entry of the request `request_id` (as admin)."""
        found = [e for e in self.entries(**params) if e["request_id"] == request_id]
        assert len(found) == 1, found
        return found[0]
