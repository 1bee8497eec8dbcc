"""`agent-memory-mcp token create | list | revoke`: managed bearer tokens for HTTP servers.

A new token's secret is printed once, alone on the last line of stdout, so `TOKEN=$(agent-memory-mcp token create
--user ada)` captures it; everything else goes to stderr. Only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from mcp_server.config import Settings
from mcp_server.state import AppState
from repository.errors import RepositoryError

if TYPE_CHECKING:
    from repository.credentials import TokenInfo

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_duration(text: str) -> timedelta:
    """3s, 5m, 2h, 30d -> a timedelta (argparse type: a bad value is a usage error naming the forms)."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use a positive number and s, m, h or d (30d)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def add_token_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    token = commands.add_parser("token", help="create, list or revoke managed HTTP tokens", parents=[common])
    actions = token.add_subparsers(dest="token_command", required=True, metavar="create|list|revoke")
    create = actions.add_parser("create", help="create a token; prints the secret once", parents=[common])
    create.add_argument("--read-only", action="store_true", help="the token can search and read, not write")
    create.add_argument("--expires-in", type=parse_duration, help="lifetime such as 3s, 5m, 2h or 30d (default: none)")
    create.add_argument("--note", help="what the token is for (shown by token list)")
    listing = actions.add_parser("list", help="list tokens (never their secrets)", parents=[common])
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    revoke = actions.add_parser("revoke", help="revoke a token by id (every replica refuses it within 5 s)")
    revoke.add_argument("token_id", metavar="ID", help="the id `token list` shows")
    revoke.add_argument("--database-url", help="overrides AGENT_MEMORY_DATABASE_URL")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": str(info.id),
        "user": info.user,
        "agent": info.agent,
        "read_only": info.read_only,
        "note": info.note,
        "expires_at": _iso(info.expires_at),
        "revoked": info.revoked,
        "revoked_at": _iso(info.revoked_at),
        "created_at": _iso(info.created_at),
        "last_used_at": _iso(info.last_used_at),
    }


def _table(infos: list[TokenInfo]) -> str:
    lines = [f"{'id':36}  {'user':24}  {'agent':12}  {'access':9}  {'expires':20}  {'state':8}  note"]
    for info in infos:
        expires = f"{info.expires_at:%Y-%m-%d %H:%M:%S}" if info.expires_at else "never"
        state = "revoked" if info.revoked else "active"
        access = "read-only" if info.read_only else "write"
        agent = info.agent or "(server's)"
        lines.append(
            f"{info.id!s:36}  {info.user:24}  {agent:12}  {access:9}  {expires:20}  {state:8}  {info.note or ''}"
        )
    return "\n".join(lines)


async def _run(settings: Settings, args: argparse.Namespace) -> str:
    state = AppState(settings)
    operations = await state.open_now()
    try:
        credentials = operations.credentials
        if args.token_command == "create":
            secret, info = await credentials.create(
                settings.user,
                getattr(args, "agent", None),
                read_only=args.read_only,
                expires_in=args.expires_in,
                note=args.note,
            )
            print(f"agent-memory-mcp: created token {info.id} for {info.user}", file=sys.stderr)
            return secret
        if args.token_command == "list":
            infos = await credentials.list()
            return json.dumps([token_json(i) for i in infos], indent=2) if args.json else _table(infos)
        token_id = _parse_id(args.token_id)
        info = await credentials.revoke(token_id)
        print(f"agent-memory-mcp: revoked token {info.id}", file=sys.stderr)
        return ""
    finally:
        await state.close()


def _parse_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise RepositoryError(f"{text!r} is not a token id: copy one from `agent-memory-mcp token list`.") from None


def run_token_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.token_command == "create" and not getattr(args, "user", None):
        print("agent-memory-mcp: token create needs --user (the user the token acts for)", file=sys.stderr)
        return 2
    try:
        output = anyio.run(_run, settings, args)
    except RepositoryError as exc:
        print(f"agent-memory-mcp: {exc}", file=sys.stderr)
        return 1
    if output:
        print(output)
    return 0
