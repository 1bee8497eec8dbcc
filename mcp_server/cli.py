"""The `agent-memory-mcp` command: serve over stdio (default) or streamable HTTP, migrate, import.

A host waits for `initialize`, so start-up pays only for what it uses: the data layer is imported by the server in
the background (mcp_server.state), and only the commands that need it at once (migrate) or an HTTP server (serve
over HTTP) import it, inside their own function.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import anyio

from mcp_server.app import build_server
from mcp_server.config import Settings
from mcp_server.importer import ImportLineError, import_memories
from repository.errors import RepositoryError

ENVIRONMENT_HELP = """\
environment variables (flags override them):
  AGENT_MEMORY_DATABASE_URL      database URL; default: SQLite file in the user data directory
                                 (e.g. ~/.local/share/agent-memory-mcp/memory.db);
                                 PostgreSQL: postgresql+asyncpg://user:pass@host:5432/db
  AGENT_MEMORY_USER              user the tools act for (email or handle; default "default")
  AGENT_MEMORY_AGENT             agent the tools act for (default "default")
  AGENT_MEMORY_AUTO_MIGRATE      apply pending migrations at start (default true)
  AGENT_MEMORY_MAX_CONTENT_BYTES largest memory/message text accepted (default 1000000)
  AGENT_MEMORY_LISTING_PREVIEW_CHARS  longer contents are cut in listings (default 2000)
  AGENT_MEMORY_HTTP_TOKENS       JSON {"token": "user"} or {"token": {"user": u, "agent": a}}
  AGENT_MEMORY_HTTP_TOKENS_FILE  file with the same JSON
  AGENT_MEMORY_POOL_SIZE, AGENT_MEMORY_MAX_OVERFLOW, AGENT_MEMORY_STATEMENT_TIMEOUT_MS   PostgreSQL pool
  AGENT_MEMORY_SQLITE_BUSY_TIMEOUT_MS, AGENT_MEMORY_SQLITE_CACHE_MB                   SQLite
  AGENT_MEMORY_LOG_LEVEL         DEBUG, INFO, WARNING (default), ERROR; logs go to stderr

examples:
  agent-memory-mcp                                  # stdio, embedded SQLite
  agent-memory-mcp --user ada@example.com --agent coder
  agent-memory-mcp --transport streamable-http --port 8765 --database-url postgresql+asyncpg://localhost/memory
  agent-memory-mcp migrate                          # create or upgrade the schema, then exit
  agent-memory-mcp import memories.jsonl --user ada@example.com   # bulk-load memories (one JSON object a line)
"""


def _say(message: str) -> None:
    """Everything the command line says goes to stderr: in stdio mode stdout belongs to the protocol."""
    print(message, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-memory-mcp",
        description="MCP server giving LLM agents persistent memory and conversation history.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "migrate", "import"],
        default="serve",
        help="serve (default); migrate the database and exit; import FILE: bulk-load memories from JSON Lines",
    )
    parser.add_argument("file", nargs="?", help="for import: a .jsonl file, or - for standard input")
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], help="default: stdio")
    parser.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTP port (default 8765)")
    parser.add_argument("--database-url", help="overrides AGENT_MEMORY_DATABASE_URL")
    parser.add_argument("--user", help="user the tools act for (stdio, or HTTP without tokens)")
    parser.add_argument("--agent", help="agent the tools act for")
    parser.add_argument("--no-auto-migrate", action="store_true", help="refuse to start on an outdated schema")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "transport": args.transport,
            "host": args.host,
            "port": args.port,
            "database_url": args.database_url,
            "user": args.user,
            "agent": args.agent,
            "log_level": args.log_level,
        }.items()
        if value is not None
    }
    if args.no_auto_migrate:
        overrides["auto_migrate"] = False
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except Exception as exc:  # noqa: BLE001 - a configuration error is reported, not traced
        _say(f"agent-memory-mcp: invalid configuration: {exc}")
        return 2
    # stdout is the protocol channel in stdio mode: every log line goes to stderr.
    logging.basicConfig(level=settings.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "import":
        return _import(settings, args.file)
    if settings.transport == "streamable-http":
        from mcp_server.http import serve_http  # noqa: PLC0415 - uvicorn loads only for an HTTP server

        return serve_http(settings)
    build_server(settings).run("stdio")
    return 0


def _migrate(settings: Settings) -> int:
    # The data layer at once, in the only thread: this command exists to touch the database.
    from repository.database import Database  # noqa: PLC0415
    from repository.migrate import ensure_schema  # noqa: PLC0415

    async def run() -> str:
        database = Database(settings.resolved_database_url())
        try:
            return await ensure_schema(database.engine, auto_migrate=True)
        finally:
            await database.dispose()

    try:
        outcome = anyio.run(run)
    except RepositoryError as exc:
        _say(f"agent-memory-mcp: {exc}")
        return 1
    _say(f"agent-memory-mcp: schema {outcome}")
    return 0


def _import(settings: Settings, file: str | None) -> int:
    if not file:
        _say("agent-memory-mcp: import needs a file: agent-memory-mcp import memories.jsonl (or - for stdin)")
        return 2
    try:
        read, inserted = anyio.run(import_memories, settings, Path(file))
    except OSError as exc:
        _say(f"agent-memory-mcp: cannot read {file}: {exc.strerror or exc}")
        return 1
    except (ImportLineError, RepositoryError) as exc:
        _say(f"agent-memory-mcp: import stopped at {exc}; earlier batches were kept, run again to resume")
        return 1
    _say(f"agent-memory-mcp: read {read}, imported {inserted}, skipped {read - inserted} already stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
