"""Conversation operations: sessions, appending messages, history pages and searching past conversations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session as DbSession

from repository.checks import check_aware, check_json_size, check_size, check_writable
from repository.database import Database
from repository.errors import InvalidInputError
from repository.limits import (
    APPEND_BATCH_MAX,
    HISTORY_PAGE_MAX,
    SEARCH_RESULTS_MAX,
    SESSION_PAGE_MAX,
    TRANSCRIPT_MESSAGES,
    ContentLimits,
)
from repository.messages import add_messages_sync, get_history_sync, get_message_sync
from repository.models import Actor, HistoryPage, Message, MessageCreate, NewMessage, Role, Session, SessionCreate
from repository.operations.memories import Change, ChangeSink, report
from repository.operations.results import FoundMessage, HistorySearch, SessionListing, Transcript
from repository.paging import check_window, next_offset_cursor, offset_from_cursor
from repository.search import search_messages_sync
from repository.search.snippets import snippet
from repository.sessions import create_session_sync, get_session_sync, list_sessions_sync


class ConversationOperations:
    """The rules of sessions and messages, once for every surface: ownership, sizes, batch and page limits."""

    def __init__(self, database: Database, limits: ContentLimits, on_change: ChangeSink | None = None) -> None:
        self.database = database
        self.limits = limits
        # Called after each write commits, as in MemoryOperations.
        self.on_change = on_change

    async def start_session(
        self,
        actor: Actor,
        *,
        name: str | None = None,
        platform: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        check_writable(actor)
        check_json_size("metadata", metadata, self.limits.max_content_bytes)
        data = SessionCreate(
            user_id=actor.user_id, agent_id=actor.agent_id, name=name, platform=platform, metadata=metadata or {}
        )
        created = await self.database.write(create_session_sync, data)
        report(self.on_change, Change("session", "created", created.id, created.agent_id, created.user_id))
        return created

    async def append(self, actor: Actor, session_id: uuid.UUID, messages: Sequence[NewMessage]) -> list[Message]:
        """Append messages to one of the actor's sessions, in order, all or none."""
        check_writable(actor)
        if not 1 <= len(messages) <= APPEND_BATCH_MAX:
            raise InvalidInputError(f"Pass between 1 and {APPEND_BATCH_MAX} messages per call, got {len(messages)}.")
        limit = self.limits.max_content_bytes
        for item in messages:
            check_size("text_content", item.text_content, limit)
            for label in ("tool_calls", "tool_outputs", "context"):
                check_json_size(label, getattr(item, label), limit)
            if not (item.text_content or item.tool_calls or item.tool_outputs or item.media_url):
                raise InvalidInputError(
                    "The message is empty: give text_content, tool_calls, tool_outputs or media_url."
                )
            check_aware("created_at", item.created_at, "2023-05-08T13:56:00Z")
        creates = [
            MessageCreate(session_id=session_id, user_id=actor.user_id, agent_id=actor.agent_id, **item.model_dump())
            for item in messages
        ]
        added = await self.database.write(add_messages_sync, creates, user_id=actor.user_id)
        report(self.on_change, Change("messages", "appended", session_id, actor.agent_id, actor.user_id, session_id))
        return added

    async def history(
        self,
        actor: Actor,
        session_id: uuid.UUID,
        *,
        limit: int = 50,
        cursor: str | None = None,
        start: Literal["latest", "oldest"] = "latest",
    ) -> HistoryPage:
        """A page of one of the actor's sessions (see repository.messages.get_history_sync for the walk)."""
        check_window(limit, maximum=HISTORY_PAGE_MAX)
        return await self.database.read(
            get_history_sync, session_id, limit=limit, cursor=cursor, start=start, user_id=actor.user_id
        )

    async def get_message(self, actor: Actor, message_id: uuid.UUID) -> Message:
        return await self.database.read(get_message_sync, message_id, user_id=actor.user_id)

    async def list_sessions(self, actor: Actor, *, limit: int = 20, cursor: str | None = None) -> SessionListing:
        """The actor's sessions with its agent, newest first, with message counts."""
        check_window(limit, maximum=SESSION_PAGE_MAX)
        page = await self.database.read(
            list_sessions_sync,
            user_id=actor.user_id,
            agent_id=actor.agent_id,
            limit=limit,
            offset=offset_from_cursor(cursor, "sessions"),
        )
        return SessionListing(page.items, page.total, page.total_capped, next_offset_cursor("sessions", page))

    async def search(
        self,
        actor: Actor,
        query: str,
        *,
        session_id: uuid.UUID | None = None,
        limit: int = 10,
        roles: Sequence[Role] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> HistorySearch:
        """Messages of the actor's sessions (of every agent) that match `query`, best first."""
        check_size("query", query, self.limits.max_content_bytes)
        check_window(limit, maximum=SEARCH_RESULTS_MAX)
        hits = await self.database.read(
            search_messages_sync,
            query,
            user_id=actor.user_id,
            session_ids=[session_id] if session_id else None,
            roles=roles,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
        )
        analyzer = self.database.runtime.analyzer
        terms = analyzer.query_terms(query)
        found = [FoundMessage(h.message, h.score, snippet(analyzer, h.message.text_content, terms)) for h in hits]
        return HistorySearch(hits=found, terms=terms, session_id=session_id)

    async def transcript(
        self, actor: Actor, session_id: uuid.UUID, max_messages: int = TRANSCRIPT_MESSAGES
    ) -> Transcript:
        """One of the actor's sessions with its last `max_messages` messages, in one unit of work."""
        return await self.database.read(_transcript_sync, actor, session_id, max_messages)


def _transcript_sync(session: DbSession, actor: Actor, session_id: uuid.UUID, max_messages: int) -> Transcript:
    chat = get_session_sync(session, session_id, user_id=actor.user_id)
    page = get_history_sync(session, session_id, limit=max_messages, user_id=actor.user_id)
    return Transcript(session=chat, page=page)
