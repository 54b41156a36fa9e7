"""`bazar staff add|list|disable` and `bazar audit` against a real cluster, as an operator
runs them: they act as `admin` through the first front-end that answers, print one
line on stderr and exit 1 when refused or when no front-end can be reached, and
`bazar check` compares the accounts and the trail of every catalog replica."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from common.ops import cli, staffcli
from tests.support.accounts import Staff, new_name
from tests.support.cluster import ROOT, free_ports


@pytest.fixture(scope="module")
def c(shared_cluster):
    return shared_cluster


@pytest.fixture(scope="module")
def staff(c) -> Staff:
    return Staff(c.api)


def bazar(c, *args: str, stdin: str | None = None, config=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "common.ops.cli", *args, "--config", str(config or c.config_path)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        cwd=ROOT,
    )


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_add_prints_a_generated_password_that_signs_in(c, staff):
    name = new_name("cli")
    result = bazar(c, "staff", "add", name, "--role", "manager")
    assert result.returncode == 0, result.stderr
    shown = [line for line in result.stdout.splitlines() if line.startswith("password: ")]
    assert len(shown) == 1, result.stdout
    password = shown[0].removeprefix("password: ")
    assert len(password) >= 16
    signed = staff.login(name, password)
    assert signed.status_code == 200 and signed.json()["role"] == "manager"


def test_add_with_password_stdin_uses_the_first_line_and_prints_no_password(c, staff):
    name, password = new_name("cli"), "a pass phrase from stdin"
    result = bazar(
        c, "staff", "add", name, "--role", "clerk", "--password-stdin", stdin=password + "\nrest\n"
    )
    assert result.returncode == 0, result.stderr
    assert "password" not in result.stdout and password not in result.stdout
    assert staff.login(name, password).json()["role"] == "clerk"


def test_add_an_existing_name_is_exit_1_with_the_409(c, staff):
    name, _ = staff.account("clerk")
    result = bazar(c, "staff", "add", name, "--role", "clerk")
    one_line_error(result, "409", name)


def test_add_a_short_password_is_exit_1_with_the_400(c):
    result = bazar(c, "staff", "add", new_name("cli"), "--role", "clerk", "--password-stdin",
                   stdin="short\n")  # fmt: skip
    one_line_error(result, "400", "password")


def test_add_without_a_password_on_stdin_is_exit_1(c):
    result = bazar(c, "staff", "add", new_name("cli"), "--role", "clerk", "--password-stdin",
                   stdin="")  # fmt: skip
    one_line_error(result, "stdin")


@pytest.mark.parametrize(
    "args", [("staff",), ("staff", "add", "x"), ("staff", "add", "x", "--role", "owner"),
             ("audit", "--limit", "0"), ("audit", "--book", "one")],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(c, args, capsys):
    """argparse's refusals, in this process (no node is asked)."""
    with pytest.raises(SystemExit) as exited:
        cli.main([*args, "--config", str(c.config_path)])
    assert exited.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_list_shows_accounts_as_a_table_and_as_json(c, staff):
    clerk, _ = staff.account("clerk")
    manager, _ = staff.account("manager")
    assert staff.disable(clerk).status_code == 200
    result = bazar(c, "staff", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert cells(lines[0]) == ["name", "role", "state", "created"]
    rows = {cells(line)[0]: cells(line) for line in lines[2:]}
    assert rows[clerk][1] == "clerk" and rows[clerk][2].startswith("disabled")
    assert rows[manager][1:3] == ["manager", "active"]
    listed = json.loads(bazar(c, "staff", "list", "--json").stdout)
    assert listed == staff.accounts().json()
    assert "password_hash" not in result.stdout + json.dumps(listed)


def test_disable_stops_sign_in_and_an_unknown_name_is_exit_1_with_the_404(c, staff):
    name, password = staff.account("clerk")
    result = bazar(c, "staff", "disable", name)
    assert result.returncode == 0, result.stderr
    assert name in result.stdout
    assert staff.login(name, password).status_code == 401
    one_line_error(bazar(c, "staff", "disable", new_name("nobody")), "404")


def new_book(c, staff: Staff) -> dict:
    body = {"title": "CLI trail", "topic": new_name("t"), "cost": 5.0, "quantity": 3}
    response = c.api.send("POST", "/books", headers=staff.bearer(), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_audit_prints_the_trail_of_a_book_newest_first(c, staff):
    book = new_book(c, staff)
    assert c.api.set_price(book["id"], 6.5).status_code == 200
    assert c.api.set_quantity(book["id"], 9).status_code == 200
    result = bazar(c, "audit", "--book", str(book["id"]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert cells(lines[0]) == ["id", "at", "staff", "action", "book", "changes", "request"]
    rows = [cells(line) for line in lines[2:]]
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("admin", "quantity", str(book["id"])),
        ("admin", "price", str(book["id"])),
        ("admin", "add", str(book["id"])),
    ]
    assert "3 -> 9" in lines[2]
    entries = json.loads(bazar(c, "audit", "--book", str(book["id"]), "--json").stdout)
    assert entries == staff.entries(book=book["id"])
    assert [r[0] for r in rows] == [str(e["id"]) for e in entries]


def test_audit_by_staff_and_limit(c, staff):
    name, password = staff.account("manager")
    token, book = staff.token(name, password), new_book(c, staff)
    for price in (1, 2, 3):
        assert c.api.staff("price", book["id"], {"price": price}, token=token).ok
    result = bazar(c, "audit", "--staff", name, "--limit", "2", "--json")
    entries = json.loads(result.stdout)
    assert [e["after"] for e in entries] == [{"cost": 3.0}, {"cost": 2.0}]
    assert {e["staff"] for e in entries} == {name}
    assert bazar(c, "audit", "--staff", new_name("nobody")).stdout.strip() == "(no entries)"


def test_audit_follows_link_next_until_the_limit(c, staff):
    """The verb's paging, in pages of 2 (the CLI asks pages of up to 1000)."""
    name, password = staff.account("manager")
    token, book = staff.token(name, password), new_book(c, staff)
    for quantity in range(5):
        assert c.api.staff("item", book["id"], {"quantity": quantity}, token=token).ok
    every = staff.entries(staff=name)
    assert len(every) == 5
    assert staffcli.audit_entries(c.cluster, 100, staff=name, page=2) == every
    assert staffcli.audit_entries(c.cluster, 3, staff=name, page=2) == every[:3]


def test_no_front_end_to_reach_is_exit_1(c, tmp_path):
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    config = tmp_path / "cluster.toml"
    config.write_text(c.config_path.read_text().replace(c.url_of("frontend-1"), dead))
    for args in (("staff", "list"), ("staff", "add", "x", "--role", "clerk"), ("audit",)):
        one_line_error(bazar(c, *args, config=config), "frontend-1", "cannot be reached")


def test_a_wrong_staff_token_is_exit_1_with_the_401(c, tmp_path):
    config = tmp_path / "cluster.toml"
    text = c.config_path.read_text()
    config.write_text(text.replace(c.cluster.staff_token, "not-the-staff-token-at-all"))
    one_line_error(bazar(c, "staff", "list", config=config), "401")


def test_check_compares_accounts_and_the_trail(c, staff):
    staff.account("clerk")
    c.wait_converged()
    out = c.check().stdout
    assert re.search(r"^same   catalog staff_accounts: \d+ rows on catalog-1, catalog-2", out, re.M)
    assert re.search(r"^same   catalog audit_log: \d+ rows on catalog-1, catalog-2", out, re.M)
