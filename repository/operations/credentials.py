"""Managed tokens as operations: what the CLI and the server's token verifier call."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from repository.agents import get_or_create_agent_by_name_sync
from repository.clock import utcnow
from repository.credentials import (
    TokenInfo,
    VerifiedToken,
    any_token_sync,
    create_token_sync,
    list_tokens_sync,
    revoke_token_sync,
    token_usable_sync,
    touch_token_sync,
    verify_token_sync,
)
from repository.database import Database
from repository.users import get_or_create_user_by_email_sync


def _create_sync(
    session: Session,
    user_key: str,
    agent_key: str | None,
    read_only: bool,
    expires_in: timedelta | None,
    note: str | None,
) -> tuple[str, TokenInfo]:
    user = get_or_create_user_by_email_sync(session, user_key)
    agent_id = get_or_create_agent_by_name_sync(session, agent_key).id if agent_key else None
    return create_token_sync(session, user.id, agent_id, read_only=read_only, expires_in=expires_in, note=note)


class Credentials:
    """Create, list, revoke and verify the managed tokens of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        user_key: str,
        agent_key: str | None = None,
        *,
        read_only: bool = False,
        expires_in: timedelta | None = None,
        note: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token for this user (and agent; None: the server's configured agent). The secret is returned
        here once; only its hash is stored."""
        return await self.database.write(_create_sync, user_key, agent_key, read_only, expires_in, note)

    async def list(self) -> list[TokenInfo]:
        return await self.database.read(list_tokens_sync)

    async def revoke(self, token_id: uuid.UUID) -> TokenInfo:
        return await self.database.write(revoke_token_sync, token_id)

    async def verify(self, secret: str) -> VerifiedToken | None:
        """Who this secret acts for, or None; records its use (at most once a minute per token)."""
        verified = await self.database.read(verify_token_sync, secret)
        if verified is not None and verified.use_is_stale(utcnow()):
            await self.database.write(touch_token_sync, verified.id)
        return verified

    async def usable(self, token_id: uuid.UUID) -> bool:
        """Whether a token verified earlier is still neither revoked nor expired (what long-lived streams ask)."""
        return await self.database.read(token_usable_sync, token_id)

    async def any_token(self) -> bool:
        return await self.database.read(any_token_sync)
