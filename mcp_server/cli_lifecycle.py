"""`agent-memory-mcp stats`, `purge`, `delete-user`: the database's lifecycle (filled in by the data-ownership work)."""

from __future__ import annotations

import argparse
from typing import Any

from mcp_server.config import Settings


def add_lifecycle_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    del commands, common


def run_lifecycle_command(settings: Settings, args: argparse.Namespace) -> int | None:
    """The exit status of a lifecycle command, or None when `args` names another command."""
    del settings, args
    return None
