"""The one entry point the migrations (migrations/) may import from the repository package.

Policy: a migration is frozen history. It carries its own copy of every table shape, trigger and SQL it needs and
never imports live repository code, which moves on while the migration must keep doing what it did. The exceptions
are listed here, each because the migration must agree with the running code rather than with the past:
- the engine and unit of work Alembic's env.py runs in (`create_engine`, `default_sqlite_url`,
  `locked_migration_connection`) and the table metadata autogenerate compares against (`metadata`);
- the unique scope-key expressions (`scope_key_sql`), which ON CONFLICT targets must spell exactly as the index;
- the text analyzer (`Analyzer`), because a migration that re-indexes text must index exactly the terms that the
  running code searches for.
In the other direction, the repository uses only `migrations.SCRIPT_LOCATION`.
"""

from __future__ import annotations

from repository.connection import default_sqlite_url
from repository.database import create_engine
from repository.migrate import locked_migration_connection
from repository.scope_keys import scope_key_sql
from repository.tables import Base
from repository.textsearch import Analyzer

metadata = Base.metadata

__all__ = [
    "Analyzer",
    "create_engine",
    "default_sqlite_url",
    "locked_migration_connection",
    "metadata",
    "scope_key_sql",
]
