"""The partition tier's modules each hold the host's netns lock (tests/support/hostlock.py)."""

from __future__ import annotations

import pytest

from tests.support import hostlock


@pytest.fixture(scope="module", autouse=True)
def one_netns_module_at_a_time():
    with hostlock.netns_tests():
        yield
