"""Transfer operations: export, restoring an export losslessly, and importing other tools' conversations and notes.

Export and restore are operator operations, like managing credentials: they act on whole users (one user's rows,
or the whole database), not for an acting agent, and run only from the command line. Imports of other tools' data
act for an `Actor` like any write: every row they make is that user's, with that agent.

The export format is JSON Lines: a header {"format": "agent-memory-mcp/export", "version", "schema_revision", ...},
one {"kind": kind, **fields} line per row (users, agents, sessions, messages, memories: repository.transfer), and a
last {"kind": "end", "counts": {...}} line, whose absence tells a file that was cut short.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from repository.checks import check_json_size, check_size, check_writable
from repository.clock import utcnow
from repository.database import Database
from repository.errors import InvalidInputError, NotFoundError
from repository.limits import ContentLimits
from repository.memories import upsert_memory_sync
from repository.messages import CLOCK_SKEW
from repository.migrate import HEAD_REVISION, KNOWN_REVISIONS
from repository.models import Actor, MemoryCreate, MemoryRecord, Role
from repository.scopes import owner_columns
from repository.transfer import (
    KINDS,
    RECORD_MODELS,
    MemoryRowRecord,
    MessageRecord,
    RestoreBatch,
    SessionRecord,
    Sink,
    export_rows_sync,
    restore_sync,
)

FORMAT = "agent-memory-mcp/export"
FORMAT_VERSION = 1
# Rows per transaction when restoring: a failed batch leaves nothing behind, a finished one stays.
RESTORE_BATCH = 2_000
CONVERSATIONS_MAX = 1_000
NAMED_MEMORIES_MAX = 1_000


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error, as `field: what is wrong` (never the value itself)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


class Restore:
    """One import of an export file: what the file has defined so far, the ids it maps, and the pending batch.

    Rows are checked as they are added (fields, sizes, and that every id a row refers to was defined earlier in
    the file), so a bad line is reported by its number before anything of its batch is written.
    """

    def __init__(self, database: Database, limits: ContentLimits) -> None:
        self.database = database
        self.limits = limits
        self.read: Counter[str] = Counter()
        self.imported: Counter[str] = Counter()
        self.complete = False
        self._started = False
        self._defined: dict[str, set[uuid.UUID]] = {"user": set(), "agent": set(), "session": set()}
        self._users: dict[uuid.UUID, uuid.UUID] = {}
        self._agents: dict[uuid.UUID, uuid.UUID] = {}
        self._batch = self._new_batch()

    def _new_batch(self) -> RestoreBatch:
        return RestoreBatch(user_ids=self._users, agent_ids=self._agents)

    @property
    def remapped(self) -> int:
        """How many users and agents of the file were already here under another id (their rows went to those)."""
        return len(self._users) + len(self._agents)

    def add(self, label: str, record: dict[str, Any]) -> bool:
        """Check one line of the file and queue it; True when the pending batch is full (time to `flush`)."""
        if not self._started:
            self._header(label, record)
            return False
        if self.complete:
            raise InvalidInputError(f"{label}: nothing may follow the end line; remove what comes after it.")
        kind = record.get("kind")
        if kind == "end":
            self._end(label, record)
            return False
        if kind not in RECORD_MODELS:
            raise InvalidInputError(f"{label}: kind must be one of {', '.join(KINDS)} or end, not {kind!r}.")
        fields = {key: value for key, value in record.items() if key != "kind"}
        try:
            row = RECORD_MODELS[kind].model_validate(fields)
        except ValidationError as exc:
            raise InvalidInputError(f"{label}: {describe(exc)}") from None
        try:
            self._check(kind, row)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{label}: {exc}") from None
        self._queue(label, kind, row)
        self.read[kind] += 1
        return len(self._batch) >= RESTORE_BATCH

    def _header(self, label: str, record: dict[str, Any]) -> None:
        if record.get("format") != FORMAT:
            raise InvalidInputError(f"{label}: an export starts with a header line whose format is {FORMAT!r}.")
        if record.get("version") != FORMAT_VERSION:
            raise InvalidInputError(
                f"{label}: export format version {record.get('version')!r} is not one this version reads "
                f"({FORMAT_VERSION}): upgrade agent-memory-mcp."
            )
        revision = record.get("schema_revision")
        if revision not in KNOWN_REVISIONS:
            raise InvalidInputError(
                f"{label}: the export comes from schema revision {revision!r}, newer than this version knows "
                f"({HEAD_REVISION}): upgrade agent-memory-mcp first."
            )
        self._started = True

    def _end(self, label: str, record: dict[str, Any]) -> None:
        counts = record.get("counts")
        expected = {kind: counts.get(kind, 0) for kind in KINDS} if isinstance(counts, dict) else None
        found = {kind: self.read[kind] for kind in KINDS}
        if expected != found:
            raise InvalidInputError(f"{label}: the end line counts {expected} rows but the file holds {found}.")
        self.complete = True

    def _known(self, kind: str, value: uuid.UUID | None, what: str) -> None:
        if value is not None and value not in self._defined[kind]:
            raise InvalidInputError(f"{what} {value} is not defined earlier in the file")

    def _check(self, kind: str, row: Any) -> None:
        limit = self.limits.max_content_bytes
        if kind in ("session", "message", "memory"):
            self._known("user", row.user_id, "its user")
            self._known("agent", row.agent_id, "its agent")
        if kind in ("message", "memory"):
            self._known("session", row.session_id, "its session")
        if isinstance(row, MessageRecord):
            check_size("text_content", row.text_content, limit)
            for label in ("tool_calls", "tool_outputs", "context", "raw_payload"):
                check_json_size(label, getattr(row, label), limit)
        if isinstance(row, MemoryRowRecord):
            check_size("content", row.content, limit)
            check_size("description", row.description, limit)
            check_json_size("metadata", row.metadata, limit)

    def _queue(self, label: str, kind: str, row: Any) -> None:
        if kind in self._defined:
            self._defined[kind].add(row.id)
        batch = self._batch
        if kind == "session":
            batch.sessions.append((label, row))
        elif kind == "user":
            batch.users.append(row)
        elif kind == "agent":
            batch.agents.append(row)
        elif kind == "message":
            batch.messages.append(row)
        else:
            batch.memories.append(row)

    async def flush(self) -> None:
        """Write the pending batch in one transaction (nothing of it stays if it fails)."""
        if not len(self._batch):
            return
        batch, self._batch = self._batch, self._new_batch()
        self.imported.update(await self.database.write(restore_sync, batch))


class ImportedMessage(BaseModel):
    """One message of another tool's conversation, with its original time."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    role: Role
    name: str | None = Field(default=None, max_length=200)
    text_content: str | None = None
    tool_calls: Any | None = None
    tool_outputs: Any | None = None
    message_type: str | None = Field(default=None, max_length=50)
    context: dict[str, Any] | None = None
    created_at: AwareDatetime


class ImportedConversation(BaseModel):
    """Another tool's conversation: one session of the acting user, with stable ids derived from the source's."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    name: str | None = Field(default=None, max_length=500)
    platform: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: AwareDatetime
    messages: list[ImportedMessage]


class TransferOperations:
    """Export, restore and the imports: the rules of moving data, once for every surface."""

    def __init__(self, database: Database, limits: ContentLimits) -> None:
        self.database = database
        self.limits = limits

    async def export(self, sink: Sink, *, user: str | None = None) -> dict[str, int]:
        """Write the header, every row of `user` (an email; None: the whole database) and the end line to `sink`.

        One snapshot for the whole file, so a message never names a session the file lacks: SQLite's read
        transaction, PostgreSQL's REPEATABLE READ (a plain read would see each page at its own moment).
        """
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "schema_revision": HEAD_REVISION,
            "exported_at": utcnow().isoformat(),
            "scope": "all" if user is None else "user",
            "user": user,
        }
        try:
            if self.database.dialect == "sqlite":
                return await self.database.read(_export_sync, sink, header, user)
            async with self.database.transaction(readonly=True) as session:
                await session.connection(
                    execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                )
                result: dict[str, int] = await session.run_sync(_export_sync, sink, header, user)
                return result
        except NotFoundError:
            raise NotFoundError(
                f"No user {user!r} in this database: pass --user with a user that has data here, or --all."
            ) from None

    def restore(self) -> Restore:
        """A new import of an export file: `add` each line, `flush` every RESTORE_BATCH rows and at the end."""
        return Restore(self.database, self.limits)

    async def import_conversations(self, actor: Actor, items: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        """Store conversations of another tool as the actor's sessions, in one transaction; sessions and messages
        already stored (same ids) are skipped. Returns how many of each were new."""
        check_writable(actor)
        if len(items) > CONVERSATIONS_MAX:
            raise InvalidInputError(f"At most {CONVERSATIONS_MAX} conversations per batch, got {len(items)}.")
        batch = RestoreBatch()
        latest = utcnow() + CLOCK_SKEW
        for label, item in items:
            try:
                conversation = ImportedConversation.model_validate(item)
                self._check_conversation(conversation, latest)
                sessions, messages = _records(actor, conversation)
            except ValidationError as exc:
                raise InvalidInputError(f"{label}: {describe(exc)}") from None
            except InvalidInputError as exc:
                raise InvalidInputError(f"{label}: {exc}") from None
            batch.sessions.append((label, sessions))
            batch.messages.extend(messages)
        counts = await self.database.write(restore_sync, batch)
        return {"session": counts["session"], "message": counts["message"]}

    def _check_conversation(self, conversation: ImportedConversation, latest: Any) -> None:
        limit = self.limits.max_content_bytes
        check_json_size("metadata", conversation.metadata, limit)
        for message in conversation.messages:
            check_size("text_content", message.text_content, limit)
            for label in ("tool_calls", "tool_outputs", "context"):
                check_json_size(label, getattr(message, label), limit)
            if message.created_at > latest:
                raise InvalidInputError(f"message {message.id} is dated in the future ({message.created_at}).")

    async def import_named_memories(self, actor: Actor, records: Sequence[MemoryRecord]) -> dict[str, int]:
        """Store or refresh named memories of the actor in one transaction: each name is created, updated (its
        content, description and metadata) or left unchanged. Returns how many had each outcome."""
        check_writable(actor)
        if len(records) > NAMED_MEMORIES_MAX:
            raise InvalidInputError(f"At most {NAMED_MEMORIES_MAX} memories per batch, got {len(records)}.")
        items = []
        for record in records:
            if record.name is None:
                raise InvalidInputError("Each of these memories needs a name.")
            check_size("content", record.content, self.limits.max_content_bytes)
            check_json_size("metadata", record.metadata, self.limits.max_content_bytes)
            owner = owner_columns(record.scope, actor)
            items.append(MemoryCreate(**record.model_dump(exclude={"scope"}), **owner.model_dump()))
        return await self.database.write(_upsert_all_sync, items)


def _export_sync(session: Session, sink: Sink, header: dict[str, Any], user: str | None) -> dict[str, int]:
    return export_rows_sync(session, sink, header, user)


def _records(actor: Actor, conversation: ImportedConversation) -> tuple[SessionRecord, list[MessageRecord]]:
    messages = [
        MessageRecord(
            **message.model_dump(),
            session_id=conversation.id,
            user_id=actor.user_id,
            agent_id=actor.agent_id,
            updated_at=message.created_at,
        )
        for message in conversation.messages
    ]
    last = max((m.created_at for m in conversation.messages), default=conversation.created_at)
    session = SessionRecord(
        id=conversation.id,
        user_id=actor.user_id,
        agent_id=actor.agent_id,
        name=conversation.name,
        platform=conversation.platform,
        metadata=conversation.metadata,
        created_at=conversation.created_at,
        updated_at=max(last, conversation.created_at),
    )
    return session, messages


def _upsert_all_sync(session: Session, items: Sequence[MemoryCreate]) -> dict[str, int]:
    outcomes: Counter[str] = Counter({"created": 0, "updated": 0, "unchanged": 0})
    for item in items:
        outcomes[upsert_memory_sync(session, item, replace=frozenset({"description", "metadata"})).outcome] += 1
    return dict(outcomes)


__all__ = ["FORMAT", "FORMAT_VERSION", "RESTORE_BATCH", "Restore", "TransferOperations"]
