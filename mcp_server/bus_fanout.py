"""From the change bus to subscribers: which protocol events a notice makes, who may be told (`may_read`, the
rule of the reads over the owner columns a notice carries), and the watchers that tell them.

Two kinds of watcher, both in the one `Hub` of a server:
- a 2026-07-28 `subscriptions/listen` stream, served by the SDK's ListenHandler over `ListenBus`, with the
  identity and filter mcp_server.notifications granted the request;
- a handshake-era connection's `Channel`, which pushes on the connection's own stream (stdio, stateful HTTP).
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent

from mcp_server.bus import ChangeBus, Notice
from mcp_server.errors import safe_message
from mcp_server.identity import acting_for
from mcp_server.state import AppState
from repository.errors import NotFoundError
from repository.models import Actor

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.session import ServerSession

    from repository.operations import Operations

log = logging.getLogger(__name__)

# How often a stream re-asks whether its credential still holds (mcp_server.auth caches the answer as long), so a
# revoked or expired credential stops being told within about twice this.
RECHECK_S = 5.0
CredentialCheck = Callable[[], Awaitable[bool]]


async def while_valid(check: CredentialCheck, serve: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
    """Run `serve` until it returns or `check` (asked every RECHECK_S) says the credential no longer holds:
    (True, its result), or (False, None) when it was ended for that."""
    valid, result = True, None

    async def watch() -> None:
        nonlocal valid
        while True:
            await anyio.sleep(RECHECK_S)
            if not await check():
                valid = False
                group.cancel_scope.cancel()
                return

    failed: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            result = await serve()
        except Exception as exc:  # noqa: BLE001 - re-raised as itself below, not in the task group's ExceptionGroup
            failed = exc
        group.cancel_scope.cancel()
    if failed is not None:
        raise failed
    return valid, result


def subscribable(uri: str) -> tuple[str, uuid.UUID] | None:
    """(kind, id) of a URI that sends updates, None for any other; ids in any spelling uuid.UUID reads."""
    if uri.startswith("memory://memories/"):
        kind, text = "memory", uri.removeprefix("memory://memories/")
    elif uri.startswith("memory://sessions/") and uri.endswith("/history"):
        kind, text = "messages", uri.removeprefix("memory://sessions/").removesuffix("/history")
    else:
        return None
    try:
        return kind, uuid.UUID(text)
    except ValueError:
        return None


def uri_of(kind: str, id_: uuid.UUID) -> str:
    """The canonical URI of what a change of this kind updates (what events carry and subscriptions store)."""
    return f"memory://memories/{id_}" if kind == "memory" else f"memory://sessions/{id_}/history"


def may_read(notice: Notice, actor: Actor) -> bool:
    """Whether `actor` may read what changed: the rules of the reads, over the owner columns a notice carries.
    Memories: repository.visibility.visible_to (own, the agent's shared ones, global ones). A new session: the
    session listings (this user with this agent). Messages: the history resource (the user's own sessions)."""
    if notice.kind == "memory":
        return notice.agent_id in (None, actor.agent_id) and notice.user_id in (None, actor.user_id)
    if notice.kind == "session":
        return notice.user_id == actor.user_id and notice.agent_id == actor.agent_id
    return notice.user_id == actor.user_id


def events_for(notice: Notice) -> tuple[ServerEvent, ...]:
    events: list[ServerEvent] = []
    if notice.id is not None and notice.kind in ("memory", "messages"):
        events.append(ResourceUpdated(uri_of(notice.kind, notice.id)))
    if notice.action in ("created", "deleted"):
        events.append(ResourcesListChanged())
    return tuple(events)


async def readable(ops: Operations, actor: Actor, kind: str, id_: uuid.UUID) -> bool:
    """Whether `actor` may read this resource now, asked the way its read asks (not found: no)."""
    try:
        if kind == "memory":
            await ops.memories.get(actor, id_)
        else:
            await ops.conversations.history(actor, id_, limit=1)
    except NotFoundError:
        return False
    return True


@dataclass(eq=False)
class Watcher:
    """One subscriber: whose identity it has (None until resolved: told nothing), what it watches, how it is told."""

    actor: Actor | None
    deliver: Callable[[ServerEvent], None]
    uris: set[str] = field(default_factory=set)
    list_changes: bool = False

    def wants(self, event: ServerEvent) -> bool:
        if isinstance(event, ResourceUpdated):
            return event.uri in self.uris
        return isinstance(event, ResourcesListChanged) and self.list_changes


class Hub:
    """The watchers of this process, told of every notice of the change bus they may read."""

    def __init__(self, bus: ChangeBus) -> None:
        self.watchers: set[Watcher] = set()
        bus.listen(self.on_notice)

    def on_notice(self, notice: Notice | None) -> None:
        for watcher in list(self.watchers):
            if watcher.actor is None:
                continue
            if notice is None:
                # After a gap: everything a watcher watches may have changed (its URIs were checked when added).
                events: Iterable[ServerEvent] = [ResourcesListChanged(), *map(ResourceUpdated, sorted(watcher.uris))]
            elif may_read(notice, watcher.actor):
                events = events_for(notice)
            else:
                continue
            for event in events:
                if watcher.wants(event):
                    try:
                        watcher.deliver(event)
                    except Exception:  # one broken watcher must not keep the others from being told
                        log.exception("change watcher failed")


@dataclass(frozen=True)
class Grant:
    """What a listen stream was granted: whose it is and what it is told (mcp_server.notifications decides)."""

    actor: Actor
    uris: frozenset[str]
    list_changes: bool


# The grant of the listen request running in this task, read by ListenBus.subscribe (the SDK's handler calls it
# from the request's own task, with no context of its own).
GRANT: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("listen_grant", default=None)


class ListenBus:
    """The SDK's SubscriptionBus seam for `subscriptions/listen`: each stream becomes a watcher of the hub, with
    the identity and filter the listen middleware granted (none: it is told nothing, failing closed)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def publish(self, event: ServerEvent) -> None:
        # Resource events carry no owner, so they only reach streams through the hub; other kinds (tools, prompts)
        # are never published by this server and are not acknowledged to any stream.
        log.debug("ignored an unscoped %s", type(event).__name__)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        grant = GRANT.get()
        watcher = Watcher(grant.actor if grant else None, listener)
        if grant is not None:
            watcher.uris, watcher.list_changes = set(grant.uris), grant.list_changes
        self.hub.watchers.add(watcher)
        return lambda: self.hub.watchers.discard(watcher)


class Channel:
    """A handshake-era connection's watcher: events wait in a set (a burst of changes to one resource is one
    notification) and one task sends them on the connection's stream until it closes."""

    def __init__(self, session: ServerSession, token: AccessToken | None, check: CredentialCheck | None = None) -> None:
        self.session = session
        self.token = token
        self.check = check
        self.watcher = Watcher(None, self._queue, list_changes=True)
        self._pending: dict[ServerEvent, None] = {}
        self._wake = anyio.Event()
        self.closed = False

    def _queue(self, event: ServerEvent) -> None:
        self._pending[event] = None
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def adopt(self, hub: Hub, actor: Actor) -> None:
        """Start telling this connection, as `actor` (the identity its requests verified)."""
        if self.watcher.actor is None and not self.closed:
            self.watcher.actor = actor
            hub.watchers.add(self.watcher)

    async def _push(self) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake = anyio.Event()
            events, self._pending = list(self._pending), {}
            for event in events:
                if isinstance(event, ResourceUpdated):
                    await self.session.send_resource_updated(event.uri)
                else:
                    await self.session.send_resource_list_changed()

    async def run(self, hub: Hub, state: AppState) -> None:
        try:
            _, actor = await acting_for(state, self.token)
        except Exception as exc:  # noqa: BLE001 - an identity that cannot be resolved is told nothing
            log.info("no change notifications for this connection yet: %s", safe_message(exc))
            self.closed = True  # its next request makes a new channel, which tries again
            return
        self.adopt(hub, actor)
        try:
            if self.check is None:
                await self._push()
            elif not (await while_valid(self.check, self._push))[0]:
                log.info("change notifications of a connection stop: its credential was revoked or expired")
        except Exception as exc:  # noqa: BLE001 - a connection that cannot be written to is done; the others go on
            log.debug("change notifications of a connection stop: %s", type(exc).__name__)
        finally:
            self.closed = True
            hub.watchers.discard(self.watcher)
