"""Who acts: the (user, agent) pair behind configured or credential names, created on first use."""

from __future__ import annotations

import time
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


# How long a resolved actor is trusted. Ids never change, but a user can be deleted (`delete-user`, possibly by
# another process): after that, a cached actor would make every write fail on its missing user until a restart;
# re-resolving recreates the user instead. One write per identity per this many seconds.
ACTOR_TTL_S = 30.0


class Identities:
    """Resolves names to an `Actor`, one write the first time and cached for ACTOR_TTL_S after."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._actors: dict[tuple[str, str], tuple[float, Actor]] = {}

    async def actor(self, user_key: str, agent_key: str, *, read_only: bool = False) -> Actor:
        """The actor for these names; `read_only` marks a credential that may not write."""
        key = (user_key, agent_key)
        cached = self._actors.get(key)
        now = time.monotonic()
        if cached is None or now - cached[0] > ACTOR_TTL_S:
            if len(self._actors) > 10_000:
                self._actors.clear()  # a bound, not a policy: entries are cheap to re-resolve
            cached = self._actors[key] = (now, await self.database.write(_resolve_sync, user_key, agent_key))
        return replace(cached[1], read_only=True) if read_only else cached[1]
