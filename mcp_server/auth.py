"""Who an HTTP request acts for: the SDK's `TokenVerifier` over every credential source we accept.

The SDK does the HTTP part (401 with `WWW-Authenticate`, the protected resource metadata, binding sessions to the
credential); this module only answers "whose is this bearer token?". Sources, in order:
- static tokens from AGENT_MEMORY_HTTP_TOKENS(_FILE), kept as SHA-256 digests;
- managed tokens (`agent-memory-mcp token create`), checked in the database, so a revocation reaches every replica;
  answers are cached for at most CACHE_S seconds;
- JWT access tokens from the configured OAuth issuer (mcp_server.oauth).
A loopback server with no source at all acts for the configured user: `OpenLoopback` gives such requests a
per-process credential that never leaves the process, so the rest of the stack is the same with or without tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.auth.provider import AccessToken

from mcp_server.config import Settings
from mcp_server.state import StateSlot

if TYPE_CHECKING:
    from mcp_server.oauth import JwtVerifier

log = logging.getLogger(__name__)

# How long a managed token's check (and the "are there any managed tokens?" check) is trusted: the bound on how
# late a revocation or a first token reaches a running replica.
CACHE_S = 5.0
CACHE_ENTRIES = 10_000
SCOPES_READ = ["memory:read"]
SCOPES_WRITE = ["memory:read", "memory:write"]


@dataclass(frozen=True)
class Credential:
    """What a verified token says: the names it acts for and whether it may write."""

    user: str
    agent: str
    read_only: bool = False

    def access_token(
        self, client_id: str, expires_at: int | None, issuer: str | None = None, resource: str | None = None
    ) -> AccessToken:
        # AccessToken.token is required by the SDK; we keep a label there, never the secret.
        return AccessToken(
            token=client_id,
            client_id=client_id,
            resource=resource,
            scopes=SCOPES_READ if self.read_only else SCOPES_WRITE,
            expires_at=expires_at,
            subject=self.user,
            claims={"agent": self.agent, "read_only": self.read_only, **({"iss": issuer} if issuer else {})},
        )


def credential_of(token: AccessToken) -> Credential | None:
    """The credential behind an access token this module issued (None for any other shape)."""
    claims = token.claims or {}
    agent = claims.get("agent")
    if token.subject is None or not isinstance(agent, str):
        return None
    return Credential(token.subject, agent, bool(claims.get("read_only", False)))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class _TtlCache:
    """A small LRU of answers trusted for CACHE_S seconds."""

    def __init__(self) -> None:
        self._entries: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()

    def get(self, key: bytes) -> tuple[bool, Any]:
        found = self._entries.get(key)
        if found is None or time.monotonic() - found[0] > CACHE_S:
            return False, None
        return True, found[1]

    def put(self, key: bytes, value: Any) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > CACHE_ENTRIES:
            self._entries.popitem(last=False)


class CredentialVerifier:
    """The server's TokenVerifier: static tokens, managed tokens and (if configured) OAuth JWTs."""

    def __init__(self, settings: Settings, slot: StateSlot, jwt: JwtVerifier | None = None) -> None:
        self.settings = settings
        self.slot = slot
        self.jwt = jwt
        self.local_secret = "local_" + secrets.token_urlsafe(32)
        self._static = {_digest(token): who for token, who in settings.tokens().items()}
        self._managed = _TtlCache()
        self._any_managed: tuple[float, bool] | None = None

    async def verify_token(self, token: str) -> AccessToken | None:
        token = token.strip()
        if not token or len(token) > 8_192:
            return None
        if hmac.compare_digest(token.encode(), self.local_secret.encode()):
            return Credential(self.settings.user, self.settings.agent).access_token("local", None)
        digest = _digest(token)
        static = self._static.get(digest)
        if static is not None:
            return Credential(*static).access_token("static", None)
        if token.startswith("amm_"):
            return await self._managed_token(token, digest)
        if self.jwt is not None and self.jwt.looks_like_jwt(token):
            found = await self.jwt.verify(token)
            if found is None:
                return None
            # A token granted memory:read but not memory:write is a read-only credential; any other is read-write.
            read_only = "memory:read" in found.scopes and "memory:write" not in found.scopes
            credential = Credential(found.user, found.agent or self.settings.agent, read_only)
            # `aud` was checked against our public URL, so that is the resource it was issued for.
            return credential.access_token(found.client_id, found.expires_at, found.issuer, self.jwt.audience)
        return None

    async def _managed_token(self, token: str, digest: bytes) -> AccessToken | None:
        cached, answer = self._managed.get(digest)
        if not cached:
            answer = None
            try:
                operations = await self.slot.get().operations()
                verified = await operations.credentials.verify(token)
            except Exception as exc:  # noqa: BLE001 - an unreachable database refuses the token (fail closed)
                log.warning("managed token not checked, database unavailable: %s", exc)
                return None
            if verified is not None:
                expires = int(verified.expires_at.timestamp()) if verified.expires_at else None
                credential = Credential(verified.user, verified.agent or self.settings.agent, verified.read_only)
                answer = credential.access_token(f"token:{verified.id}", expires)
            self._managed.put(digest, answer)
        return answer if isinstance(answer, AccessToken) else None

    async def still_valid(self, access: AccessToken) -> bool:
        """Whether a credential verified earlier still holds, asked by streams that outlive their request: not past
        its expiry, and a managed token not revoked since (checked at most every CACHE_S seconds). Static tokens
        and JWTs cannot be revoked while the server runs; a JWT ends at its `exp`."""
        if access.expires_at is not None and access.expires_at <= time.time():
            return False
        if not access.client_id.startswith("token:"):
            return True
        try:
            token_id = uuid.UUID(access.client_id.removeprefix("token:"))
        except ValueError:
            return False
        key = b"usable:" + token_id.bytes
        cached, answer = self._managed.get(key)
        if not cached:
            try:
                answer = await (await self.slot.get().operations()).credentials.usable(token_id)
            except Exception as exc:  # noqa: BLE001 - when we cannot tell, the stream ends (fail closed)
                log.warning("managed token not rechecked, database unavailable: %s", exc)
                return False
            self._managed.put(key, answer)
        return bool(answer)

    def has_configured_credentials(self) -> bool:
        return bool(self._static) or self.jwt is not None

    async def is_open(self) -> bool:
        """Whether requests without a token act for the configured user: only on a loopback server with no
        credential source at all, managed tokens included (checked at most every CACHE_S seconds)."""
        if self.has_configured_credentials():
            return False
        now = time.monotonic()
        if self._any_managed is None or now - self._any_managed[0] > CACHE_S:
            try:
                operations = await self.slot.get().operations()
                any_token = await operations.credentials.any_token()
            except Exception as exc:  # noqa: BLE001 - when we cannot tell, the server stays closed
                log.warning("could not check for managed tokens: %s", exc)
                return False
            self._any_managed = (now, any_token)
        return not self._any_managed[1]


class OpenLoopback:
    """ASGI wrapper: on an open loopback server, a request without an Authorization header carries the
    verifier's per-process credential into the SDK's authentication, which then treats it like any other."""

    def __init__(self, app: Any, verifier: CredentialVerifier) -> None:
        self.app = app
        self.verifier = verifier
        self._header = (b"authorization", f"Bearer {verifier.local_secret}".encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = scope.get("headers", [])
        anonymous = scope["type"] == "http" and not any(k.lower() == b"authorization" for k, _ in headers)
        if anonymous and await self.verifier.is_open():
            scope = dict(scope, headers=[*headers, self._header])
        await self.app(scope, receive, send)
