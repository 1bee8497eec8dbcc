"""JWT access tokens from an OAuth 2.1 / OpenID Connect issuer: the resource server's signature and claim checks.

`JwtVerifier.verify` answers a `JwtIdentity` for a valid token and None for anything else; it never raises for a
bad token, and neither logs nor reports the token itself.

Keys: the issuer's discovery document (`/.well-known/openid-configuration`, then the RFC 8414
`/.well-known/oauth-authorization-server`, with RFC 8414 path insertion for an issuer with a path) names its
`jwks_uri`; the keys are cached. A token whose `kid` is not cached makes the verifier fetch the keys again (the issuer
rotated them), and so does cache age (`keys_max_age_s`, so that keys the issuer withdrew stop verifying). A fetch
starts at least `refresh_interval_s` after the previous one, so tokens with made-up kids cannot make this server
fetch once per request, and an unreachable issuer is retried at that pace: meanwhile tokens signed with cached keys
still verify, and the others get None (the failure is logged as a warning). `timeout_s` bounds a whole fetch
(discovery and JWKS); concurrent requests share one fetch.

Checks: an asymmetric algorithm (RS*, PS*, ES*, EdDSA) that is also the key's own (its `alg`, or for a key without
one, an algorithm its type and curve allow); a token without `kid` only when exactly one published key fits. Then
PyJWT checks the signature and the registered claims: `exp`, `iss`, `aud` and `sub` required; `exp`, `nbf` and `iat`
judged with `LEEWAY_S` seconds of leeway for clock skew; `iss` equal to the issuer; `aud` containing the audience.
Last, `sub` and the user claim must be non-empty strings, the agent claim (when configured and present) too, and a
user claim of `email` is refused when `email_verified` is false.

Imported by the HTTP server only: nothing here loads the repository or the data layer.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt

log = logging.getLogger(__name__)

LEEWAY_S = 30.0
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
ALLOWED_ALGORITHMS = _RSA_ALGORITHMS | frozenset(_EC_ALGORITHM_BY_CURVE.values()) | {"EdDSA"}
_MAX_TOKEN_CHARS = 16_384
_MAX_DOCUMENT_BYTES = 1_048_576
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


@dataclass(frozen=True)
class JwtIdentity:
    """Who a valid token speaks for."""

    user: str  # value of the configured user claim
    agent: str | None  # value of the configured agent claim; None when not configured or absent
    subject: str  # `sub`
    issuer: str  # `iss`
    client_id: str  # `client_id`, else `azp`, else `sub`
    scopes: list[str]  # `scope` (space separated), else `scp` (list or space separated)
    expires_at: int | None  # `exp`, seconds since the epoch


class _IssuerUnavailableError(Exception):
    """A discovery or JWKS fetch gave no usable answer; the message names the URL and why, never a token."""


@dataclass(frozen=True)
class _Jwk:
    """One published signing key and the algorithms it may verify."""

    kid: str | None
    algorithms: frozenset[str]
    data: dict[str, Any]
    _prepared: dict[str, jwt.PyJWK | None] = field(default_factory=dict, compare=False, repr=False)

    def for_algorithm(self, algorithm: str) -> jwt.PyJWK | None:
        if algorithm not in self._prepared:
            try:
                # Bound to one algorithm: PyJWT then refuses a token whose header names another.
                self._prepared[algorithm] = jwt.PyJWK(self.data, algorithm=algorithm)
            except jwt.PyJWTError:
                self._prepared[algorithm] = None
        return self._prepared[algorithm]


def _usable_algorithms(jwk: dict[str, Any]) -> frozenset[str]:
    """The algorithms a published key may verify: its own `alg` when it names one, else all its type allows.

    Symmetric (`oct`) keys and encryption keys verify nothing: a JWKS is public, so an HMAC key in it is no secret."""
    if jwk.get("use", "sig") != "sig":
        return frozenset()
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        allowed = _RSA_ALGORITHMS
    elif kty == "EC" and isinstance(crv, str) and crv in _EC_ALGORITHM_BY_CURVE:
        allowed = frozenset({_EC_ALGORITHM_BY_CURVE[crv]})
    elif kty == "OKP" and crv in ("Ed25519", "Ed448"):
        allowed = frozenset({"EdDSA"})
    else:
        return frozenset()
    alg = jwk.get("alg")
    if alg is None:
        return allowed
    return frozenset({alg}) & allowed if isinstance(alg, str) else frozenset()


def _parse_jwks(document: dict[str, Any], url: str) -> list[_Jwk]:
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise _IssuerUnavailableError(f"{url}: no `keys` list")
    usable = []
    for entry in keys:
        if isinstance(entry, dict) and (algorithms := _usable_algorithms(entry)):
            kid = entry.get("kid")
            usable.append(_Jwk(kid if isinstance(kid, str) else None, algorithms, entry))
    if not usable:
        raise _IssuerUnavailableError(f"{url}: no usable signing keys")
    return usable


def metadata_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be, in the order tried: OpenID Connect discovery first (appended to the issuer,
    then inserted after the host as some providers do), then RFC 8414 (inserted, then the older appended form)."""
    base = issuer.rstrip("/")
    parts = urlsplit(base)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path
    urls = [f"{base}/.well-known/openid-configuration"]
    if path:
        urls.append(f"{origin}/.well-known/openid-configuration{path}")
    urls.append(f"{origin}/.well-known/oauth-authorization-server{path}")
    urls.append(f"{base}/.well-known/oauth-authorization-server")
    return list(dict.fromkeys(urls))


async def _get_json(client: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    """A JSON object from `url`. HTTP-level failures raise _IssuerUnavailableError; transport errors propagate."""
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise _IssuerUnavailableError(f"{url}: HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            # The size is capped while reading: a misbehaving issuer must not fill this server's memory.
            if len(body) > _MAX_DOCUMENT_BYTES:
                raise _IssuerUnavailableError(f"{url}: larger than {_MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise _IssuerUnavailableError(f"{url}: not JSON") from None
    if not isinstance(document, dict):
        raise _IssuerUnavailableError(f"{url}: not a JSON object")
    return document


def _scopes(claims: dict[str, Any]) -> list[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    scp = claims.get("scp")  # a list at Okta, a space-separated string at Microsoft Entra
    if isinstance(scp, str):
        return scp.split()
    if isinstance(scp, list):
        return [item for item in scp if isinstance(item, str) and item]
    return []


def _non_empty_string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class JwtVerifier:
    """Verifies JWT access tokens from one issuer for one audience (see the module docstring for the rules)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        user_claim: str = "sub",
        agent_claim: str | None = None,
        refresh_interval_s: float = 30.0,
        timeout_s: float = 5.0,
        keys_max_age_s: float = 3600.0,
    ) -> None:
        if urlsplit(issuer).scheme not in ("https", "http") or not urlsplit(issuer).netloc:
            raise ValueError("the OAuth issuer must be an http(s) URL")
        if not audience:
            raise ValueError("the OAuth audience must not be empty")
        self.issuer = issuer
        self.audience = audience
        self.user_claim = user_claim
        self.agent_claim = agent_claim
        self._refresh_interval_s = refresh_interval_s
        self._timeout_s = timeout_s
        self._keys_max_age_s = max(keys_max_age_s, refresh_interval_s)
        self._keys: list[_Jwk] = []
        self._keys_loaded_at: float | None = None
        self._last_fetch_at: float | None = None
        self._jwks_uri: str | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = anyio.Lock()

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Three non-empty base64url segments: a composite verifier can skip JWT work for opaque tokens."""
        return len(token) <= _MAX_TOKEN_CHARS and _JWT_SHAPE.fullmatch(token) is not None

    async def verify(self, token: str) -> JwtIdentity | None:
        """The identity a valid token carries; None for any invalid token, or while the issuer's keys are unknown."""
        if not self.looks_like_jwt(token):
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        alg, kid = header.get("alg"), header.get("kid")
        # Judged before any key lookup: `none` and HMAC tokens cost nothing and cannot trigger a JWKS fetch.
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str | None):
            log.debug("JWT refused: algorithm %.40r is not accepted", alg)
            return None
        key = await self._key_for(kid, alg)
        if key is None:
            log.debug("JWT refused: no %s key with kid %.80r", alg, kid)
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            log.debug("JWT refused: %s", type(exc).__name__)
            return None
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> JwtIdentity | None:
        user = _non_empty_string(claims.get(self.user_claim))
        subject = _non_empty_string(claims.get("sub"))
        exp = claims.get("exp")
        # PyJWT accepts any `exp` int() can read, a numeric string included; the claim is a number (RFC 7519).
        if user is None or subject is None or not isinstance(exp, int | float) or isinstance(exp, bool):
            log.debug("JWT refused: no %r claim, no `sub`, or a non-numeric `exp`", self.user_claim)
            return None
        # An address the issuer says it has not verified must not name a user: anyone could have typed it.
        if self.user_claim == "email" and claims.get("email_verified") is False:
            log.debug("JWT refused: `email_verified` is false")
            return None
        agent = None
        if self.agent_claim is not None and claims.get(self.agent_claim) is not None:
            agent = _non_empty_string(claims[self.agent_claim])
            # A malformed agent claim is refused rather than dropped: dropping it would act for the bare user.
            if agent is None:
                log.debug("JWT refused: the %r claim is not a non-empty string", self.agent_claim)
                return None
        client_id = _non_empty_string(claims.get("client_id")) or _non_empty_string(claims.get("azp")) or subject
        return JwtIdentity(
            user=user,
            agent=agent,
            subject=subject,
            issuer=self.issuer,  # equal to `iss`: jwt.decode checked it
            client_id=client_id,
            scopes=_scopes(claims),
            expires_at=int(exp),
        )

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        candidates = [k for k in self._keys if (kid is None or k.kid == kid) and alg in k.algorithms]
        # Without a kid the key must be unambiguous: trying every key would multiply the signature work per token.
        if not candidates or (kid is None and len(candidates) > 1):
            return None
        return candidates[0].for_algorithm(alg)

    async def _key_for(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        if self._keys_loaded_at is None or now - self._keys_loaded_at >= self._keys_max_age_s:
            # With no keys yet every request waits for the fetch; with old ones, only the one that starts it.
            await self._refresh(wait=self._keys_loaded_at is None)
        key = self._find(kid, alg)
        if key is None and kid is not None and all(k.kid != kid for k in self._keys):
            await self._refresh(wait=True)  # an unknown kid: the issuer may have rotated its keys
            key = self._find(kid, alg)
        return key

    async def _refresh(self, *, wait: bool) -> None:
        if not wait and self._lock.locked():
            return
        async with self._lock:
            # Checked under the lock: tasks that queued behind a fetch use its result instead of fetching again.
            now = time.monotonic()
            if self._last_fetch_at is not None and now - self._last_fetch_at < self._refresh_interval_s:
                return
            self._last_fetch_at = now
            try:
                # Shielded: a cancelled request must not abandon a fetch that the interval then forbids retrying.
                with anyio.fail_after(self._timeout_s, shield=True):
                    keys = await self._fetch_keys()
            # InvalidURL and ValueError: an address httpx2 cannot use, which an issuer's documents should never hold.
            except (
                _IssuerUnavailableError,
                httpx2.HTTPError,
                httpx2.InvalidURL,
                OSError,
                TimeoutError,
                ValueError,
            ) as exc:
                reason = str(exc) or type(exc).__name__
                log.warning(
                    "OAuth issuer %s: cannot fetch its signing keys (%s); %d cached keys in use, retrying in %gs",
                    self.issuer,
                    reason,
                    len(self._keys),
                    self._refresh_interval_s,
                )
                return
            self._keys, self._keys_loaded_at = keys, time.monotonic()

    async def _fetch_keys(self) -> list[_Jwk]:
        if self._ssl_context is None:
            # Built once, in a worker thread: loading the CA certificates would otherwise stall the event loop.
            self._ssl_context = await anyio.to_thread.run_sync(httpx2.create_ssl_context)
        async with httpx2.AsyncClient(timeout=self._timeout_s, verify=self._ssl_context) as client:
            if self._jwks_uri is None:
                self._jwks_uri = await self._discover(client)
            jwks_uri = self._jwks_uri
            try:
                return _parse_jwks(await _get_json(client, jwks_uri), jwks_uri)
            except _IssuerUnavailableError:
                self._jwks_uri = None  # discovered again next time: the issuer may have moved its keys
                raise

    async def _discover(self, client: httpx2.AsyncClient) -> str:
        problems = []
        for url in metadata_urls(self.issuer):
            try:
                metadata = await _get_json(client, url)
            except _IssuerUnavailableError as exc:
                problems.append(str(exc))
                continue
            jwks_uri = metadata.get("jwks_uri")
            # RFC 8414 section 3.3 and OpenID Connect Discovery 4.3: metadata for another issuer must not be used.
            if metadata.get("issuer") != self.issuer:
                problems.append(f"{url}: metadata for issuer {metadata.get('issuer')!r}")
            elif not isinstance(jwks_uri, str) or not self._acceptable_jwks_uri(jwks_uri):
                problems.append(f"{url}: no usable jwks_uri")
            else:
                return jwks_uri
        raise _IssuerUnavailableError("; ".join(problems))

    def _acceptable_jwks_uri(self, uri: str) -> bool:
        # Plain http only for an issuer that is plain http itself (a local one): keys must not travel unprotected.
        try:
            parts = urlsplit(uri)
        except ValueError:
            return False
        return bool(parts.netloc) and (
            parts.scheme == "https" or parts.scheme == urlsplit(self.issuer).scheme == "http"
        )
