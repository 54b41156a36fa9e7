"""Rotating the cluster secret and the staff token without downtime (docs/operations.md):
the cluster in the middle of a rotation, half its nodes signing with the new secret and
half with the old, each accepting both, works as one: one lease holder in one Raft group,
buys, staff writes that reach every replica, and both staff tokens at the front-end."""

from __future__ import annotations

import secrets
import uuid

import pytest

from common.ops import procs
from tests.support.cluster import LocalCluster, wait_until

NEW_SECRET = secrets.token_urlsafe(32)
NEW_TOKEN = secrets.token_urlsafe(24)
ON_NEW = ("catalog-2", "order-2", "recovery-1")  # rolled already; the others not yet


@pytest.fixture(scope="module")
def halfway(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("rotation"))
    old_secret = cluster.cluster.cluster_secret
    text = cluster.config_path.read_text().replace(
        "[tuning]",
        f'accepted_cluster_secrets = ["{old_secret}", "{NEW_SECRET}"]\n'
        f'accepted_staff_tokens = ["{NEW_TOKEN}"]\n\n[tuning]',
        1,
    )
    cluster.config_path.write_text(text)
    for name in ON_NEW:  # a node's own environment: BAZAR_CLUSTER_SECRET beats the file
        path = procs.env_file(cluster.cluster, cluster.node(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"BAZAR_CLUSTER_SECRET={NEW_SECRET}\n")
    cluster.up()
    yield cluster
    cluster.discard()


def test_one_raft_group_and_one_holder_across_old_and_new_secrets(halfway):
    status = halfway.bazar("status").stdout
    assert "all voters agree" in status, status
    assert status.count(" primary ") == 1, status


def test_buys_and_staff_writes_cross_between_old_and_new(halfway):
    api = halfway.api
    assert api.buy(4, key=str(uuid.uuid4())).status_code == 201
    assert api.set_price(5, 31.5).status_code == 200
    wait_until(lambda: halfway.bazar("check", check=False).returncode == 0, 20, "replicas equal")


def test_the_front_end_takes_the_old_and_the_new_staff_token(halfway):
    api = halfway.api
    assert api.staff("price", 6, {"price": 22}).status_code == 200  # the current token
    assert api.staff("price", 6, {"price": 23}, token=NEW_TOKEN).status_code == 200
    assert api.staff("price", 6, {"price": 24}, token="x" * 24).status_code == 401
