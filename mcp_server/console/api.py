"""The console's JSON API under /console/api: one handler per endpoint, each parsing its input, calling the same
operation the MCP tools call (repository.operations) for the request's credential, and shaping the result.

The limits are the tools' (repository/limits.py); the rules (scopes, visibility, read-only credentials and
memories) are the operations'. Errors are translated once, in `web.error_response`.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from mcp_server.console.shapes import marked, memory_json, message_json, session_json
from mcp_server.console.web import Caller, Created, Handler, json_body
from mcp_server.schemas import StorableTime
from repository.checks import parse_id
from repository.errors import InvalidInputError
from repository.limits import COUNT_CAP, HISTORY_PAGE_MAX, MEMORY_PAGE_MAX, SEARCH_RESULTS_MAX, SESSION_PAGE_MAX
from repository.models import Memory
from repository.partial import KEEP
from repository.scopes import ALL_SCOPES, Scope, WritableScope

MEMORY_HINT = "open the memory from the list or a search."
SESSION_HINT = "open the session from the list or a search."
# The longest name a memory may have (MemoryUpdate.name has the same bound).
NAME_MAX = 500


class NewMemory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str
    name: str | None = Field(default=None, max_length=NAME_MAX)
    scope: WritableScope | None = None
    session_id: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    expires_at: StorableTime = None


class MemoryEdit(BaseModel):
    """A change to a memory: the fields sent are replaced (null clears a name or an expiry)."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = None
    name: str | None = Field(default=None, max_length=NAME_MAX)
    expires_at: StorableTime = None


def _int(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise InvalidInputError(f"{name} must be a whole number from 1 to {maximum}.")
    return value


def _scope(request: Request) -> Scope | None:
    raw = request.query_params.get("scope") or None
    if raw is not None and raw not in ALL_SCOPES:
        raise InvalidInputError(f"scope must be one of {', '.join(ALL_SCOPES)} (or left out for all).")
    return raw


def _query(request: Request) -> str:
    query = request.query_params.get("q", "").strip()
    if not query:
        raise InvalidInputError("Type what you are looking for, then search.")
    return query


def _path_id(request: Request, name: str, hint: str) -> uuid.UUID:
    return parse_id(str(request.path_params[name]), name, hint)


async def whoami(_: Request, caller: Caller) -> dict[str, Any]:
    credential, limits = caller.credential, caller.ops.limits
    return {
        "user": credential.user,
        "agent": credential.agent,
        "read_only": credential.read_only,
        "max_content_bytes": limits.max_content_bytes,
        "scopes": list(ALL_SCOPES),
        "writable_scopes": list(get_args(WritableScope)),
    }


async def overview(_: Request, caller: Caller) -> dict[str, Any]:
    # Not ops.lifecycle.stats(): that is the operator's view, every user's rows counted exactly; a credential sees
    # its own numbers, counted up to the cap like the listings' totals.
    from mcp_server.console.overview import overview_sync  # noqa: PLC0415 - SQLAlchemy, loaded with the data layer

    ops, actor = caller.ops, caller.actor
    memories = await ops.memories.list(actor, limit=1)
    sessions = await ops.conversations.list_sessions(actor, limit=1)
    numbers = await ops.database.read(overview_sync, actor, COUNT_CAP)
    return {
        "memories": memories.total,
        "memories_capped": memories.total_capped,
        "sessions": sessions.total,
        "sessions_capped": sessions.total_capped,
        **numbers,
    }


async def list_memories(request: Request, caller: Caller) -> dict[str, Any]:
    ops = caller.ops
    page = await ops.memories.list(
        caller.actor,
        limit=_int(request, "limit", 20, MEMORY_PAGE_MAX),
        cursor=request.query_params.get("cursor") or None,
        scope=_scope(request),
    )
    return {
        "memories": [memory_json(m, ops.limits.preview_chars) for m in page.items],
        "total": page.total,
        "total_capped": page.total_capped,
        "next_cursor": page.next_cursor,
    }


async def search_memories(request: Request, caller: Caller) -> dict[str, Any]:
    ops = caller.ops
    scope = _scope(request)
    found = await ops.memories.recall(
        caller.actor,
        _query(request),
        limit=_int(request, "limit", 20, SEARCH_RESULTS_MAX),
        scopes=[scope] if scope else None,
    )
    analyzer = ops.database.runtime.analyzer
    results = []
    for hit in found.hits:
        shown = memory_json(hit.memory, ops.limits.preview_chars)
        results.append(
            {**shown, "score": round(hit.score, 6), "parts": marked(analyzer, shown["content"], found.terms)}
        )
    return {"results": results, "query_terms": found.terms}


async def get_memory(request: Request, caller: Caller) -> dict[str, Any]:
    memory = await caller.ops.memories.get(caller.actor, _path_id(request, "memory_id", MEMORY_HINT))
    return {"memory": memory_json(memory)}


async def create_memory(request: Request, caller: Caller) -> dict[str, Any]:
    new = NewMemory.model_validate(await json_body(request))
    written = await caller.ops.memories.remember(
        caller.actor,
        new.content,
        name=new.name.strip() or None if new.name else None,
        scope=new.scope,
        session_id=parse_id(new.session_id, "session_id", SESSION_HINT) if new.session_id else None,
        description=KEEP if new.description is None else new.description,
        metadata=KEEP if new.metadata is None else new.metadata,
        expires_at=KEEP if new.expires_at is None else new.expires_at,
    )
    reply = {"memory": memory_json(written.memory), "outcome": written.outcome}
    return Created(reply) if written.outcome == "created" else reply


async def edit_memory(request: Request, caller: Caller) -> dict[str, Any]:
    memory_id = _path_id(request, "memory_id", MEMORY_HINT)
    edit = MemoryEdit.model_validate(await json_body(request))
    return {"memory": memory_json(await revise(caller, memory_id, edit))}


async def revise(caller: Caller, memory_id: uuid.UUID, edit: MemoryEdit) -> Memory:
    """The fields the person sent (and only those) go to the core's `revise`."""
    sent = edit.model_fields_set
    return await caller.ops.memories.revise(
        caller.actor,
        memory_id,
        # content sent as null is an empty content: the core refuses it with its own sentence.
        content=(edit.content or "") if "content" in sent else KEEP,
        name=edit.name if "name" in sent else KEEP,
        expires_at=edit.expires_at if "expires_at" in sent else KEEP,
    )


async def delete_memory(request: Request, caller: Caller) -> dict[str, Any]:
    memory = await caller.ops.memories.forget(caller.actor, _path_id(request, "memory_id", MEMORY_HINT))
    return {"id": str(memory.id), "deleted": True, "name": memory.name}


async def list_sessions(request: Request, caller: Caller) -> dict[str, Any]:
    page = await caller.ops.conversations.list_sessions(
        caller.actor,
        limit=_int(request, "limit", 20, SESSION_PAGE_MAX),
        cursor=request.query_params.get("cursor") or None,
    )
    return {
        "sessions": [session_json(s) for s in page.items],
        "total": page.total,
        "total_capped": page.total_capped,
        "next_cursor": page.next_cursor,
    }


async def get_session(request: Request, caller: Caller) -> dict[str, Any]:
    """A session and its newest page of messages; with `cursor`, the next older page."""
    ops = caller.ops
    session_id = _path_id(request, "session_id", SESSION_HINT)
    limit = _int(request, "limit", 50, HISTORY_PAGE_MAX)
    cursor = request.query_params.get("cursor") or None
    preview = ops.limits.preview_chars
    if cursor is None:
        transcript = await ops.conversations.transcript(caller.actor, session_id, max_messages=limit)
        page, session = transcript.page, session_json(transcript.session)
    else:
        page = await ops.conversations.history(caller.actor, session_id, limit=limit, cursor=cursor)
        session = None
    return {
        "session": session,
        "messages": [message_json(m, preview) for m in page.messages],
        "next_cursor": page.next_cursor,
    }


async def search_history(request: Request, caller: Caller) -> dict[str, Any]:
    ops = caller.ops
    raw_session = request.query_params.get("session_id") or None
    found = await ops.conversations.search(
        caller.actor,
        _query(request),
        session_id=parse_id(raw_session, "session_id", SESSION_HINT) if raw_session else None,
        limit=_int(request, "limit", 20, SEARCH_RESULTS_MAX),
    )
    analyzer = ops.database.runtime.analyzer
    results = []
    for hit in found.hits:
        shown = message_json(hit.message, ops.limits.preview_chars)
        parts = marked(analyzer, shown["text_content"], found.terms)
        results.append({**shown, "score": round(hit.score, 6), "parts": parts})
    return {"results": results, "query_terms": found.terms}


# (method, path under /console/api, handler); the search paths come before the {id} ones they would match.
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/whoami", whoami),
    ("GET", "/overview", overview),
    ("GET", "/memories", list_memories),
    ("POST", "/memories", create_memory),
    ("GET", "/memories/search", search_memories),
    ("GET", "/memories/{memory_id}", get_memory),
    ("PATCH", "/memories/{memory_id}", edit_memory),
    ("DELETE", "/memories/{memory_id}", delete_memory),
    ("GET", "/sessions", list_sessions),
    ("GET", "/sessions/search", search_history),
    ("GET", "/sessions/{session_id}", get_session),
]
