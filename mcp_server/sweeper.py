"""The expired-memory sweeper: a task in the server's lifespan that deletes expired memories every
`sweep_interval_s` (searches and listings already hide them; this makes them go away).

It runs in bounded batches (`Lifecycle.purge_expired`), pausing between them so other writers get the lock, and a
failure (the database down, a disk full) is logged and tried again at the next interval: the sweeper never stops
the server and never makes a tool call fail.
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc

from mcp_server.state import AppState

log = logging.getLogger(__name__)

# The first sweep comes this soon after start (or after one interval, if shorter): stdio servers often live for
# one conversation, far less than an hour, and would otherwise never sweep. Late enough that it never competes
# with the protocol handshake or the database open for the first tool call.
FIRST_SWEEP_S = 60.0
# Between two batches of one sweep: lets a tool call's write take the lock before the next batch does.
BATCH_PAUSE_S = 0.05


def start_sweeper(tasks: anyio.abc.TaskGroup, state: AppState, interval_s: float) -> anyio.CancelScope:
    """Start sweeping in `tasks` (nothing when `interval_s` is 0); cancel the returned scope to stop it."""
    scope = anyio.CancelScope()
    if interval_s > 0:
        tasks.start_soon(_sweep_forever, state, interval_s, scope)
    return scope


async def _sweep_forever(state: AppState, interval_s: float, scope: anyio.CancelScope) -> None:
    with scope:
        delay = min(interval_s, FIRST_SWEEP_S)
        while True:
            await anyio.sleep(delay)
            await sweep_once(state, next_in_s=interval_s)
            delay = interval_s


async def sweep_once(state: AppState, *, next_in_s: float | None = None) -> int | None:
    """One sweep: how many expired memories were deleted, or None when it failed (logged)."""
    try:
        operations = await state.operations()
        deleted = await operations.lifecycle.purge_expired(pause_s=BATCH_PAUSE_S)
    except Exception as exc:  # noqa: BLE001 - logged and retried at the next interval; the server keeps serving
        again = f"; next sweep in {next_in_s:g} s" if next_in_s else ""
        log.warning("expired-memory sweep failed%s: %s", again, exc)
        return None
    if deleted:
        log.info("expired-memory sweep deleted %d memories", deleted)
    else:
        log.debug("expired-memory sweep: nothing had expired")
    return deleted
