"""`agent-memory-mcp export` and `import`: moving data out and in (filled in by the data-ownership work)."""

from __future__ import annotations

import argparse
from typing import Any

from mcp_server.config import Settings
from mcp_server.importer import run_import


def add_transfer_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    importing = commands.add_parser("import", help="bulk-load memories from JSON Lines", parents=[common])
    importing.add_argument("file", nargs="?", help="a .jsonl file, or - for standard input")


def run_transfer_command(settings: Settings, args: argparse.Namespace) -> int | None:
    """The exit status of a transfer command, or None when `args` names another command."""
    if args.command == "import":
        return run_import(settings, getattr(args, "file", None))
    return None
