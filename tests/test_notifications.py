"""Live change notifications: what the operations report, who is told, and what each transport advertises.

Real parts only: the operations on real SQLite files and the real PostgreSQL, the SDK's real client in process
(2026-07-28 `subscriptions/listen` and handshake-era `resources/subscribe`), and the console script as a real
subprocess over stdio and streamable HTTP (two users on one server: the other user is never told).

"Never told" is asserted with a barrier, not a sleep: a stream delivers in order, so when the next event a
subscriber gets is the one of a later change it may see, no event of the earlier change reached it.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import ResourceListChangedNotification, ResourceUpdatedNotification

from mcp_server import bus_fanout
from mcp_server.app import build_server
from mcp_server.bus import Notice, parse_payload, resync_payload
from mcp_server.bus_fanout import may_read
from mcp_server.config import Settings
from repository import Database, MemoryCreate, create_memory
from repository.errors import NotFoundError, PermissionDeniedError
from repository.models import MemoryRecord, NewMessage
from repository.operations import Change, Operations
from tests.http_server import SCRIPT, Identity, http_server
from tests.mcp_helpers import call

pytestmark = pytest.mark.anyio

WAIT_S = 5.0


def memory_uri(memory_id: str) -> str:
    return f"memory://memories/{memory_id}"


def history_uri(session_id: str) -> str:
    return f"memory://sessions/{session_id}/history"


async def next_event(subscription: Any) -> Any:
    with anyio.fail_after(WAIT_S):
        async for event in subscription:
            return event
    raise AssertionError("the stream ended")


async def until_no_watchers(server: Any) -> None:
    """The server lets go of a closed stream's watcher soon after the client left (it hears of it a moment later)."""
    with anyio.fail_after(WAIT_S):
        while server.notifier.hub.watchers:
            await anyio.sleep(0.01)


async def subscribe(client: Client, uri: str) -> None:
    """resources/subscribe (handshake era; the SDK warns that 2026-07-28 removed it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.subscribe_resource(uri)


async def unsubscribe(client: Client, uri: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await client.unsubscribe_resource(uri)


class Inbox:
    """The change notifications a handshake-era client receives, in order."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[Any](100)

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification | ResourceListChangedNotification):
            await self.send.send(message)

    async def next(self) -> Any:
        with anyio.fail_after(WAIT_S):
            message = await self.receive.receive()
        return message.params.uri if isinstance(message, ResourceUpdatedNotification) else "list_changed"

    def close(self) -> None:
        self.send.close()
        self.receive.close()


@asynccontextmanager
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    try:
        yield box
    finally:
        box.close()


# --- the operations report committed changes, and only those -----------------------------------------------------


async def test_operations_report_each_committed_change_and_nothing_else(database_url):
    changes: list[Change] = []
    ops = Operations(Database(database_url), on_change=changes.append)
    try:
        ada = await ops.identity.actor("ada@example.com", "coder")
        reader = await ops.identity.actor("ada@example.com", "coder", read_only=True)
        first = await ops.memories.remember(ada, "Likes tea", name="drink")
        await ops.memories.remember(ada, "Likes coffee", name="drink")
        await ops.memories.remember(ada, "Likes coffee", name="drink")  # unchanged: nothing to tell
        with pytest.raises(PermissionDeniedError):
            await ops.memories.remember(reader, "Likes water", name="drink")
        await ops.memories.revise(ada, first.memory.id, content="Likes cocoa")  # a person's correction
        await ops.memories.forget(ada, first.memory.id)
        with pytest.raises(NotFoundError):
            await ops.memories.forget(ada, first.memory.id)  # rolled back: not told
        chat = await ops.conversations.start_session(ada, name="chat")
        await ops.conversations.append(ada, chat.id, [NewMessage(role="user", text_content="hi")])
        with pytest.raises(NotFoundError):
            await ops.conversations.append(ada, uuid.uuid4(), [NewMessage(role="user", text_content="lost")])
        shared = MemoryRecord(content="Team uses tabs", scope="agent")
        await ops.memories.import_records(ada, [MemoryRecord(content="Owns a cat"), shared])
        await ops.memories.import_records(ada, [shared])  # already there: nothing inserted, nothing told
    finally:
        await ops.close()
    m, u, a = first.memory.id, ada.user_id, ada.agent_id
    assert changes[:6] == [
        Change("memory", "created", m, a, u),
        Change("memory", "updated", m, a, u),
        Change("memory", "updated", m, a, u),
        Change("memory", "deleted", m, a, u),
        Change("session", "created", chat.id, a, u),
        Change("messages", "appended", chat.id, a, u, chat.id),
    ]
    # An import batch does not return ids: each owner scope hears that its set changed.
    assert sorted(changes[6:], key=str) == sorted(
        [Change("memory", "created", None, a, u), Change("memory", "created", None, a, None)], key=str
    )


async def test_a_failing_publisher_never_fails_a_saved_write(database_url, caplog):
    def broken(_change: Change) -> None:
        raise RuntimeError("publisher down")

    ops = Operations(Database(database_url), on_change=broken)
    try:
        ada = await ops.identity.actor("ada@example.com", "coder")
        written = await ops.memories.remember(ada, "Likes tea")
        assert (await ops.memories.get(ada, written.memory.id)).content == "Likes tea"
    finally:
        await ops.close()
    assert "change publisher failed" in caplog.text


async def test_who_is_told_agrees_with_who_can_read(database_url):
    """`may_read` over a notice's owner columns gives the same answer as the reads, for every scope kind and for
    the owner, the owner with another agent, another user of the agent, and a stranger."""
    ops = Operations(Database(database_url))
    try:
        ada = await ops.identity.actor("ada@example.com", "coder")
        cast = [
            ada,
            await ops.identity.actor("ada@example.com", "writer"),
            await ops.identity.actor("bob@example.com", "coder"),
            await ops.identity.actor("eve@example.com", "other"),
        ]
        chat = await ops.conversations.start_session(ada, name="chat")
        memories = [
            (await ops.memories.remember(ada, "mine")).memory,
            (await ops.memories.remember(ada, "shared", scope="agent")).memory,
            (await ops.memories.remember(ada, "this chat", session_id=chat.id)).memory,
        ]
        async with ops.database.transaction() as session:
            memories.append(await create_memory(session, MemoryCreate(content="for everyone")))
        for memory in memories:
            notice = Notice("memory", "updated", memory.id, memory.agent_id, memory.user_id, memory.session_id)
            for actor in cast:
                assert may_read(notice, actor) == await _can(ops.memories.get(actor, memory.id)), (memory, actor)
        appended = Notice("messages", "appended", chat.id, ada.agent_id, ada.user_id, chat.id)
        created = Notice("session", "created", chat.id, ada.agent_id, ada.user_id)
        for actor in cast:
            assert may_read(appended, actor) == await _can(ops.conversations.history(actor, chat.id))
            listed = [s.id for s in (await ops.conversations.list_sessions(actor)).items]
            assert may_read(created, actor) == (chat.id in listed)
    finally:
        await ops.close()


async def _can(read: Any) -> bool:
    try:
        await read
    except NotFoundError:
        return False
    return True


# --- in process: 2026-07-28 listen streams and handshake-era subscriptions ----------------------------------------


def _server(database_url: str) -> Any:
    return build_server(Settings(database_url=database_url, user="ada@example.com", agent="tester"))


async def test_listen_tells_of_updates_made_by_another_client_and_acknowledges_only_that(database_url):
    server = _server(database_url)
    async with Client(server) as watcher, Client(server) as writer:
        capabilities = watcher.server_capabilities
        assert capabilities.resources.subscribe and capabilities.resources.list_changed
        assert not capabilities.tools.list_changed and not (capabilities.prompts and capabilities.prompts.list_changed)
        stored = await call(writer, "store_memory", content="Likes tea", name="drink")
        sid = (await call(writer, "create_session", name="chat"))["id"]
        wanted = [
            memory_uri(stored["id"].upper()),  # another spelling of the same id: acknowledged in canonical form
            memory_uri(str(uuid.uuid4())),  # nobody's: left out
            "memory://sessions",  # sends no updates: left out
            history_uri(sid),
        ]
        async with watcher.listen(
            resource_subscriptions=wanted, resources_list_changed=True, tools_list_changed=True
        ) as sub:
            assert sub.honored.resource_subscriptions == [memory_uri(stored["id"]), history_uri(sid)]
            assert sub.honored.resources_list_changed and not sub.honored.tools_list_changed
            await call(writer, "store_memory", content="Likes coffee", name="drink")
            assert await next_event(sub) == ResourceUpdated(memory_uri(stored["id"]))
            await call(writer, "add_message", session_id=sid, role="user", text_content="hello")
            assert await next_event(sub) == ResourceUpdated(history_uri(sid))
            await call(writer, "delete_memory", memory_id=stored["id"])
            assert await next_event(sub) == ResourceUpdated(memory_uri(stored["id"]))
            assert await next_event(sub) == ResourcesListChanged()
            await call(writer, "create_session", name="another")
            assert await next_event(sub) == ResourcesListChanged()
        await until_no_watchers(server)  # the stream's watcher leaves with it


async def test_handshake_era_subscribe_unsubscribe_and_refusals(database_url):
    server = _server(database_url)
    async with inbox() as box:
        async with Client(server, mode="legacy", message_handler=box) as watcher, Client(server) as writer:
            assert watcher.server_capabilities.resources.subscribe
            assert watcher.server_capabilities.resources.list_changed
            stored = await call(writer, "store_memory", content="Likes tea", name="drink")
            await subscribe(watcher, memory_uri(stored["id"]))
            with pytest.raises(MCPError, match="No memory with id"):
                await subscribe(watcher, memory_uri(str(uuid.uuid4())))
            with pytest.raises(MCPError, match=r"Only memory://memories/\{id\}"):
                await subscribe(watcher, "memory://sessions")
            await call(writer, "store_memory", content="Likes coffee", name="drink")
            assert await box.next() == memory_uri(stored["id"])
            await unsubscribe(watcher, memory_uri(stored["id"]))
            await call(writer, "store_memory", content="Likes water", name="drink")
            await call(writer, "store_memory", content="A new one")  # the barrier: a list change
            assert await box.next() == "list_changed"
        await until_no_watchers(server)  # the connection's channel closes with it


# --- over stdio and HTTP, as real processes ------------------------------------------------------------------------


@pytest.mark.slow
async def test_stdio_listen_and_subscribe_on_one_connection(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'stdio.db'}"
    params = StdioServerParameters(command=SCRIPT, args=["--database-url", url, "--user", "ada@example.com"])
    async with Client(params) as client:
        stored = await call(client, "store_memory", content="Likes tea", name="drink")
        async with client.listen(resource_subscriptions=[memory_uri(stored["id"])]) as sub:
            await call(client, "store_memory", content="Likes coffee", name="drink")
            assert await next_event(sub) == ResourceUpdated(memory_uri(stored["id"]))
    async with inbox() as box, Client(params, mode="legacy", message_handler=box) as client:
        assert client.server_capabilities.resources.subscribe
        await subscribe(client, memory_uri(stored["id"]))
        await call(client, "store_memory", content="Likes water", name="drink")
        assert await box.next() == memory_uri(stored["id"])


@asynccontextmanager
async def legacy_http(url: str, token: str, box: Inbox) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", message_handler=box) as client,
    ):
        yield client


PEOPLE = {"ada": Identity("ada@example.com", "coder"), "bob": Identity("bob@example.com", "coder")}


@pytest.mark.slow
async def test_another_user_is_never_told_over_http(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'http.db'}"
    env = {"AGENT_MEMORY_HTTP_STATELESS": "false", "AGENT_MEMORY_HTTP_RATE_LIMIT": "0"}
    async with (
        http_server(url, tmp_path / "server.log", static=PEOPLE, env=env) as server,
        server.client("ada") as ada,
        server.client("bob") as bob,
        inbox() as bob_box,
        legacy_http(server.url, server.tokens["bob"], bob_box) as bob_legacy,
    ):
        secret = await call(ada, "store_memory", content="Ada's PIN is 1234", name="pin")
        own = await call(bob, "store_memory", content="Bob likes chess", name="game")
        with pytest.raises(MCPError, match="No memory with id"):
            await subscribe(bob_legacy, memory_uri(secret["id"]))
        await subscribe(bob_legacy, memory_uri(own["id"]))
        spying = [memory_uri(secret["id"]), memory_uri(own["id"])]
        async with (
            ada.listen(resource_subscriptions=[memory_uri(secret["id"])]) as ada_sub,
            bob.listen(resource_subscriptions=spying, resources_list_changed=True) as bob_sub,
        ):
            assert bob_sub.honored.resource_subscriptions == [memory_uri(own["id"])]
            await call(ada, "store_memory", content="Ada's PIN is 4321", name="pin")
            await call(ada, "store_memory", content="Ada's new private note")
            await call(ada, "delete_memory", memory_id=secret["id"])
            assert await next_event(ada_sub) == ResourceUpdated(memory_uri(secret["id"]))
            await call(bob, "store_memory", content="Bob likes go", name="game")  # the barrier
            assert await next_event(bob_sub) == ResourceUpdated(memory_uri(own["id"]))
            assert await bob_box.next() == memory_uri(own["id"])
            # A note for every user of the agent is bob's to see as well.
            await call(ada, "store_memory", content="The team uses tabs", scope="agent")
            assert await next_event(bob_sub) == ResourcesListChanged()
            assert await bob_box.next() == "list_changed"


@pytest.mark.slow
async def test_a_stateless_server_offers_listen_streams_only(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'stateless.db'}"
    env = {"AGENT_MEMORY_HTTP_RATE_LIMIT": "0"}  # stateless is the default
    async with (
        http_server(url, tmp_path / "server.log", static=PEOPLE, env=env) as server,
        server.client("ada") as ada,
        inbox() as box,
        legacy_http(server.url, server.tokens["ada"], box) as legacy,
    ):
        assert not legacy.server_capabilities.resources.subscribe
        assert not legacy.server_capabilities.resources.list_changed
        stored = await call(ada, "store_memory", content="Likes tea", name="drink")
        with pytest.raises(MCPError, match=r"stateless .* use subscriptions/listen"):
            await subscribe(legacy, memory_uri(stored["id"]))
        assert ada.server_capabilities.resources.subscribe
        async with ada.listen(resource_subscriptions=[memory_uri(stored["id"])]) as sub:
            await call(ada, "store_memory", content="Likes coffee", name="drink")
            assert await next_event(sub) == ResourceUpdated(memory_uri(stored["id"]))


def test_notices_round_trip_as_small_payloads():
    notice = Notice("messages", "appended", uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    payload = notice.payload("origin-1")
    assert len(payload.encode()) < 300 and parse_payload(payload) == ("origin-1", notice)
    assert parse_payload(resync_payload("origin-2")) == ("origin-2", None)
    for foreign in ("", "null", "[]", '{"origin": 1}', '{"origin": "x", "kind": "drop table", "action": "created"}'):
        assert parse_payload(foreign) is None


@pytest.mark.slow
async def test_a_revoked_token_stops_being_told(tmp_path):
    """A stream outlives the request that verified its token: revoking the token ends it within twice the
    credential cache (mcp_server.bus_fanout.RECHECK_S), on a listen stream and on a handshake-era connection."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'revoke.db'}"
    env = {"AGENT_MEMORY_HTTP_STATELESS": "false", "AGENT_MEMORY_HTTP_RATE_LIMIT": "0"}
    async with (
        http_server(
            url, tmp_path / "server.log", static={"bob": PEOPLE["bob"]}, managed={"ada": PEOPLE["ada"]}, env=env
        ) as server,
        server.client("ada") as ada,
        server.client("bob") as bob,
        inbox() as ada_box,
        inbox() as bob_box,
        legacy_http(server.url, server.tokens["ada"], ada_box) as ada_legacy,
        legacy_http(server.url, server.tokens["bob"], bob_box) as bob_legacy,
    ):
        mine = await call(ada, "store_memory", content="Ada's note")
        await subscribe(ada_legacy, memory_uri(mine["id"]))
        await subscribe(bob_legacy, memory_uri((await call(bob, "store_memory", content="Bob's note"))["id"]))
        async with ada.listen(resources_list_changed=True) as ada_sub:
            await call(bob, "store_memory", content="The team uses tabs", scope="agent")
            assert await next_event(ada_sub) == ResourcesListChanged()
            assert await ada_box.next() == "list_changed"
            assert await bob_box.next() == "list_changed"
            ops = await Operations.open(url)
            try:
                (token,) = await ops.credentials.list()
                await ops.credentials.revoke(token.id)
            finally:
                await ops.close()
            with anyio.fail_after(2 * 5.0 + 3.0), pytest.raises(SubscriptionLost) as ended:
                async for _ in ada_sub:
                    pass
            assert "revoked or has expired" in str(ended.value.__cause__)
        await anyio.sleep(1.0)  # the connection's own check runs on its own clock
        await call(bob, "store_memory", content="The team uses spaces", scope="agent")
        assert await bob_box.next() == "list_changed"  # the barrier: had ada's connection been told, it was by now
        with pytest.raises(TimeoutError):
            await ada_box.next()


async def test_a_stream_ends_when_its_credential_does_and_keeps_its_own_errors(monkeypatch):
    monkeypatch.setattr(bus_fanout, "RECHECK_S", 0.01)
    answers = iter([True, True, False])

    async def check() -> bool:
        return next(answers)

    async def served() -> str:
        return "served"

    with anyio.fail_after(WAIT_S):
        assert await bus_fanout.while_valid(check, anyio.sleep_forever) == (False, None)
        assert await bus_fanout.while_valid(check, served) == (True, "served")

    async def refused() -> None:
        raise MCPError(-32600, "Subscription limit reached")

    # The stream's own error reaches the SDK as itself (the SDK answers it), not wrapped in an ExceptionGroup.
    with pytest.raises(MCPError, match="Subscription limit reached"):
        await bus_fanout.while_valid(check, refused)
