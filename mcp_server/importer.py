"""`agent-memory-mcp import FILE`: bulk-load memories from JSON Lines for the configured user and agent.

Each line is an object: {"content": "...", "name"?: "...", "scope"?: "user" | "agent", "description"?: "...",
"metadata"?: {...}, "read_mode"?: "tool" | "system_prompt"}. Lines are inserted in batches, each batch one
transaction; memories already present (same name, or same content without a name, in the same scope) are skipped,
so an interrupted import can simply be run again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

BATCH = 5_000
_FIELDS = {"content", "name", "scope", "description", "metadata", "read_mode"}


class ImportLineError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")


def _records(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ImportLineError(number, f"not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ImportLineError(number, "expected a JSON object")
        unknown = set(record) - _FIELDS
        if unknown:
            raise ImportLineError(number, f"unknown fields {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
        yield number, record


async def import_memories(settings: Any, path: Path) -> tuple[int, int]:
    """Import the file; returns (lines read, memories inserted)."""
    from pydantic import ValidationError

    from mcp_server.state import AppState
    from repository.memories import bulk_insert_memories_sync
    from repository.models import MemoryCreate

    state = AppState(settings)
    database = await state.db_now()
    try:
        actor = await state.actor(settings.user, settings.agent)
        read = inserted = 0
        batch: list[MemoryCreate] = []
        with sys.stdin if str(path) == "-" else path.open(encoding="utf-8") as stream:
            for number, record in _records(stream):
                scope = record.pop("scope", "user")
                if scope not in ("user", "agent"):
                    raise ImportLineError(number, f"scope must be 'user' or 'agent', not {scope!r}")
                try:
                    batch.append(
                        MemoryCreate(
                            **record,
                            agent_id=actor.agent_id,
                            user_id=actor.user_id if scope == "user" else None,
                        )
                    )
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or "line"
                    raise ImportLineError(number, f"{where}: {first['msg']}") from None
                read += 1
                if len(batch) == BATCH:
                    inserted += await database.write(bulk_insert_memories_sync, batch)
                    batch = []
            if batch:
                inserted += await database.write(bulk_insert_memories_sync, batch)
        return read, inserted
    finally:
        await state.close()
