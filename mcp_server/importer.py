"""`agent-memory-mcp import FILE`: load a file of any known format (mcp_server.formats tells which by its content).

Our export is restored as it is (every user in it, ids kept); the other formats are stored for the configured user
and agent. Every format is written in batches, one transaction each: a bad line or conversation stops the import
with its place and what is wrong, nothing of its batch is written, earlier batches stay, and running the import
again skips what is stored already.
"""

from __future__ import annotations

import sys

import anyio

from mcp_server.config import Settings
from mcp_server.formats import conversations, detect, mcp_memory, memories, native
from mcp_server.formats.source import ImportProblem, Source
from mcp_server.pg_bus import announce_outside_change
from mcp_server.state import AppState, DatabaseOpenError
from repository.errors import RepositoryError


async def import_file(settings: Settings, source: Source) -> str:
    """Import `source`; returns the summary line."""
    kind = detect(source)
    if kind == "empty":
        return "the file is empty: nothing to import"
    state = AppState(settings)
    ops = None
    try:
        ops = await state.open_now()
        if kind == "native":
            return await native.run(ops, source)
        actor = await ops.identity.actor(settings.user, settings.agent)
        if kind == "mcp-memory":
            return await mcp_memory.run(ops, actor, source)
        if kind == "conversations":
            return await conversations.run(ops, actor, source)
        return await memories.run(ops, actor, source)
    finally:
        if ops is not None:  # also after a failed batch: the earlier ones were kept
            await announce_outside_change(ops.database.engine)
        await state.close()


def run_import(settings: Settings, file: str | None) -> int:
    """`agent-memory-mcp import FILE`: the exit status; what happened is said on stderr."""
    if not file:
        _say("agent-memory-mcp: import needs a file: agent-memory-mcp import memories.jsonl (or - for stdin)")
        return 2
    try:
        source = Source.open(file)
    except OSError as exc:
        _say(f"agent-memory-mcp: cannot read {file}: {exc.strerror or exc}")
        return 1
    except UnicodeDecodeError:
        _say(f"agent-memory-mcp: cannot read {file}: it is not UTF-8 text")
        return 1
    try:
        summary = anyio.run(import_file, settings, source)
    except UnicodeDecodeError as exc:
        _say(
            f"agent-memory-mcp: import stopped at byte {exc.start} of the text: it is not UTF-8; "
            "earlier batches were kept"
        )
        return 1
    except OSError as exc:
        _say(f"agent-memory-mcp: cannot read {file}: {exc.strerror or exc}")
        return 1
    except (ImportProblem, RepositoryError, DatabaseOpenError) as exc:
        _say(f"agent-memory-mcp: import stopped at {exc}; earlier batches were kept, run again to resume")
        return 1
    finally:
        source.close()
    _say(f"agent-memory-mcp: {summary}")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr)
