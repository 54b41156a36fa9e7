"""common/auth.py: HMAC-signed internal calls and the staff bearer token (design §6)."""

import time

import pytest
import requests

from common.auth import (
    MAX_SKEW,
    NONCE_HEADER,
    SIG_HEADER,
    TS_HEADER,
    AuthError,
    NonceBuckets,
    SignatureVerifier,
    SignedAuth,
    check_bearer,
    signature,
)

SECRET = "cluster-secret-0123456789"
BASE = "http://127.0.0.1:8101"


def signed(method="POST", path="/buy/1", json=None, secret=SECRET):
    """A request prepared and signed the way a node sends it."""
    if json is None and method in ("POST", "PUT"):
        json = {"order_id": "abc", "quantity": 1}
    return requests.Request(method, BASE + path, json=json, auth=SignedAuth(secret)).prepare()


def body_of(request):
    body = request.body or b""
    return body.encode() if isinstance(body, str) else body


def crafted(timestamp, nonce="nonce-1", method="GET", path="/sync", body=b""):
    """Signature headers built by hand, to control the timestamp."""
    return {
        TS_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIG_HEADER: signature(SECRET, method, path, timestamp, nonce, body),
    }


# -- round trip ----------------------------------------------------------------


def test_signed_post_verifies():
    request = signed()
    SignatureVerifier(SECRET).verify("POST", "/buy/1", request.headers, body_of(request))


def test_signed_get_without_body_verifies():
    request = signed("GET", "/lookup/3")
    SignatureVerifier(SECRET).verify("GET", "/lookup/3", request.headers, b"")


def test_signing_adds_the_three_headers():
    request = signed()
    assert all(request.headers.get(h) for h in (TS_HEADER, NONCE_HEADER, SIG_HEADER))


def test_each_signed_request_gets_a_fresh_nonce():
    assert signed().headers[NONCE_HEADER] != signed().headers[NONCE_HEADER]


def test_encoded_space_in_url_verifies_against_decoded_path():
    request = signed("GET", "/search/distributed%20systems")
    SignatureVerifier(SECRET).verify("GET", "/search/distributed systems", request.headers, b"")


# -- refusals ------------------------------------------------------------------


def test_tampered_body_is_refused():
    request = signed()
    with pytest.raises(AuthError):
        SignatureVerifier(SECRET).verify(
            "POST", "/buy/1", request.headers, b'{"order_id": "abc", "quantity": 900}'
        )


def test_wrong_secret_is_refused():
    request = signed(secret="another-secret-0123456789")
    with pytest.raises(AuthError):
        SignatureVerifier(SECRET).verify("POST", "/buy/1", request.headers, body_of(request))


def test_wrong_path_is_refused():
    request = signed()
    with pytest.raises(AuthError):
        SignatureVerifier(SECRET).verify("POST", "/buy/2", request.headers, body_of(request))


def test_wrong_method_is_refused():
    request = signed()
    with pytest.raises(AuthError):
        SignatureVerifier(SECRET).verify("PUT", "/buy/1", request.headers, body_of(request))


@pytest.mark.parametrize("missing", [TS_HEADER, NONCE_HEADER, SIG_HEADER])
def test_missing_header_is_refused(missing):
    request = signed()
    headers = {k: v for k, v in request.headers.items() if k != missing}
    with pytest.raises(AuthError, match="missing"):
        SignatureVerifier(SECRET).verify("POST", "/buy/1", headers, body_of(request))


def test_unsigned_request_is_refused():
    with pytest.raises(AuthError):
        SignatureVerifier(SECRET).verify("GET", "/sync", {}, b"")


def test_replayed_nonce_is_refused():
    request = signed()
    verifier = SignatureVerifier(SECRET)
    verifier.verify("POST", "/buy/1", request.headers, body_of(request))
    with pytest.raises(AuthError, match="replay"):
        verifier.verify("POST", "/buy/1", request.headers, body_of(request))


def test_nonces_are_forgotten_only_once_their_timestamps_are_refused_anyway():
    seen, now = NonceBuckets(MAX_SKEW), time.time()
    assert seen.add("old", now - MAX_SKEW + 1)
    assert not seen.add("old", now - MAX_SKEW + 1)  # still acceptable: still remembered
    assert seen.add("fresh", now)
    assert seen.add("later", now + 3 * MAX_SKEW, now=now + 3 * MAX_SKEW)
    assert len(seen) == 1  # "old" and "fresh" would fail the skew check by now


def test_remembered_nonces_stay_bounded_under_steady_traffic():
    seen, start = NonceBuckets(MAX_SKEW), time.time()
    for n in range(20_000):  # 20,000 requests spread over 10 windows
        stamp = start + n * 10 * MAX_SKEW / 20_000
        assert seen.add(f"n{n}", stamp, now=stamp)
    assert len(seen) <= 3 * 2_000  # about two to three windows' worth, never all 20,000


def test_crafted_recent_timestamp_verifies():
    headers = crafted(f"{time.time() - MAX_SKEW + 5:.3f}")
    SignatureVerifier(SECRET).verify("GET", "/sync", headers, b"")


def test_timestamp_older_than_max_skew_is_refused():
    headers = crafted(f"{time.time() - MAX_SKEW - 10:.3f}")
    with pytest.raises(AuthError, match="timestamp"):
        SignatureVerifier(SECRET).verify("GET", "/sync", headers, b"")


def test_timestamp_too_far_in_the_future_is_refused():
    headers = crafted(f"{time.time() + MAX_SKEW + 10:.3f}")
    with pytest.raises(AuthError, match="timestamp"):
        SignatureVerifier(SECRET).verify("GET", "/sync", headers, b"")


def test_non_numeric_timestamp_is_refused():
    with pytest.raises(AuthError, match="timestamp"):
        SignatureVerifier(SECRET).verify("GET", "/sync", crafted("yesterday"), b"")


def test_nan_timestamp_is_refused():
    with pytest.raises(AuthError):
        SignatureVerifier(SECRET).verify("GET", "/sync", crafted("nan"), b"")


# -- staff bearer token --------------------------------------------------------

TOKEN = "staff-token-0123456789"


def test_bearer_with_right_token_passes():
    check_bearer(f"Bearer {TOKEN}", TOKEN)


def test_bearer_scheme_is_case_insensitive():
    check_bearer(f"bearer {TOKEN}", TOKEN)


def test_bearer_with_wrong_token_is_refused():
    with pytest.raises(AuthError, match="wrong"):
        check_bearer("Bearer not-the-token-0123456789", TOKEN)


def test_bearer_with_token_prefix_is_refused():
    with pytest.raises(AuthError):
        check_bearer(f"Bearer {TOKEN[:-1]}", TOKEN)


def test_missing_authorization_header_is_refused():
    with pytest.raises(AuthError):
        check_bearer(None, TOKEN)


def test_bearer_without_token_is_refused():
    with pytest.raises(AuthError):
        check_bearer("Bearer", TOKEN)


def test_non_bearer_scheme_is_refused():
    with pytest.raises(AuthError):
        check_bearer(f"Basic {TOKEN}", TOKEN)


def test_signature_covers_the_query_string():
    request = requests.Request("GET", "http://127.0.0.1:1/queue/x?limit=5").prepare()
    SignedAuth(SECRET)(request)
    verifier = SignatureVerifier(SECRET)
    with pytest.raises(AuthError):
        verifier.verify("GET", "/queue/x?limit=5000", request.headers, b"")
    verifier.verify("GET", "/queue/x?limit=5", request.headers, b"")
