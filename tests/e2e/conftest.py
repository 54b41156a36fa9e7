"""Fixtures the end-to-end modules share."""

from __future__ import annotations

import pytest

from tests.support.shop import Shop


@pytest.fixture(scope="module")
def shop(shared_cluster) -> Shop:
    """The staff's and the multi-book customer's side of the shared cluster's front-end."""
    return Shop(shared_cluster.api)
