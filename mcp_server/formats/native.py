"""Our own export (`agent-memory-mcp export`): restored as it is, ids kept, on either backend.

A header line, one line per row, an end line (repository.operations.transfer). Each RESTORE_BATCH rows are one
transaction; rows already stored are skipped, so importing a file again changes nothing and an interrupted import
resumes by running it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_server.formats.source import ImportProblem, Progress, Source, json_object
from repository.errors import RepositoryError

if TYPE_CHECKING:
    from repository.operations import Operations
    from repository.operations.transfer import Restore

PLURAL = {"user": "users", "agent": "agents", "session": "sessions", "message": "messages", "memory": "memories"}


async def run(ops: Operations, source: Source) -> str:
    restore = ops.transfer.restore()
    progress = Progress(source, "rows")
    first = last = 0
    try:
        for number, text in source.lines():
            if not text.strip():
                continue
            first, last = first or number, number
            if restore.add(f"line {number}", json_object(f"line {number}", text)):
                await _flush(restore, first, last)
                first = 0
                progress.update(sum(restore.read.values()))
        await _flush(restore, first, last)
    finally:
        progress.close()
    if not restore.complete:
        raise ImportProblem(
            "the end of the file",
            "no end line, so the export was cut short: what came before was imported; export again and import the "
            "whole file",
        )
    return _summary(restore.read, restore.imported, restore.remapped)


async def _flush(restore: Restore, first: int, last: int) -> None:
    """Write the pending rows; a failure the rows' checks did not place is placed by the batch's lines."""
    try:
        await restore.flush()
    except RepositoryError as exc:
        if str(exc).startswith("line "):
            raise
        raise ImportProblem(f"lines {first}-{last}", str(exc)) from None


def _summary(read: dict[str, int], imported: dict[str, int], remapped: int) -> str:
    rows = ", ".join(f"{imported.get(kind, 0)} {plural}" for kind, plural in PLURAL.items())
    skipped = sum(read.values()) - sum(imported.values())
    text = f"read {sum(read.values())} rows, imported {rows}; skipped {skipped} already stored"
    if remapped:
        text += f"; {remapped} users or agents already here under another id took the file's rows"
    return text
