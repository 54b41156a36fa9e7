"""`bazar report`: one UTC day's revenue as headquarters reads it.

Asks a front-end for GET /reports/revenue with the cluster's staff token
(the first front-end of the config that answers) and prints the table: by
book (id, title, orders, copies, revenue) or by day, then the total. A
report the answering order replica could not vouch for (`complete` false)
is printed with a warning and its notes; the exit code is still 0, since
the figures are what the cluster knows. Exit 1 when no front-end answers
with a report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime

from common.config import Cluster
from common.ops import procs

TITLE_WIDTH = 40
TIMEOUT = (2.0, 15.0)  # connect, read: the report asks every order replica and a catalog
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ReportError(Exception):
    """No report: no front-end answered, or the one that did refused (the message says)."""


def day_arg(text: str) -> date:
    """argparse type of --day: a UTC date written YYYY-MM-DD."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD")


def today() -> date:
    return datetime.now(UTC).date()


def run(cluster: Cluster, day: date | None, by: str = "book", as_json: bool = False) -> int:
    try:
        report = fetch(cluster, day or today(), by)
    except ReportError as e:
        print(f"bazar: report: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if as_json else "\n".join(render(report)))
    return 0


def fetch(cluster: Cluster, day: date, by: str) -> dict:
    """The report of `day` from the first front-end that gives one."""
    params = {"from": day.isoformat(), "to": day.isoformat(), "by": by}
    headers = {"Authorization": f"Bearer {cluster.staff_token}", "Accept": "application/json"}
    session = procs.http_session()
    failures = []
    for node in cluster.of("frontend"):
        url = f"{node.url}/reports/revenue"
        try:
            response = session.get(url, params=params, headers=headers, timeout=TIMEOUT)
        except OSError as e:  # requests' errors are OSErrors
            failures.append(f"{node.name} at {node.url} cannot be reached ({type(e).__name__})")
            continue
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                failures.append(f"{node.name} answered 200 without a JSON report")
                continue
        failure = f"{node.name} answered {response.status_code}: {_message(response)}"
        if 400 <= response.status_code < 500:  # our request: another front-end says the same
            raise ReportError(failure)
        failures.append(failure)
    if not failures:
        raise ReportError(f"no front-end in {cluster.path}")
    raise ReportError("no report; " + "; ".join(failures))


def _message(response) -> str:
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason or "no message"


def render(report: dict) -> list[str]:
    """The report as lines of text: a heading, any warning, the table and its total."""
    period = (
        report["from"]
        if report["from"] == report["to"]
        else (f"{report['from']} to {report['to']}")
    )
    by = report["by"]
    heading = f"Revenue {period} (UTC), by {by}"
    if report.get("node"):
        heading += f"; answered by {report['node']}"
    lines = [heading]
    if not report.get("complete", False):
        lines.append("NOT COMPLETE: this report may miss acknowledged orders:")
        lines += [f"  - {_clean(note)}" for note in report.get("notes") or ["(no reason given)"]]
    lines.append("")
    lines += _table(report)
    return lines


def _table(report: dict) -> list[str]:
    total = report["total"]
    if report["by"] == "book":
        header = ("book", "title", "orders", "copies", "revenue")
        body = [
            (str(r["book_id"]), _title(r.get("title")), str(r["orders"]), str(r["copies"]),
             r["revenue"])
            for r in report["rows"]
        ]  # fmt: skip
        last = ("total", "", str(total["orders"]), str(total["copies"]), total["revenue"])
        left = {1}  # the title reads from the left; figures line up on the right
    else:
        header = ("day", "orders", "copies", "revenue")
        body = [
            (r["day"], str(r["orders"]), str(r["copies"]), r["revenue"]) for r in report["rows"]
        ]
        last = ("total", str(total["orders"]), str(total["copies"]), total["revenue"])
        left = {0}
    widths = [max(len(row[i]) for row in (header, *body, last)) for i in range(len(header))]

    def line(row) -> str:
        cells = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    rows = [line(row) for row in body] or ["(no confirmed orders)"]
    return [line(header), rule, *rows, rule, line(last)]


def _title(title: str | None) -> str:
    if title is None:
        return "?"  # no catalog could name the book
    title = _clean(title)
    return title if len(title) <= TITLE_WIDTH else title[: TITLE_WIDTH - 1] + "…"


def _clean(text: str) -> str:
    """No control characters on the operator's terminal."""
    return _CONTROL.sub("?", str(text))
