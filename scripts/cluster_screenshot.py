"""A screenshot of the front-end's /cluster page after a failover and a crash.

By default it starts a small cluster of its own on free loopback ports,
sends some traffic, kills the catalog primary (a failover) and restarts it,
kills an order server and leaves it down, then saves the page as it looks
in headless Chromium:

    .venv/bin/python scripts/cluster_screenshot.py             # -> docs/cluster.png
    .venv/bin/python scripts/cluster_screenshot.py --url http://127.0.0.1:8000 \
        [--config config/cluster.toml --kill order-2]          # a running cluster

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian chromium, chromium-driver).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import chromium  # noqa: E402
from tests.support.cluster import LocalCluster, wait_until  # noqa: E402

WIDTH = 1500


def traffic(url: str, seconds: float) -> int:
    """Lookups, searches and a few buys for `seconds`; returns how many requests were sent."""
    http = requests.Session()
    http.trust_env = False
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        book = 1 + sent % 7
        http.get(f"{url}/lookup/{book}", timeout=10)
        if sent % 5 == 0:
            http.get(f"{url}/search/distributed systems", timeout=10)
        if sent % 9 == 0:
            http.post(f"{url}/buy/{book}", timeout=10)
        sent += 1
    return sent


def health_on_page(driver, name: str) -> str | None:
    return driver.execute_script(
        "const row = document.getElementById('node-' + arguments[0]);"
        "return row ? row.dataset.health : null;",
        name,
    )


def shoot(driver, out: Path) -> None:
    """The whole page: the window grows until the viewport holds all of it."""
    for _ in range(3):
        inner, full = driver.execute_script(
            "return [window.innerHeight, document.documentElement.scrollHeight];"
        )
        if inner >= full:
            break
        size = driver.get_window_size()
        driver.set_window_size(size["width"], size["height"] + full - inner + 8)
    time.sleep(1.2)  # one more redraw at the new size
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    problems = chromium.console_problems(driver)
    if problems:
        print("browser console:", *problems, sep="\n  ")


def own_cluster(driver, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="bazar-shot-") as tmp:
        cluster = LocalCluster(Path(tmp), tuning={"health_period": 0.5}).up()
        try:
            url = cluster.api.url
            driver.get(url + "/cluster")
            traffic(url, 2.0)
            primary = next(n for n in cluster.names("catalog") if cluster.role(n) == "primary")
            cluster.kill(primary)
            wait_until(
                lambda: driver.find_element("id", "primary").text not in ("none", primary),
                30,
                "another primary",
            )
            cluster.start(primary)
            traffic(url, 2.0)
            victim = cluster.names("order")[-1]
            started = time.monotonic()
            cluster.kill(victim)
            wait_until(lambda: health_on_page(driver, victim) == "down", 10, f"{victim} down")
            print(f"{victim}: SIGKILL -> down on the page in {time.monotonic() - started:.2f} s")
            traffic(url, 3.0)  # a request rate over the page's last seconds
            shoot(driver, out)
        finally:
            cluster.down()


def running_cluster(driver, url: str, out: Path, config: str | None, kill: str | None) -> None:
    driver.get(url + "/cluster")
    traffic(url, 2.0)
    if kill:
        if not config:
            raise SystemExit("--kill needs --config (the cluster's file, for `bazar kill`)")
        started = time.monotonic()
        command = [sys.executable, "-m", "common.ops.cli", "kill", kill, "--config", config]
        subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603  # nosec B603
        wait_until(lambda: health_on_page(driver, kill) == "down", 10, f"{kill} down")
        print(f"{kill}: SIGKILL -> down on the page in {time.monotonic() - started:.2f} s")
    traffic(url, 2.0)
    shoot(driver, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running front-end (default: start a cluster)")
    parser.add_argument("--config", help="with --url: its cluster file, for --kill")
    parser.add_argument("--kill", help="with --url: a node to SIGKILL before the shot")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cluster.png")
    args = parser.parse_args()
    why = chromium.missing()
    if why:
        raise SystemExit(f"no headless browser: {why}")
    driver = chromium.start(width=WIDTH)
    try:
        if args.url:
            running_cluster(driver, args.url.rstrip("/"), args.out, args.config, args.kill)
        else:
            own_cluster(driver, args.out)
    finally:
        driver.quit()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
