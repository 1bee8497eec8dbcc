"""The `agent-memory-mcp` command: serve over stdio (default) or streamable HTTP, migrate, import.

A host waits for `initialize`, so start-up pays only for what it uses: the data layer is imported by the server in
the background (mcp_server.state), and only the commands that need it at once (migrate) or an HTTP server (serve
over HTTP) import it, inside their own function.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import anyio
from pydantic import ValidationError

from mcp_server.app import build_server
from mcp_server.cli_console import add_console_command, run_console_command
from mcp_server.cli_lifecycle import add_lifecycle_commands, run_lifecycle_command
from mcp_server.cli_tokens import add_token_commands, run_token_command
from mcp_server.cli_transfer import add_transfer_commands, run_transfer_command
from mcp_server.config import Settings
from mcp_server.errors import describe_validation_error
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
  AGENT_MEMORY_OAUTH_ISSUER      OAuth issuer whose JWTs are accepted (needs AGENT_MEMORY_PUBLIC_URL)
  AGENT_MEMORY_PUBLIC_URL        this server's MCP URL, the audience of its JWTs
  AGENT_MEMORY_OAUTH_USER_CLAIM, AGENT_MEMORY_OAUTH_AGENT_CLAIM   JWT claims naming user (sub) and agent
  AGENT_MEMORY_HTTP_STATELESS    serve each HTTP request on its own (default true; false: sessions)
  AGENT_MEMORY_HTTP_MAX_BODY_BYTES  largest request body (default 8 x max content + 1 MiB) -> 413
  AGENT_MEMORY_HTTP_RATE_LIMIT   requests/s per credential, burst twice that (default 50; 0: off) -> 429
  AGENT_MEMORY_POOL_SIZE, AGENT_MEMORY_MAX_OVERFLOW, AGENT_MEMORY_STATEMENT_TIMEOUT_MS   PostgreSQL pool
  AGENT_MEMORY_SQLITE_BUSY_TIMEOUT_MS, AGENT_MEMORY_SQLITE_CACHE_MB                   SQLite
  AGENT_MEMORY_SWEEP_INTERVAL_S  seconds between sweeps deleting expired memories (default 3600; 0: off)
  AGENT_MEMORY_LOG_LEVEL         DEBUG, INFO, WARNING (default), ERROR; logs go to stderr

examples:
  agent-memory-mcp                                  # stdio, embedded SQLite
  agent-memory-mcp --user ada@example.com --agent coder
  agent-memory-mcp --transport streamable-http --port 8765 --database-url postgresql+asyncpg://localhost/memory
  agent-memory-mcp migrate                          # create or upgrade the schema, then exit
  agent-memory-mcp import memories.jsonl --user ada@example.com   # bulk-load memories (one JSON object a line)
  agent-memory-mcp export --user ada@example.com -o ada.jsonl   # the user's data as JSON Lines
  agent-memory-mcp export --all -o backup.jsonl
  agent-memory-mcp import conversations.json --user ada@example.com   # also exports, memory.json, ChatGPT/Claude
  agent-memory-mcp token create --user ada@example.com --expires-in 30d   # prints a new HTTP token once
  agent-memory-mcp token list --json                # every token, never its secret
  agent-memory-mcp token revoke ID
  agent-memory-mcp stats --json                     # counts, database size, schema revision
  agent-memory-mcp purge --expired                  # delete expired memories now
  agent-memory-mcp delete-user ada@example.com --yes   # everything of one user
"""


def _say(message: str) -> None:
    """Everything the command line says goes to stderr: in stdio mode stdout belongs to the protocol."""
    print(message, file=sys.stderr)


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS: an option left out of a subcommand does not overwrite the same option given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--transport", choices=["stdio", "streamable-http"], help="default: stdio")
    common.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    common.add_argument("--port", type=int, help="HTTP port (default 8765)")
    common.add_argument("--database-url", help="overrides AGENT_MEMORY_DATABASE_URL")
    common.add_argument("--user", help="user the tools act for (stdio, or HTTP without credentials)")
    common.add_argument("--agent", help="agent the tools act for")
    common.add_argument("--no-auto-migrate", action="store_true", help="refuse to start on an outdated schema")
    common.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="agent-memory-mcp",
        description="MCP server giving LLM agents persistent memory and conversation history.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve MCP (the default)", parents=[common])
    commands.add_parser("migrate", help="create or upgrade the database schema, then exit", parents=[common])
    add_transfer_commands(commands, common)
    add_lifecycle_commands(commands, common)
    add_token_commands(commands, common)
    add_console_command(commands, common)
    return parser


_SETTING_FLAGS = ("transport", "host", "port", "database_url", "user", "agent", "log_level")


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: getattr(args, key) for key in _SETTING_FLAGS if getattr(args, key, None) is not None
    }
    if getattr(args, "no_auto_migrate", False):
        overrides["auto_migrate"] = False
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except ValidationError as exc:
        _say(f"agent-memory-mcp: {describe_validation_error(exc, 'configuration')}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a configuration error is reported, not traced
        _say(f"agent-memory-mcp: invalid configuration: {exc}")
        return 2
    # stdout is the protocol channel in stdio mode: every log line goes to stderr.
    logging.basicConfig(level=settings.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "token":
        return run_token_command(settings, args)
    if args.command == "console":
        return run_console_command(settings, args)
    for run in (run_transfer_command, run_lifecycle_command):
        status = run(settings, args)
        if status is not None:
            return status
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


if __name__ == "__main__":
    sys.exit(main())
