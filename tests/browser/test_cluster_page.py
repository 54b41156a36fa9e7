"""The /cluster page in headless Chromium: every node, a kill seen within 3 s, no reload.

Skipped, with the reason, where /usr/bin/chromium or /usr/bin/chromedriver
(Debian packages chromium, chromium-driver) or selenium is missing.
"""

from __future__ import annotations

import time

import pytest

from tests.browser import chromium
from tests.support.cluster import LocalCluster, wait_until

DOWN_WITHIN = 3.0

pytestmark = pytest.mark.skipif(
    chromium.missing() is not None, reason=f"no headless browser: {chromium.missing()}"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("page"), tuning={"health_period": 0.5})
    cluster.up()
    yield cluster
    cluster.discard()


@pytest.fixture(scope="module")
def browser():
    driver = chromium.start()
    yield driver
    driver.quit()


def health_on_page(browser, name: str) -> str | None:
    """The health the page's script last drew for `name` (None: no such row)."""
    return browser.execute_script(
        "const row = document.getElementById('node-' + arguments[0]);"
        "return row ? row.dataset.health : null;",
        name,
    )


def live(browser) -> bool:
    return browser.find_element("id", "liveness").text == "Updates every second."


def test_page_shows_every_node_and_follows_a_kill_without_reloading(cluster, browser):
    browser.get(cluster.api.url + "/cluster")
    assert browser.title.startswith("Bazar cluster")
    wait_until(lambda: live(browser), 10, "the page's script to draw /cluster.json")
    for name in cluster.cluster.nodes:
        assert browser.find_element("id", f"node-{name}").is_displayed(), name
    wait_until(
        lambda: all(health_on_page(browser, n) == "up" for n in cluster.cluster.nodes),
        15,
        "every node up on the page",
    )
    assert browser.find_element("id", "primary").text in cluster.names("catalog")
    browser.execute_script("window.notReloaded = true;")

    victim = cluster.names("order")[-1]
    started = time.monotonic()
    cluster.kill(victim)
    wait_until(
        lambda: health_on_page(browser, victim) == "down", DOWN_WITHIN, f"{victim} down on page"
    )
    took = time.monotonic() - started
    print(f"{victim}: SIGKILL -> down on the page in {took:.2f} s")
    assert took < DOWN_WITHIN
    assert browser.execute_script("return window.notReloaded === true;")
    cell = browser.find_element("css selector", f"#node-{victim} td.health")
    assert cell.text == "down"
    first_event = browser.find_element("css selector", "#events li").text
    assert f"{victim} went down" in first_event
    assert browser.find_element("id", "up-count").text.startswith(
        f"{len(cluster.cluster.nodes) - 1} of"
    )

    cluster.start(victim)
    wait_until(lambda: health_on_page(browser, victim) == "up", 10, f"{victim} up on the page")
    assert browser.execute_script("return window.notReloaded === true;")
    assert chromium.console_problems(browser) == []


def test_page_loads_nothing_from_elsewhere_and_breaks_no_policy(cluster, browser):
    browser.get(cluster.api.url + "/cluster")
    wait_until(lambda: live(browser), 10, "the page's script to run")
    origin = cluster.api.url
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    assert resources, "the page fetched its script, style and data"
    assert all(url.startswith(origin + "/") for url in resources), resources
    colour = browser.execute_script(
        "return getComputedStyle(document.querySelector('.health-up')).backgroundColor;"
    )
    assert colour not in ("", "rgba(0, 0, 0, 0)")  # the style sheet was allowed to load
    assert chromium.console_problems(browser) == []
