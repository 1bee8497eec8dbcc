"""Tool results: pydantic models, so every tool publishes an output schema and returns structured content.

Listings and search results carry bounded text: contents over the preview size are cut and flagged `truncated`;
`get_memory` / `get_message` return the full text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pydantic_core
from mcp_types import CallToolResult, ResourceLink, TextContent
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from repository.limits import COUNT_CAP
from repository.models import Access, Memory, Message, ReadMode, Role, Session, SessionSummary
from repository.scopes import Scope, scope_kind


# Optional fields holding nothing (None, or a flag at False) are left out of results. Why: results are read twice
# per call, by the model as text and by the client against the output schema, and both costs grow with every key
# present; on a history page null tool fields were half of the schema check (docs/benchmarks.md, History). Absent
# means null/false; the schema is unchanged, since these fields are not required. Identity, not equality: a count
# of 0 equals False but is information. `exclude_if` runs inside pydantic's serializer (a model-level wrap
# serializer doing the same in Python cost three times as much).
def _is_none(value: Any) -> bool:
    return value is None


def _is_false(value: Any) -> bool:
    return value is False


# `str | None` as one JSON Schema type list instead of pydantic's anyOf: the SDK client validates every result
# against the output schema, and on a 50-message history page the anyOf branches were most of that cost.
NullableStr = Annotated[str | None, WithJsonSchema({"type": ["string", "null"]})]
OmittedStr = Annotated[NullableStr, Field(exclude_if=_is_none)]
OmittedAny = Annotated[Any, Field(exclude_if=_is_none)]
# The `truncated` flag of listed and found items (absent when nothing was cut).
TextCut = Annotated[
    bool,
    Field(exclude_if=_is_false, description="Present and true when text_content was cut; get_message has it whole."),
]
ContentCut = Annotated[
    bool, Field(exclude_if=_is_false, description="Present and true when content was cut; get_memory has it whole.")
]


def _storable_time(value: datetime | None) -> datetime | None:
    # Times are stored in UTC; an offset can push one past year 1 or 9999 there (0001-01-01T00:00:00+14:00),
    # which the database layer would only find while writing, as an OverflowError (an internal error).
    if value is not None and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time falls outside the years 1 to 9999 once converted to UTC") from None
    return value


# A time argument that is written to the database (the published schema is unchanged: date-time or null).
StorableTime = Annotated[datetime | None, AfterValidator(_storable_time)]


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The same JSON Schema with every local `$ref` replaced by its definition and `$defs` dropped.

    Why: the SDK client validates each result against the published output schema, and resolving a `$ref` costs
    more than checking the fields behind it (measured: docs/benchmarks.md, History). Our result models are not
    recursive, so the expansion is finite.
    """
    defs = schema.get("$defs", {})

    def expand(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [expand(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise ValueError(f"recursive output schema through {name!r}: it cannot be inlined")
            siblings = {k: expand(v, seen) for k, v in node.items() if k != "$ref"}
            return {**expand(defs[name], (*seen, name)), **siblings}
        return {key: expand(value, seen) for key, value in node.items() if key != "$defs"}

    expanded: dict[str, Any] = expand(schema, ())
    return expanded


def _cut(text: str | None, limit: int | None) -> tuple[str | None, bool]:
    if text is None or limit is None or len(text) <= limit:
        return text, False
    return text[:limit], True


class SessionOut(BaseModel):
    id: str
    name: NullableStr
    platform: NullableStr
    metadata: dict[str, Any]
    agent_name: OmittedStr = None
    message_count: Annotated[int | None, Field(exclude_if=_is_none)] = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, session: Session | SessionSummary) -> SessionOut:
        summary = session if isinstance(session, SessionSummary) else None
        return cls(
            id=str(session.id),
            name=session.name,
            platform=session.platform,
            metadata=session.metadata,
            agent_name=summary.agent_name if summary else None,
            message_count=summary.message_count if summary else None,
            created_at=session.created_at,
            updated_at=session.updated_at,
        )


class MessageOut(BaseModel):
    id: str
    session_id: str
    role: Role
    name: OmittedStr = None
    text_content: NullableStr
    truncated: TextCut = False
    tool_calls: OmittedAny = None
    tool_outputs: OmittedAny = None
    message_type: OmittedStr = None
    media_url: OmittedStr = None
    created_at: datetime

    @classmethod
    def of(cls, message: Message, preview: int | None = None) -> MessageOut:
        text, truncated = _cut(message.text_content, preview)
        return cls(
            id=str(message.id),
            session_id=str(message.session_id),
            role=message.role,
            name=message.name,
            text_content=text,
            truncated=truncated,
            tool_calls=message.tool_calls,
            tool_outputs=message.tool_outputs,
            message_type=message.message_type,
            media_url=message.media_url,
            created_at=message.created_at,
        )


class MemoryOut(BaseModel):
    id: str
    name: NullableStr
    content: str
    truncated: ContentCut = False
    description: OmittedStr = None
    scope: Scope
    session_id: OmittedStr = None
    read_mode: ReadMode
    access: Access
    metadata: dict[str, Any]
    expires_at: Annotated[datetime | None, Field(exclude_if=_is_none)] = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, memory: Memory, preview: int | None = None) -> MemoryOut:
        content, truncated = _cut(memory.content, preview)
        return cls(
            id=str(memory.id),
            name=memory.name,
            content=content or "",
            truncated=truncated,
            description=memory.description,
            scope=scope_kind(memory.agent_id, memory.user_id, memory.session_id),
            session_id=str(memory.session_id) if memory.session_id else None,
            read_mode=memory.read_mode,
            access=memory.access,
            metadata=memory.metadata,
            expires_at=memory.expires_at,
            created_at=memory.created_at,
            updated_at=memory.updated_at,
        )


class StoredMemory(MemoryOut):
    outcome: Literal["created", "updated", "unchanged"] = Field(
        description="created: a new memory; updated: the memory of that name changed; unchanged: it already held this."
    )


class MemoryHitOut(BaseModel):
    """A search result: the fields an agent needs to use the memory (get_memory has the rest). Kept small on
    purpose: every result field costs serialisation and output-schema validation on each call."""

    id: str
    name: NullableStr
    content: str
    truncated: ContentCut = False
    scope: Scope
    metadata: dict[str, Any]
    created_at: datetime
    score: float = Field(description="Relevance; higher is better. Only comparable within one search.")
    snippet: str = Field(description="The best matching passage, matched words marked with [brackets].")

    @classmethod
    def of(cls, memory: Memory, preview: int, score: float, snippet: str) -> MemoryHitOut:
        content, truncated = _cut(memory.content, preview)
        return cls(
            id=str(memory.id),
            name=memory.name,
            content=content or "",
            truncated=truncated,
            scope=scope_kind(memory.agent_id, memory.user_id, memory.session_id),
            metadata=memory.metadata,
            created_at=memory.created_at,
            score=score,
            snippet=snippet,
        )


class SearchMemoriesResult(BaseModel):
    results: list[MemoryHitOut]
    scopes_searched: list[Scope]
    query_terms: list[str] = Field(description="The words the search used (stopwords and punctuation dropped).")


class Listing(BaseModel):
    """A page of a listing: how many match in all, and the cursor to the next page."""

    total: int
    total_capped: bool = Field(
        default=False,
        exclude_if=_is_false,
        description=f"Present and true when more than `total` ({COUNT_CAP:,}) match: counting stops there.",
    )
    next_cursor: NullableStr


class MemoryList(Listing):
    memories: list[MemoryOut]


class DeletedMemory(BaseModel):
    id: str
    deleted: bool
    name: NullableStr


class HistoryResult(BaseModel):
    session_id: str
    messages: list[MessageOut] = Field(description="Chronological order within the page.")
    next_cursor: NullableStr = Field(description="Pass back to get the next page; null when there is none.")
    start: Literal["latest", "oldest"]


class MessageBatch(BaseModel):
    messages: list[MessageOut]


class SessionList(Listing):
    sessions: list[SessionOut]


class MessageHitOut(BaseModel):
    """A search result: enough to quote the message and read around it with get_session_history."""

    id: str
    session_id: str
    role: Role
    name: OmittedStr = None
    text_content: NullableStr
    truncated: TextCut = False
    created_at: datetime
    score: float = Field(description="Relevance; higher is better. Only comparable within one search.")
    snippet: str = Field(description="The best matching passage, matched words marked with [brackets].")

    @classmethod
    def of(cls, message: Message, preview: int, score: float, snippet: str) -> MessageHitOut:
        text, truncated = _cut(message.text_content, preview)
        return cls(
            id=str(message.id),
            session_id=str(message.session_id),
            role=message.role,
            name=message.name,
            text_content=text,
            truncated=truncated,
            created_at=message.created_at,
            score=score,
            snippet=snippet,
        )


class SearchHistoryResult(BaseModel):
    results: list[MessageHitOut]
    query_terms: list[str]
    session_id: NullableStr = Field(description="The one session searched, or null for all of the user's sessions.")


# --- resource links beside a result ------------------------------------------------------------------------------


def memory_link(memory_id: str, name: str | None) -> ResourceLink:
    return ResourceLink(
        uri=f"memory://memories/{memory_id}", name=name or f"memory {memory_id}", mime_type="application/json"
    )


def session_link(session_id: str, name: str | None = None) -> ResourceLink:
    return ResourceLink(
        uri=f"memory://sessions/{session_id}/history", name=name or f"session {session_id}", mime_type="text/plain"
    )


def with_links(result: BaseModel, links: list[ResourceLink]) -> CallToolResult:
    """`result` as the SDK returns a model (the same JSON text first, for the model to read, and the structured
    content checked against the output schema) followed by resource links to what it names, one per resource."""
    text = pydantic_core.to_json(result, fallback=str, indent=2).decode()
    unique: dict[str, ResourceLink] = {}
    for link in links:
        unique.setdefault(link.uri, link)
    return CallToolResult(
        content=[TextContent(type="text", text=text), *unique.values()],
        structured_content=result.model_dump(mode="json", by_alias=True),
    )
