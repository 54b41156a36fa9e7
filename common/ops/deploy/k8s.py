"""Kubernetes manifests: a StatefulSet and a headless Service per service, the
front-end's public Service, the config as a ConfigMap (`kubectl apply -f DIR`).

Naming (k8s_config): StatefulSet `catalog`, pods `catalog-0`, `catalog-1`, each
running the node of the same name, reachable at
`catalog-0.catalog.<namespace>.svc.cluster.local`.

Choices, each for a reason:
- podManagementPolicy Parallel: the voters need each other to elect a lease
  holder, so waiting for catalog-0 to be Ready before starting catalog-1 (the
  default, OrderedReady) could wait forever. Rolling updates still go one pod
  at a time, each Ready before the next.
- headless Services publish not-ready pods: a recovering node answers 503 on
  /health (not Ready) yet must be reachable by its peers to catch up, and the
  pod's DNS name is the address it binds.
- readiness: GET /health answers 200 (a recovering node is kept out of the
  public Service). Liveness: a TCP connect only, with room to spare: a node
  recovering from a long absence answers 503 for as long as it takes to catch
  up, and an HTTP liveness probe would kill it over and over; a crashed node
  exits by itself and the kubelet restarts it.
- the front-end's public Service is a LoadBalancer by default (on a cluster
  without load balancers it still gets a node port); --public-service changes it.
- secrets are referenced, never written: env from the Secret `bazar-secrets`
  (keys staff-token and cluster-secret), and with TLS on, a Secret
  `bazar-tls-<service>` per service (ca.pem, <pod>.pem, <pod>.key of its pods)
  mounted over <data_dir>/tls.
- pods of a service, and the voters among themselves, prefer different
  machines, and a PodDisruptionBudget lets a drain take one of them at a time.
- every pod runs as uid 10001 with a read-only root file system, no
  capabilities (bar binding a port below 1024 if the config asks for one), one
  volume claim of its own at data_dir and an emptyDir at /tmp (gunicorn).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import yaml

from common.config import SECRET_ENV, SERVICES, VOTERS, Cluster
from common.ops.deploy import k8s_config as kc
from common.ops.deploy import source

# The names of the operator's Secret and of its keys (no values here, ever).
SECRET = "bazar-secrets"  # noqa: S105  # nosec B105
SECRET_KEYS = {"staff_token": "staff-token", "cluster_secret": "cluster-secret"}  # noqa: S105  # nosec B105
CONFIG_MAP = "bazar-config"
PUBLIC = "bazar-public"
UID = 10001


@dataclass(frozen=True)
class Options:
    namespace: str = "bazar"
    image: str = "bazar:latest"  # the operator's image, with `bazar` on its PATH
    bazar: str = "bazar"
    storage: str = "1Gi"
    storage_class: str | None = None
    public_service: str = "LoadBalancer"


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        namespace=args.namespace,
        image=args.image,
        bazar=args.bazar or "bazar",
        storage=args.storage,
        storage_class=args.storage_class,
        public_service=args.public_service,
    )


def render(cluster: Cluster, options: Options) -> dict[str, str]:
    """{file name: text}: YAML manifests in the order `kubectl apply -f` reads
    them, and the pods' cluster.toml and seed books (both also in the ConfigMap),
    e.g. for `bazar certs` to make certificates for the pods' names."""
    config = kc.config_text(cluster, options.namespace)
    seed = kc.seed_text(cluster)
    files = {
        "00-namespace.yaml": dump([namespace(options)]),
        "01-config.yaml": dump([config_map(options, config, seed)]),
    }
    for service in SERVICES:
        docs = [headless_service(cluster, service, options)]
        docs.append(stateful_set(cluster, service, options, kc.digest(config, seed)))
        files[f"{service}.yaml"] = dump(docs)
    files["frontend-public.yaml"] = dump([public_service(cluster, options)])
    files["disruption.yaml"] = dump(disruption_budgets(options))
    files[kc.CONFIG_FILE] = config
    files[kc.SEED_FILE] = seed
    return files


def labels(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "bazar", "app.kubernetes.io/component": service}


def meta(name: str, options: Options, service: str | None = None) -> dict:
    data = {"name": name, "namespace": options.namespace}
    data["labels"] = {**(labels(service) if service else {}), "app.kubernetes.io/part-of": "bazar"}
    return data


def namespace(options: Options) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.namespace}}


def config_map(options: Options, config: str, seed: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(CONFIG_MAP, options),
        "data": {kc.CONFIG_FILE: config, kc.SEED_FILE: seed},
    }


def _ports(cluster: Cluster, service: str) -> list[tuple[str, int]]:
    ports = [("http", kc.port(cluster, service))]
    if service in VOTERS:
        ports.append(("raft", kc.raft_port(cluster, service)))
    return ports


def headless_service(cluster: Cluster, service: str, options: Options) -> dict:
    """The pods' stable DNS names; not-ready pods too (a recovering node's peers
    must reach it)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(service, options, service),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": labels(service),
            "ports": [
                {"name": name, "port": number, "targetPort": name}
                for name, number in _ports(cluster, service)
            ],
        },
    }


def public_service(cluster: Cluster, options: Options) -> dict:
    https = source.tls_enabled(cluster)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(PUBLIC, options, "frontend"),
        "spec": {
            "type": options.public_service,
            "selector": labels("frontend"),
            "ports": [
                {
                    "name": "https" if https else "http",
                    "port": 443 if https else 80,
                    "targetPort": "http",
                }
            ],
        },
    }


def _peers(service: str) -> list[str]:
    """The services whose pods this one's should not share a machine with: the
    voters among themselves (one machine down must cost one vote), else its own."""
    return list(VOTERS) if service in VOTERS else [service]


def _selector(services: list[str]) -> dict:
    return {
        "matchLabels": {"app.kubernetes.io/name": "bazar"},
        "matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": services}
        ],
    }


def disruption_budgets(options: Options) -> list[dict]:
    """One pod at a time for drains and upgrades of the machines: the voters (the
    Raft group of every catalog and the recovery node) together, so a drain never
    takes two votes; the order servers and the front-ends each."""
    groups = {"bazar-voters": list(VOTERS), "order": ["order"], "frontend": ["frontend"]}
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(name, options),
            "spec": {"maxUnavailable": 1, "selector": _selector(services)},
        }
        for name, services in groups.items()
    ]


def stateful_set(cluster: Cluster, service: str, options: Options, digest: str) -> dict:
    claim = {
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": options.storage}},
        },
    }
    if options.storage_class:
        claim["spec"]["storageClassName"] = options.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(service, options, service),
        "spec": {
            "serviceName": service,
            "replicas": len(cluster.of(service)),
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": labels(service)},
            "template": {
                "metadata": {
                    "labels": labels(service),
                    "annotations": {"bazar/config-sha256": digest},
                },
                "spec": pod_spec(cluster, service, options),
            },
            "volumeClaimTemplates": [claim],
        },
    }


def pod_spec(cluster: Cluster, service: str, options: Options) -> dict:
    volumes = [
        {"name": "config", "configMap": {"name": CONFIG_MAP}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if source.tls_enabled(cluster):
        volumes.append(
            {"name": "tls", "secret": {"secretName": f"bazar-tls-{service}", "defaultMode": 0o440}}
        )
    spread = {
        "weight": 100,
        "podAffinityTerm": {
            "labelSelector": _selector(_peers(service)),
            "topologyKey": "kubernetes.io/hostname",
        },
    }
    return {
        "affinity": {
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [spread]}
        },
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 20,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(cluster, service, options)],
        "volumes": volumes,
    }


def _readiness(cluster: Cluster, service: str, options: Options) -> dict:
    """GET /health answers 200. Under TLS the inside nodes want a client certificate,
    which the kubelet has none of: `bazar probe` asks with the pod's own."""
    if source.tls_enabled(cluster) and service != "frontend":
        config = f"{kc.CONFIG_DIR}/{kc.CONFIG_FILE}"
        return {"exec": {"command": [options.bazar, "probe", "$(POD_NAME)", "--config", config]}}
    return {"httpGet": {"path": "/health", "port": "http", "scheme": kc.scheme(cluster).upper()}}


def container(cluster: Cluster, service: str, options: Options) -> dict:
    mounts = [
        {"name": "data", "mountPath": kc.DATA_DIR},
        {"name": "config", "mountPath": kc.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  # nosec B108  # the pod's own emptyDir
    ]
    if source.tls_enabled(cluster):
        mounts.append({"name": "tls", "mountPath": kc.TLS_DIR, "readOnly": True})
    low = any(number < 1024 for _, number in _ports(cluster, service))
    return {
        "name": "node",
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [options.bazar],
        "args": ["node", "$(POD_NAME)", "--config", f"{kc.CONFIG_DIR}/{kc.CONFIG_FILE}"],
        "env": environment(),
        "ports": [
            {"name": name, "containerPort": number} for name, number in _ports(cluster, service)
        ],
        "readinessProbe": {
            **_readiness(cluster, service, options),
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "tcpSocket": {"port": "http"},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 6,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], **({"add": ["NET_BIND_SERVICE"]} if low else {})},
        },
        "volumeMounts": mounts,
    }


def environment() -> list[dict]:
    """The pod's name (its node's name) and the two secrets, by reference only."""
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    for key, variable in SECRET_ENV.items():
        ref = {"name": SECRET, "key": SECRET_KEYS[key]}
        env.append({"name": variable, "valueFrom": {"secretKeyRef": ref}})
    env.append({"name": "PYTHONUNBUFFERED", "value": "1"})
    return env


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config in the ConfigMap) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def dump(docs: list[dict]) -> str:
    header = "# Generated by `bazar deploy k8s`; see docs/deploy.md.\n"
    return header + yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True
    )
