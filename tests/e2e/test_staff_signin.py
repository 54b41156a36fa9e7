"""Signing in, on a cluster of two front-ends (docs/staff.md): the token `POST /login`
gives, hostile tokens (all 401, never 500), the lockout after wrong passwords (429
with Retry-After, even for the right password), one 401 for every wrong sign-in, and
`disable` taking effect on both front-ends within 2 s.

The module's cluster has short lockout settings, and each lockout test signs in from
a loopback address of its own (127.0.0.x), so no test's failures count in another's.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.accounts import (
    MANAGER_ONLY,
    WRONG,
    Staff,
    b64,
    claims,
    forge,
    from_address,
    new_name,
    payload_of,
    signing_key,
    with_staff_settings,
)
from tests.support.cluster import Api, LocalCluster, assert_error, wait_until

# Failures count within LOCKOUT_SECONDS of the first: 3 s holds 3-4 Argon2 checks on a
# loaded machine; the name lockout test waits it out once.
TOKEN_MINUTES, LOGIN_FAILURES, ADDRESS_FAILURES, LOCKOUT_SECONDS = 2, 3, 4, 3
DISABLE_WITHIN = 2.0  # seconds, on every front-end (docs/staff.md)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("signin"), frontends=2, orders=1)
    with_staff_settings(
        c,
        token_minutes=TOKEN_MINUTES,
        login_failures=LOGIN_FAILURES,
        address_failures=ADDRESS_FAILURES,
        lockout_seconds=LOCKOUT_SECONDS,
    )
    c.up()
    yield c
    c.discard()


@pytest.fixture(scope="module")
def fronts(cluster) -> list[Staff]:
    """Staff on frontend-1 and on frontend-2."""
    token = cluster.cluster.staff_token
    return [Staff(Api(cluster.url_of(n), token)) for n in cluster.names("frontend")]


@pytest.fixture(scope="module")
def staff(fronts) -> Staff:
    return fronts[0]


@pytest.fixture(scope="module")
def clerk(staff) -> tuple[str, str]:
    """A clerk and a token it signed in for."""
    return staff.signed_in("clerk")


@pytest.fixture(scope="module")
def key(cluster) -> bytes:
    return signing_key(cluster.cluster.cluster_secret)


def books(staff: Staff, token: str):
    """GET /books (a clerk may) with `token` as it is sent."""
    return staff.api.get("/books", headers={"Authorization": f"Bearer {token}"})


# -- the token -------------------------------------------------------------------------
def test_login_gives_a_token_that_names_the_account_and_its_role(staff, fronts):
    name, password = staff.account("clerk")
    response = staff.login(name, password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expires_at", "name", "role"}
    assert (body["name"], body["role"]) == (name, "clerk")
    claimed = payload_of(body["token"])
    assert (claimed["sub"], claimed["role"], claimed["iss"]) == (name, "clerk", "bazar")
    assert claimed["exp"] - claimed["iat"] == TOKEN_MINUTES * 60  # [staff] token_minutes
    assert claimed["nbf"] <= time.time() + 1
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires == datetime.fromtimestamp(claimed["exp"], UTC)
    for front in fronts:  # every front-end takes it
        assert books(front, body["token"]).status_code == 200


def test_a_token_signed_with_the_key_from_the_cluster_secret_is_taken(staff, clerk, key):
    """The key derivation of docs/staff.md, from outside."""
    assert books(staff, forge(claims(clerk[0], "clerk"), key)).status_code == 200


def test_the_role_that_counts_is_the_accounts_role_now(staff, clerk, key):
    """A correctly signed token claiming `manager` for a clerk is still a clerk."""
    token = forge(claims(clerk[0], "manager"), key)
    response = staff.audit(token=token)
    assert_error(response, 403)
    assert response.json()["message"] == MANAGER_ONLY


def hostile(name: str, real: str, key: bytes) -> dict[str, str]:
    """Tokens that must all be refused, by what is wrong with them."""
    header, payload, signature = real.split(".")
    claimed = payload_of(real)
    escalated = b64({**claimed, "role": "manager"})
    now = int(time.time())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs_header = b64({"alg": "RS256", "typ": "JWT"})
    confused = forge(claims(name, "clerk"), key).split(".")[2]  # HS256 sig, RS256 header
    return {
        "another key": forge(claims(name, "clerk"), b"k" * 32),
        "another cluster secret": forge(claims(name, "clerk"), signing_key("not our secret")),
        "payload edited: clerk to manager": f"{header}.{escalated}.{signature}",
        "payload edited: another name": f"{header}.{b64({**claimed, 'sub': 'admin'})}.{signature}",
        "signature cut": f"{header}.{payload}.",
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{escalated}.",
        "alg none, PyJWT": forge(claims(name, "manager"), None, algorithm="none"),
        "alg None spelled": f"{b64({'alg': 'None', 'typ': 'JWT'})}.{escalated}.",
        "HS512 with the right key": forge(claims(name, "clerk"), key, algorithm="HS512"),
        "HS384 with the right key": forge(claims(name, "clerk"), key, algorithm="HS384"),
        "RS256": forge(claims(name, "manager"), rsa_key, algorithm="RS256"),
        "RS256 header, HMAC signature": f"{rs_header}.{payload}.{confused}",
        "expired": forge(claims(name, "clerk", iat=now - 900, nbf=now - 900, exp=now - 120), key),
        "nbf in the future": forge(claims(name, "clerk", nbf=now + 120), key),
        "iat and nbf in the future": forge(
            claims(name, "clerk", iat=now + 600, nbf=now + 600, exp=now + 1200), key
        ),
        "no exp": forge({k: v for k, v in claims(name, "clerk").items() if k != "exp"}, key),
        "unknown account": forge(claims("nobody-at-all", "manager"), key),
        "admin by name": forge(claims("admin", "manager"), key),
        "oversized": forge(claims(name, "clerk", pad="x" * 4200), key),
        "garbage": "garbage",
        "three dots of garbage": "a.b.c",
        "empty parts": "..",
        "header not JSON": f"{b64(b'not json')}.{payload}.{signature}",
        "header a list": f"{b64(b'[1, 2]')}.{payload}.{signature}",
        "payload a string": forge_raw(b'"just a string"', key),
        "payload a list": forge_raw(b"[1, 2]", key),
        "not base64": "!!!.???.***",
        "a long token of garbage": "e" * 6000,
    }


def forge_raw(payload: bytes, key: bytes) -> str:
    """An HS256 token, correctly signed, over any payload bytes."""
    head = b64({"alg": "HS256", "typ": "JWT"})
    signing_input = f"{head}.{b64(payload)}".encode()
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{head}.{b64(payload)}.{b64(signature)}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS384/HS512
def test_hostile_tokens_are_all_401_on_every_front_end(fronts, clerk, key):
    tokens = hostile(clerk[0], clerk[1], key)
    assert len(tokens["oversized"]) > 4096
    wrong = {}
    for what, token in tokens.items():
        for front in fronts:
            response = books(front, token)
            if response.status_code != 401 or "message" not in response.json():
                wrong[what] = (front.api.url, response.status_code, response.text[:200])
    assert not wrong, wrong
    assert books(fronts[0], clerk[1]).status_code == 200  # the real one still works


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer", "Token abc", "Bearer a b"]
)
def test_a_malformed_authorization_header_is_401(staff, header):
    response = staff.api.get("/books", headers={"Authorization": header})
    assert_error(response, 401)


# -- wrong passwords ----------------------------------------------------------------------
def test_the_401_says_nothing_of_whether_the_name_exists(staff):
    name, password = staff.account("clerk")
    gone, gone_password = staff.account("clerk")
    assert staff.disable(gone).status_code == 200
    tries = {
        "unknown name": (new_name("nobody"), password),
        "wrong password": (name, password + "x"),
        "disabled account": (gone, gone_password),
        "admin": ("admin", staff.api.staff_token),
    }
    answers = {}
    for i, (what, (who, secret)) in enumerate(tries.items()):
        response = staff.login(who, secret, session=from_address(f"127.0.0.{30 + i}"))
        answers[what] = (
            response.status_code,
            response.content,
            response.headers["Content-Type"],
            response.headers.get("Retry-After"),
            response.headers.get("WWW-Authenticate"),
        )
    assert staff.login(name, password).status_code == 200  # the name was not locked
    assert len(set(answers.values())) == 1, answers
    assert answers["wrong password"][0] == 401
    assert f'"{WRONG}"'.encode() in answers["wrong password"][1]


def test_an_unknown_name_costs_about_what_a_wrong_password_costs(staff):
    """Both check one Argon2 hash: the quickest of each is within a few times the other."""
    name, password = staff.account("clerk")
    times: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for i in range(4):
        for what, who in (("unknown", new_name("nobody")), ("wrong", name)):
            session = from_address(f"127.0.1.{10 * i + len(what)}")
            started = time.perf_counter()
            assert staff.login(who, "not the password", session=session).status_code == 401
            times[what].append(time.perf_counter() - started)
        staff.login(name, password)  # a success clears the name's count
    quickest = {what: min(seconds) for what, seconds in times.items()}
    assert quickest["unknown"] > 0.4 * quickest["wrong"], times
    assert statistics.median(times["unknown"]) > 0.4 * statistics.median(times["wrong"]), times


def test_a_name_is_locked_out_after_repeated_failures_even_for_the_right_password(fronts):
    staff, other = fronts
    name, password = staff.account("clerk")
    first, second = from_address("127.0.0.41"), from_address("127.0.0.42")
    for _ in range(LOGIN_FAILURES):
        assert_error(staff.login(name, "wrong password", session=first), 401, WRONG)
    started = time.monotonic()
    for who, session in ((password, first), ("wrong", first), (password, second)):
        response = staff.login(name, who, session=session)
        assert_error(response, 429)
        assert 1 <= int(response.headers["Retry-After"]) <= LOCKOUT_SECONDS
    assert other.login(name, password, session=second).status_code == 200  # per front-end
    wait_until(
        lambda: staff.login(name, password, session=first).status_code == 200,
        LOCKOUT_SECONDS + 3,
        "the lockout to end",
    )
    assert time.monotonic() - started >= LOCKOUT_SECONDS - 1


def test_an_address_is_locked_out_after_repeated_failures_across_names(staff):
    name, password = staff.account("clerk")
    here = from_address("127.0.0.51")
    for _ in range(ADDRESS_FAILURES):  # one try per name: no name is locked out
        assert_error(staff.login(new_name("nobody"), "wrong password", session=here), 401, WRONG)
    response = staff.login(name, password, session=here)
    assert_error(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= LOCKOUT_SECONDS
    assert staff.login(name, password, session=from_address("127.0.0.52")).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"name": "a"}, {"password": "p" * 10}, {"name": 1, "password": "p" * 10},
     {"name": "a", "password": None}, {"name": "a", "password": "p" * 10, "role": "manager"}],
)  # fmt: skip
def test_a_bad_login_body_is_400(staff, body):
    response = staff.api.send("POST", "/login", json=body)
    assert_error(response, 400)


# -- accounts --------------------------------------------------------------------------------
def test_a_name_is_never_reused_and_admin_is_reserved(staff):
    name, _ = staff.account("clerk")
    assert_error(staff.add(name, "manager", "another password"), 409)
    assert staff.disable(name).status_code == 200
    assert_error(staff.add(name, "clerk", "another password"), 409)
    assert_error(staff.add("admin", "manager", "another password"), 409)


@pytest.mark.parametrize(
    ("name", "role", "password"),
    [("Upper", "clerk", "p" * 10), ("-dash", "clerk", "p" * 10), ("", "clerk", "p" * 10),
     ("x" * 65, "clerk", "p" * 10), ("ok-name", "owner", "p" * 10), ("ok-name", "clerk", "short"),
     ("ok-name", "clerk", "p" * 201), ("sp ace", "clerk", "p" * 10)],
)  # fmt: skip
def test_a_bad_account_is_400(staff, name, role, password):
    assert_error(staff.add(name, role, password), 400)


def test_disable_unknown_is_404(staff):
    assert_error(staff.disable(new_name("nobody")), 404)


def test_disable_takes_effect_on_both_front_ends_within_2_s(fronts):
    staff = fronts[0]
    name, password = staff.account("clerk")
    token = staff.token(name, password)
    for front in fronts:  # each front-end has seen the account enabled
        assert books(front, token).status_code == 200
    assert staff.disable(name).status_code == 200
    acknowledged = time.monotonic()
    refused: set[str] = set()
    late = []  # tokens taken in a request that began more than 2 s after the disable

    def refused_everywhere() -> bool:
        for front in fronts:
            if front.api.url not in refused:
                began = time.monotonic()
                status = books(front, token).status_code
                if status == 401:
                    refused.add(front.api.url)
                elif began > acknowledged + DISABLE_WITHIN:
                    late.append((front.api.url, round(began - acknowledged, 2), status))
        return len(refused) == len(fronts)

    wait_until(refused_everywhere, 10, "every front-end to refuse the token")
    assert not late, late
    for front in fronts:
        assert_error(front.login(name, password), 401, WRONG)
    assert {a["name"]: a["disabled"] for a in staff.accounts().json()}[name] is True
