"""The cluster page off loopback: a manager signs in on a form, the page reads a cookie.

The front-end's own routes through Flask's test client; the accounts a catalog
would hold come from a stand-in `AccountBook` (no cluster runs here).
"""

from __future__ import annotations

import pytest

from common.identity import passwords

AWAY = {"REMOTE_ADDR": "198.18.0.9"}
PASSWORDS = {"max": "manager pass phrase", "ana": "clerk pass phrase"}


class Accounts:
    """What a catalog would answer for each name."""

    def __init__(self):
        self.rows = {
            name: {"name": name, "role": role, "disabled": False, "password_hash": hashed}
            for name, role, hashed in (
                ("max", "manager", passwords.hash_password(PASSWORDS["max"])),
                ("ana", "clerk", passwords.hash_password(PASSWORDS["ana"])),
            )
        }

    def get(self, name: str, fresh: bool = False):
        return self.rows.get(name)

    def forget(self, name: str) -> None:
        pass


@pytest.fixture
def app(frontend_app):
    frontend_app.extensions["frontend.accounts"] = Accounts()
    return frontend_app


def sign_in(client, name: str, password: str):
    return client.post(
        "/cluster/sign-in", data={"name": name, "password": password}, environ_base=AWAY
    )


def test_off_loopback_the_page_is_a_sign_in_form_that_shows_nothing_inside(app):
    page = app.test_client().get("/cluster", environ_base=AWAY)
    assert page.status_code == 401 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert 'action="/cluster/sign-in"' in text and 'type="password"' in text
    assert "catalog-1" not in text and "127.0.0.1" not in text
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]


def test_a_manager_signs_in_and_the_cookie_opens_the_page_and_its_data(app):
    client = app.test_client()
    signed = sign_in(client, "max", PASSWORDS["max"])
    assert signed.status_code == 303 and signed.headers["Location"].endswith("/cluster")
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = client.get("/cluster", environ_base=AWAY)
    assert page.status_code == 200 and "catalog-1" in page.get_data(as_text=True)
    assert client.get("/cluster.json", environ_base=AWAY).get_json()["node"] == "frontend-1"


@pytest.mark.parametrize(
    ("name", "password", "status", "words"),
    [
        ("max", "not the password", 401, "wrong name or password"),
        ("nobody", "not the password", 401, "wrong name or password"),
        ("ana", PASSWORDS["ana"], 403, "needs the manager role"),
        ("", "", 400, "give a name and a password"),
    ],
)
def test_a_refused_sign_in_shows_the_form_again_and_sets_no_cookie(
    app, name, password, status, words
):
    client = app.test_client()
    answer = sign_in(client, name, password)
    assert answer.status_code == status and words in answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    assert client.get("/cluster.json", environ_base=AWAY).status_code == 401


def test_a_forged_cookie_is_refused_and_says_why(app):
    client = app.test_client()
    client.set_cookie("bazar_staff", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYXgifQ.")
    page = client.get("/cluster", environ_base=AWAY)
    assert page.status_code == 401 and "algorithm" in page.get_data(as_text=True)
    assert client.get("/cluster.json", environ_base=AWAY).status_code == 401


def test_a_clerk_token_is_not_enough_for_the_data(app):
    client = app.test_client()
    token = client.post(
        "/login", json={"name": "ana", "password": PASSWORDS["ana"]}, environ_base=AWAY
    ).get_json()["token"]
    refused = client.get(
        "/cluster.json", headers={"Authorization": f"Bearer {token}"}, environ_base=AWAY
    )
    assert refused.status_code == 403 and refused.get_json()["needs"] == "manager"
