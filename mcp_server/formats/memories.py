"""Our memories JSON Lines: one object a line, {"content": "...", "name"?: "...", "scope"?: "user" | "agent",
"description"?: "...", "metadata"?: {...}, "read_mode"?: "tool" | "system_prompt"}, for the configured user and
agent. Lines are inserted in batches, each batch one transaction; memories already present (same name, or same
content without a name, in the same scope) are skipped, so an interrupted import can simply be run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from mcp_server.formats.source import ImportProblem, Progress, Source, json_object
from repository.limits import IMPORT_BATCH
from repository.models import Actor, MemoryRecord

if TYPE_CHECKING:
    from repository.operations import Operations

_FIELDS = set(MemoryRecord.model_fields)


def record(number: int, text: str) -> MemoryRecord:
    """One line as a memory, or an ImportProblem naming the line and what is wrong with it."""
    where = f"line {number}"
    fields = json_object(where, text)
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ImportProblem(where, f"unknown fields {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    if fields.get("scope", "user") not in ("user", "agent"):
        raise ImportProblem(where, f"scope must be 'user' or 'agent', not {fields['scope']!r}")
    try:
        return MemoryRecord(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "line"
        raise ImportProblem(where, f"{field}: {first['msg']}") from None


async def run(ops: Operations, actor: Actor, source: Source) -> str:
    """Import the file; returns the summary line."""
    read = inserted = 0
    batch: list[MemoryRecord] = []
    progress = Progress(source, "memories")
    try:
        for number, text in source.lines():
            if not text.strip():
                continue
            batch.append(record(number, text))
            read += 1
            if len(batch) == IMPORT_BATCH:
                inserted += await ops.memories.import_records(actor, batch)
                batch = []
                progress.update(read)
        if batch:
            inserted += await ops.memories.import_records(actor, batch)
    finally:
        progress.close()
    return f"read {read}, imported {inserted}, skipped {read - inserted} already stored"
