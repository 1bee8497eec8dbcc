"""Pydantic models: the repository's public API (what callers pass in and get back).

Inputs validate everything the database would otherwise reject with driver text: NUL characters (PostgreSQL text
cannot hold them), roles, read modes, sizes. Outputs are plain data, detached from any database session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

Role = Literal["user", "assistant", "system", "tool"]
ReadMode = Literal["system_prompt", "tool"]
Access = Literal["read_only", "read_write"]
ROLES: tuple[str, ...] = get_args(Role)
READ_MODES: tuple[str, ...] = get_args(ReadMode)
ACCESS_MODES: tuple[str, ...] = get_args(Access)

T = TypeVar("T")

# agents.run_id is a 32-bit INTEGER column: PostgreSQL rejects anything wider with driver text.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def reject_nul(value: Any) -> Any:
    """Raise if a string anywhere inside `value` holds a NUL character."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\x00) characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key)
            reject_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            reject_nul(item)
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000_000)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)


def _not_null(*fields: str) -> Any:
    """Refuse an explicit None for JSON fields of NOT NULL columns (it would be stored as JSON null)."""

    def check(cls: type, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null: omit the field to keep the stored value")
        return value

    return field_validator(*fields)(classmethod(check))


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@dataclass(frozen=True)
class Actor:
    """Who a call acts for: passed explicitly to every operation that reads or writes user data."""

    user_id: uuid.UUID
    agent_id: uuid.UUID
    # A read-only credential (a token created with --read-only): every write operation refuses it.
    read_only: bool = False


# --- users -------------------------------------------------------------------------------------------------------


class UserCreate(_Input):
    email: str | None = Field(default=None, max_length=320)
    phone_number: str | None = Field(default=None, max_length=64)
    user_data: dict[str, Any] = Field(default_factory=dict)


class UserUpdate(_Input):
    email: str | None = Field(default=None, max_length=320)
    phone_number: str | None = Field(default=None, max_length=64)
    user_data: dict[str, Any] | None = None

    _user_data_not_null = _not_null("user_data")


class User(_Output):
    id: uuid.UUID
    email: str | None
    phone_number: str | None
    user_data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# --- agents ------------------------------------------------------------------------------------------------------


class AgentCreate(_Input):
    name: str = Field(min_length=1, max_length=200)
    type: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    run_id: int = Field(default=1, ge=INT32_MIN, le=INT32_MAX)
    system_prompt: str | None = None


class AgentUpdate(_Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    description: str | None = None
    config: dict[str, Any] | None = None
    active: bool | None = None
    run_id: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)
    system_prompt: str | None = None

    _config_not_null = _not_null("config")


class Agent(_Output):
    id: uuid.UUID
    name: str
    type: str | None
    model: str | None
    description: str | None
    config: dict[str, Any]
    active: bool
    run_id: int
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime


# --- sessions ----------------------------------------------------------------------------------------------------


class SessionCreate(_Input):
    user_id: uuid.UUID
    agent_id: uuid.UUID
    name: str | None = Field(default=None, max_length=500)
    platform: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SessionUpdate(_Input):
    name: str | None = Field(default=None, max_length=500)
    platform: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None
    run_finished_at: AwareDatetime | None = None

    _metadata_not_null = _not_null("metadata")


class Session(_Output):
    id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    name: str | None
    platform: str | None
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    created_at: datetime
    updated_at: datetime
    run_finished_at: datetime | None


class SessionSummary(Session):
    """A session as listings show it: with its message count and its agent's name."""

    message_count: int
    agent_name: str


# --- messages ----------------------------------------------------------------------------------------------------


class MessageFields(BaseModel):
    """A message's own fields with their limits: what a new message takes and what an export record carries, so
    an import accepts exactly what add_messages does."""

    session_id: uuid.UUID
    role: Role
    name: str | None = Field(default=None, max_length=200)
    user_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    text_content: str | None = None
    media_url: str | None = None
    mime_type: str | None = Field(default=None, max_length=200)
    message_type: str | None = Field(default=None, max_length=50)
    raw_payload: Any | None = None
    tool_calls: Any | None = None
    tool_outputs: Any | None = None
    context: Any | None = None
    user_feedback: str | None = None
    flagged: bool = False


class MessageCreate(_Input, MessageFields):
    # When the message was originally said, for importing past conversations; None means now. Order stays the
    # order of insertion (seq), whatever the timestamps.
    created_at: AwareDatetime | None = None


class MessageUpdate(_Input):
    text_content: str | None = None
    user_feedback: str | None = None
    flagged: bool | None = None
    context: Any | None = None


class Message(_Output):
    id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    role: Role
    name: str | None = None
    text_content: str | None
    media_url: str | None
    mime_type: str | None
    message_type: str | None
    raw_payload: Any | None
    tool_calls: Any | None
    tool_outputs: Any | None
    context: Any | None
    user_feedback: str | None
    flagged: bool
    created_at: datetime
    updated_at: datetime
    seq: int = Field(description="Position in the store; increases with every message written.")


# --- memories ----------------------------------------------------------------------------------------------------


class MemoryScope(_Input):
    """Who a memory belongs to. NULL columns widen it: no user_id means every user of the agent."""

    agent_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None


class MemoryFields(BaseModel):
    """A memory's own fields with their limits: what a new memory takes and what an export record carries."""

    content: str = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = None
    agent_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    read_mode: ReadMode = "tool"
    access: Access = "read_write"
    metadata: dict[str, Any] = Field(default_factory=dict)
    expires_at: AwareDatetime | None = None


class MemoryCreate(_Input, MemoryFields):
    @property
    def scope(self) -> MemoryScope:
        return MemoryScope(agent_id=self.agent_id, user_id=self.user_id, session_id=self.session_id)


class MemoryUpdate(_Input):
    content: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = None
    read_mode: ReadMode | None = None
    access: Access | None = None
    metadata: dict[str, Any] | None = None
    expires_at: AwareDatetime | None = None

    _metadata_not_null = _not_null("metadata")


class Memory(_Output):
    id: uuid.UUID
    name: str | None
    description: str | None
    content: str
    session_id: uuid.UUID | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    read_mode: ReadMode
    access: Access
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MemoryWrite(BaseModel):
    """The outcome of an upsert: the row, and whether it was created, updated or already there unchanged."""

    memory: Memory
    outcome: Literal["created", "updated", "unchanged"]


# --- pages -------------------------------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a listing: the items, the total that match the filters, and the window used.

    Totals are counted up to `Bounds.count_cap` (10,000 by default); `total_capped` says more rows match than `total`.
    """

    items: list[T]
    total: int
    total_capped: bool = False
    limit: int
    offset: int


class HistoryPage(BaseModel):
    """A page of one session's messages, in chronological order, and the cursor to the next page (or None)."""

    messages: list[Message]
    next_cursor: str | None


# --- inputs of the operations ------------------------------------------------------------------------------------


class NewMessage(BaseModel):
    """One message to append to a session (the session and the acting user come from the call)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str | None = Field(default=None, max_length=200, description="Speaker's display name (multi-party chats).")
    text_content: str | None = None
    tool_calls: Any | None = None
    tool_outputs: Any | None = None
    message_type: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    context: dict[str, Any] | None = None
    created_at: datetime | None = Field(
        default=None,
        description="When it was said, with a time zone (ISO 8601, e.g. 2023-05-08T13:56:00Z), to import a past "
        "conversation; default now. Dates in search_history questions match it.",
    )


class MemoryRecord(BaseModel):
    """One memory of an import file: the acting user's (scope 'user') or its agent's (scope 'agent')."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=500)
    scope: Literal["user", "agent"] = "user"
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    read_mode: ReadMode = "tool"
