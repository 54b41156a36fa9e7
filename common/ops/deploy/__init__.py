"""`bazar deploy systemd|k8s --out DIR`: service files for every node of the config.

Two generators, one per kind, each a pure function from the cluster (and the
operator's choices) to {file name: text}; this module only parses the options,
writes the files and says what it wrote. No secret value is ever written: the
units name an EnvironmentFile, the manifests a Secret, that the operator fills.
See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from common.config import Cluster, load_cluster

KINDS = ("systemd", "k8s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `deploy` verb's arguments (the CLI keeps only the verb itself)."""
    parser.add_argument("kind", choices=KINDS, help="systemd units or Kubernetes manifests")
    parser.add_argument("--out", required=True, help="folder to write into (made if missing)")
    parser.add_argument(
        "--bazar",
        help="the bazar console script (systemd default: /opt/bazar/.venv/bin/bazar; "
        "k8s default: bazar, on the image's PATH)",
    )
    host = parser.add_argument_group("systemd")
    host.add_argument(
        "--user", default="bazar", type=_user, help="user (and group) the nodes run as"
    )
    host.add_argument(
        "--config-at",
        help="where the config file lives on the hosts (default: this config's absolute path)",
    )
    host.add_argument(
        "--env-file",
        default="/etc/bazar/secrets.env",
        help="the operator's secrets file, mode 0600 (default /etc/bazar/secrets.env)",
    )
    kube = parser.add_argument_group("k8s")
    kube.add_argument(
        "--namespace", default="bazar", type=_dns_label, help="namespace (default bazar)"
    )
    kube.add_argument(
        "--image", default="bazar:latest", help="your Bazar image (default bazar:latest)"
    )
    kube.add_argument("--storage", default="1Gi", help="volume size per pod (default 1Gi)")
    kube.add_argument("--storage-class", help="storage class (default: the cluster's default)")
    kube.add_argument(
        "--public-service",
        choices=("LoadBalancer", "NodePort", "ClusterIP"),
        default="LoadBalancer",
        help="type of the front-end's public Service (default LoadBalancer)",
    )


def run(cluster: Cluster, args: argparse.Namespace) -> int:
    """Write the files of `args.kind` under `args.out`; print each path."""
    # The config as written, never a running netns cluster's derived copy of it.
    cluster = load_cluster(args.config)
    if args.kind == "systemd":
        from common.ops.deploy import systemd

        files = systemd.render(cluster, systemd.options_from(args))
    else:
        from common.ops.deploy import k8s

        files = k8s.render(cluster, k8s.options_from(args))
    try:
        written = write_files(Path(args.out), files)
    except OSError as e:
        print(f"bazar: deploy: cannot write into {args.out}: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def write_files(out: Path, files: dict[str, str]) -> list[Path]:
    """Write every file (they hold no secrets); return the paths in order."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def _dns_label(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(f"not a DNS label (a-z, 0-9, '-'): {text!r}")
    return text


def _user(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", text):
        raise argparse.ArgumentTypeError(f"not a user name: {text!r}")
    return text
