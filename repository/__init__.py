"""agent-memory-mcp's data layer: async repositories over SQLite or PostgreSQL, usable without the MCP server.

    from repository import Database, ensure_schema, UserCreate, create_user

    db = Database("sqlite+aiosqlite:///memory.db")
    await ensure_schema(db.engine)
    async with db.transaction() as s:
        user = await create_user(s, UserCreate(email="ada@example.com"))

Every function takes an `AsyncSession` first and flushes but never commits: `Database.transaction()` is the unit
of work. Failures raise `RepositoryError` subclasses.
"""

from repository.agents import (
    create_agent,
    delete_agent,
    get_agent,
    get_agent_by_name,
    get_or_create_agent_by_name,
    list_agents,
    update_agent,
)
from repository.database import Database, EngineOptions, create_engine, default_sqlite_url
from repository.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyError,
    RepositoryError,
    SchemaVersionError,
)
from repository.memories import (
    bulk_insert_memories,
    create_memory,
    delete_memory,
    get_memory,
    get_memory_by_name,
    list_memories,
    update_memory,
    upsert_memory,
)
from repository.messages import (
    add_message,
    add_messages,
    delete_message,
    get_history,
    get_message,
    list_messages,
    update_message,
)
from repository.migrate import HEAD_REVISION, downgrade, ensure_schema, upgrade
from repository.models import (
    Agent,
    AgentCreate,
    AgentUpdate,
    HistoryPage,
    Memory,
    MemoryCreate,
    MemoryScope,
    MemoryUpdate,
    MemoryWrite,
    Message,
    MessageCreate,
    MessageUpdate,
    Page,
    Session,
    SessionCreate,
    SessionSummary,
    SessionUpdate,
    User,
    UserCreate,
    UserUpdate,
)
from repository.sessions import create_session, delete_session, get_session, list_sessions, update_session
from repository.users import (
    create_user,
    delete_user,
    get_or_create_user_by_email,
    get_user,
    get_user_by_email,
    list_users,
    update_user,
)

__all__ = [name for name in dir() if not name.startswith("_")]
