"""`agent-memory-mcp stats`, `purge --expired`, `delete-user USER --yes`: the database's lifecycle.

Results go to stdout (`stats --json` is one JSON object); refusals and errors go to stderr as one sentence, with a
non-zero status. Each command opens the database in its own process, runs one operation
(`repository.operations.lifecycle`) and closes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

import anyio

from mcp_server.config import Settings
from mcp_server.pg_bus import announce_outside_change
from mcp_server.state import AppState, DatabaseOpenError
from repository.errors import RepositoryError

if TYPE_CHECKING:
    from repository.operations import Operations
    from repository.operations.lifecycle import DatabaseStats, UserFootprint

COMMANDS = ("stats", "purge", "delete-user")


def add_lifecycle_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    stats = commands.add_parser(
        "stats", help="count users, sessions, messages and memories; database size", parents=[common]
    )
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    purge = commands.add_parser(
        "purge", help="delete expired memories now (the server also sweeps them)", parents=[common]
    )
    purge.add_argument("--expired", action="store_true", required=True, help="delete every memory past its expires_at")
    forget = commands.add_parser(
        "delete-user", help="delete a user and all their sessions, messages, memories and tokens", parents=[common]
    )
    forget.add_argument("target", metavar="USER", help="the user's name (what --user or a token acts as)")
    forget.add_argument("--yes", action="store_true", help="really delete (without it: say what would be deleted)")


def _count(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _contents(footprint: UserFootprint) -> str:
    return (
        f"{_count(footprint.sessions, 'session', 'sessions')}, {_count(footprint.messages, 'message', 'messages')}, "
        f"{_count(footprint.memories, 'memory', 'memories')} and {_count(footprint.tokens, 'token', 'tokens')}"
    )


def stats_json(stats: DatabaseStats) -> dict[str, Any]:
    return dataclasses.asdict(stats)


def _size(count: int | None) -> str:
    if count is None:
        return "unknown"
    if count < 1024:
        return f"{count:,} bytes"
    return f"{count / 1024**2:,.1f} MiB ({count:,} bytes)"


def _stats_table(stats: DatabaseStats) -> str:
    rows = [
        ("database", stats.dialect),
        ("schema revision", stats.schema_revision or "none"),
        ("size", _size(stats.database_bytes)),
        ("users", f"{stats.users:,}"),
        ("agents", f"{stats.agents:,}"),
        ("sessions", f"{stats.sessions:,}"),
        ("messages", f"{stats.messages:,}"),
        ("memories", f"{stats.memories:,} ({stats.expired_memories:,} expired)"),
    ]
    return "\n".join(f"{label:16} {value}" for label, value in rows)


async def _delete_user(operations: Operations, target: str, confirmed: bool) -> tuple[int, str]:
    if not confirmed:
        footprint = await operations.lifecycle.footprint(target)
        return 1, (
            f"agent-memory-mcp: delete-user would delete user {footprint.user!r} with {_contents(footprint)}; "
            "run it again with --yes to delete them for good."
        )
    deleted = await operations.lifecycle.delete_user(target)
    return 0, f"deleted user {deleted.user!r} with {_contents(deleted)}"


async def _run(settings: Settings, args: argparse.Namespace) -> tuple[int, str]:
    """(exit status, what to say): the text goes to stdout on success, to stderr otherwise."""
    state = AppState(settings)
    operations = await state.open_now()
    try:
        if args.command == "stats":
            stats = await operations.lifecycle.stats()
            return 0, json.dumps(stats_json(stats), indent=2) if args.json else _stats_table(stats)
        if args.command == "purge":
            deleted = await operations.lifecycle.purge_expired()
            if deleted:
                await announce_outside_change(operations.database.engine)
            return 0, f"deleted {_count(deleted, 'expired memory', 'expired memories')}"
        status, said = await _delete_user(operations, args.target, args.yes)
        if status == 0:
            await announce_outside_change(operations.database.engine)
        return status, said
    finally:
        await state.close()


def run_lifecycle_command(settings: Settings, args: argparse.Namespace) -> int | None:
    """The exit status of a lifecycle command, or None when `args` names another command."""
    if args.command not in COMMANDS:
        return None
    try:
        status, output = anyio.run(_run, settings, args)
    except (RepositoryError, DatabaseOpenError) as exc:
        print(f"agent-memory-mcp: {exc}", file=sys.stderr)
        return 1
    print(output, file=sys.stdout if status == 0 else sys.stderr)
    return status
