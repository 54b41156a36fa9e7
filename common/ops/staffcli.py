"""`bazar staff add|list|disable` and `bazar audit` (docs/staff.md).

Each verb calls the first front-end of the config that can be reached, over its
public API, with the configured staff token: it acts as `admin`. A front-end
that cannot be reached is skipped for the next one (a read also skips one that
answers 5xx; a write does not, since it may have been made there); any other
answer is the answer, and one that is not a success exits 1 with the
front-end's message on one line. `bazar audit` follows the `Link: rel="next"`
pages of one front-end until it has `--limit` entries or there are no more.

Imports stay light (no requests until a verb runs, no SQLAlchemy): every
`bazar` command builds this module's parsers.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from urllib.parse import quote, urljoin

from common.config import Cluster
from common.ops import procs

ROLES = ("clerk", "manager")
TIMEOUT = (2.0, 15.0)  # connect, read: an add hashes nothing here but waits for the holder
PAGE_MAX = 1000  # the most entries GET /audit gives in one page
CHANGES_WIDTH = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class StaffCliError(Exception):
    """The verb failed; the message says why, on one line."""


def add_arguments(add) -> None:
    """The `staff` and `audit` verbs; `add` is cli.py's helper (name, func, help)."""
    staff = add("staff", None, "staff accounts: add, list, disable (acts as admin)")
    verbs = staff.add_subparsers(dest="staff_command", required=True, metavar="VERB")
    # `--config` after the verb too; SUPPRESS keeps one given before it (`staff --config F add`).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config", default=argparse.SUPPRESS, help="cluster TOML (as before the verb)"
    )
    new = verbs.add_parser("add", parents=[config], help="make an account; prints its password")
    new.add_argument("name", help="1-64 of a-z 0-9 . _ -, starting with a letter or a digit")
    new.add_argument("--role", choices=ROLES, required=True, help="what the account may do")
    new.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (else one is made and printed)",
    )
    new.set_defaults(func=cmd_add)
    listing = verbs.add_parser("list", parents=[config], help="every account")
    listing.add_argument("--json", action="store_true", help="the accounts as the front-end sent")
    listing.set_defaults(func=cmd_list)
    off = verbs.add_parser("disable", parents=[config], help="disable an account (for good)")
    off.add_argument("name", help="the account's name")
    off.set_defaults(func=cmd_disable)

    trail = add("audit", cmd_audit, "the staff audit trail, newest first")
    trail.add_argument("--book", type=int, metavar="ID", help="only entries about this book")
    trail.add_argument("--staff", metavar="NAME", help="only entries by this account")
    trail.add_argument("--json", action="store_true", help="the entries as a JSON list")
    trail.add_argument(
        "--limit", type=_positive, default=100, metavar="N", help="at most N entries (default 100)"
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


# -- the verbs ---------------------------------------------------------------------


def cmd_add(cluster: Cluster, args) -> int:
    def act() -> None:
        password = _stdin_password() if args.password_stdin else secrets.token_urlsafe(18)
        body = {"name": args.name, "role": args.role, "password": password}
        account = call(cluster, "POST", "/staff", json=body, expect=(200, 201))
        print(f"added {_clean(account.get('name', args.name))} ({_clean(account.get('role'))})")
        if not args.password_stdin:
            print(f"password: {password}")

    return _run("staff add", act)


def cmd_list(cluster: Cluster, args) -> int:
    def act() -> None:
        accounts = call(cluster, "GET", "/staff")
        if args.json:
            print(json.dumps(accounts, indent=2))
            return
        print("\n".join(account_table(accounts)))

    return _run("staff list", act)


def cmd_disable(cluster: Cluster, args) -> int:
    def act() -> None:
        call(cluster, "POST", f"/staff/{quote(args.name, safe='')}/disable")
        print(f"disabled {_clean(args.name)}")

    return _run("staff disable", act)


def cmd_audit(cluster: Cluster, args) -> int:
    def act() -> None:
        entries = audit_entries(cluster, args.limit, book=args.book, staff=args.staff)
        print(json.dumps(entries, indent=2) if args.json else "\n".join(audit_table(entries)))

    return _run("audit", act)


def _run(verb: str, act) -> int:
    try:
        act()
    except StaffCliError as e:
        print(f"bazar: {verb}: {e}", file=sys.stderr)
        return 1
    return 0


def _stdin_password() -> str:
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    password = password.removesuffix("\r")
    if not password:
        raise StaffCliError("no password on the first line of stdin")
    return password


# -- talking to a front-end ----------------------------------------------------------


def call(cluster: Cluster, method: str, path: str, expect=(200,), **kw):
    """The JSON answer of the first front-end that can be reached."""
    response = first_answer(cluster, method, path, **kw)
    return _json(response, expect)


def first_answer(cluster: Cluster, method: str, path: str, **kw):
    """The response of the first front-end that can be reached. A read goes on to the
    next front-end after a 5xx or a timeout too; a write does not, since it may have
    been made there (another front-end would then answer 409 to an add that worked)."""
    import requests  # not at CLI start

    session = procs.http_session()
    headers = {
        "Authorization": f"Bearer {cluster.staff_token}",
        "Accept": "application/json",
        **kw.pop("headers", {}),
    }
    reading = method == "GET"
    failures = []
    for node in cluster.of("frontend"):
        try:
            response = session.request(
                method, node.url + path, headers=headers, timeout=TIMEOUT, **kw
            )
        except requests.Timeout as e:
            if not reading and not isinstance(e, requests.ConnectTimeout):
                raise StaffCliError(
                    f"{node.name} did not answer in time: the change may or may not be made "
                    "(`bazar staff list` or `bazar audit` shows)"
                ) from None
            failures.append(f"{node.name} at {node.url} did not answer ({type(e).__name__})")
            continue
        except OSError as e:  # requests' errors are OSErrors
            failures.append(f"{node.name} at {node.url} cannot be reached ({type(e).__name__})")
            continue
        if response.status_code < 500 or not reading:
            response.node = node  # which front-end: `audit` pages on the same one
            return response
        failures.append(f"{node.name} answered {response.status_code}: {_message(response)}")
    if not failures:
        raise StaffCliError(f"no front-end in {cluster.path}")
    raise StaffCliError("; ".join(failures))


def _json(response, expect=(200,)):
    where = getattr(response, "node", None)
    who = where.name if where is not None else response.url
    if response.status_code not in expect:
        raise StaffCliError(f"{who} answered {response.status_code}: {_message(response)}")
    try:
        return response.json()
    except ValueError:
        raise StaffCliError(f"{who} answered {response.status_code} without JSON") from None


def _message(response) -> str:
    try:
        return _clean(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason or "no message"


def audit_entries(
    cluster: Cluster,
    limit: int,
    book: int | None = None,
    staff: str | None = None,
    page: int = PAGE_MAX,
) -> list[dict]:
    """Up to `limit` entries, newest first, following rel="next" on one front-end."""
    params = {"book": book, "staff": staff, "limit": min(limit, page)}
    response = first_answer(cluster, "GET", "/audit", params=params)
    front = response.node
    entries: list[dict] = []
    while True:
        entries += _page(_json(response))
        following = response.links.get("next", {}).get("url")
        if len(entries) >= limit or not following:
            return entries[:limit]
        url = urljoin(response.url, following)
        response = _follow(cluster, front, url)


def _follow(cluster: Cluster, front, url: str):
    headers = {"Authorization": f"Bearer {cluster.staff_token}", "Accept": "application/json"}
    try:
        response = procs.http_session().get(url, headers=headers, timeout=TIMEOUT)
    except OSError as e:
        raise StaffCliError(
            f"{front.name} at {front.url} cannot be reached for the next page ({type(e).__name__})"
        ) from None
    response.node = front
    return response


def _page(body) -> list[dict]:
    if not isinstance(body, list):
        raise StaffCliError("the front-end's audit page is not a list")
    return body


# -- tables ----------------------------------------------------------------------


def account_table(accounts: list[dict]) -> list[str]:
    rows = [
        (
            _clean(a.get("name")),
            _clean(a.get("role")),
            f"disabled {_clean(a['disabled_at'])}" if a.get("disabled_at") else _state(a),
            _clean(a.get("created_at")),
        )
        for a in accounts
    ]
    return _table(("name", "role", "state", "created"), rows, empty="(no accounts)")


def _state(account: dict) -> str:
    return "disabled" if account.get("disabled") else "active"


def audit_table(entries: list[dict]) -> list[str]:
    rows = [
        (
            str(e.get("id", "")),
            _clean(e.get("at")),
            _clean(e.get("staff")),
            _clean(e.get("action")),
            "-" if e.get("book_id") is None else str(e["book_id"]),
            changes(e.get("before"), e.get("after")),
            _clean(e.get("request_id")),
        )
        for e in entries
    ]
    header = ("id", "at", "staff", "action", "book", "changes", "request")
    return _table(header, rows, empty="(no entries)")


def changes(before, after) -> str:
    """`field: old -> new` for each field the write changed and `field=value` for one it
    set to what it was (an add: every field), cut to CHANGES_WIDTH."""
    before, after = before or {}, after or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        text = f"{_value(before)} -> {_value(after)}"
    else:
        parts = []
        for key in [*after, *(k for k in before if k not in after)]:
            old, new = before.get(key), after.get(key)
            same = key not in before or old == new
            parts.append(
                f"{key}={_value(new)}" if same else f"{key}: {_value(old)} -> {_value(new)}"
            )
        text = ", ".join(parts)
    text = _clean(text)
    return text if len(text) <= CHANGES_WIDTH else text[: CHANGES_WIDTH - 1] + "…"


def _value(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _table(header: tuple, rows: list[tuple], empty: str) -> list[str]:
    if not rows:
        return [empty]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, rows)]


def _clean(text) -> str:
    """No control characters on the operator's terminal."""
    return _CONTROL.sub("?", "" if text is None else str(text))
