"""The console's overview numbers that no per-credential operation gives: the acting user's messages (with its
agent), the database's size and its schema revision. (`ops.lifecycle.stats()` counts every user's rows exactly:
an operator's command, not something one credential may see.)

Read in one unit of work of the operations' database (the caller runs `overview_sync` through `Database.read`), so
this module, which needs SQLAlchemy, is imported only once the data layer is loaded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session as DbSession

from repository.models import Actor
from repository.tables import MessageRow, SessionRow


def overview_sync(db: DbSession, actor: Actor, cap: int) -> dict[str, Any]:
    """Messages of the actor's sessions with its agent (counted up to `cap`, like the listings' totals), the
    database's size in bytes and its schema revision."""
    mine = (
        select(MessageRow.seq)
        .join(SessionRow, SessionRow.id == MessageRow.session_id)
        .where(SessionRow.user_id == actor.user_id, SessionRow.agent_id == actor.agent_id)
        .limit(cap + 1)
    )
    messages = int(db.execute(select(func.count()).select_from(mine.subquery())).scalar_one())
    dialect = db.get_bind().dialect.name
    if dialect == "sqlite":
        pages = db.execute(text("PRAGMA page_count")).scalar_one()
        size = int(pages) * int(db.execute(text("PRAGMA page_size")).scalar_one())
    else:
        size = int(db.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    revision = db.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    return {
        "messages": min(messages, cap),
        "messages_capped": messages > cap,
        "database_bytes": size,
        "database_dialect": dialect,
        "schema_revision": revision,
    }
