"""agent-memory-mcp's data layer, usable without the MCP server: the operations every surface shares, and the
repositories below them, over SQLite or PostgreSQL.

    from repository import Operations

    ops = await Operations.open("sqlite+aiosqlite:///memory.db")
    ada = await ops.identity.actor("ada@example.com", "helper")
    await ops.memories.remember(ada, "Prefers tea", name="drink")

The operations apply the product's rules (scopes, partial updates, limits, visibility), exactly as the MCP tools
do. Below them, every repository function takes a session first and flushes but never commits; the `*_sync` forms
run inside `Database.read` / `Database.write`, the async forms inside `Database.transaction()`. Failures raise
`RepositoryError` subclasses.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are loaded on first use (PEP 562): `import repository.models` alone must not pull in SQLAlchemy, so the
# MCP server can answer `initialize` before the database layer has finished importing.
_EXPORTS = {
    "MemoryFilters": "repository.search",
    "MemoryHit": "repository.search",
    "MessageFilters": "repository.search",
    "MessageHit": "repository.search",
    "search_memories": "repository.search",
    "search_messages": "repository.search",
    "Analyzer": "repository.textsearch",
    "Operations": "repository.operations",
    "Actor": "repository.models",
    "NewMessage": "repository.models",
    "MemoryRecord": "repository.models",
    "KEEP": "repository.partial",
    "Keep": "repository.partial",
    "Bounds": "repository.runtime",
    "ContentLimits": "repository.limits",
    "Agent": "repository.models",
    "AgentCreate": "repository.models",
    "AgentUpdate": "repository.models",
    "ConflictError": "repository.errors",
    "Database": "repository.database",
    "DatabaseUnavailableError": "repository.errors",
    "EngineOptions": "repository.connection",
    "HEAD_REVISION": "repository.migrate",
    "HistoryPage": "repository.models",
    "InvalidInputError": "repository.errors",
    "Memory": "repository.models",
    "MemoryCreate": "repository.models",
    "MemoryScope": "repository.models",
    "MemoryUpdate": "repository.models",
    "MemoryWrite": "repository.models",
    "Message": "repository.models",
    "MessageCreate": "repository.models",
    "MessageUpdate": "repository.models",
    "NotFoundError": "repository.errors",
    "Page": "repository.models",
    "ReadOnlyError": "repository.errors",
    "PermissionDeniedError": "repository.errors",
    "RepositoryError": "repository.errors",
    "SchemaVersionError": "repository.errors",
    "Session": "repository.models",
    "SessionCreate": "repository.models",
    "SessionSummary": "repository.models",
    "SessionUpdate": "repository.models",
    "User": "repository.models",
    "UserCreate": "repository.models",
    "UserUpdate": "repository.models",
    "add_message": "repository.messages",
    "add_messages": "repository.messages",
    "bulk_insert_memories": "repository.memories",
    "create_agent": "repository.agents",
    "create_engine": "repository.database",
    "create_memory": "repository.memories",
    "create_session": "repository.sessions",
    "create_user": "repository.users",
    "default_sqlite_url": "repository.connection",
    "delete_agent": "repository.agents",
    "delete_memory": "repository.memories",
    "delete_message": "repository.messages",
    "delete_session": "repository.sessions",
    "delete_user": "repository.users",
    "downgrade": "repository.migrate",
    "ensure_schema": "repository.migrate",
    "get_agent": "repository.agents",
    "get_agent_by_name": "repository.agents",
    "get_history": "repository.messages",
    "get_memory": "repository.memories",
    "get_memory_by_name": "repository.memories",
    "get_message": "repository.messages",
    "get_or_create_agent_by_name": "repository.agents",
    "get_or_create_user_by_email": "repository.users",
    "get_session": "repository.sessions",
    "get_user": "repository.users",
    "get_user_by_email": "repository.users",
    "list_agents": "repository.agents",
    "list_memories": "repository.memories",
    "list_messages": "repository.messages",
    "list_sessions": "repository.sessions",
    "list_users": "repository.users",
    "update_agent": "repository.agents",
    "update_memory": "repository.memories",
    "update_message": "repository.messages",
    "update_session": "repository.sessions",
    "update_user": "repository.users",
    "upgrade": "repository.migrate",
    "upsert_memory": "repository.memories",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repository' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
