"""What a connection is made of: the default URL and the engine options.

No SQLAlchemy here: the server reads these while it starts, before the data layer is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

__all__ = ["EngineOptions", "default_sqlite_url"]


def default_sqlite_url() -> str:
    """The embedded default: one SQLite file in the user's data directory (XDG on Linux)."""
    return f"sqlite+aiosqlite:///{Path(user_data_dir('agent-memory-mcp')) / 'memory.db'}"


@dataclass(frozen=True)
class EngineOptions:
    """Knobs with memory or latency consequences; the server maps its settings onto these."""

    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout_s: float = 10.0
    statement_timeout_ms: int = 30_000
    sqlite_busy_timeout_ms: int = 30_000
    sqlite_cache_mb: int = 16
    # A pooled PostgreSQL connection is checked before use only when it has been idle this long (see
    # _install_idle_ping).
    idle_ping_s: float = 10.0
    echo: bool = False
