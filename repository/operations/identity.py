"""Who acts: the (user, agent) pair behind configured or credential names, created on first use."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from repository.agents import get_or_create_agent_by_name_sync
from repository.database import Database
from repository.models import Actor
from repository.users import get_or_create_user_by_email_sync


def _resolve_sync(session: Session, user_key: str, agent_key: str) -> Actor:
    user = get_or_create_user_by_email_sync(session, user_key)
    agent = get_or_create_agent_by_name_sync(session, agent_key)
    return Actor(user.id, agent.id)


class Identities:
    """Resolves names to an `Actor`, one write the first time and cached after (ids never change)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._actors: dict[tuple[str, str], Actor] = {}

    async def actor(self, user_key: str, agent_key: str, *, read_only: bool = False) -> Actor:
        """The actor for these names; `read_only` marks a credential that may not write."""
        key = (user_key, agent_key)
        found = self._actors.get(key)
        if found is None:
            found = self._actors[key] = await self.database.write(_resolve_sync, user_key, agent_key)
        return replace(found, read_only=True) if read_only else found
