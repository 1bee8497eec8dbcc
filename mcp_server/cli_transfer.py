"""`agent-memory-mcp export` and `import`: moving data out and in.

`export` writes JSON Lines (repository.operations.transfer has the format) to a file or standard output: the
configured user's data, or with --all the whole database. `import` reads any format mcp_server.formats knows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import anyio

from mcp_server.config import Settings
from mcp_server.formats.native import PLURAL
from mcp_server.importer import run_import
from mcp_server.state import AppState, DatabaseOpenError
from repository.errors import RepositoryError


def add_transfer_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    exporting = commands.add_parser(
        "export",
        help="write the user's data (or with --all everything) as JSON Lines, for backup or another backend",
        parents=[common],
    )
    exporting.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    exporting.add_argument(
        "--all",
        action="store_true",
        help="every user, agent, session, message and memory, agent-wide and global memories included",
    )
    importing = commands.add_parser(
        "import",
        help="load an export, memories JSON Lines, an MCP memory.json, or a ChatGPT / Claude conversations.json",
        parents=[common],
    )
    importing.add_argument("file", nargs="?", help="the file, or - for standard input")


def run_transfer_command(settings: Settings, args: argparse.Namespace) -> int | None:
    """The exit status of a transfer command, or None when `args` names another command."""
    if args.command == "import":
        return run_import(settings, getattr(args, "file", None))
    if args.command == "export":
        return run_export(settings, getattr(args, "output", None), everything=getattr(args, "all", False))
    return None


async def export_to(settings: Settings, stream: IO[str], *, everything: bool) -> dict[str, int]:
    """Write the export to `stream`, one line per row; returns the rows of each kind."""

    def write(record: dict[str, Any]) -> None:
        stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    state = AppState(settings)
    try:
        ops = await state.open_now()
        return await ops.transfer.export(write, user=None if everything else settings.user)
    finally:
        await state.close()


def run_export(settings: Settings, output: str | None, *, everything: bool) -> int:
    """`agent-memory-mcp export`: the exit status. A file is written beside its name and renamed when complete,
    so FILE is either the whole export or untouched."""
    partial = Path(f"{output}.partial") if output else None
    try:
        if partial is None:
            counts = anyio.run(lambda: export_to(settings, sys.stdout, everything=everything))
            sys.stdout.flush()
        else:
            with partial.open("w", encoding="utf-8") as stream:
                counts = anyio.run(lambda: export_to(settings, stream, everything=everything))
            os.replace(partial, Path(output or ""))
    except (RepositoryError, DatabaseOpenError) as exc:
        _say(f"agent-memory-mcp: export failed: {exc}")
        _discard(partial)
        return 1
    except BrokenPipeError:
        # The reader went away (`export | head`): nothing to say on a pipe nobody reads.
        _discard(partial)
        return 1
    except OSError as exc:
        _say(f"agent-memory-mcp: cannot write {output or 'standard output'}: {exc.strerror or exc}")
        _discard(partial)
        return 1
    rows = ", ".join(f"{count} {PLURAL.get(kind, kind)}" for kind, count in counts.items())
    _say(f"agent-memory-mcp: exported {rows}" + (f" to {output}" if output else ""))
    return 0


def _discard(partial: Path | None) -> None:
    if partial is not None:
        partial.unlink(missing_ok=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr)
