"""The change bus: committed changes travel from the write that made them to whatever tells subscribers about them
(mcp_server.notifications), in this process and, on PostgreSQL, in every server process on the same database.

- The bus's `report` is the publisher the operations are given (`Operations(on_change=...)`): the operations call
  it once a write's unit of work has committed, with a `repository.operations.Change` (kind, id, owner columns).
- Within a process the bus calls its listeners at once, on the event loop, in the writing task.
- On PostgreSQL a relay (mcp_server.pg_bus) also carries every change through the database itself, LISTEN/NOTIFY
  on one channel: no other service to run. A notice names the process it came from, so a process that hears its
  own notice again skips it (its listeners were told when the write committed).
- On SQLite there is no relay: a change made by another process on the same file is not seen.

A notice says "this changed, read it again", as the protocol's notifications do: at most once, unordered across
processes. After a gap in which notices may have been lost (the relay's connection dropped, its outbox
overflowed) listeners get `None`, "anything may have changed", instead of silence.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from repository.operations import Change

log = logging.getLogger(__name__)

# A listener gets each notice, or None after a gap in which notices may have been lost.
Listener = Callable[["Notice | None"], None]

_KINDS = frozenset({"memory", "session", "messages"})
_ACTIONS = frozenset({"created", "updated", "deleted", "appended"})


@dataclass(frozen=True)
class Notice:
    """A committed change as the surface carries it (the fields of `repository.operations.Change`): kind
    'memory' (id: the memory, None for an import batch), 'session' (a new session) or 'messages' (appended to
    session id), and the owner columns that decide who may be told."""

    kind: str
    action: str
    id: uuid.UUID | None
    agent_id: uuid.UUID | None
    user_id: uuid.UUID | None
    session_id: uuid.UUID | None = None

    @classmethod
    def of(cls, change: Change) -> Notice:
        return cls(change.kind, change.action, change.id, change.agent_id, change.user_id, change.session_id)

    def payload(self, origin: str) -> str:
        """The NOTIFY payload: a small JSON object (PostgreSQL caps payloads at 8000 bytes; this is under 300)."""
        fields: dict[str, str | None] = {"kind": self.kind, "action": self.action, "origin": origin}
        for name in ("id", "agent_id", "user_id", "session_id"):
            value = getattr(self, name)
            fields[name] = value.hex if value is not None else None
        return json.dumps(fields, separators=(",", ":"))


def resync_payload(origin: str) -> str:
    """The payload telling every process that notices of `origin` were lost: anything may have changed."""
    return json.dumps({"resync": True, "origin": origin}, separators=(",", ":"))


def parse_payload(text: str) -> tuple[str, Notice | None] | None:
    """(origin, notice) of a payload, (origin, None) for a resync, None when it is not one of ours."""
    try:
        data = json.loads(text)
        origin = data["origin"]
        if not isinstance(origin, str):
            return None
        if data.get("resync") is True:
            return origin, None
        if data["kind"] not in _KINDS or data["action"] not in _ACTIONS:
            return None
        ids = {name: _uuid_or_none(data.get(name)) for name in ("id", "agent_id", "user_id", "session_id")}
        return origin, Notice(data["kind"], data["action"], **ids)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(hex=value)


class Relay(Protocol):
    """Carries this process's notices to the other processes (mcp_server.pg_bus.PostgresRelay)."""

    def send(self, payload: str) -> None: ...


class ChangeBus:
    """Fan-out of committed changes to this process's listeners, and to a relay for the other processes."""

    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex
        self._listeners: dict[object, Listener] = {}
        self.relay: Relay | None = None
        # Asked for a relay when a change is reported and none is running (set by the notifier on PostgreSQL).
        self.want_relay: Callable[[], Relay | None] | None = None

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` for every notice from now on; returns the idempotent way to stop."""
        token = object()
        self._listeners[token] = listener

        def stop() -> None:
            self._listeners.pop(token, None)

        return stop

    def report(self, change: Change) -> None:
        """The operations' publisher: tell this process's listeners, then the other processes."""
        notice = Notice.of(change)
        self.deliver(notice)
        relay = self.relay if self.relay is not None else (self.want_relay() if self.want_relay else None)
        if relay is not None:
            relay.send(notice.payload(self.origin))

    def receive(self, payload: str) -> None:
        """A payload from the relay: deliver it unless it is one of ours coming back."""
        parsed = parse_payload(payload)
        if parsed is None:
            log.warning("ignored a change notice that is not ours (%d bytes)", len(payload))
            return
        origin, notice = parsed
        # Our own notices were delivered here when the write committed, our own resyncs concern the others.
        if origin != self.origin:
            self.deliver(notice)

    def deliver(self, notice: Notice | None) -> None:
        for listener in list(self._listeners.values()):
            try:
                listener(notice)
            except Exception:  # one failing listener must not starve the others or fail the writer
                log.exception("change listener failed")
