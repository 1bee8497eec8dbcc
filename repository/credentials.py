"""Managed bearer tokens: create, list, revoke and verify, with only a hash of each secret stored.

Why SHA-256 and not a password hash: a secret here is 32 random bytes from `secrets`, so no dictionary or brute
force can reach it and a slow, salted hash (bcrypt, argon2) would only add its cost to every request. The hash is
looked up by an index and compared again with `hmac.compare_digest`, so neither the lookup nor the comparison tells
a caller how much of a guess was right: what the index compares is the digest of the guess, not the guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, select, update
from sqlalchemy.orm import Session

from repository.clock import utcnow
from repository.errors import InvalidInputError, NotFoundError
from repository.tables import AgentRow, ApiTokenRow, UserRow

# A prefix makes a leaked token recognisable to secret scanners and to people; the rest is 256 random bits.
TOKEN_PREFIX = "amm_"
# last_used_at is a write: a busy token records its use at most this often.
LAST_USED_EVERY = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A managed token as listed (never its secret)."""

    id: uuid.UUID
    user: str
    agent: str | None
    read_only: bool
    note: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class VerifiedToken:
    """Who a valid secret acts for: names, as a credential's identity is resolved like any other."""

    id: uuid.UUID
    user: str
    agent: str | None
    read_only: bool
    expires_at: datetime | None
    last_used_at: datetime | None

    def use_is_stale(self, now: datetime) -> bool:
        """Whether its use should be recorded now (at most once per LAST_USED_EVERY)."""
        return self.last_used_at is None or self.last_used_at < now - LAST_USED_EVERY


def _select_infos() -> Select[ApiTokenRow, str | None, str | None]:
    return (
        select(ApiTokenRow, UserRow.email, AgentRow.name)
        .join(UserRow, UserRow.id == ApiTokenRow.user_id)
        .outerjoin(AgentRow, AgentRow.id == ApiTokenRow.agent_id)
    )


def _info(row: ApiTokenRow, user: str | None, agent: str | None) -> TokenInfo:
    return TokenInfo(
        row.id,
        user or "",
        agent,
        row.read_only,
        row.note,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )


def create_token_sync(
    session: Session,
    user_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    *,
    read_only: bool = False,
    expires_in: timedelta | None = None,
    note: str | None = None,
) -> tuple[str, TokenInfo]:
    """A new token: (its secret, shown once and never stored, and its listing)."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInputError("A token's lifetime must be positive: use for example 30d, 2h or 5m.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiTokenRow(
        id=uuid.uuid4(),
        secret_hash=hash_secret(secret),
        user_id=user_id,
        agent_id=agent_id,
        read_only=read_only,
        note=note,
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )
    session.add(row)
    session.flush()
    return secret, _one_info(session, row.id)


def _one_info(session: Session, token_id: uuid.UUID) -> TokenInfo:
    found = session.execute(_select_infos().where(ApiTokenRow.id == token_id)).one_or_none()
    if found is None:
        raise NotFoundError(f"No token with id {token_id}: `agent-memory-mcp token list` shows them.")
    return _info(*found)


def list_tokens_sync(session: Session) -> list[TokenInfo]:
    rows = session.execute(_select_infos().order_by(ApiTokenRow.created_at, ApiTokenRow.id)).all()
    return [_info(*row) for row in rows]


def revoke_token_sync(session: Session, token_id: uuid.UUID) -> TokenInfo:
    """Revoke (idempotent: revoking twice keeps the first time)."""
    info = _one_info(session, token_id)
    if info.revoked_at is None:
        session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(revoked_at=utcnow()))
        info = _one_info(session, token_id)
    return info


def verify_token_sync(session: Session, secret: str) -> VerifiedToken | None:
    """The identity of a usable (not revoked, not expired) token with this secret, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    found = session.execute(_select_infos().where(ApiTokenRow.secret_hash == digest)).one_or_none()
    if found is None or not hmac.compare_digest(found[0].secret_hash, digest):
        return None
    info = _info(*found)
    if not info.usable(utcnow()):
        return None
    return VerifiedToken(info.id, info.user, info.agent, info.read_only, info.expires_at, info.last_used_at)


def token_usable_sync(session: Session, token_id: uuid.UUID) -> bool:
    """Whether the token with this id may still be used (an unknown id: no)."""
    found = session.execute(_select_infos().where(ApiTokenRow.id == token_id)).one_or_none()
    return found is not None and _info(*found).usable(utcnow())


def touch_token_sync(session: Session, token_id: uuid.UUID) -> None:
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=utcnow()))


def any_token_sync(session: Session) -> bool:
    """Whether any managed token was ever created. Revoked and expired ones count: once an operator manages
    tokens, a loopback server stays closed even after the last one is revoked (fail closed)."""
    return bool(session.execute(select(exists().where(ApiTokenRow.id.is_not(None)))).scalar())
