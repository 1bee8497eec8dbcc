"""JwtVerifier against a real local issuer (tests/oauth_issuer.py): discovery, JWKS caching and rotation, the
throttle on forced refreshes, an issuer that goes away and comes back, and every way a token must be refused."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import anyio
import jwt
import pytest

from mcp_server.oauth import LEEWAY_S, JwtIdentity, JwtVerifier, _usable_algorithms, metadata_urls
from tests.oauth_issuer import LocalIssuer, generate_key

pytestmark = [pytest.mark.anyio]

AUDIENCE = "http://127.0.0.1:8000/mcp"
OTHER_RSA = generate_key("RS256")


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    """A fresh issuer, for tests that rotate its keys, stop it or count its requests."""
    with LocalIssuer(audience=AUDIENCE) as running:
        yield running


@pytest.fixture(scope="module")
def shared() -> Iterator[LocalIssuer]:
    """One issuer for the tests that only mint with its first key (an RSA key published as RS256)."""
    with LocalIssuer(audience=AUDIENCE) as running:
        yield running


@pytest.fixture(scope="module")
def keyring() -> Iterator[LocalIssuer]:
    """One issuer that tests add keys to; they mint with the kid rotate() returned, never with the current key."""
    with LocalIssuer(audience=AUDIENCE) as running:
        yield running


def verifier_for(issuer: LocalIssuer, **options) -> JwtVerifier:
    return JwtVerifier(issuer.issuer, AUDIENCE, **options)


def exp_of(token: str) -> int:
    return jwt.decode(token, options={"verify_signature": False})["exp"]


async def test_a_good_rsa_token_maps_to_an_identity(shared):
    token = shared.mint({"sub": "user-1", "client_id": "cli-7", "scope": "memory.read  memory.write"})
    identity = await verifier_for(shared).verify(token)
    assert identity == JwtIdentity(
        user="user-1",
        agent=None,
        subject="user-1",
        issuer=shared.issuer,
        client_id="cli-7",
        scopes=["memory.read", "memory.write"],
        expires_at=exp_of(token),
    )


async def test_a_good_ec_token_with_email_as_user_and_an_agent_claim(keyring):
    kid = keyring.rotate("ES256")
    verifier = verifier_for(keyring, user_claim="email", agent_claim="agent")
    claims = {"sub": "00u1", "email": "ada@example.com", "email_verified": True, "agent": "planner", "azp": "desk"}
    token = keyring.mint(claims | {"scp": ["memory.read", 7, "memory.write"]}, key=kid)
    identity = await verifier.verify(token)
    assert identity == JwtIdentity(
        user="ada@example.com",
        agent="planner",
        subject="00u1",
        issuer=keyring.issuer,
        client_id="desk",
        scopes=["memory.read", "memory.write"],
        expires_at=exp_of(token),
    )
    # No client_id nor azp: the subject is the client; `scp` as Entra writes it, one string.
    identity = await verifier.verify(keyring.mint({"sub": "00u1", "email": "ada@example.com", "scp": "a b"}, key=kid))
    assert identity is not None
    assert (identity.agent, identity.client_id, identity.scopes) == (None, "00u1", ["a", "b"])


@pytest.mark.parametrize(
    ("alg", "advertise_alg"),
    [("ES384", True), ("ES512", True), ("EdDSA", True), ("PS256", True), ("RS512", True), ("PS384", False)],
)
async def test_every_accepted_algorithm_verifies(keyring, alg, advertise_alg):
    kid = keyring.rotate(alg, advertise_alg=advertise_alg)
    assert await verifier_for(keyring).verify(keyring.mint({"sub": "u"}, key=kid)) is not None


async def test_a_key_without_alg_verifies_only_what_its_type_allows(keyring):
    kid = keyring.rotate("RS256", advertise_alg=False)
    verifier = verifier_for(keyring)
    assert await verifier.verify(keyring.mint({"sub": "u"}, key=kid, alg="PS512")) is not None
    assert await verifier.verify(keyring.mint({"sub": "u"}, key=kid, alg="HS256")) is None


def _now() -> int:
    return int(time.time())


REFUSED: dict[str, Callable[[LocalIssuer], str]] = {
    "wrong audience": lambda i: i.mint({"sub": "u", "aud": "http://127.0.0.1:9/other"}),
    "audience list without ours": lambda i: i.mint({"sub": "u", "aud": ["a", "b"]}),
    "no audience": lambda i: i.mint({"sub": "u", "aud": None}),
    "wrong issuer": lambda i: i.mint({"sub": "u", "iss": "http://127.0.0.1:9"}),
    "issuer with a trailing slash": lambda i: i.mint({"sub": "u", "iss": i.issuer + "/"}),
    "no issuer": lambda i: i.mint({"sub": "u", "iss": None}),
    "signed by another key under the right kid": lambda i: i.mint({"sub": "u"}, key=OTHER_RSA),
    "alg none": lambda i: i.mint({"sub": "u"}, alg="none"),
    "alg none without kid": lambda i: i.mint({"sub": "u"}, alg="none", kid=None),
    "HS256 with the public key as secret": lambda i: i.mint({"sub": "u"}, alg="HS256"),
    "HS512 with the public key as secret": lambda i: i.mint({"sub": "u"}, alg="HS512"),
    "PS256 with a key published as RS256": lambda i: i.mint({"sub": "u"}, alg="PS256"),
    "expired beyond the leeway": lambda i: i.mint({"sub": "u", "exp": _now() - int(LEEWAY_S) - 30}),
    "no exp": lambda i: i.mint({"sub": "u", "exp": None}),
    "exp as a string": lambda i: i.mint({"sub": "u", "exp": str(_now() + 300)}),
    "not yet valid": lambda i: i.mint({"sub": "u", "nbf": _now() + 300}),
    "issued in the future": lambda i: i.mint({"sub": "u", "iat": _now() + 300}),
    "no sub": lambda i: i.mint({"sub": None, "client_id": "c"}),
    "empty sub": lambda i: i.mint({"sub": ""}),
    "sub not a string": lambda i: i.mint({"sub": 42}),
    "kid not a string": lambda i: i.mint({"sub": "u"}, kid=7),
    "unknown critical header": lambda i: i.mint({"sub": "u"}, headers={"crit": ["exp-x"], "exp-x": 1}),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_token_is_refused_and_never_logged(shared, caplog, case):
    verifier = verifier_for(shared)
    token = REFUSED[case](shared)
    with caplog.at_level(logging.DEBUG, logger="mcp_server.oauth"):
        assert await verifier.verify(token) is None
    signature = token.rsplit(".", 1)[-1]
    assert token not in caplog.text
    assert not signature or signature not in caplog.text
    # The same verifier still accepts a good token: a refusal leaves no state behind.
    assert await verifier.verify(shared.mint({"sub": "u"})) is not None


async def test_expiry_within_the_leeway_is_accepted(shared):
    assert await verifier_for(shared).verify(shared.mint({"sub": "u", "exp": _now() - 5})) is not None


async def test_user_and_agent_claims_must_be_usable(shared):
    by_email = verifier_for(shared, user_claim="email", agent_claim="agent")
    assert await by_email.verify(shared.mint({"sub": "u"})) is None  # no email
    assert await by_email.verify(shared.mint({"sub": "u", "email": ""})) is None
    assert await by_email.verify(shared.mint({"sub": "u", "email": "a@example.com", "email_verified": False})) is None
    assert await by_email.verify(shared.mint({"sub": "u", "email": "a@example.com", "agent": ["x"]})) is None
    assert await by_email.verify(shared.mint({"sub": "u", "email": "a@example.com"})) is not None


@pytest.mark.parametrize(
    "garble",
    [
        lambda t: "",
        lambda t: "garbage",
        lambda t: "a.b.c",
        lambda t: "e30.e30.e30",  # `{}` header and payload
        lambda t: "....",
        lambda t: "é.é.é",
        lambda t: t[:-7],
        lambda t: t[: len(t) // 2],
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.rsplit(".", 1)[0] + ".",
        lambda t: t + ".x",
        lambda t: t + "x" * 20_000,
        lambda t: f"Bearer {t}",
        lambda t: ".".join(reversed(t.split("."))),
    ],
)
async def test_garbage_and_truncated_tokens_are_refused(shared, garble):
    verifier = verifier_for(shared)
    assert await verifier.verify(garble(shared.mint({"sub": "u"}))) is None


async def test_no_single_character_change_raises_or_changes_the_identity(shared):
    since = len(shared.requests)
    verifier = verifier_for(shared)
    token = shared.mint({"sub": "u", "scope": "a"})
    original = await verifier.verify(token)
    assert original is not None
    for position, char in enumerate(token):
        mutated = token[:position] + ("A" if char != "A" else "B") + token[position + 1 :]
        # A change in a segment's last character may touch only its unused low bits and decode to the same bytes.
        assert await verifier.verify(mutated) in (None, original)
    assert shared.requests[since:] == [shared.metadata_path, shared.jwks_path]


async def test_an_unknown_kid_after_rotation_is_accepted_after_a_refresh(issuer):
    verifier = verifier_for(issuer, refresh_interval_s=0.2)
    old_kid = issuer.kid
    assert await verifier.verify(issuer.mint({"sub": "u"})) is not None
    issuer.rotate("ES256")
    await anyio.sleep(0.25)
    assert await verifier.verify(issuer.mint({"sub": "u"})) is not None
    assert await verifier.verify(issuer.mint({"sub": "u"}, key=old_kid)) is not None  # still published
    assert issuer.requests.count(issuer.jwks_path) == 2
    assert issuer.requests.count(issuer.metadata_path) == 1  # the jwks_uri is cached


async def test_random_kids_do_not_cause_a_fetch_each(issuer):
    verifier = verifier_for(issuer)  # the default interval: nothing in this test waits for it
    assert await verifier.verify(issuer.mint({"sub": "u"})) is not None
    for n in range(30):
        assert await verifier.verify(issuer.mint({"sub": "u"}, kid=f"random-{n}")) is None
    # Even a real rotation waits for the interval: that is the price of the throttle.
    issuer.rotate("ES256")
    assert await verifier.verify(issuer.mint({"sub": "u"})) is None
    assert issuer.requests == [issuer.metadata_path, issuer.jwks_path]


async def test_random_kids_fetch_at_most_once_per_interval(shared):
    since = len(shared.requests)
    verifier = verifier_for(shared, refresh_interval_s=0.2)
    start = time.monotonic()
    while time.monotonic() - start < 0.7:
        await verifier.verify(shared.mint({"sub": "u"}, kid=f"random-{time.monotonic()}"))
        await anyio.sleep(0.005)
    # The first fetch, then at most one more per interval that has passed while the loop ran.
    assert 2 <= shared.requests[since:].count(shared.jwks_path) <= 4


async def test_concurrent_first_requests_share_one_fetch(shared):
    since = len(shared.requests)
    verifier = verifier_for(shared)
    token = shared.mint({"sub": "u"})
    results = []

    async def check() -> None:
        results.append(await verifier.verify(token))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(check)
    assert len(results) == 20
    assert all(result is not None for result in results)
    assert shared.requests[since:] == [shared.metadata_path, shared.jwks_path]


async def test_an_unreachable_issuer_refuses_tokens_and_recovers(issuer, caplog):
    token = issuer.mint({"sub": "u"})
    issuer.stop()
    verifier = verifier_for(issuer, refresh_interval_s=0.5)
    with caplog.at_level(logging.DEBUG, logger="mcp_server.oauth"):
        assert await verifier.verify(token) is None
        assert await verifier.verify(token) is None  # within the interval: no second attempt
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert issuer.issuer in warnings[0].getMessage()
    assert token not in caplog.text
    assert token.rsplit(".", 1)[-1] not in caplog.text
    issuer.start()
    await anyio.sleep(0.55)
    assert await verifier.verify(token) is not None


async def test_cached_keys_keep_verifying_while_the_issuer_is_down(issuer):
    verifier = verifier_for(issuer, refresh_interval_s=0.2)
    assert await verifier.verify(issuer.mint({"sub": "u"})) is not None
    issuer.stop()
    await anyio.sleep(0.25)
    assert await verifier.verify(issuer.mint({"sub": "u"}, kid="unknown")) is None  # its refresh fails quietly
    assert await verifier.verify(issuer.mint({"sub": "u"})) is not None


async def test_old_keys_are_fetched_again_so_withdrawn_keys_stop_verifying(issuer):
    verifier = verifier_for(issuer, refresh_interval_s=0.1, keys_max_age_s=0.5)
    old_token = issuer.mint({"sub": "u"})
    assert await verifier.verify(old_token) is not None
    issuer.rotate("ES256")
    issuer.override(issuer.jwks_path, {"keys": [k for k in issuer.jwks()["keys"] if k["kid"] == issuer.kid]})
    assert await verifier.verify(old_token) is not None  # the cached keys are young enough
    await anyio.sleep(0.55)
    assert await verifier.verify(old_token) is None
    assert await verifier.verify(issuer.mint({"sub": "u"})) is not None
    assert issuer.requests.count(issuer.jwks_path) == 2


async def test_an_issuer_that_never_answers_times_out(shared, caplog):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers them
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        verifier = JwtVerifier(url, AUDIENCE, timeout_s=0.3)
        token = shared.mint({"sub": "u", "iss": url})
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="mcp_server.oauth"):
            assert await verifier.verify(token) is None
        assert time.monotonic() - start < 2
        assert "cannot fetch its signing keys" in caplog.text


async def test_a_misbehaving_issuer_never_makes_verify_raise(issuer, caplog):
    token = issuer.mint({"sub": "u"})
    metadata = {"issuer": issuer.issuer, "jwks_uri": f"{issuer.issuer}{issuer.jwks_path}"}
    secret_jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": issuer.kid}]}
    huge_jwks = {"keys": [{"kid": str(n), "kty": "RSA", "n": "x" * 1000} for n in range(1200)]}
    hostile = [  # (path, document, what the warning says, or None when the keys load but verify nothing)
        (issuer.metadata_path, metadata | {"jwks_uri": "http://[not-a-url"}, "no usable jwks_uri"),
        (issuer.metadata_path, metadata | {"jwks_uri": "file:///etc/passwd"}, "no usable jwks_uri"),
        (issuer.metadata_path, metadata | {"jwks_uri": None}, "no usable jwks_uri"),
        (issuer.metadata_path, ["not", "an", "object"], "not a JSON object"),
        (issuer.metadata_path, b"<html>not json</html>", "not JSON"),
        (issuer.metadata_path, b"\xff\xfe", "not JSON"),
        (issuer.jwks_path, {"keys": "none"}, "no `keys` list"),
        (issuer.jwks_path, {"keys": []}, "no usable signing keys"),
        (issuer.jwks_path, secret_jwks, "no usable signing keys"),  # only an HMAC key: nothing verifies
        (issuer.jwks_path, huge_jwks, "larger than"),
        (issuer.jwks_path, {"keys": [{"kty": "RSA", "kid": issuer.kid, "n": "AQAB", "e": "AQAB"}]}, None),  # 17 bits
    ]
    for path, document, reason in hostile:
        issuer.override(path, document)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mcp_server.oauth"):
            assert await verifier_for(issuer).verify(token) is None, document
        assert (reason in caplog.text) if reason else not caplog.text, (reason, caplog.text)
        assert token not in caplog.text
        issuer.override(path)
    hs256 = issuer.mint({"sub": "u"}, key=b"secret-secret-secret-secret-secret", alg="HS256")
    issuer.override(issuer.jwks_path, secret_jwks)
    assert await verifier_for(issuer).verify(hs256) is None
    issuer.override(issuer.jwks_path)
    assert await verifier_for(issuer).verify(token) is not None


async def test_metadata_for_another_issuer_is_not_used(shared):
    # Same server, another spelling of its address: the discovery document names 127.0.0.1, so it is not this issuer's.
    since = len(shared.requests)
    other = f"http://localhost:{shared.port}"
    verifier = JwtVerifier(other, AUDIENCE)
    assert await verifier.verify(shared.mint({"sub": "u", "iss": other})) is None
    assert shared.metadata_path in shared.requests[since:]
    assert shared.jwks_path not in shared.requests[since:]


async def test_an_issuer_without_metadata_refuses_tokens(shared):
    since = len(shared.requests)
    verifier = JwtVerifier(shared.issuer + "/nowhere", AUDIENCE)
    assert await verifier.verify(shared.mint({"sub": "u", "iss": shared.issuer + "/nowhere"})) is None
    assert shared.requests[since:] == [
        "/nowhere/.well-known/openid-configuration",
        "/.well-known/openid-configuration/nowhere",
        "/.well-known/oauth-authorization-server/nowhere",
        "/nowhere/.well-known/oauth-authorization-server",
    ]


@pytest.mark.parametrize("metadata", ["openid", "oauth"])
async def test_an_issuer_with_a_path(metadata):
    with LocalIssuer(path="/tenants/a", metadata=metadata, audience=AUDIENCE) as issuer:
        assert await verifier_for(issuer).verify(issuer.mint({"sub": "u"})) is not None
        assert issuer.requests[-2:] == [issuer.metadata_path, issuer.jwks_path]
    expected = {"openid": "/tenants/a/.well-known/openid-configuration"}
    expected["oauth"] = "/.well-known/oauth-authorization-server/tenants/a"  # RFC 8414 path insertion
    assert issuer.metadata_path == expected[metadata]


@pytest.mark.parametrize(
    ("jwk", "expected"),
    [
        ({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}, set()),  # a published HMAC key is no secret
        ({"kty": "RSA", "alg": "HS256"}, set()),
        ({"kty": "RSA", "use": "enc"}, set()),
        ({"kty": "RSA", "alg": ["RS256"]}, set()),
        ({"kty": "RSA", "alg": "PS256"}, {"PS256"}),
        ({"kty": "EC", "crv": "P-384"}, {"ES384"}),
        ({"kty": "EC", "crv": "P-384", "alg": "ES256"}, set()),
        ({"kty": "EC", "crv": "secp256k1"}, set()),
        ({"kty": "OKP", "crv": "X25519"}, set()),
        ({"kty": "OKP", "crv": "Ed25519"}, {"EdDSA"}),
    ],
)
def test_which_published_keys_verify_what(jwk, expected):
    assert _usable_algorithms(jwk) == expected


def test_metadata_urls():
    assert metadata_urls("https://id.example.com/") == [
        "https://id.example.com/.well-known/openid-configuration",
        "https://id.example.com/.well-known/oauth-authorization-server",
    ]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("eyJhbGciOi.eyJzdWIi.c2ln", True),
        ("a-_b.c_d-.e", True),
        ("opaque-token-1234", False),
        ("a.b", False),
        ("a.b.c.d", False),
        ("a..c", False),
        ("a.b.c=", False),
        ("a.b.c ", False),
        ("a.b." + "c" * 20_000, False),
        ("", False),
    ],
)
def test_looks_like_jwt(token, expected):
    assert JwtVerifier.looks_like_jwt(token) is expected


def test_a_verifier_built_outside_an_event_loop_works_inside_one(shared):
    verifier = verifier_for(shared)
    token = shared.mint({"sub": "u"})

    async def check() -> JwtIdentity | None:
        return await verifier.verify(token)

    assert anyio.run(check) is not None


@pytest.mark.parametrize("issuer_url", ["", "id.example.com", "ftp://id.example.com"])
def test_the_issuer_must_be_an_http_url(issuer_url):
    with pytest.raises(ValueError, match="issuer"):
        JwtVerifier(issuer_url, AUDIENCE)
