"""Cluster config: one TOML file (design §2) -> typed, validated settings.

Nothing here runs at import time; `load_cluster()` is called by the CLI and by
each node's app factory. Every problem is a `ConfigError` with one line that
names the key, so the CLI can print it and exit 2 instead of a traceback.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common import credentials

SERVICES = ("frontend", "catalog", "order", "recovery")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "cluster.toml"
DEFAULT_SEED = Path(__file__).resolve().parent.parent / "config" / "books.toml"


# Which environment variable overrides which secret (names, not secrets).
SECRET_ENV = {
    "staff_token": "BAZAR_" + "STAFF_TOKEN",
    "cluster_secret": "BAZAR_" + "CLUSTER_SECRET",
}


class ConfigError(Exception):
    """The cluster config is malformed; the message names the key."""


@dataclass(frozen=True)
class Tuning:
    """Tunables with sane defaults; each may be set in the [tuning] table."""

    threads: int = 8  # gunicorn threads of a gthread node (recovery); gevent nodes: 1000 conns
    health_period: float = 0.5  # seconds between health checks of a peer (4x: steady up)
    connect_timeout: float = 0.5  # seconds to open a connection to another node
    read_timeout: float = 3.0  # seconds to wait for another node's answer (a cut peer: once)
    failover_patience: float = 3.0  # seconds a call keeps trying other replicas
    resolve_after: float = 10.0  # seconds before a pending order's fate is asked of the catalog
    cache_size: int = 10_000  # front-end lookup cache entries
    cache_ttl: float = 60.0  # seconds; a safety net, invalidation is the mechanism
    sender_period: float = 0.5  # seconds between retries of undelivered updates
    startup_grace: float = 5.0  # seconds a returning node waits for the recovery node
    max_body: int = 64 * 1024  # bytes; larger request bodies get 413
    # The primary's lease, kept in Raft (design §7 rules 0 and 8), counted on each
    # node's own monotonic clock: the holder from proposing a renewal, the others
    # from applying it. Wall clocks play no part and may be anything.
    lease_duration: float = 2.5  # seconds a grant or renewal lasts
    lease_renew: float = 0.4  # seconds between renewals by the holder
    # Seconds the holder stops writing before its lease ends: room for the step
    # between checking the lease and acting on it (not for clock skew any more).
    clock_margin: float = 0.5
    # The most two monotonic clocks' rates may differ (0.01 = 1%). Real clocks drift by
    # under 0.05% (NTP slews at most 500 ppm); 1% covers that 20 times over and costs
    # 25 ms of a 2.5 s lease.
    max_drift: float = 0.01
    read_lease: float = 2.0  # seconds a copy may answer reads after a push or heartbeat


VOTERS = ("catalog", "recovery")  # services whose nodes vote in the lease's Raft group


@dataclass(frozen=True)
class Staff:
    """[staff] (docs/staff.md): sign-in tokens and the lockout after wrong passwords."""

    token_minutes: float = 15.0  # lifetime of a token from POST /login
    login_failures: int = 5  # wrong passwords for one name before it is locked out
    address_failures: int = 20  # wrong passwords from one address before it is locked out
    lockout_seconds: float = 300.0  # the window failures count in, and the lockout's length


@dataclass(frozen=True)
class Retention:
    """[retention] (docs/scale.md §5): how long idempotency records are kept, in cluster
    age (seconds the writers have held the lease, never a wall clock), and the cap on
    each recovery queue."""

    keys_days: float = 7.0  # idempotency records older than this (cluster age) are compacted
    compact_every_seconds: float = 3600.0  # how often the writer compacts
    queue_cap: int = 100_000  # entries per target; past it the queue is dropped (overflowed)

    @property
    def keys_seconds(self) -> float:
        return self.keys_days * 86400.0


@dataclass(frozen=True)
class Tls:
    """[tls] (design §2): off on loopback; on, every node serves HTTPS and nodes call
    each other with mutual TLS under the cluster CA. Files by default under
    `<data_dir>/tls/`, made by `bazar certs`."""

    enabled: bool = False
    directory: Path = Path("tls")
    public_cert: Path | None = None  # the front-end's public side: the operator's own
    public_key: Path | None = None

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, name: str) -> Path:
        """A node's certificate (or the operator tools', name OPERATOR)."""
        return self.directory / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


# The operator tools' client certificate (`bazar status`, `check`, Prometheus, tests).
OPERATOR = "operator"


@dataclass(frozen=True)
class Node:
    """One node of the cluster: its name, service, base URL and (voters) Raft address."""

    name: str
    service: str
    url: str
    raft: str | None = None  # "host:port"; voters only, default: url host, url port + 1000

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def votes(self) -> bool:
        return self.service in VOTERS


@dataclass(frozen=True)
class Cluster:
    """The whole cluster as one config file describes it."""

    path: Path
    data_dir: Path
    staff_token: str
    cluster_secret: str
    seed_file: Path
    nodes: dict[str, Node]
    tuning: Tuning = field(default_factory=Tuning)
    tls: Tls = field(default_factory=Tls)
    staff: Staff = field(default_factory=Staff)
    retention: Retention = field(default_factory=Retention)
    # Still accepted while a rotation rolls through the cluster, never sent (docs/operations.md).
    accepted_staff_tokens: tuple[str, ...] = ()
    accepted_cluster_secrets: tuple[str, ...] = ()

    @property
    def staff_tokens(self) -> tuple[str, ...]:
        """Every staff token a front-end takes: the current one first."""
        return (self.staff_token, *self.accepted_staff_tokens)

    @property
    def cluster_secrets(self) -> tuple[str, ...]:
        """Every secret a signed call may carry: the one nodes sign with first."""
        return (self.cluster_secret, *self.accepted_cluster_secrets)

    def of(self, service: str) -> list[Node]:
        """Nodes of one service, in config order (the order decides the primary)."""
        return [n for n in self.nodes.values() if n.service == service]

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise ConfigError(f"no node named {name!r} in {self.path}") from None

    def db_path(self, name: str) -> Path:
        return self.data_dir / f"{name}.sqlite3"

    @property
    def recovery(self) -> Node:
        return self.of("recovery")[0]

    @property
    def voters(self) -> list[Node]:
        """The lease's Raft group (design §7 rule 0), in config order."""
        return [n for n in self.nodes.values() if n.votes]


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """The config file to use: --config, else $BAZAR_CONFIG, else the default."""
    chosen = explicit or os.environ.get("BAZAR_CONFIG") or DEFAULT_CONFIG
    return Path(chosen).expanduser().resolve()


def load_cluster(
    explicit: str | os.PathLike | None = None, *, make_secrets: bool = True
) -> Cluster:
    """Read, validate and complete the cluster config."""
    path = config_path(explicit)
    raw = _read_toml(path)
    _reject_unknown(
        raw, {"data_dir", "seed_file", "auth", "tuning", "tls", "staff", "retention", "nodes"}, ""
    )
    data_dir = (path.parent / _typed(raw, "data_dir", str, "", "../var")).resolve()
    seed = raw.get("seed_file")
    seed_file = (
        (path.parent / _typed(raw, "seed_file", str, "")).resolve() if seed else DEFAULT_SEED
    )
    auth = _table(raw, "auth")
    _reject_unknown(auth, {"staff_token", "cluster_secret", *ACCEPTED}, "auth.")
    token, secret = _secrets(auth, data_dir, make_secrets)
    tls = _tls(_table(raw, "tls"), path.parent, data_dir)
    return Cluster(
        path=path,
        data_dir=data_dir,
        staff_token=token,
        cluster_secret=secret,
        seed_file=seed_file,
        tuning=_positive(Tuning, _table(raw, "tuning"), "tuning."),
        staff=_positive(Staff, _table(raw, "staff"), "staff."),
        retention=_positive(Retention, _table(raw, "retention"), "retention."),
        nodes=_nodes(_table(raw, "nodes"), tls.enabled),
        tls=tls,
        accepted_staff_tokens=_accepted(auth, "accepted_staff_tokens"),
        accepted_cluster_secrets=_accepted(auth, "accepted_cluster_secrets"),
    )


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None


def _table(raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a table")
    return value


def _reject_unknown(raw: dict, allowed: set[str], prefix: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"unknown key '{prefix}{key}' (allowed: {', '.join(sorted(allowed))})"
            )


def _typed(raw: dict, key: str, kind: type | tuple, prefix: str, default=None):
    value = raw.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"'{prefix}{key}' must be {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({str: "a string", int: "an integer", float: "a number"}[k] for k in kinds)


def _secrets(auth: dict, data_dir: Path, make: bool) -> tuple[str, str]:
    """Env beats the file's [auth]; whatever is still missing is generated once."""
    given = {key: os.environ.get(env) or auth.get(key) for key, env in SECRET_ENV.items()}
    stored = credentials.load_or_create(data_dir) if make and not all(given.values()) else {}
    values = []
    for key in SECRET_ENV:
        value = given[key] or stored.get(key, "")
        if not isinstance(value, str) or (make and len(value) < 16):
            raise ConfigError(f"'auth.{key}' must be a string of at least 16 characters")
        values.append(value)
    return values[0], values[1]


ACCEPTED = ("accepted_staff_tokens", "accepted_cluster_secrets")


def _accepted(auth: dict, key: str) -> tuple[str, ...]:
    """Old (or next) secrets still taken during a rotation: a list of strings."""
    values = auth.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) and len(v) >= 16 for v in values):
        raise ConfigError(f"'auth.{key}' must be a list of strings of at least 16 characters")
    return tuple(values)


def _tls(raw: dict, base: Path, data_dir: Path) -> Tls:
    _reject_unknown(raw, {"enabled", "public_cert", "public_key"}, "tls.")
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"'tls.enabled' must be true or false, got {enabled!r}")
    given = [k for k in ("public_cert", "public_key") if raw.get(k) is not None]
    if len(given) == 1:
        raise ConfigError("'tls.public_cert' and 'tls.public_key' go together: give both or none")
    cert, key = [(base / _typed(raw, k, str, "tls.")).resolve() for k in given] or [None, None]
    return Tls(enabled, data_dir / "tls", cert, key)


def _nodes(raw: dict, tls: bool = False) -> dict[str, Node]:
    nodes = {}
    for name, spec in raw.items():
        where = f"nodes.{name}."
        if not isinstance(spec, dict):
            raise ConfigError(f"'nodes.{name}' must be a table")
        _reject_unknown(spec, {"service", "url", "raft"}, where)
        service = _typed(spec, "service", str, where)
        if service not in SERVICES:
            raise ConfigError(
                f"'{where}service' must be one of {', '.join(SERVICES)}, got {service!r}"
            )
        url = _typed(spec, "url", str, where).rstrip("/")
        scheme = "https" if tls else "http"
        if not _valid_url(url, scheme):
            why = " ([tls] enabled = true)" if tls else " (https needs [tls] enabled = true)"
            raise ConfigError(f"'{where}url' must look like {scheme}://HOST:PORT{why}, got {url!r}")
        nodes[name] = Node(name, service, url, _raft_address(spec, service, url, where))
    _check_counts(nodes)
    return nodes


def _raft_address(spec: dict, service: str, url: str, where: str) -> str | None:
    """A voter's Raft "host:port": given, or the url's host with the url's port + 1000."""
    if "raft" in spec and service not in VOTERS:
        raise ConfigError(f"'{where}raft' is only for {' and '.join(VOTERS)} nodes")
    if service not in VOTERS:
        return None
    parts = urlsplit(url)
    address = _typed(spec, "raft", str, where, f"{parts.hostname}:{(parts.port or 80) + 1000}")
    host, _, port = address.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"'{where}raft' must look like HOST:PORT (port 1-65535), got {address!r}")
    return address


def _valid_url(url: str, scheme: str) -> bool:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # out of range or not a number
        return False
    return parts.scheme == scheme and bool(parts.hostname) and bool(port) and not parts.path


def _check_counts(nodes: dict[str, Node]) -> None:
    counts = {s: sum(n.service == s for n in nodes.values()) for s in SERVICES}
    for service, count in counts.items():
        if count == 0:
            raise ConfigError(f"'nodes' needs at least one {service} node")
    if counts["recovery"] != 1:
        raise ConfigError("'nodes' must have exactly one recovery node")
    urls = [n.url for n in nodes.values()]
    if len(set(urls)) != len(urls):
        raise ConfigError("'nodes' has two nodes with the same url")
    rafts = [n.raft for n in nodes.values() if n.raft]
    if len(set(rafts)) != len(rafts):
        raise ConfigError("'nodes' has two voters with the same raft address")


def _positive(kind: type, raw: dict, prefix: str):
    """A table of positive numbers (`kind`'s fields, each an int or a number)."""
    defaults = kind()
    _reject_unknown(raw, set(kind.__dataclass_fields__), prefix)
    values = {}
    for key, value in raw.items():
        number = int if isinstance(getattr(defaults, key), int) else (int, float)
        _typed(raw, key, number, prefix)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"'{prefix}{key}' must be greater than 0, got {value!r}")
        if key == "max_drift" and value >= 0.5:
            raise ConfigError(f"'tuning.max_drift' must be below 0.5 (a rate), got {value!r}")
        values[key] = value
    return kind(**values)
