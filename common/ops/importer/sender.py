"""Sending batches of rows to a front-end's `POST /books/import`, as `admin`.

The first front-end of the config that answers takes the batch. A batch that
met no answer, a 503 or a 421 is sent again (to the next front-end, then
after a growing pause) until PATIENCE runs out: that is safe, since a row
whose title and topic a book already has is skipped, naming that book. So
rows a lost answer had added come back as skipped the second time.
"""

from __future__ import annotations

import json
import time

from common.config import Cluster
from common.ops import procs
from common.ops.staffcli import _clean as clean

PATH = "/books/import"
TIMEOUT = (2.0, 60.0)  # connect, read: a batch waits for its replication round
RETRIED = (421, 503)
PATIENCE = 120.0  # seconds one batch keeps being tried (--patience)
FIRST_PAUSE, LONGEST_PAUSE = 0.25, 8.0


class ClusterError(Exception):
    """No front-end took a batch (or one refused the whole of it); exit 2."""


def send(
    cluster: Cluster, rows: list[dict], patience: float = PATIENCE, note=None, sleep=time.sleep
) -> dict:
    """The front-end's answer for `rows`: {"added", "skipped", "refused"}; `note(text)`
    hears of each try again."""
    body = json.dumps({"rows": rows}, ensure_ascii=False).encode()
    deadline = time.monotonic() + patience
    pause = FIRST_PAUSE
    while True:
        failures = []
        for node in cluster.of("frontend"):
            answer, why = _try(cluster, node, body)
            if answer is not None:
                return answer
            failures.append(why)
        if not failures:
            raise ClusterError(f"no front-end in {cluster.path}")
        if time.monotonic() + pause > deadline:
            raise ClusterError(f"gave up after {patience:g} s: {'; '.join(failures)}")
        if note is not None:
            note(f"{'; '.join(failures)}; the batch again in {pause:g} s")
        sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def _try(cluster: Cluster, node, body: bytes) -> tuple[dict | None, str]:
    """(the answer, "") or (None, why it is worth another try); ClusterError if not."""
    headers = {
        "Authorization": f"Bearer {cluster.staff_token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    try:
        response = procs.http_session().post(
            node.url + PATH, data=body, headers=headers, timeout=TIMEOUT
        )
    except OSError as e:  # requests' errors are OSErrors: refused, reset, timed out
        return None, f"{node.name} at {node.url}: no answer ({type(e).__name__})"
    if response.status_code == 200:
        try:
            return response.json(), ""
        except ValueError:
            raise ClusterError(f"{node.name} answered 200 without JSON") from None
    why = f"{node.name} answered {response.status_code}: {_message(response)}"
    if response.status_code in RETRIED:
        return None, why
    raise ClusterError(why)


def _message(response) -> str:
    try:
        return clean(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason or "no message"
