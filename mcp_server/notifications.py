"""Live change notifications on the protocol: `notifications/resources/updated` for a memory
(`memory://memories/{id}`) and a session's history (`memory://sessions/{id}/history`), and
`notifications/resources/list_changed` when the set of memories or sessions changes, told only to subscribers who
may read what changed (mcp_server.bus_fanout: `may_read`).

The path of a change: a write operation commits and reports it to the change bus (mcp_server.bus), which tells
this process's hub at once and, on PostgreSQL, the other processes through LISTEN/NOTIFY (mcp_server.pg_bus).

What each connection can get, and what is advertised to it (`advertise`, exactly that):
- 2026-07-28, every transport: `subscriptions/listen` streams. The listen request is a long-lived response
  stream, so a stateless HTTP server serves it too. Its acknowledgement names only what will be delivered:
  resource list changes and the URIs the caller can read; tools and prompts never change (not advertised).
- handshake era, stdio and stateful HTTP: `resources/subscribe` / `resources/unsubscribe`, and list changes
  for every connection (pushed on the connection's own stream: the standalone GET stream over HTTP).
- handshake era, stateless HTTP: nothing can be pushed outside a request, so neither is advertised and
  `resources/subscribe` is refused with a sentence saying what to use instead.

Subscribing to a resource the caller cannot read is refused: `resources/subscribe` answers with the sentence a
read gives ("No memory with id ..."), a listen stream leaves the URI out of its acknowledgement (as it does a URI
that sends no updates). A resource's owner never changes, so a refused subscription could never have fired; the
hub checks every delivery against the watcher's identity all the same.

A subscription is acknowledged once the PostgreSQL listener is in place (up to 5 s), so a change committed on
any replica after the acknowledgement is told. Then delivery is at most once: after a gap (the listener's
connection dropped) every watcher hears that everything it watches may have changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionFilter,
    SubscriptionsListenRequestParams,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp_server.bus import ChangeBus
from mcp_server.bus_fanout import (
    GRANT,
    Channel,
    CredentialCheck,
    Grant,
    Hub,
    ListenBus,
    readable,
    subscribable,
    uri_of,
    while_valid,
)
from mcp_server.config import Settings
from mcp_server.errors import safe_message
from mcp_server.identity import acting, verified_token
from mcp_server.pg_bus import PostgresRelay, connect_arguments
from mcp_server.state import AppState

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.context import CallNext, ServerRequestContext

    from repository.models import Actor
    from repository.operations import Operations

log = logging.getLogger(__name__)

MAX_WATCHED = 256  # resources one listen stream or one connection may watch
READY_WAIT_S = 5.0  # how long a subscription waits for the PostgreSQL listener before it is acknowledged anyway
STATELESS = (
    "This server is stateless (AGENT_MEMORY_HTTP_STATELESS=true) and cannot push notifications outside a "
    "request: use subscriptions/listen (protocol 2026-07-28), or a server with AGENT_MEMORY_HTTP_STATELESS=false."
)
NOT_SUBSCRIBABLE = (
    "Only memory://memories/{id} and memory://sessions/{id}/history send updates: subscribe to one of those; "
    "new and deleted memories and sessions come as notifications/resources/list_changed."
)
ENDED = "This stream's credential was revoked or has expired: listen again with a valid token."
TOO_MANY = f"At most {MAX_WATCHED} resources per connection or stream: unsubscribe some, or open another stream."
# Requests that do not make a handshake-era connection a watcher: the handshake itself, and pings.
_NOT_TRACKED = frozenset({"initialize", "ping", "server/discover"})


@dataclass
class _Host:
    """The task group of one server lifespan, where the channels and the relay of that lifespan run."""

    state: AppState
    group: anyio.abc.TaskGroup
    scope: anyio.CancelScope


class Notifier:
    """The notifications of one server (shared by its lifespans: in-process clients each run their own)."""

    def __init__(self, settings: Settings, still_valid: Callable[[AccessToken], Awaitable[bool]] | None = None) -> None:
        self.bus = ChangeBus()
        self.hub = Hub(self.bus)
        self.listen_bus = ListenBus(self.hub)
        self.postgres = settings.resolved_database_url().startswith("postgresql")
        # A stateless HTTP server has no stream of a handshake-era client to push on outside a request.
        self.can_push = not (settings.transport == "streamable-http" and settings.http_stateless)
        self._hosts: dict[int, _Host] = {}
        self._channels: dict[int, Channel] = {}
        self.relay: PostgresRelay | None = None
        # Whether a verified credential still holds (the HTTP server's verifier; None: nothing can be revoked).
        self.still_valid = still_valid
        self._relay_host: _Host | None = None
        if self.postgres:
            self.bus.want_relay = lambda: self.ensure_relay(None)

    async def attach(self, state: AppState, tasks: anyio.abc.TaskGroup) -> None:
        """Serve this lifespan: its channels and (the first one) the relay run in a task group `detach` ends."""
        state.bus = self.bus
        await tasks.start(self._host, state)

    async def _host(self, state: AppState, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                self._hosts[id(state)] = _Host(state, group, scope)
                task_status.started()
                await anyio.sleep_forever()

    def detach(self, state: AppState) -> None:
        host = self._hosts.pop(id(state), None)
        if host is None:
            return
        host.scope.cancel()
        if self._relay_host is host:
            # Another lifespan still running starts its own relay when it next needs one.
            self.relay = self.bus.relay = self._relay_host = None

    def ensure_relay(self, state: AppState | None) -> PostgresRelay | None:
        """The running PostgreSQL relay, started in a lifespan's task group on first use (None on SQLite)."""
        if not self.postgres or self.relay is not None:
            return self.relay
        host = self._hosts.get(id(state)) if state is not None else next(iter(self._hosts.values()), None)
        if host is None:
            return None
        source = host.state

        async def arguments() -> dict[str, Any]:
            return connect_arguments((await source.operations()).database.engine)

        self.relay = PostgresRelay(self.bus, arguments)
        self.bus.relay, self._relay_host = self.relay, host
        host.group.start_soon(self.relay.run)
        return self.relay

    async def ready(self, state: AppState) -> None:
        """Wait (up to READY_WAIT_S) until changes from every process reach this one."""
        relay = self.ensure_relay(state)
        if relay is not None:
            with anyio.move_on_after(READY_WAIT_S):
                await relay.listening.wait()

    def channel(self, ctx: ServerRequestContext[Any, Any]) -> Channel | None:
        """The channel of the handshake-era connection of this request, made on its first request."""
        connection = getattr(ctx.session, "_connection", None)  # not exposed by the SDK's request context
        state = ctx.lifespan_context
        host = self._hosts.get(id(state))
        if connection is None or host is None:
            return None
        channel = self._channels.get(id(connection))
        if channel is None or channel.closed:
            token = verified_token(Context(request_context=ctx))
            channel = Channel(ctx.session, token, self._check(token))
            self._channels[id(connection)] = channel
            connection.exit_stack.callback(self._forget, id(connection), channel)
            host.group.start_soon(channel.run, self.hub, state)
            self.ensure_relay(state)
        return channel

    def _check(self, token: AccessToken | None) -> CredentialCheck | None:
        """Whether the credential of a stream still holds, asked while the stream lasts."""
        still_valid = self.still_valid
        if token is None or still_valid is None:
            return None
        return lambda: still_valid(token)

    def _forget(self, key: int, channel: Channel) -> None:
        channel.close()
        if self._channels.get(key) is channel:
            del self._channels[key]

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        if ctx.method in ("initialize", "server/discover"):
            return advertise(await call_next(ctx), modern=modern, can_push=self.can_push)
        if ctx.method == "subscriptions/listen" and ctx.request_id is not None:
            return await self._listen(ctx, call_next)
        if not modern and self.can_push and ctx.request_id is not None and ctx.method not in _NOT_TRACKED:
            self.channel(ctx)
        return await call_next(ctx)

    async def _listen(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        try:
            params = SubscriptionsListenRequestParams.model_validate(ctx.params or {}, by_name=False)
        except ValidationError:
            return await call_next(ctx)  # the SDK's own validation answers it
        ops, actor = await _acting(ctx)
        wanted = params.notifications
        uris = await _checked(ops, actor, list(dict.fromkeys(wanted.resource_subscriptions or ())))
        grant = Grant(actor, frozenset(uris), bool(wanted.resources_list_changed))
        narrowed = SubscriptionFilter(
            resources_list_changed=True if grant.list_changes else None, resource_subscriptions=uris or None
        )
        await self.ready(ctx.lifespan_context)
        check = self._check(verified_token(Context(request_context=ctx)))
        notifications = narrowed.model_dump(by_alias=True, exclude_none=True)
        narrowed_ctx = replace(ctx, params={**(ctx.params or {}), "notifications": notifications})
        token = GRANT.set(grant)
        try:
            if check is None:
                return await call_next(narrowed_ctx)
            valid, result = await while_valid(check, lambda: call_next(narrowed_ctx))
        finally:
            GRANT.reset(token)
        if not valid:
            raise MCPError(INVALID_REQUEST, ENDED)
        return result

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        if not self.can_push:
            raise MCPError(INVALID_REQUEST, STATELESS)
        target = subscribable(params.uri)
        if target is None:
            raise MCPError(INVALID_PARAMS, NOT_SUBSCRIBABLE)
        channel = self.channel(ctx)
        if channel is None:
            raise MCPError(INVALID_REQUEST, STATELESS)
        ops, actor = await _acting(ctx)
        channel.adopt(self.hub, actor)
        if not await _readable(ops, actor, *target):
            what = "memory" if target[0] == "memory" else "session"
            raise MCPError(INVALID_PARAMS, f"No {what} with id {target[1]}.")
        uri = uri_of(*target)
        if uri not in channel.watcher.uris and len(channel.watcher.uris) >= MAX_WATCHED:
            raise MCPError(INVALID_PARAMS, TOO_MANY)
        channel.watcher.uris.add(uri)
        await self.ready(ctx.lifespan_context)
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        target = subscribable(params.uri)
        channel = self.channel(ctx) if self.can_push else None
        if target is not None and channel is not None:
            channel.watcher.uris.discard(uri_of(*target))
        return EmptyResult()


def advertise(result: Any, *, modern: bool, can_push: bool) -> Any:
    """The handshake's capabilities as delivered: resource subscriptions and list changes where they can be
    pushed (always on 2026-07-28, through listen streams), tools and prompts never changing."""
    if not isinstance(result, dict) or not isinstance(result.get("capabilities"), dict):
        return result
    capabilities = dict(result["capabilities"])
    push = modern or can_push
    if "resources" in capabilities:
        capabilities["resources"] = {**capabilities["resources"], "subscribe": push, "listChanged": push}
    for unchanging in ("tools", "prompts"):
        if isinstance(capabilities.get(unchanging), dict):
            capabilities[unchanging] = {**capabilities[unchanging], "listChanged": False}
    return {**result, "capabilities": capabilities}


async def _acting(ctx: ServerRequestContext[Any, Any]) -> tuple[Operations, Actor]:
    """The operations and verified actor of this request; a failure is one safe sentence in a protocol error."""
    try:
        # The identity helpers read an MCPServer context; a lowlevel handler or middleware has the request's own.
        return await acting(Context(request_context=ctx))
    except Exception as exc:  # translated once, as on every surface (mcp_server.errors)
        raise MCPError(INVALID_REQUEST, safe_message(exc)) from exc


async def _readable(ops: Operations, actor: Actor, kind: str, id_: Any) -> bool:
    try:
        return await readable(ops, actor, kind, id_)
    except Exception as exc:  # an outage while checking is the caller's to retry
        raise MCPError(INVALID_REQUEST, safe_message(exc)) from exc


async def _checked(ops: Operations, actor: Actor, requested: list[str]) -> list[str]:
    """The requested URIs that send updates and that the actor can read, canonical, in request order."""
    if len(requested) > MAX_WATCHED:
        raise MCPError(INVALID_PARAMS, TOO_MANY)
    uris: list[str] = []
    for uri in requested:
        target = subscribable(uri)
        if target is not None and await _readable(ops, actor, *target) and uri_of(*target) not in uris:
            uris.append(uri_of(*target))
    return uris


def register(server: MCPServer[AppState], notifier: Notifier) -> None:
    """Serve subscriptions on `server` (built with `subscriptions=notifier.listen_bus`)."""
    server.middleware.append(notifier.middleware)
    # MCPServer has no public way to add a lowlevel request handler; the notification tests fail if this breaks.
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, notifier.subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, notifier.unsubscribe)
