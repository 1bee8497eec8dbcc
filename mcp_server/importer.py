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

import anyio
from pydantic import ValidationError

from mcp_server.config import Settings
from mcp_server.state import AppState
from repository.errors import RepositoryError
from repository.limits import IMPORT_BATCH
from repository.models import MemoryRecord

_FIELDS = set(MemoryRecord.model_fields)


class ImportLineError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")


def _records(stream: IO[str]) -> Iterator[tuple[int, MemoryRecord]]:
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield number, _record(number, raw)


def _record(number: int, raw: str) -> MemoryRecord:
    try:
        record: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImportLineError(number, f"not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ImportLineError(number, "expected a JSON object")
    unknown = set(record) - _FIELDS
    if unknown:
        raise ImportLineError(number, f"unknown fields {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    if record.get("scope", "user") not in ("user", "agent"):
        raise ImportLineError(number, f"scope must be 'user' or 'agent', not {record['scope']!r}")
    try:
        return MemoryRecord(**record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise ImportLineError(number, f"{where}: {first['msg']}") from None


async def import_memories(settings: Settings, path: Path) -> tuple[int, int]:
    """Import the file; returns (lines read, memories inserted)."""
    state = AppState(settings)
    try:
        ops = await state.open_now()
        actor = await ops.identity.actor(settings.user, settings.agent)
        read = inserted = 0
        batch: list[MemoryRecord] = []
        with sys.stdin if str(path) == "-" else path.open(encoding="utf-8") as stream:
            for _number, record in _records(stream):
                batch.append(record)
                read += 1
                if len(batch) == IMPORT_BATCH:
                    inserted += await ops.memories.import_records(actor, batch)
                    batch = []
            if batch:
                inserted += await ops.memories.import_records(actor, batch)
        return read, inserted
    finally:
        await state.close()


def run_import(settings: Settings, file: str | None) -> int:
    """`agent-memory-mcp import FILE`: the exit status; what happened is said on stderr."""
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


def _say(message: str) -> None:
    print(message, file=sys.stderr)
